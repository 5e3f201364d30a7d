//! Campaigns and segments (HQ writes; HQ and managers read).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::extract::{Json as JsonBody, Path};
use crate::campaigns::catalog::{self, CampaignRow};
use crate::campaigns::spec::CampaignSpec;
use crate::ingest::now_ms;
use crate::on_pool;
use crate::profiles::segment;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .routes(routes!(set_active))
        .routes(routes!(list_segments, create_segment))
}

async fn reload(state: &ApiState) -> Result<(), ApiError> {
    if let Some(e) = &state.engine {
        e.catalog().reload(&state.store).await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    responses((status = 200, body = [CampaignRow]), (status = 403, body = ErrorBody)))]
async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<CampaignRow>>, ApiError> {
    caller.require(&[Role::Hq, Role::Manager])?;
    Ok(Json(catalog::list(&state.store).await?))
}

/// Creates a campaign (see the schema: where, when, who, what, how often, holdout). It is live
/// at once on this worker and within seconds on the others.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    request_body = CampaignSpec,
    responses((status = 201, body = CampaignRow), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(spec): JsonBody<CampaignSpec>,
) -> Result<(StatusCode, Json<CampaignRow>), ApiError> {
    caller.require(&[Role::Hq])?;
    let c = catalog::create(&state.store, spec, now_ms()).await?;
    reload(&state).await?;
    Ok((
        StatusCode::CREATED,
        Json(catalog::get(&state.store, c.id()).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "campaign id")),
    responses((status = 200, body = CampaignRow), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignRow>, ApiError> {
    caller.require(&[Role::Hq, Role::Manager])?;
    Ok(Json(catalog::get(&state.store, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Active {
    pub active: bool,
}

/// Pauses (false) or resumes (true) a campaign.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/active", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "campaign id")), request_body = Active,
    responses((status = 200, body = CampaignRow), (status = 404, body = ErrorBody)))]
async fn set_active(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(a): JsonBody<Active>,
) -> Result<Json<CampaignRow>, ApiError> {
    caller.require(&[Role::Hq])?;
    catalog::set_active(&state.store, &id, a.active).await?;
    reload(&state).await?;
    Ok(Json(catalog::get(&state.store, &id).await?))
}

/// A named tag expression.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub id: String,
    /// e.g. `cosmetics-lover & !staff | vip`
    pub expression: String,
}

#[utoipa::path(get, path = "/api/v1/segments", tag = "campaigns", security(("bearer" = [])),
    responses((status = 200, body = [Segment])))]
async fn list_segments(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<Segment>>, ApiError> {
    caller.require(&[Role::Hq, Role::Manager])?;
    let rows: Vec<(String, String)> = on_pool!(&state.store, pool => sqlx::query_as(
        "SELECT id, expression FROM segments ORDER BY id",
    )
    .fetch_all(pool)
    .await)?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, expression)| Segment { id, expression })
            .collect(),
    ))
}

/// Defines a segment; the expression is checked and stored in its canonical form.
#[utoipa::path(post, path = "/api/v1/segments", tag = "campaigns", security(("bearer" = [])),
    request_body = Segment,
    responses((status = 201, body = Segment), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_segment(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(s): JsonBody<Segment>,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    caller.require(&[Role::Hq])?;
    let canonical = segment::define(&state.store, &s.id, &s.expression, now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Segment {
            id: s.id,
            expression: canonical,
        }),
    ))
}

//! Shoppers: opt-in, profile, consent, identities, merge, tags, erase, visits, wallet, and the
//! app-reported sightings.
//!
//! Who may do what: the retailer's app backend (`app`) and HQ register shoppers; a shopper's own
//! token (returned once at registration) reads and changes that shopper only — profile, consent,
//! erase, coupons, sightings; HQ can do everything; merging and tags are HQ's.

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
use crate::coupons::wallet::{self, WalletCoupon};
use crate::engine::Engine;
use crate::ingest::now_ms;
use crate::profiles::import::{self, ImportReport};
use crate::profiles::shoppers::{self, IdentityLink, Profile, Registered, Registration};
use crate::profiles::sightings::{self, AppSighting, SightingResult};
use crate::profiles::visits::{self, Visit};

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(get_profile, erase))
        .routes(routes!(set_consent))
        .routes(routes!(link_identity))
        .routes(routes!(merge))
        .routes(routes!(set_tag, remove_tag))
        .routes(routes!(list_visits))
        .routes(routes!(list_coupons))
        .routes(routes!(report_sightings))
        .routes(routes!(import_crm))
}

/// Bulk import of a CRM export (CSV body, header with `member_id` and optionally `phone`,
/// `email`, `wechat_openid`, `app_user`, `tags`, `home_city`, `lat`, `lon`, `profiling`). Rows
/// that can't be used are reported with their line and reason; the rest are imported.
#[utoipa::path(post, path = "/api/v1/shoppers/import", tag = "shoppers", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)))]
async fn import_crm(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    body: String,
) -> Result<Json<ImportReport>, ApiError> {
    caller.require(&[Role::Hq])?;
    let report = import::import(&state.store, body.as_bytes(), now_ms(), |_| {}).await?;
    Ok(Json(report))
}

pub(crate) fn engine(state: &ApiState) -> Result<&Arc<Engine>, ApiError> {
    state.engine.as_ref().ok_or_else(|| {
        ApiError::unavailable("this process runs no engine (identity, campaigns, coupons)")
    })
}

/// What registration returns: the app's EID parameters and its shopper token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    #[serde(flatten)]
    pub registered: Registered,
    /// The shopper's own API token (role `shopper`): the app keeps it.
    pub token: String,
}

/// Opt in: registers a shopper and issues (or accepts) the Eddystone-EID identity key their app
/// will advertise. If an identity given (member card, phone…) belongs to a CRM-imported profile
/// without an app, that profile is taken over.
#[utoipa::path(post, path = "/api/v1/shoppers", tag = "shoppers", security(("bearer" = [])),
    request_body = Registration,
    responses((status = 201, body = RegisterResponse), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn register(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(reg): JsonBody<Registration>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    caller.require(&[Role::App, Role::Hq])?;
    let engine = engine(&state)?;
    let registered = shoppers::register(&state.store, &reg, now_ms()).await?;
    if let Some(k) = shoppers::registered_key(&state.store, &registered.shopper).await? {
        engine.resolver().register(k);
    }
    let token = super::auth::create_token(
        &state.store,
        Role::Shopper,
        None,
        Some(&registered.shopper),
        "shopper app",
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse { registered, token }),
    ))
}

/// A profile with what it learnt: visits, zone affinity, loyalty.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    #[serde(flatten)]
    pub profile: Profile,
    /// `first_time`, `daily`, `weekly` or `occasional`.
    pub loyalty: String,
    pub visits: i64,
    /// Seconds per zone over the last 90 days, most first.
    pub zone_affinity: Vec<ZoneSeconds>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneSeconds {
    pub zone: String,
    pub seconds: i64,
}

#[utoipa::path(get, path = "/api/v1/shoppers/{id}", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")),
    responses((status = 200, body = ProfileView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_profile(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    caller.require_shopper(&id)?;
    let profile = shoppers::get(&state.store, &id).await?;
    let now = now_ms();
    let affinity = visits::zone_affinity(&state.store, &id, now - 90 * 86_400_000).await?;
    let count = visits::of_shopper(&state.store, &id, 10_000).await?.len() as i64;
    Ok(Json(ProfileView {
        profile,
        loyalty: visits::loyalty(&state.store, &id, now).await?.to_owned(),
        visits: count,
        zone_affinity: affinity
            .into_iter()
            .map(|(zone, seconds)| ZoneSeconds { zone, seconds })
            .collect(),
    }))
}

/// Erase: deletes the profile, its identities, tags, tokens and sightings; its visits and coupons
/// stay de-linked (for footfall and campaign totals). Its EIDs stop resolving at once.
#[utoipa::path(delete, path = "/api/v1/shoppers/{id}", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn erase(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_shopper(&id)?;
    shoppers::erase(&state.store, &id).await?;
    if let Some(e) = &state.engine {
        e.resolver().remove(&id);
    }
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// Consent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// true: stop every coupon at once (and stop resolving the shopper's EIDs); false: opt back in.
    #[serde(default)]
    pub opted_out: Option<bool>,
    /// Consent to profiling (personalised offers, behavioural tags).
    #[serde(default)]
    pub profiling: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/shoppers/{id}/consent", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")), request_body = Consent,
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody)))]
async fn set_consent(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(c): JsonBody<Consent>,
) -> Result<Json<Profile>, ApiError> {
    caller.require_shopper(&id)?;
    shoppers::set_consent(&state.store, &id, c.opted_out, c.profiling, now_ms()).await?;
    if let Some(e) = &state.engine {
        match shoppers::registered_key(&state.store, &id).await? {
            Some(k) => e.resolver().register(k),
            None => {
                e.resolver().remove(&id);
            }
        }
    }
    Ok(Json(shoppers::get(&state.store, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/shoppers/{id}/identities", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")), request_body = IdentityLink,
    responses((status = 201, body = IdentityLink), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link_identity(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(link): JsonBody<IdentityLink>,
) -> Result<(StatusCode, Json<IdentityLink>), ApiError> {
    caller.require_shopper(&id)?;
    let stored = shoppers::link_identity(&state.store, &id, &link, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The profile merged into this one (and deleted).
    pub from: String,
}

/// Merges another profile into this one (HQ).
#[utoipa::path(post, path = "/api/v1/shoppers/{id}/merge", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the profile that stays")), request_body = MergeRequest,
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody)))]
async fn merge(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(m): JsonBody<MergeRequest>,
) -> Result<Json<Profile>, ApiError> {
    caller.require(&[Role::Hq])?;
    shoppers::merge(&state.store, &id, &m.from, now_ms()).await?;
    if let Some(e) = &state.engine {
        e.resolver().remove(&m.from);
        if let Some(k) = shoppers::registered_key(&state.store, &id).await? {
            e.resolver().register(k);
        }
    }
    state.tokens.clear();
    Ok(Json(shoppers::get(&state.store, &id).await?))
}

/// Sets a tag (HQ).
#[utoipa::path(put, path = "/api/v1/shoppers/{id}/tags/{tag}", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id"), ("tag" = String, Path, description = "tag")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_tag(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Hq])?;
    shoppers::set_tag(&state.store, &id, &tag, "api", now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/shoppers/{id}/tags/{tag}", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id"), ("tag" = String, Path, description = "tag")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_tag(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Hq])?;
    if shoppers::remove_tag(&state.store, &id, &tag).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "shopper {id} has no tag {tag:?}"
        )))
    }
}

/// The shopper's stitched visits, newest first.
#[utoipa::path(get, path = "/api/v1/shoppers/{id}/visits", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")),
    responses((status = 200, body = [Visit]), (status = 403, body = ErrorBody)))]
async fn list_visits(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Visit>>, ApiError> {
    caller.require_shopper(&id)?;
    Ok(Json(visits::of_shopper(&state.store, &id, 500).await?))
}

/// The shopper's coupons (the wallet), newest first.
#[utoipa::path(get, path = "/api/v1/shoppers/{id}/coupons", tag = "coupons", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")),
    responses((status = 200, body = [WalletCoupon]), (status = 403, body = ErrorBody)))]
async fn list_coupons(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<WalletCoupon>>, ApiError> {
    caller.require_shopper(&id)?;
    Ok(Json(wallet::of_shopper(&state.store, &id).await?))
}

/// The store beacons the app heard in the background (shopper token). Each report is checked
/// (unknown beacon, stale, impossible travel, implausible RSSI) and the answer says, per report,
/// what became of it; accepted ones join the shopper's visit and trigger the same campaigns as
/// the gateways' events.
#[utoipa::path(post, path = "/api/v1/shoppers/{id}/sightings", tag = "shoppers", security(("bearer" = [])),
    params(("id" = String, Path, description = "shopper id")), request_body = [AppSighting],
    responses((status = 200, body = [SightingResult]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report_sightings(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(reports): JsonBody<Vec<AppSighting>>,
) -> Result<Json<Vec<SightingResult>>, ApiError> {
    caller.require_shopper(&id)?;
    let engine = engine(&state)?;
    if reports.len() > sightings::MAX_BATCH {
        return Err(ApiError::unprocessable(format!(
            "at most {} sightings per request",
            sightings::MAX_BATCH
        )));
    }
    match shoppers::consent(&state.store, &id).await? {
        None => return Err(ApiError::not_found(format!("shopper {id}"))),
        Some((_, true)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "opted_out",
                "this shopper opted out: sightings are not recorded",
            ));
        }
        Some(_) => {}
    }
    let now = now_ms();
    let mut out = Vec::with_capacity(reports.len());
    for s in &reports {
        let (result, sighting_id) = sightings::check_and_store(
            &state.store,
            engine.beacon_uuid(),
            &id,
            s,
            now,
            engine.sighting_stats(),
        )
        .await?;
        if let (Some(sid), Some(store_id)) = (&sighting_id, &result.store) {
            engine
                .app_sighting(&id, sid, store_id, result.zone.as_deref(), s.ts_ms)
                .await?;
        }
        out.push(result);
    }
    Ok(Json(out))
}

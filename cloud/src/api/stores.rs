//! The chain as the API shows it: stores (where, time zone, floor plan), their gateways' health,
//! and what ingest refused.
//!
//! - `GET /api/v1/stores` — every store the caller may read (a manager: only its own).
//! - `GET /api/v1/stores/{id}` — one store with its floor plan (`layout`, the `StoreConfig` JSON:
//!   zones as polygons and receivers as points, in metres).
//! - `GET /api/v1/gateways[?store=ID]` — gateway health from the `gateways` table: online (from
//!   the retained status), last seen, backlog, version.
//! - `GET /api/v1/dead-letters/summary` — HQ: refusals by reason, and the latest few.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use crate::on_pool;
use crate::store::{AnyStore, Store, StoreError};

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_stores))
        .routes(routes!(get_store))
        .routes(routes!(list_gateways))
        .routes(routes!(dead_letter_summary))
}

/// A store, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct StoreInfo {
    #[schema(example = "store-001")]
    pub id: String,
    pub name: String,
    /// IANA time zone: hours and days of this store's figures are local to it.
    #[schema(example = "Europe/Paris")]
    pub tz: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The region the store belongs to (a boundary id of the expansion map, or a name).
    pub region: Option<String>,
    /// The day it opened, YYYY-MM-DD.
    pub opened: Option<String>,
    /// Whether a floor plan is stored (`GET /api/v1/stores/{id}` returns it).
    pub has_layout: bool,
}

/// A store with its floor plan.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct StoreDetail {
    #[serde(flatten)]
    pub store: StoreInfo,
    /// The floor plan: `StoreConfig` JSON (`receivers` [{id, x, y}], `zones` [{id, name,
    /// polygon: [[x, y], …]}], `entrance`), in metres; null when none is stored.
    #[schema(value_type = Option<Object>)]
    pub layout: Option<serde_json::Value>,
}

type StoreRow = (
    String,
    String,
    String,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn store_info(row: StoreRow) -> (StoreInfo, Option<String>) {
    let (id, name, tz, lat, lon, region, opened, layout) = row;
    (
        StoreInfo {
            id,
            name,
            tz,
            lat,
            lon,
            region,
            opened,
            has_layout: layout.as_deref().is_some_and(|l| !l.trim().is_empty()),
        },
        layout,
    )
}

/// Stores, by id; `only` limits to one.
pub async fn stores(store: &AnyStore, only: Option<&str>) -> Result<Vec<StoreInfo>, StoreError> {
    let rows: Vec<StoreRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, tz, lat, lon, region, opened, layout FROM stores \
         WHERE $1 IS NULL OR id = $1 ORDER BY id")
        .bind(only)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(|r| store_info(r).0).collect())
}

/// One store with its layout, if it exists.
pub async fn store_detail(store: &AnyStore, id: &str) -> Result<Option<StoreDetail>, StoreError> {
    let row: Option<StoreRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, name, tz, lat, lon, region, opened, layout FROM stores WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|r| {
        let (info, layout) = store_info(r);
        let layout = layout
            .filter(|l| !l.trim().is_empty())
            .and_then(|l| match serde_json::from_str(&l) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(store = %info.id, error = %e, "stores.layout is not JSON; shown as none");
                    None
                }
            });
        StoreDetail {
            store: info,
            layout,
        }
    }))
}

/// The stores the caller may read.
#[utoipa::path(
    get,
    path = "/api/v1/stores",
    tag = "stores",
    security(("bearer" = [])),
    responses(
        (status = 200, body = [StoreInfo]),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
)]
async fn list_stores(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<StoreInfo>>, ApiError> {
    let scope = caller.store_scope()?;
    Ok(Json(stores(&state.store, scope).await?))
}

/// One store with its floor plan. A manager token for another store gets 403.
#[utoipa::path(
    get,
    path = "/api/v1/stores/{id}",
    tag = "stores",
    params(("id" = String, Path, description = "store id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StoreDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn get_store(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoreDetail>, ApiError> {
    // Scope first: a manager learns nothing about other stores, not even whether they exist.
    caller.can_read_store(&id)?;
    store_detail(&state.store, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("store {id:?} does not exist")))
}

/// A gateway's registration and health.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GatewayHealth {
    #[schema(example = "gw-1")]
    pub gateway: String,
    pub store: String,
    /// Listed in the config (or registered by an operator); false: claimed on first sight (demo).
    pub registered: bool,
    /// From the gateway's retained status (its last will says offline); null before any status.
    pub online: Option<bool>,
    /// Last time anything arrived from it (unix ms).
    pub last_seen_ms: Option<i64>,
    pub first_seen_ms: Option<i64>,
    /// Events waiting in its outbox, as it last reported.
    pub backlog: Option<i64>,
    /// Its software version, as it last reported.
    pub version: Option<String>,
    /// The gateway's own time of its last status (unix ms).
    pub status_ms: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GatewayQuery {
    /// Only this store's gateways.
    pub store: Option<String>,
}

/// Gateway health: online, last seen, backlog, version. Managers see their store's.
#[utoipa::path(
    get,
    path = "/api/v1/gateways",
    tag = "stores",
    params(GatewayQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = [GatewayHealth]),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
)]
async fn list_gateways(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<GatewayQuery>,
) -> Result<Json<Vec<GatewayHealth>>, ApiError> {
    let scope = caller.store_scope()?;
    if let Some(wanted) = &q.store {
        caller.can_read_store(wanted)?;
    }
    let only = q.store.as_deref().or(scope);
    let rows = state.store.gateways().await?;
    Ok(Json(
        rows.into_iter()
            .filter(|g| only.is_none_or(|s| g.store == s))
            .map(|g| GatewayHealth {
                gateway: g.gateway,
                store: g.store,
                registered: g.registered,
                online: g.online,
                last_seen_ms: g.last_seen_ms,
                first_seen_ms: g.first_seen_ms,
                backlog: g.backlog,
                version: g.version,
                status_ms: g.status_ms,
            })
            .collect(),
    ))
}

/// Refusals of one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeadLetterCount {
    #[schema(example = "unknown_gateway")]
    pub reason: String,
    pub count: i64,
    pub last_ms: Option<i64>,
}

/// One recent refusal (without its payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecentDeadLetter {
    pub id: i64,
    pub received_ms: i64,
    pub topic: String,
    pub reason: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeadLetterSummary {
    pub total: i64,
    pub by_reason: Vec<DeadLetterCount>,
    /// The latest refusals, newest first (at most 20).
    pub recent: Vec<RecentDeadLetter>,
}

/// Counts of dead letters by reason, and the latest 20.
pub async fn dead_letter_summary_of(store: &AnyStore) -> Result<DeadLetterSummary, StoreError> {
    let by: Vec<(String, i64, Option<i64>)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT reason, count(*), max(received_ms) FROM dead_letters GROUP BY reason ORDER BY reason")
        .fetch_all(pool)
        .await)?;
    let recent: Vec<(i64, i64, String, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, received_ms, topic, reason, detail FROM dead_letters ORDER BY received_ms DESC, id DESC LIMIT 20")
        .fetch_all(pool)
        .await)?;
    Ok(DeadLetterSummary {
        total: by.iter().map(|(_, n, _)| n).sum(),
        by_reason: by
            .into_iter()
            .map(|(reason, count, last_ms)| DeadLetterCount {
                reason,
                count,
                last_ms,
            })
            .collect(),
        recent: recent
            .into_iter()
            .map(
                |(id, received_ms, topic, reason, detail)| RecentDeadLetter {
                    id,
                    received_ms,
                    topic,
                    reason,
                    detail,
                },
            )
            .collect(),
    })
}

/// What ingest refused, by reason (HQ only).
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters/summary",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, body = DeadLetterSummary),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
)]
async fn dead_letter_summary(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<DeadLetterSummary>, ApiError> {
    caller.require(&[Role::Hq])?;
    Ok(Json(dead_letter_summary_of(&state.store).await?))
}

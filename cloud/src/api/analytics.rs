//! Footfall, zones, paths and campaign results over HTTP: thin routes over
//! [`crate::analytics`], adding who may read what and default periods.
//!
//! - `GET /api/v1/footfall` — a store, a region or the chain, by local hour, day or week
//!   ([`analytics::footfall::Footfall`]). A manager reads its own store only: without `store` it
//!   gets its store, and a region, the chain or another store is 403.
//! - `GET /api/v1/footfall/stores` — every store's totals over a period, most visitors first (the
//!   overview's ranking; HQ, or a manager's one store).
//! - `GET /api/v1/footfall/extent` — the first and last local day with footfall of a store, a
//!   region or the chain (the dashboard's default period ends at the last), same rules as footfall.
//! - `GET /api/v1/stores/{id}/zones`, `GET /api/v1/stores/{id}/paths` — zone dwell and funnel, top
//!   paths and transitions of one store ([`analytics::zones`]).
//! - `GET /api/v1/campaigns/{id}/results` — sent, redeemed, revenue and lift against the holdout
//!   ([`analytics::campaigns`]); a manager sees its store's row as the total.
//!
//! `from`/`to` (local dates, both included) default to the last 28 days up to today (UTC date),
//! or the last 2 days for hourly footfall and 12 weeks for weekly.

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
use crate::analytics::campaigns::{CampaignQuery, CampaignResults, campaign_results};
use crate::analytics::footfall::{
    self, Footfall, FootfallFigures, FootfallParams, FootfallQuery, Granularity, Scope,
};
use crate::analytics::local::add_days;
use crate::analytics::zones::{self, Paths, ZoneParams, ZoneQuery, Zones};
use crate::ingest::now_ms;
use crate::on_pool;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(get_footfall))
        .routes(routes!(get_footfall_by_store))
        .routes(routes!(get_footfall_extent))
        .routes(routes!(get_zones))
        .routes(routes!(get_paths))
        .routes(routes!(get_campaign_results))
}

/// Today's date (UTC) and `days` before it, as `YYYY-MM-DD`, for missing `from`/`to`.
fn period(from: Option<String>, to: Option<String>, days: i64) -> (String, String) {
    let today = jiff::Timestamp::from_millisecond(now_ms())
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap_or_default();
    let to = to.filter(|s| !s.is_empty());
    let end = to
        .as_deref()
        .and_then(|t| t.parse::<jiff::civil::Date>().ok())
        .unwrap_or(today);
    (
        from.filter(|s| !s.is_empty())
            .unwrap_or_else(|| add_days(end, 1 - days).to_string()),
        to.unwrap_or_else(|| end.to_string()),
    )
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FootfallRequest {
    /// One store; or
    pub store: Option<String>,
    /// the stores of one region (`stores.region`); neither: the whole chain.
    pub region: Option<String>,
    /// First local date `YYYY-MM-DD` (default: see the module).
    pub from: Option<String>,
    /// Last local date, included (default today).
    pub to: Option<String>,
    /// `hour`, `day` (default) or `week`.
    pub granularity: Option<String>,
    /// Loyalty classes of resolved shoppers' visits (default true).
    pub loyalty: Option<bool>,
}

/// The store a manager may read, applied to a footfall request.
fn scoped(caller: &Caller, mut q: FootfallRequest) -> Result<FootfallRequest, ApiError> {
    if let Some(own) = caller.store_scope()? {
        if q.region.is_some() {
            caller.require(&[Role::Hq])?;
        }
        match &q.store {
            Some(s) => caller.can_read_store(s)?,
            None => q.store = Some(own.to_owned()),
        }
    }
    Ok(q)
}

/// Visitors, passers-by, capture rate, visits, engaged, dwell buckets, traffic index and loyalty
/// per local hour, day or week.
#[utoipa::path(
    get,
    path = "/api/v1/footfall",
    tag = "analytics",
    params(FootfallRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "analytics::footfall::Footfall: scope, stores, time_zone, granularity, from, to, buckets [{local, start_ms, end_ms, visits, visitors, passersby, capture_rate, engaged, engaged_rate, mean_dwell_s, dwell, traffic, door, loyalty, …}], total", content_type = "application/json"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_footfall(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<FootfallRequest>,
) -> Result<Json<Footfall>, ApiError> {
    let q = scoped(&caller, q)?;
    let granularity = q.granularity.clone().unwrap_or_else(|| "day".into());
    let days = match granularity.as_str() {
        "hour" => 2,
        "week" => 84,
        _ => 28,
    };
    let (from, to) = period(q.from, q.to, days);
    let query = FootfallQuery::from_params(&FootfallParams {
        store: q.store,
        region: q.region,
        from,
        to,
        granularity: Some(granularity),
        loyalty: q.loyalty,
    })?;
    Ok(Json(footfall::footfall(&state.store, &query).await?))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StoresFootfallRequest {
    /// Only the stores of this region.
    pub region: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One store's totals over the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreFootfall {
    pub store: String,
    pub name: String,
    pub region: Option<String>,
    /// analytics::footfall::FootfallFigures of the whole period.
    #[schema(value_type = Object)]
    pub total: FootfallFigures,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoresFootfall {
    pub from: String,
    pub to: String,
    /// Most visitors first.
    pub stores: Vec<StoreFootfall>,
}

/// Every store's footfall totals over a period, most visitors first.
#[utoipa::path(
    get,
    path = "/api/v1/footfall/stores",
    tag = "analytics",
    params(StoresFootfallRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StoresFootfall),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_footfall_by_store(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<StoresFootfallRequest>,
) -> Result<Json<StoresFootfall>, ApiError> {
    let scope = caller.store_scope()?;
    let (from, to) = period(q.from, q.to, 28);
    let stores = super::stores::stores(&state.store, scope).await?;
    let mut out = Vec::new();
    // One roll-up query per store (day table, the period's rows): fine for a page of stores;
    // a single grouped query in analytics would serve a thousand.
    for s in stores {
        if q.region.is_some() && s.region != q.region {
            continue;
        }
        let query = FootfallQuery {
            scope: Scope::Store(s.id.clone()),
            from: footfall::parse_date("from", &from)?,
            to: footfall::parse_date("to", &to)?,
            granularity: Granularity::Week,
            loyalty: false,
        };
        query.validate()?;
        let f = footfall::footfall(&state.store, &query).await?;
        out.push(StoreFootfall {
            store: s.id,
            name: s.name,
            region: s.region,
            total: f.total,
        });
    }
    out.sort_by(|a, b| {
        b.total
            .visitors
            .cmp(&a.total.visitors)
            .then_with(|| a.store.cmp(&b.store))
    });
    Ok(Json(StoresFootfall {
        from,
        to,
        stores: out,
    }))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExtentRequest {
    /// One store; or
    pub store: Option<String>,
    /// the stores of one region; neither: the whole chain.
    pub region: Option<String>,
}

/// The days with footfall data of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FootfallExtent {
    /// The first local date `YYYY-MM-DD` with any footfall roll-up (null: none yet).
    pub first: Option<String>,
    /// The last one.
    pub last: Option<String>,
}

/// The first and last local day with footfall data of a store, a region or the chain: a period
/// that shows something when the caller has no period in mind (the dashboard's default).
#[utoipa::path(
    get,
    path = "/api/v1/footfall/extent",
    tag = "analytics",
    params(ExtentRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, body = FootfallExtent),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
)]
async fn get_footfall_extent(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<ExtentRequest>,
) -> Result<Json<FootfallExtent>, ApiError> {
    let q = scoped(
        &caller,
        FootfallRequest {
            store: q.store,
            region: q.region,
            ..FootfallRequest::default()
        },
    )?;
    // One query per scope, each answered from an index (the day index, or the (store, day) key).
    let (first, last): (Option<String>, Option<String>) = match (&q.store, &q.region) {
        (Some(store), _) => on_pool!(&state.store, pool => sqlx::query_as(
            "SELECT min(day), max(day) FROM footfall_day WHERE store = $1")
            .bind(store)
            .fetch_one(pool)
            .await)?,
        (None, Some(region)) => on_pool!(&state.store, pool => sqlx::query_as(
            "SELECT min(day), max(day) FROM footfall_day \
             WHERE store IN (SELECT id FROM stores WHERE region = $1)")
            .bind(region)
            .fetch_one(pool)
            .await)?,
        (None, None) => on_pool!(&state.store, pool => sqlx::query_as(
            "SELECT (SELECT min(day) FROM footfall_day), (SELECT max(day) FROM footfall_day)")
            .fetch_one(pool)
            .await)?,
    };
    Ok(Json(FootfallExtent { first, last }))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Paths: how many of the most common to list (default 10).
    pub top: Option<u32>,
}

fn zone_query(store: &str, q: ZoneRequest) -> Result<(ZoneQuery, Option<u32>), ApiError> {
    let (from, to) = period(q.from, q.to, 28);
    let params = ZoneParams {
        from,
        to,
        top: q.top,
    };
    Ok((ZoneQuery::from_params(store, &params)?, q.top))
}

/// Dwell per zone (the floor-plan heatmap) and the entrance-to-zone funnel.
#[utoipa::path(
    get,
    path = "/api/v1/stores/{id}/zones",
    tag = "analytics",
    params(("id" = String, Path, description = "store id"), ZoneRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "analytics::zones::Zones: store, from, to, visits, visits_with_zones, zones [{zone, name, stays, dwell_s, mean_stay_s, visits, visit_share, presence_minutes}], funnel {entrance, entered, steps [{zone, reached, rate, …}]}", content_type = "application/json"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_zones(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ZoneRequest>,
) -> Result<Json<Zones>, ApiError> {
    caller.can_read_store(&id)?;
    let (query, _) = zone_query(&id, q)?;
    Ok(Json(zones::zones(&state.store, &query).await?))
}

/// The most common paths through the store and every zone-to-zone transition.
#[utoipa::path(
    get,
    path = "/api/v1/stores/{id}/paths",
    tag = "analytics",
    params(("id" = String, Path, description = "store id"), ZoneRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "analytics::zones::Paths: store, from, to, visits_with_zones, paths [{zones, truncated, visits, share}], other_visits, transitions [{source, target, count}]", content_type = "application/json"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_paths(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ZoneRequest>,
) -> Result<Json<Paths>, ApiError> {
    caller.can_read_store(&id)?;
    let (query, top) = zone_query(&id, q)?;
    Ok(Json(
        zones::paths(&state.store, &query, top.unwrap_or(10)).await?,
    ))
}

/// Sent, delivered, redeemed, revenue, and lift over the randomized holdout with its 95 %
/// interval, in total, per store and per segment (shoppers by their tags now).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/results",
    tag = "analytics",
    params(("id" = String, Path, description = "campaign id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "analytics::campaigns::CampaignResults: campaign, name, conversion_window_days, as_of_ms, total {decisions, coupons, lift}, stores [{store, decisions, coupons, lift}], segments [{segment, expression, decisions, coupons, lift}]; a manager's token sees its store only", content_type = "application/json"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn get_campaign_results(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignResults>, ApiError> {
    // A manager: its store's figures only (its row is the total, its shoppers the segments').
    let q = CampaignQuery {
        store: caller.store_scope()?.map(str::to_owned),
        ..CampaignQuery::new(&id, now_ms())
    };
    Ok(Json(campaign_results(&state.store, &q).await?))
}

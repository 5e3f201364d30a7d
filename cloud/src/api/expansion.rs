//! `GET /api/v1/expansion`: the regional expansion analysis ([`crate::expansion`]) as GeoJSON
//! (the dashboard's map) or as the regions CSV — HQ only.
//!
//! What is analysed: the dataset the process was given ([`ApiState::expansion`]: the demo's chain,
//! or files an operator loaded), or else what the database knows — stores with coordinates
//! (`stores`), opted-in shoppers with a home position (`shoppers.home_lat/home_lon`, from the CRM
//! import) as customers, and their in-store visits per store (`visits`). The database has no
//! online orders, so there each customer counts one order and no revenue.
//!
//! k-anonymity: `k` can only be raised by a request, never lowered below the server's
//! ([`crate::expansion::Options`] default, 10). The analysis runs on a blocking thread, and its
//! answer is cached per query for [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use crate::expansion::{
    self, Boundaries, BuiltinBoundaries, CustomersBuilder, Dataset, Options, ScoreBy,
};
use crate::on_pool;
use crate::store::StoreError;

/// How long one query's answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new().routes(routes!(get_expansion))
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpansionQuery {
    /// Shipped boundaries: `china-provinces`, `china-cities` or `world-countries`; default:
    /// China's provinces when most customers are in China, else the world's countries.
    pub regions: Option<String>,
    /// Customers farther than this from every store are unserved (default 30).
    pub radius_km: Option<f64>,
    /// Suppress regions and hexagons with fewer customers than this; can only raise the
    /// server's minimum (10).
    pub k: Option<u64>,
    /// Candidate cities to propose (default 10, at most 100).
    pub candidates: Option<usize>,
    /// Rank candidates by unserved `customers` (default) or `revenue`.
    pub score_by: Option<String>,
    /// Include H3 density hexagons (default true).
    pub hexes: Option<bool>,
    /// H3 resolution of the hexagons, 0..=9 (default 5, about 250 km² each).
    pub resolution: Option<u8>,
    /// `geojson` (default) or `csv` (the regions table).
    pub format: Option<String>,
}

/// The analysis as a GeoJSON FeatureCollection: features of `kind` `region`, `hex`, `store`,
/// `candidate`, and the foreign members `attribution`, `boundaries`, `options`, `totals`.
#[utoipa::path(
    get,
    path = "/api/v1/expansion",
    tag = "expansion",
    params(ExpansionQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "GeoJSON FeatureCollection (or CSV with format=csv)", content_type = "application/geo+json"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
)]
async fn get_expansion(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<ExpansionQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Hq])?;
    let csv = match q.format.as_deref() {
        None | Some("geojson") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: use geojson or csv"
            )));
        }
    };
    let options = options(&q)?;
    let builtin = q
        .regions
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(str::parse::<BuiltinBoundaries>)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let hexes = q.hexes.unwrap_or(true);
    let key = format!("{builtin:?}|{options:?}|{hexes}|{csv}");
    if let Some(body) = state.expansion_cache.get(&key) {
        return Ok(respond(body, csv));
    }
    let data = match &state.expansion {
        Some(d) => d.clone(),
        None => Arc::new(dataset_from_db(&state).await?),
    };
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let which = match builtin {
            Some(b) => b,
            None => {
                expansion::choose_builtin(&data.customers).map_err(|e| ApiError::internal(&e))?
            }
        };
        let boundaries = builtin_boundaries(which)?;
        let report = expansion::analyze(&data, boundaries, &options)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if csv {
            let mut out = Vec::new();
            report
                .write_regions_csv(&mut out)
                .map_err(|e| ApiError::internal(&e))?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        } else {
            Ok(report.to_geojson_string(hexes))
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let body: Arc<str> = Arc::from(body);
    state.expansion_cache.put(key, body.clone());
    Ok(respond(body, csv))
}

fn respond(body: Arc<str>, csv: bool) -> Response {
    let mut r = body.to_string().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/geo+json"
        }),
    );
    r
}

fn options(q: &ExpansionQuery) -> Result<Options, ApiError> {
    let mut o = Options::default();
    if let Some(r) = q.radius_km {
        o.radius_km = r;
    }
    if let Some(k) = q.k {
        o.k = o.k.max(k);
    }
    if let Some(n) = q.candidates {
        if n > 100 {
            return Err(ApiError::bad_request("candidates: at most 100"));
        }
        o.candidates = n;
    }
    match q.score_by.as_deref() {
        None | Some("customers") => {}
        Some("revenue") => o.score_by = ScoreBy::Revenue,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "score_by {other:?}: use customers or revenue"
            )));
        }
    }
    if let Some(r) = q.resolution {
        // Finer hexagons than ~5 km² would place too few people per cell to be useful or safe.
        if r > 9 {
            return Err(ApiError::bad_request(
                "resolution: 0..=9 (5 ≈ 250 km² per hexagon, 7 ≈ 5 km²)",
            ));
        }
        o.h3_resolution = r;
    }
    Ok(o)
}

/// Parsed shipped boundaries, once per process (the prefecture cities are 4 MB of GeoJSON).
fn builtin_boundaries(which: BuiltinBoundaries) -> Result<Arc<Boundaries>, ApiError> {
    static PARSED: OnceLock<Mutex<HashMap<BuiltinBoundaries, Arc<Boundaries>>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(Default::default);
    if let Some(b) = parsed.lock().unwrap_or_else(|e| e.into_inner()).get(&which) {
        return Ok(b.clone());
    }
    let b = Arc::new(Boundaries::builtin(which).map_err(|e| ApiError::internal(&e))?);
    parsed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(which, b.clone());
    Ok(b)
}

/// Stores with coordinates, shoppers with a home position, visits per store.
async fn dataset_from_db(state: &ApiState) -> Result<Dataset, StoreError> {
    let store = &state.store;
    let stores: Vec<(String, String, f64, f64, Option<String>)> = on_pool!(store, pool =>
        sqlx::query_as(
            "SELECT id, name, lat, lon, opened FROM stores \
             WHERE lat IS NOT NULL AND lon IS NOT NULL ORDER BY id")
        .fetch_all(pool)
        .await)?;
    let homes: Vec<(String, f64, f64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, home_lat, home_lon FROM shoppers \
         WHERE home_lat IS NOT NULL AND home_lon IS NOT NULL AND NOT opted_out")
        .fetch_all(pool)
        .await)?;
    let visits: Vec<(String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT store, count(*) FROM visits GROUP BY store")
        .fetch_all(pool)
        .await)?;
    let mut customers = CustomersBuilder::new();
    for (id, lat, lon) in homes {
        // A home outside the lat/lon range is skipped, not fatal.
        let _ = customers.add_order(&id, lat, lon, 0.0);
    }
    Ok(Dataset {
        stores: stores
            .into_iter()
            .map(|(id, name, lat, lon, opened)| expansion::Store {
                id,
                name,
                lat,
                lon,
                opened,
            })
            .collect(),
        customers: customers.finish(),
        store_visits: visits
            .into_iter()
            .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
            .collect(),
        ..Dataset::default()
    })
}

/// Answers by query, for a short while.
#[derive(Debug, Default)]
pub struct ExpansionCache {
    entries: Mutex<HashMap<String, (Instant, Arc<str>)>>,
}

impl ExpansionCache {
    fn get(&self, key: &str) -> Option<Arc<str>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, body)| body.clone())
    }

    fn put(&self, key: String, body: Arc<str>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        // Queries are a handful of option combinations; this only bounds a client looping
        // over radii.
        if entries.len() >= 64 {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), body));
    }

    /// Forgets every answer (after the dataset changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

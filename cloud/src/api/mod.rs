//! The HTTP API (`/api/v1/…`), its OpenAPI document, `/metrics`, and the dashboard, in one axum
//! router.
//!
//! Every API module contributes `routes() -> OpenApiRouter<Arc<ApiState>>` built with
//! utoipa-axum's `routes!`, which registers each handler with axum *and* its `#[utoipa::path]`
//! in the document from the same declaration — so the document served at
//! `GET /api/v1/openapi.json` lists exactly the routes the router serves (`tests/api.rs` checks
//! both ways).
//!
//! # Layout
//! - [`auth`] — Bearer tokens (only their SHA-256 is stored), roles, the [`auth::Caller`]
//!   extractor and its scope checks; `GET /api/v1/me`.
//! - [`error`] — [`ApiError`]: `{"error": {"code", "message"}}` with a meaningful status.
//! - [`extract`] — `Json`/`Query`/`Path` extractors whose rejections are [`ApiError`]s.
//! - [`stores`] — stores, gateway health, dead-letter summary.
//! - [`expansion`] — the regional expansion map (GeoJSON) and regions CSV.
//! - [`analytics`] — footfall, zones and paths, campaign results (over [`crate::analytics`]).
//! - [`metrics`] — `GET /metrics` (Prometheus) and the request-counting layer.
//! - the dashboard's static assets come from [`crate::dashboard`].
//!
//! Requests pass the metrics layer (route template, method, status, duration, auth rejections),
//! then the route. Unknown paths get a JSON 404 (`no_route`), a known path with another method a
//! JSON 405.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ingest::IngestStats;
use crate::store::AnyStore;

pub mod analytics;
pub mod auth;
pub mod campaigns;
pub mod coupons;
pub mod error;
pub mod expansion;
pub mod extract;
pub mod metrics;
pub mod shoppers;
pub mod stores;

pub use auth::{Caller, Role};
pub use error::ApiError;

/// What every request handler can reach. A plain struct: add fields as the API grows (and set
/// them in [`ApiState::new`]).
#[derive(Debug)]
pub struct ApiState {
    /// The database.
    pub store: AnyStore,
    /// This process's ingest counters, when it runs ingest (exported on `/metrics`).
    pub ingest: Option<Arc<IngestStats>>,
    /// Token → caller, cached briefly.
    pub tokens: auth::TokenCache,
    /// HTTP request and auth-rejection counters.
    pub http: metrics::HttpMetrics,
    /// The engine (identity resolution, campaigns, coupon key), when this process runs one.
    pub engine: Option<Arc<crate::engine::Engine>>,
    /// What `GET /api/v1/expansion` analyses (the demo's chain, or files an operator loaded);
    /// `None`: the stores and shoppers' home positions in the database.
    pub expansion: Option<Arc<crate::expansion::Dataset>>,
    /// Recent expansion answers.
    pub expansion_cache: expansion::ExpansionCache,
    /// Rows deleted by data retention, when this process enforces it (exported on `/metrics`).
    pub retention: Option<Arc<crate::retention::RetentionStats>>,
}

impl ApiState {
    pub fn new(store: AnyStore, ingest: Option<Arc<IngestStats>>) -> Self {
        ApiState {
            store,
            ingest,
            tokens: auth::TokenCache::new(),
            http: metrics::HttpMetrics::new(),
            engine: None,
            expansion: None,
            expansion_cache: Default::default(),
            retention: None,
        }
    }
}

/// The OpenAPI document of everything [`router`] serves under `/api/v1` (plus `/metrics`).
pub fn openapi() -> OpenApi {
    api_routes().split_for_parts().1
}

/// Every documented route, with the document being built beside them.
fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    let base = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Dwell cloud API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Footfall, zones and paths, campaigns, coupons, shoppers and the expansion \
                     map. Authenticate with `Authorization: Bearer <token>` (`dwell-cloud token` \
                     issues one). Errors are `{\"error\": {\"code\", \"message\"}}`.",
                ))
                .build(),
        )
        .build();
    OpenApiRouter::with_openapi(base)
        .routes(routes!(openapi_json))
        .routes(routes!(health))
        .routes(routes!(metrics::metrics))
        .merge(auth::routes())
        .merge(stores::routes())
        .merge(expansion::routes())
        .merge(analytics::routes())
        .merge(shoppers::routes())
        .merge(campaigns::routes())
        .merge(coupons::routes())
}

/// The whole HTTP surface: API, OpenAPI document, `/metrics`, dashboard.
///
/// # Panics
/// Never in practice: the OpenAPI document is plain data and always serializes.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    let (api, mut doc) = api_routes().split_for_parts();
    add_bearer_scheme(&mut doc);
    // Serialized once: the document doesn't change while the process runs.
    let doc = OpenApiJson(Arc::from(
        doc.to_json()
            .expect("the OpenAPI document serializes (plain data)"),
    ));
    api.merge(crate::dashboard::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(doc))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

fn add_bearer_scheme(doc: &mut OpenApi) {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a token from `dwell-cloud token`"))
                    .build(),
            ),
        );
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json")),
)]
async fn openapi_json(axum::Extension(doc): axum::Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
}

/// The document, as served.
#[derive(Clone, Debug)]
struct OpenApiJson(Arc<str>);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `database_unavailable`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub version: &'static str,
}

/// Liveness and database reachability, without a token (for load balancers).
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, body = Health),
    ),
)]
async fn health(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    use crate::store::Store;
    let ok = crate::on_pool!(&state.store, pool => sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(|_| ()))
    .is_ok();
    let body = Health {
        status: if ok { "ok" } else { "database_unavailable" },
        database: state.store.backend().to_string(),
        version: env!("CARGO_PKG_VERSION"),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no endpoint at {}; /api/v1/openapi.json lists them",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; /api/v1/openapi.json lists its methods",
            uri.path()
        ),
    )
}

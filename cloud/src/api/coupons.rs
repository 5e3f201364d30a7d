//! Redemption at the till (`pos` tokens, or HQ).
//!
//! Refusals have stable codes: `malformed` (400: not a coupon code), `forged` (422: the signature
//! does not match — altered or made up), `expired` (422), `already_redeemed` (409, with when and
//! where), `unknown` (404: genuine but never issued here). Each is counted by reason
//! (`dwell_cloud_coupon_redemptions_total{outcome=…}` on /metrics).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::extract::{Json as JsonBody, Path};
use crate::coupons::wallet::{self, WalletCoupon};
use crate::ingest::now_ms;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new().routes(routes!(redeem))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    /// The store the till is in.
    pub store: String,
    /// The purchase amount, if the POS reports it (for campaign revenue).
    #[serde(default)]
    pub amount_cents: Option<i64>,
}

/// Redeems a coupon code. Idempotent: the same till repeating the same request gets the same
/// answer; any other second redemption is refused with `already_redeemed`.
#[utoipa::path(post, path = "/api/v1/coupons/{code}/redeem", tag = "coupons", security(("bearer" = [])),
    params(("code" = String, Path, description = "the coupon code as printed (case, dashes and spaces don't matter)")),
    request_body = Redemption,
    responses((status = 200, body = WalletCoupon), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn redeem(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(r): JsonBody<Redemption>,
) -> Result<Json<WalletCoupon>, ApiError> {
    caller.require(&[Role::Pos, Role::Hq])?;
    if let Some(own) = &caller.store
        && *own != r.store
    {
        return Err(ApiError::forbidden(
            super::error::AuthRejection::WrongScope,
            format!("this till belongs to store {own:?}, not {:?}", r.store),
        ));
    }
    let engine = super::shoppers::engine(&state)?;
    let result = wallet::redeem(
        &state.store,
        engine.coupon_key(),
        &code,
        &r.store,
        r.amount_cents,
        now_ms(),
    )
    .await;
    let outcome = match &result {
        Ok(_) => "redeemed",
        Err(e) => wallet::refusal_label(e),
    };
    engine.stats().count_redemption(outcome);
    match result {
        Ok(c) => Ok(Json(c)),
        Err(e) => {
            let status = match outcome {
                "malformed" => StatusCode::BAD_REQUEST,
                "forged" | "expired" => StatusCode::UNPROCESSABLE_ENTITY,
                "already_redeemed" => StatusCode::CONFLICT,
                "unknown" => StatusCode::NOT_FOUND,
                _ => return Err(e.into()),
            };
            Err(ApiError::new(status, outcome, e.to_string()))
        }
    }
}

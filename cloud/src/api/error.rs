//! API errors: one JSON shape for every failure, with a status code that means something.
//!
//! Every handler returns `Result<_, ApiError>`. The body is always
//! `{"error": {"code": "not_found", "message": "store \"s9\" does not exist"}}`: `code` is stable
//! (clients branch on it), `message` is for a person and says what to change when the request can
//! be fixed. Internal causes (SQL errors, I/O) are logged here, never returned: a 500 says only
//! that something failed and where to look.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `bad_request` | malformed input: bad JSON, a bad query or path parameter (says which and how to fix it) |
//! | 401 | `unauthorized` | no `Authorization: Bearer` token, or one that isn't known |
//! | 403 | `forbidden` | a valid token whose role or scope (store, shopper) doesn't allow this |
//! | 404 | `not_found` / `no_route` | the thing asked for doesn't exist / no such endpoint |
//! | 405 | `method_not_allowed` | the endpoint exists, with other methods |
//! | 409 | `conflict` (or a handler's own code) | the request clashes with what is stored (a duplicate, an already redeemed coupon) |
//! | 422 | `unprocessable` (or a handler's own code) | well-formed but refused (an expired coupon, an invalid rule) |
//! | 503 | `database_unavailable` | the database can't be reached right now: retry later |
//! | 500 | `internal` | a bug or an unexpected failure (logged with its cause) |

use std::borrow::Cow;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// Why authentication or authorisation refused a request: the `/metrics` label of
/// `dwell_cloud_auth_rejections_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthRejection {
    /// No `Authorization` header.
    MissingToken,
    /// A header that isn't `Bearer <token>`.
    MalformedToken,
    /// A token that isn't in `api_tokens` (never issued, or revoked).
    UnknownToken,
    /// A valid token whose role may not do this.
    WrongRole,
    /// A valid token for another store or shopper.
    WrongScope,
}

impl AuthRejection {
    pub const ALL: [AuthRejection; 5] = [
        AuthRejection::MissingToken,
        AuthRejection::MalformedToken,
        AuthRejection::UnknownToken,
        AuthRejection::WrongRole,
        AuthRejection::WrongScope,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            AuthRejection::MissingToken => "missing_token",
            AuthRejection::MalformedToken => "malformed_token",
            AuthRejection::UnknownToken => "unknown_token",
            AuthRejection::WrongRole => "wrong_role",
            AuthRejection::WrongScope => "wrong_scope",
        }
    }
}

/// An error response: status, stable code, message for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Set on 401/403 so the metrics layer counts the rejection by reason.
    pub auth: Option<AuthRejection>,
}

/// The JSON body: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`, …
    #[schema(example = "not_found")]
    pub code: String,
    /// For a person: what went wrong and, when the request can be fixed, how.
    pub message: String,
}

impl ApiError {
    /// Any status with a handler's own stable code (`already_redeemed`, `expired`, …).
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            auth: None,
        }
    }

    /// 400: the request is malformed; say what to fix.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no usable token.
    pub fn unauthorized(reason: AuthRejection, message: impl Into<String>) -> Self {
        ApiError {
            auth: Some(reason),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    /// 403: the token's role or scope doesn't allow this.
    pub fn forbidden(reason: AuthRejection, message: impl Into<String>) -> Self {
        ApiError {
            auth: Some(reason),
            ..Self::new(StatusCode::FORBIDDEN, "forbidden", message)
        }
    }

    /// 404: the thing doesn't exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: clashes with what is stored.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422: understood, but refused.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }

    /// 503: the database can't be reached now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            message,
        )
    }

    /// 500, after logging `cause` (which is never sent to the client).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the cause",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: tell the client which scheme to use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"dwell\""),
            );
        }
        if let Some(reason) = self.auth {
            response.extensions_mut().insert(reason);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Sql(sqlx::Error::Database(db)) = &e {
            if db.is_unique_violation() {
                return ApiError::conflict("it already exists");
            }
            if db.is_foreign_key_violation() {
                return ApiError::unprocessable("it refers to something that does not exist");
            }
        }
        if e.is_transient() {
            tracing::warn!(error = %e, "API request: database unavailable");
            return ApiError::unavailable("the database is unavailable; retry in a moment");
        }
        ApiError::internal(&e)
    }
}

impl From<crate::error::DomainError> for ApiError {
    fn from(e: crate::error::DomainError) -> Self {
        use crate::error::DomainError as D;
        match e {
            D::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            D::Conflict(m) => ApiError::conflict(m),
            D::Invalid(m) => ApiError::unprocessable(m),
            D::Refused(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", m),
            D::Store(e) => e.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
                "the body must be JSON: send the header Content-Type: application/json",
            ),
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(format!(
                "the JSON doesn't fit this endpoint: {}",
                e.body_text()
            )),
            other => {
                ApiError::bad_request(format!("the body is not valid JSON: {}", other.body_text()))
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "bad query parameters: {}; the API document (/api/v1/openapi.json) lists them",
            r.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(format!("bad path parameter: {}", r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert_eq!(ApiError::bad_request("x").status, StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::not_found("x").code, "not_found");
        let e = ApiError::forbidden(AuthRejection::WrongScope, "no");
        assert_eq!(
            (e.status, e.auth),
            (StatusCode::FORBIDDEN, Some(AuthRejection::WrongScope))
        );
        assert_eq!(
            ApiError::new(StatusCode::CONFLICT, "already_redeemed", "m").code,
            "already_redeemed"
        );
    }

    #[test]
    fn pool_timeouts_are_503_and_hide_the_cause() {
        let e: ApiError = StoreError::Sql(sqlx::Error::PoolTimedOut).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, "database_unavailable");
        let e: ApiError = StoreError::Payload(serde_json::from_str::<u8>("x").unwrap_err()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("expected"), "{}", e.message);
    }
}

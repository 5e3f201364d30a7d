//! Who is calling: Bearer tokens, their roles and scopes, and the [`Caller`] extractor.
//!
//! A token is 32 random bytes from the operating system, written as 64 hex digits, shown once
//! when it is created ([`create_token`], `dwell-cloud token`). The database keeps only its
//! SHA-256 (`api_tokens.token_sha256`), so a leaked database or backup holds no usable token.
//! Each request's token is hashed and looked up; answers are cached for [`CACHE_TTL`] (unknown
//! tokens for [`NEGATIVE_TTL`]) so a busy dashboard doesn't cost a query per request — which
//! also means a deleted token keeps working for at most [`CACHE_TTL`].
//!
//! Roles ([`Role`]) and what they may read:
//! - `hq` — headquarters: every store, every shopper.
//! - `manager` — one store (`api_tokens.store`): its footfall, zones, gateways; any other store is
//!   403.
//! - `pos` — a till: redeems coupons (optionally bound to a store).
//! - `shopper` — one shopper (`api_tokens.shopper`): their own profile, coupons, sightings.
//! - `app` — the retailer's app backend: registers shoppers.
//!
//! Missing or unknown tokens are 401, a valid token without the right is 403; every rejection is
//! counted by reason (`dwell_cloud_auth_rejections_total`, see [`super::error::AuthRejection`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::error::{ApiError, AuthRejection};
use crate::on_pool;
use crate::store::{AnyStore, StoreError};

/// How long a known token's role and scope are reused without asking the database.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How long an unknown token stays refused without asking the database again (a client retrying
/// a bad token in a loop costs one query per this interval, not one per request).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; past this the cache is emptied (random tokens can't grow memory).
const CACHE_MAX: usize = 10_000;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Headquarters: everything.
    Hq,
    /// A store manager: one store.
    Manager,
    /// A till: coupon redemption.
    Pos,
    /// One opted-in shopper (issued to their app).
    Shopper,
    /// The retailer's app backend: registers shoppers.
    App,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Hq, Role::Manager, Role::Pos, Role::Shopper, Role::App];

    /// The name in `api_tokens.role` and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Hq => "hq",
            Role::Manager => "manager",
            Role::Pos => "pos",
            Role::Shopper => "shopper",
            Role::App => "app",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use one of hq, manager, pos, shopper, app"))
    }
}

/// The authenticated caller of a request. Use it as an extractor; handlers then check what they
/// need with [`Caller::require`], [`Caller::can_read_store`], [`Caller::require_shopper`] or
/// [`Caller::store_scope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Caller {
    pub role: Role,
    /// The store a manager (or a store-bound till) is limited to.
    pub store: Option<String>,
    /// The shopper a shopper token belongs to.
    pub shopper: Option<String>,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(
            AuthRejection::WrongRole,
            format!(
                "a {} token can't do this; it needs a token with role {}",
                self.role,
                allowed.join(" or ")
            ),
        ))
    }

    /// HQ reads every store; a manager only its own; nobody else reads store data.
    pub fn can_read_store(&self, store: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Hq => Ok(()),
            Role::Manager if self.store.as_deref() == Some(store) => Ok(()),
            Role::Manager => Err(ApiError::forbidden(
                AuthRejection::WrongScope,
                format!("this manager token is for another store, not {store:?}"),
            )),
            _ => self.require(&[Role::Hq, Role::Manager]),
        }
    }

    /// Which stores the caller may read: `None` = all (HQ), `Some(store)` = one (manager).
    /// Other roles get 403.
    pub fn store_scope(&self) -> Result<Option<&str>, ApiError> {
        match self.role {
            Role::Hq => Ok(None),
            Role::Manager => match self.store.as_deref() {
                Some(s) => Ok(Some(s)),
                // create_token refuses this; a hand-made row could still lack it.
                None => Err(ApiError::forbidden(
                    AuthRejection::WrongScope,
                    "this manager token has no store; issue a new one with --store",
                )),
            },
            _ => self.require(&[Role::Hq, Role::Manager]).map(|()| None),
        }
    }

    /// The shopper themself, or HQ.
    pub fn require_shopper(&self, shopper: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Hq => Ok(()),
            Role::Shopper if self.shopper.as_deref() == Some(shopper) => Ok(()),
            Role::Shopper => Err(ApiError::forbidden(
                AuthRejection::WrongScope,
                "this token belongs to another shopper",
            )),
            _ => self.require(&[Role::Hq, Role::Shopper]),
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<ApiState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let state = Arc::<ApiState>::from_ref(state);
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                AuthRejection::MissingToken,
                "no token: send the header Authorization: Bearer <token> \
                 (`dwell-cloud token` issues one)",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    AuthRejection::MalformedToken,
                    "the Authorization header must be `Bearer <token>`",
                )
            })?;
        match state.tokens.lookup(&state.store, token).await? {
            Some(caller) => Ok(caller),
            None => Err(ApiError::unauthorized(
                AuthRejection::UnknownToken,
                "this token is not known (revoked, or from another deployment)",
            )),
        }
    }
}

pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<ApiState>> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(me))
}

/// Who the token belongs to: its role and scope (the dashboard shows a manager its store only).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Caller),
        (status = 401, body = super::error::ErrorBody),
    ),
)]
async fn me(caller: Caller) -> axum::Json<Caller> {
    axum::Json(caller)
}

/// Known and unknown tokens, by hash, for a short while.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Option<Caller>, Instant)>>,
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The caller a token stands for, `None` if unknown.
    pub async fn lookup(
        &self,
        store: &AnyStore,
        token: &str,
    ) -> Result<Option<Caller>, StoreError> {
        let hash = token_hash(token);
        let now = Instant::now();
        if let Some((caller, at)) = self.lock().get(&hash) {
            let ttl = if caller.is_some() {
                CACHE_TTL
            } else {
                NEGATIVE_TTL
            };
            if now.duration_since(*at) < ttl {
                return Ok(caller.clone());
            }
        }
        let caller = lookup_token_hash(store, &hash).await?;
        let mut entries = self.lock();
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (caller.clone(), now));
        Ok(caller)
    }

    /// Forgets everything (after tokens were deleted in this process).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<Caller>, Instant)>> {
        // A panic while holding this lock can't leave the map inconsistent (single inserts).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lowercase hex SHA-256 of the token as sent: what `api_tokens.token_sha256` holds.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

async fn lookup_token_hash(store: &AnyStore, hash: &str) -> Result<Option<Caller>, StoreError> {
    let row: Option<(String, Option<String>, Option<String>)> = on_pool!(store, pool =>
        sqlx::query_as("SELECT role, store, shopper FROM api_tokens WHERE token_sha256 = $1")
            .bind(hash)
            .fetch_optional(pool)
            .await)?;
    Ok(row.and_then(|(role, store, shopper)| match role.parse() {
        Ok(role) => Some(Caller {
            role,
            store,
            shopper,
        }),
        Err(e) => {
            tracing::warn!(role = %role, "api_tokens row with an unknown role refused: {e}");
            None
        }
    }))
}

/// Why a token can't be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token: 32 random bytes as 64 hex digits, returned once; only its SHA-256 is stored.
///
/// A `manager` needs `store_id`; a `shopper` needs `shopper_id` (an existing shopper); `hq` and
/// `app` take neither; a `pos` may be bound to a store.
pub async fn create_token(
    store: &AnyStore,
    role: Role,
    store_id: Option<&str>,
    shopper_id: Option<&str>,
    label: &str,
) -> Result<String, TokenError> {
    let invalid = |m: &str| Err(TokenError::Invalid(m.to_owned()));
    match role {
        Role::Manager if store_id.is_none() => return invalid("a manager token needs --store"),
        Role::Shopper if shopper_id.is_none() => {
            return invalid("a shopper token needs the shopper's id");
        }
        Role::Hq | Role::App if store_id.is_some() => {
            return invalid("hq and app tokens are not bound to a store; drop --store");
        }
        _ => {}
    }
    if shopper_id.is_some() && role != Role::Shopper {
        return invalid("only shopper tokens carry a shopper id");
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = hex(&bytes);
    let hash = token_hash(&token);
    let now = crate::ingest::now_ms();
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO api_tokens (token_sha256, role, store, shopper, label, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&hash)
        .bind(role.as_str())
        .bind(store_id)
        .bind(shopper_id)
        .bind(label)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))
    .map_err(StoreError::from)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, store: Option<&str>, shopper: Option<&str>) -> Caller {
        Caller {
            role,
            store: store.map(Into::into),
            shopper: shopper.map(Into::into),
        }
    }

    #[test]
    fn store_scope_by_role() {
        let hq = caller(Role::Hq, None, None);
        let m = caller(Role::Manager, Some("s1"), None);
        assert!(hq.can_read_store("s2").is_ok());
        assert!(m.can_read_store("s1").is_ok());
        let e = m.can_read_store("s2").unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.auth),
            (403, Some(AuthRejection::WrongScope))
        );
        let e = caller(Role::Pos, Some("s1"), None)
            .can_read_store("s1")
            .unwrap_err();
        assert_eq!(e.auth, Some(AuthRejection::WrongRole));
        assert_eq!(hq.store_scope().unwrap(), None);
        assert_eq!(m.store_scope().unwrap(), Some("s1"));
        assert!(caller(Role::App, None, None).store_scope().is_err());
    }

    #[test]
    fn shopper_scope() {
        let s = caller(Role::Shopper, None, Some("p1"));
        assert!(s.require_shopper("p1").is_ok());
        assert!(s.require_shopper("p2").is_err());
        assert!(caller(Role::Hq, None, None).require_shopper("p2").is_ok());
        assert!(
            caller(Role::Manager, Some("s"), None)
                .require_shopper("p1")
                .is_err()
        );
    }

    #[test]
    fn roles_round_trip_and_hashes_are_hex_sha256() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The error of the cloud's domain operations (shoppers, campaigns, coupons): what went wrong in
//! words a caller can act on. The HTTP API maps each variant to a status code.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The thing asked for does not exist (or was erased).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what is stored (an identity linked to another profile, an id
    /// taken, a coupon already redeemed).
    #[error("{0}")]
    Conflict(String),
    /// The input is unusable; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// A rule refused the request (consent withdrawn, coupon expired or forged).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        DomainError::Store(StoreError::Sql(e))
    }
}

impl DomainError {
    /// Whether retrying may succeed (the database was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, DomainError::Store(e) if e.is_transient())
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

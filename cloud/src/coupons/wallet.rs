//! A shopper's coupons, and redemption at the till.
//!
//! Redemption verifies the code's signature and expiry first (what the till could check offline),
//! then, in the database, flips `redeemed_ms` from NULL exactly once: a second redemption of the
//! same coupon — by the same till retrying, or another till — gets `already redeemed` with the time
//! of the first, and the first's result stands. The same request repeated by the same store with
//! the same amount is answered as success again (idempotent), so a till may retry safely.
//! A code is looked up by the canonical spelling of its claims, so `dw1…` typed in lower case or
//! without dashes redeems the same coupon.

use super::code::{CodeError, CouponKey};
use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite};
use serde::Serialize;

/// A coupon as the wallet and the till see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WalletCoupon {
    pub code: String,
    pub campaign: String,
    pub store: String,
    pub zone: Option<String>,
    pub title: String,
    pub text: String,
    pub trigger_ts_ms: i64,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub delivered_ms: Option<i64>,
    pub redeemed_ms: Option<i64>,
    pub redeemed_store: Option<String>,
    pub amount_cents: Option<i64>,
    /// The visit that triggered it.
    pub visit: Option<String>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

const COLUMNS: &str = "code, campaign, store, zone, offer, trigger_ts_ms, issued_ms, expires_ms, \
     delivered_ms, redeemed_ms, redeemed_store, amount_cents, visit";

fn from_row(r: Row) -> WalletCoupon {
    let offer: serde_json::Value = serde_json::from_str(&r.4).unwrap_or_default();
    WalletCoupon {
        code: r.0,
        campaign: r.1,
        store: r.2,
        zone: r.3,
        title: offer["title"].as_str().unwrap_or_default().to_owned(),
        text: offer["text"].as_str().unwrap_or_default().to_owned(),
        trigger_ts_ms: r.5,
        issued_ms: r.6,
        expires_ms: r.7,
        delivered_ms: r.8,
        redeemed_ms: r.9,
        redeemed_store: r.10,
        amount_cents: r.11,
        visit: r.12,
    }
}

/// A shopper's coupons, newest first.
pub async fn of_shopper(store: &AnyStore, shopper: &str) -> DomainResult<Vec<WalletCoupon>> {
    let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupons WHERE shopper = $1 ORDER BY issued_ms DESC, code"
    )))
    .bind(shopper)
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// One coupon by its canonical code.
pub async fn get(store: &AnyStore, code: &str) -> DomainResult<Option<WalletCoupon>> {
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupons WHERE code = $1"
    )))
    .bind(code)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(from_row))
}

/// Marks a coupon as handed to the broker for delivery.
pub async fn mark_delivered(store: &AnyStore, code: &str, now_ms: i64) -> DomainResult<()> {
    on_pool!(store, pool => sqlx::query(
        "UPDATE coupons SET delivered_ms = $2 WHERE code = $1 AND delivered_ms IS NULL",
    )
    .bind(code)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Marks many coupons delivered in one transaction (one commit for a group's coupons).
pub async fn mark_delivered_all(
    store: &AnyStore,
    codes: &[String],
    now_ms: i64,
) -> DomainResult<()> {
    if codes.is_empty() {
        return Ok(());
    }
    on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        for code in codes {
            sqlx::query("UPDATE coupons SET delivered_ms = $2 WHERE code = $1 AND delivered_ms IS NULL")
                .bind(code)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, DomainError>(())
    })
}

/// Why a redemption was refused, as a stable label (the metric and the API's error code).
pub fn refusal_label(e: &DomainError) -> &'static str {
    match e {
        DomainError::Invalid(_) => "malformed",
        DomainError::Refused(m) if m.starts_with("forged") => "forged",
        DomainError::Refused(m) if m.starts_with("expired") => "expired",
        DomainError::Conflict(_) => "already_redeemed",
        DomainError::NotFound(_) => "unknown",
        _ => "error",
    }
}

/// Redeems a code at `store_id` for a purchase of `amount_cents` (if the POS reports it).
pub async fn redeem(
    store: &AnyStore,
    key: &CouponKey,
    code: &str,
    store_id: &str,
    amount_cents: Option<i64>,
    now_ms: i64,
) -> DomainResult<WalletCoupon> {
    let claims = key.verify(code, now_ms).map_err(|e| match e {
        CodeError::Malformed(m) => DomainError::Invalid(format!("not a valid coupon code: {m}")),
        CodeError::Forged => {
            DomainError::Refused("forged or altered: the code's signature does not match".into())
        }
        CodeError::Expired { expired_ms } => {
            DomainError::Refused(format!("expired at {expired_ms} (unix ms)"))
        }
    })?;
    if amount_cents.is_some_and(|a| a < 0) {
        return Err(DomainError::Invalid(
            "amount_cents must not be negative".into(),
        ));
    }
    let canonical = key.sign(&claims);
    let n = on_pool!(store, pool => sqlx::query(
        "UPDATE coupons SET redeemed_ms = $2, redeemed_store = $3, amount_cents = $4 \
         WHERE code = $1 AND redeemed_ms IS NULL AND expires_ms > $2",
    )
    .bind(&canonical)
    .bind(now_ms)
    .bind(store_id)
    .bind(amount_cents)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    let c = get(store, &canonical).await?.ok_or_else(|| {
        // Genuine signature but not in this database: issued by another deployment's key.
        DomainError::NotFound("coupon (the code verifies but was never issued here)".into())
    })?;
    if n == 1 {
        return Ok(c);
    }
    match c.redeemed_ms {
        Some(_)
            if c.redeemed_store.as_deref() == Some(store_id)
                && c.amount_cents == amount_cents
                && c.redeemed_ms.is_some_and(|t| now_ms - t < 600_000) =>
        {
            Ok(c) // the same till retrying
        }
        Some(t) => Err(DomainError::Conflict(format!(
            "already redeemed at {t} (unix ms) in store {}",
            c.redeemed_store.as_deref().unwrap_or("?")
        ))),
        None => Err(DomainError::Refused(format!(
            "expired at {} (unix ms)",
            c.expires_ms
        ))),
    }
}

//! Deciding one qualified trigger, and issuing its coupon: in one transaction, enforced by the
//! database so any number of workers agree.
//!
//! For `(campaign, shopper, trigger)`:
//! 1. consent is read inside the transaction: an opted-out shopper (or, for a personalised
//!    campaign, one who refused profiling) gets nothing and nothing is recorded;
//! 2. the decision row is inserted with `ON CONFLICT DO NOTHING` on its primary key
//!    `(campaign, shopper, trigger_key)`: a redelivered or concurrently processed trigger finds the
//!    row and decides nothing twice (and never issues a second coupon);
//! 3. holdout (deterministic per campaign and shopper) is recorded as `holdout`, no coupon;
//! 4. the frequency cap is one upsert on `campaign_caps` (`sent < per_shopper` or no row), the
//!    budget one conditional `UPDATE campaigns SET issued = issued + 1 WHERE issued < budget`; both
//!    take row locks on PostgreSQL, so concurrent workers can't both pass the last slot;
//! 5. the coupon row is inserted with its signed code, and the transaction commits.
//!
//! Delivery (the MQTT publish) happens after the commit; a coupon whose publish failed is found
//! again by a redelivered trigger (step 2 returns it, once it is [`REPUBLISH_AFTER_MS`] old) and
//! republished: delivery is at least once, issue exactly once (the app de-duplicates by code).

use super::holdout::in_holdout;
use super::spec::Campaign;
use crate::coupons::code::{CouponClaims, CouponKey};
use crate::error::DomainResult;
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite};
use dwell_shared::wire::{Coupon, Version};

/// A coupon still undelivered this long after issue is published again by whoever sees its
/// trigger again (the worker that issued it most likely died before publishing). Younger ones are
/// left to the worker that is publishing them right now, so a race of two workers on the same
/// trigger delivers the coupon once.
pub const REPUBLISH_AFTER_MS: i64 = 10_000;

/// What fired, where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerCtx<'a> {
    pub shopper: &'a str,
    /// `<gateway>:<seq>` or `app:<id>`.
    pub trigger_key: &'a str,
    pub store: &'a str,
    pub zone: Option<&'a str>,
    pub ts_ms: i64,
    /// The visit the trigger belongs to, for attribution.
    pub visit: Option<&'a str>,
}

/// What became of a trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A coupon was issued now: publish it.
    Sent(Coupon),
    /// Decided before (redelivery, or another worker); `Some` if its coupon still awaits delivery.
    Already(Option<Coupon>),
    Holdout,
    Capped,
    Budget,
    /// Opted out, erased, or refused profiling for a personalised campaign: nothing recorded.
    NoConsent,
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Sent(_) => "sent",
            Decision::Already(_) => "duplicate",
            Decision::Holdout => "holdout",
            Decision::Capped => "capped",
            Decision::Budget => "budget",
            Decision::NoConsent => "no_consent",
        }
    }
}

fn random_serial() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    u64::from_be_bytes(b)
}

/// Decides one trigger (see the module doc).
pub async fn decide(
    store: &AnyStore,
    campaign: &Campaign,
    key: &CouponKey,
    holdout_salt: &[u8],
    ctx: &TriggerCtx<'_>,
    now_ms: i64,
) -> DomainResult<Decision> {
    let mut d = decide_all(store, &[(campaign, ctx.clone())], key, holdout_salt, now_ms).await?;
    Ok(d.pop().expect("one decision per trigger"))
}

/// Decides a group of triggers in one transaction (one commit, one fsync, however many coupons),
/// in order; each gets its [`Decision`] exactly as [`decide`] would give it alone.
pub async fn decide_all(
    store: &AnyStore,
    items: &[(&Campaign, TriggerCtx<'_>)],
    key: &CouponKey,
    holdout_salt: &[u8],
    now_ms: i64,
) -> DomainResult<Vec<Decision>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        let mut out = Vec::with_capacity(items.len());
        for (campaign, ctx) in items {
            let spec = &campaign.spec;
            let personalised = spec.audience.is_personalised();
            let holdout = in_holdout(&spec.id, ctx.shopper, spec.holdout_permille, holdout_salt);
            let expires_ms = now_ms + i64::from(spec.offer.expires_after_s) * 1000;
            let claims = CouponClaims {
                campaign: campaign.number,
                serial: random_serial(),
                // Round up to the minute: the code never expires before the offer says.
                expires_min: u32::try_from(expires_ms.div_euclid(60_000) + 1).unwrap_or(u32::MAX),
            };
            let code = key.sign(&claims);
            let window_ms = i64::from(spec.cap.window_s) * 1000;
            let window_start = ctx.ts_ms.div_euclid(window_ms) * window_ms;
            let offer =
                serde_json::json!({"title": spec.offer.title, "text": spec.offer.text}).to_string();
            let consent: Option<(bool, bool)> =
                sqlx::query_as("SELECT profiling, opted_out FROM shoppers WHERE id = $1")
                    .bind(ctx.shopper)
                    .fetch_optional(&mut *tx)
                    .await?;
            match consent {
                Some((profiling, false)) if profiling || !personalised => {}
                _ => {
                    out.push(Decision::NoConsent);
                    continue;
                }
            }
            let outcome = if holdout { "holdout" } else { "sent" };
            let new = sqlx::query(
                "INSERT INTO campaign_decisions (campaign, shopper, trigger_key, outcome, store, ts_ms, coupon) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (campaign, shopper, trigger_key) DO NOTHING",
            )
            .bind(&spec.id)
            .bind(ctx.shopper)
            .bind(ctx.trigger_key)
            .bind(outcome)
            .bind(ctx.store)
            .bind(ctx.ts_ms)
            .bind((!holdout).then_some(&code))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new == 0 {
                type Row = (String, String, Option<String>, i64, i64, i64, String);
                let pending: Option<Row> = sqlx::query_as(
                    "SELECT c.code, c.store, c.zone, c.trigger_ts_ms, c.issued_ms, c.expires_ms, c.offer \
                     FROM campaign_decisions d JOIN coupons c ON c.code = d.coupon \
                     WHERE d.campaign = $1 AND d.shopper = $2 AND d.trigger_key = $3 \
                     AND c.delivered_ms IS NULL AND c.redeemed_ms IS NULL AND c.issued_ms < $4",
                )
                .bind(&spec.id)
                .bind(ctx.shopper)
                .bind(ctx.trigger_key)
                .bind(now_ms - REPUBLISH_AFTER_MS)
                .fetch_optional(&mut *tx)
                .await?;
                out.push(Decision::Already(pending.map(
                    |(code, store, zone, ts_ms, issued_ms, expires_ms, offer)| Coupon {
                        v: Version,
                        code,
                        campaign: spec.id.clone(),
                        shopper: ctx.shopper.to_owned(),
                        store,
                        zone,
                        title: serde_json::from_str::<serde_json::Value>(&offer)
                            .ok()
                            .and_then(|o| o["title"].as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        ts_ms,
                        issued_ms,
                        expires_ms,
                    },
                )));
                continue;
            }
            if holdout {
                out.push(Decision::Holdout);
                continue;
            }
            let capped = sqlx::query_scalar::<_, i64>(
                "INSERT INTO campaign_caps (campaign, shopper, window_start_ms, sent) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (campaign, shopper, window_start_ms) DO UPDATE SET sent = campaign_caps.sent + 1 \
                 WHERE campaign_caps.sent < $4 RETURNING sent",
            )
            .bind(&spec.id)
            .bind(ctx.shopper)
            .bind(window_start)
            .bind(i64::from(spec.cap.per_shopper))
            .fetch_optional(&mut *tx)
            .await?
            .is_none();
            let mut refused = capped.then_some("capped");
            if refused.is_none() {
                let funded = sqlx::query(
                    "UPDATE campaigns SET issued = issued + 1 \
                     WHERE id = $1 AND (budget IS NULL OR issued < budget)",
                )
                .bind(&spec.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if funded == 0 {
                    refused = Some("budget");
                    sqlx::query(
                        "UPDATE campaign_caps SET sent = sent - 1 \
                         WHERE campaign = $1 AND shopper = $2 AND window_start_ms = $3",
                    )
                    .bind(&spec.id)
                    .bind(ctx.shopper)
                    .bind(window_start)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some(outcome) = refused {
                sqlx::query(
                    "UPDATE campaign_decisions SET outcome = $4, coupon = NULL \
                     WHERE campaign = $1 AND shopper = $2 AND trigger_key = $3",
                )
                .bind(&spec.id)
                .bind(ctx.shopper)
                .bind(ctx.trigger_key)
                .bind(outcome)
                .execute(&mut *tx)
                .await?;
                out.push(if outcome == "capped" { Decision::Capped } else { Decision::Budget });
                continue;
            }
            let coupon = Coupon {
                v: Version,
                code: code.clone(),
                campaign: spec.id.clone(),
                shopper: ctx.shopper.to_owned(),
                store: ctx.store.to_owned(),
                zone: ctx.zone.map(str::to_owned),
                title: spec.offer.title.clone(),
                ts_ms: ctx.ts_ms,
                issued_ms: now_ms,
                expires_ms: claims.expires_ms(),
            };
            sqlx::query(
                "INSERT INTO coupons (code, campaign, shopper, store, zone, trigger_key, trigger_ts_ms, \
                 issued_ms, expires_ms, offer, visit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&code)
            .bind(&spec.id)
            .bind(ctx.shopper)
            .bind(ctx.store)
            .bind(ctx.zone)
            .bind(ctx.trigger_key)
            .bind(ctx.ts_ms)
            .bind(now_ms)
            .bind(coupon.expires_ms)
            .bind(&offer)
            .bind(ctx.visit)
            .execute(&mut *tx)
            .await?;
            out.push(Decision::Sent(coupon));
        }
        tx.commit().await?;
        Ok(out)
    })
}

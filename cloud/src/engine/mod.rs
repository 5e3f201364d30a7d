//! The engine: what a committed event sets off — resolve the device to an opted-in shopper,
//! stitch and profile their visits, and fire campaigns while the shopper is still in the aisle.
//!
//! Ingest calls [`Engine::committed`] with every event of a transaction after it commits and
//! before it acknowledges the messages ([`crate::ingest::CommitHook`]). Every step is idempotent in
//! the database (visit parts and campaign decisions are keyed), so the engine processes redelivered
//! events again without effect, and a failure the database may recover from (transient) makes
//! ingest retry the whole group rather than lose a coupon.
//!
//! Per event:
//! - `eid:…` devices are resolved through the precomputed table ([`Resolver`]); anything else is
//!   anonymous footfall and stops here;
//! - `zone_dwell` → dwell-milestone campaigns; `visit_start` → entry and n-th-visit campaigns (a
//!   start within the session timeout of the same shopper's last sighting in that store is the same
//!   visit under a rotated EID and fires nothing);
//! - `visit_end` → a visit part, stitched into the shopper's visit ([`crate::profiles::visits`]),
//!   then tag rules (shoppers who consented to profiling only).
//!
//! App-reported sightings enter through [`Engine::app_sighting`] and take the same paths.

pub mod setup;

use crate::campaigns::catalog::Catalog;
use crate::campaigns::decide::{Decision, TriggerCtx, decide, decide_all};
use crate::campaigns::spec::Trigger;
use crate::coupons::code::CouponKey;
use crate::coupons::delivery::CouponSink;
use crate::coupons::wallet;
use crate::error::{DomainError, DomainResult};
use crate::identity::resolver::{Resolver, parse_device_eid};
use crate::ingest::{CommitHook, now_ms};
use crate::on_pool;
use crate::profiles::rules::TagRule;
use crate::profiles::shoppers;
use crate::profiles::visits::{self, Part, Stay};
use crate::store::{AnyStore, EventRow, StoreError};
use dwell_shared::definitions::VisitDefinitions;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Live counters.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub events: AtomicU64,
    pub eids_resolved: AtomicU64,
    pub eids_unresolved: AtomicU64,
    pub visits_stitched: AtomicU64,
    pub tags_set: AtomicU64,
    pub coupons_sent: AtomicU64,
    pub coupons_redelivered: AtomicU64,
    pub decisions_holdout: AtomicU64,
    pub decisions_capped: AtomicU64,
    pub decisions_budget: AtomicU64,
    pub decisions_no_consent: AtomicU64,
    pub decisions_duplicate: AtomicU64,
    pub delivery_failures: AtomicU64,
    pub failures: AtomicU64,
    /// Trigger (gateway's `ts_ms`) to publish, milliseconds: sum and count (mean), and max.
    pub trigger_to_publish_ms_sum: AtomicU64,
    pub trigger_to_publish_ms_max: AtomicU64,
    /// Till redemptions by outcome ([`REDEMPTION_OUTCOMES`]).
    pub redemptions: [AtomicU64; 7],
}

/// Labels of [`EngineStats::redemptions`].
pub const REDEMPTION_OUTCOMES: [&str; 7] = [
    "redeemed",
    "malformed",
    "forged",
    "expired",
    "already_redeemed",
    "unknown",
    "error",
];

impl EngineStats {
    pub fn count_redemption(&self, outcome: &str) {
        let i = REDEMPTION_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(REDEMPTION_OUTCOMES.len() - 1);
        self.redemptions[i].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, d: &Decision) {
        let c = match d {
            Decision::Sent(_) => &self.coupons_sent,
            Decision::Already(Some(_)) => &self.coupons_redelivered,
            Decision::Already(None) => &self.decisions_duplicate,
            Decision::Holdout => &self.decisions_holdout,
            Decision::Capped => &self.decisions_capped,
            Decision::Budget => &self.decisions_budget,
            Decision::NoConsent => &self.decisions_no_consent,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the engine needs besides the database.
#[derive(Debug)]
pub struct EngineParts {
    pub resolver: Arc<Resolver>,
    pub catalog: Arc<Catalog>,
    pub coupon_key: CouponKey,
    /// Salt of the holdout assignment (secret, stable for the deployment).
    pub holdout_salt: Vec<u8>,
    pub sink: Arc<dyn CouponSink>,
    pub definitions: VisitDefinitions,
    pub tag_rules: Vec<TagRule>,
    /// The retailer's iBeacon UUID (app-reported sightings).
    pub beacon_uuid: String,
    /// Take "now" from the events (history replays: a coupon is issued 250 ms after its trigger)
    /// instead of the clock.
    pub event_clock: bool,
}

/// A campaign trigger waiting for its group's decisions.
#[derive(Clone, Debug)]
struct Pending {
    shopper: Arc<str>,
    key: String,
    store: String,
    zone: Option<String>,
    ts_ms: i64,
    trigger: Trigger,
}

/// See the module doc.
#[derive(Debug)]
pub struct Engine {
    store: AnyStore,
    parts: EngineParts,
    stats: Arc<EngineStats>,
    sightings: crate::profiles::sightings::SightingStats,
    /// (shopper, store) → last time the shopper was seen there (ms): entry de-duplication.
    last_seen: Mutex<HashMap<(Arc<str>, String), i64>>,
    /// Store id → time zone (schedules are in store local time); unknown stores are UTC.
    zones: Mutex<HashMap<String, jiff::tz::TimeZone>>,
}

/// How many (shopper, store) entries [`Engine`] remembers before pruning old ones.
const LAST_SEEN_CAP: usize = 200_000;

impl Engine {
    pub fn new(store: AnyStore, parts: EngineParts) -> Engine {
        Engine {
            store,
            parts,
            stats: Arc::default(),
            sightings: Default::default(),
            last_seen: Mutex::default(),
            zones: Mutex::default(),
        }
    }

    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    pub fn sighting_stats(&self) -> &crate::profiles::sightings::SightingStats {
        &self.sightings
    }

    pub fn beacon_uuid(&self) -> &str {
        &self.parts.beacon_uuid
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.parts.resolver
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.parts.catalog
    }

    pub fn coupon_key(&self) -> &CouponKey {
        &self.parts.coupon_key
    }

    pub fn definitions(&self) -> &VisitDefinitions {
        &self.parts.definitions
    }

    fn now(&self, event_ts_ms: i64) -> i64 {
        if self.parts.event_clock {
            event_ts_ms + 250
        } else {
            now_ms()
        }
    }

    /// Processes a committed group of events: visit parts are stitched as they come; the
    /// group's campaign triggers are decided together in one transaction, then published.
    pub async fn process(&self, events: &[EventRow]) -> DomainResult<()> {
        let mut pending = Vec::new();
        for e in events {
            self.stats.events.fetch_add(1, Ordering::Relaxed);
            let Some(device) = e.device.as_deref() else {
                continue;
            };
            let Some(eid) = parse_device_eid(device) else {
                continue;
            };
            // A visit ends (is reported) a session timeout after the device was last seen, when
            // its EID may have rotated away: resolve it at the time it was last heard.
            let payload: serde_json::Value =
                serde_json::from_str(&e.payload).map_err(StoreError::from)?;
            let heard_ms = match e.kind {
                "visit_end" => payload["end_ms"].as_i64().unwrap_or(e.ts_ms),
                _ => e.ts_ms,
            };
            let Some(r) = self.parts.resolver.resolve(&eid, heard_ms) else {
                self.stats.eids_unresolved.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.stats.eids_resolved.fetch_add(1, Ordering::Relaxed);
            let key = format!("{}:{}", e.gateway, e.seq);
            match e.kind {
                "zone_dwell" => {
                    let seconds = payload["dwell_s"].as_u64().unwrap_or(0) as u32;
                    self.seen(&r.shopper, &e.store, e.ts_ms);
                    pending.push(Pending {
                        shopper: r.shopper,
                        key,
                        store: e.store.clone(),
                        zone: e.zone.clone(),
                        ts_ms: e.ts_ms,
                        trigger: Trigger::Dwell { seconds },
                    });
                }
                "visit_start" => {
                    if self.seen(&r.shopper, &e.store, e.ts_ms) {
                        continue; // the same visit under a rotated EID
                    }
                    let number = self.visit_number(&r.shopper, &e.store, e.ts_ms).await?;
                    pending.push(Pending {
                        shopper: r.shopper,
                        key,
                        store: e.store.clone(),
                        zone: e.zone.clone(),
                        ts_ms: e.ts_ms,
                        trigger: Trigger::Visit { number },
                    });
                }
                "visit_end" => {
                    let part = Part {
                        key,
                        store: e.store.clone(),
                        shopper: r.shopper.to_string(),
                        start_ms: payload["start_ms"].as_i64().unwrap_or(e.ts_ms),
                        end_ms: payload["end_ms"].as_i64().unwrap_or(e.ts_ms),
                        class: payload["class"].as_str().unwrap_or("passerby").to_owned(),
                        path: serde_json::from_value(payload["path"].clone()).unwrap_or_default(),
                    };
                    self.seen(&r.shopper, &e.store, part.end_ms);
                    self.visit_part(&part).await?;
                }
                _ => {
                    self.seen(&r.shopper, &e.store, e.ts_ms);
                }
            }
        }
        self.fire(&pending).await
    }

    /// Stitches a part and applies tag rules.
    async fn visit_part(&self, part: &Part) -> DomainResult<()> {
        if visits::stitch(&self.store, part, &self.parts.definitions)
            .await?
            .is_some()
        {
            self.stats.visits_stitched.fetch_add(1, Ordering::Relaxed);
            if let Some((true, false)) = shoppers::consent(&self.store, &part.shopper).await? {
                let now = if self.parts.event_clock {
                    part.end_ms
                } else {
                    now_ms()
                };
                let set = crate::profiles::rules::apply(
                    &self.store,
                    &self.parts.tag_rules,
                    &part.shopper,
                    now,
                )
                .await?;
                self.stats
                    .tags_set
                    .fetch_add(set.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Records a sighting; true if the shopper was seen in this store within the session timeout
    /// before (a continuing visit).
    fn seen(&self, shopper: &Arc<str>, store: &str, ts_ms: i64) -> bool {
        let timeout = i64::from(self.parts.definitions.session_timeout_s) * 1000;
        let mut m = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= LAST_SEEN_CAP {
            m.retain(|_, t| *t >= ts_ms - timeout);
        }
        let prev = m.insert((shopper.clone(), store.to_owned()), ts_ms);
        match prev {
            Some(p) if p > ts_ms => {
                m.insert((shopper.clone(), store.to_owned()), p);
                true
            }
            Some(p) => ts_ms - p <= timeout,
            None => false,
        }
    }

    /// The number this visit has among the shopper's visits (1 = first ever).
    async fn visit_number(&self, shopper: &str, store_id: &str, ts_ms: i64) -> DomainResult<u32> {
        let timeout = i64::from(self.parts.definitions.session_timeout_s) * 1000;
        let _ = store_id;
        let n: i64 = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT count(*) FROM visits WHERE shopper = $1 AND end_ms < $2",
        )
        .bind(shopper)
        .bind(ts_ms - timeout)
        .fetch_one(pool)
        .await)?;
        Ok(u32::try_from(n + 1).unwrap_or(u32::MAX))
    }

    async fn local_time(&self, store_id: &str, ts_ms: i64) -> DomainResult<jiff::Zoned> {
        let cached = self
            .zones
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(store_id)
            .cloned();
        let tz = match cached {
            Some(tz) => tz,
            None => {
                let name: Option<String> = on_pool!(&self.store, pool => sqlx::query_scalar(
                    "SELECT tz FROM stores WHERE id = $1",
                )
                .bind(store_id)
                .fetch_optional(pool)
                .await)?;
                let tz = name
                    .and_then(|n| jiff::tz::TimeZone::get(&n).ok())
                    .unwrap_or(jiff::tz::TimeZone::UTC);
                self.zones
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(store_id.to_owned(), tz.clone());
                tz
            }
        };
        let ts = jiff::Timestamp::from_millisecond(ts_ms)
            .map_err(|e| DomainError::Invalid(format!("event time {ts_ms}: {e}")))?;
        Ok(ts.to_zoned(tz))
    }

    /// Runs every fitting campaign for one trigger.
    pub async fn trigger(
        &self,
        shopper: &str,
        trigger_key: &str,
        store_id: &str,
        zone: Option<&str>,
        ts_ms: i64,
        trigger: Trigger,
    ) -> DomainResult<()> {
        self.fire(&[Pending {
            shopper: Arc::from(shopper),
            key: trigger_key.to_owned(),
            store: store_id.to_owned(),
            zone: zone.map(str::to_owned),
            ts_ms,
            trigger,
        }])
        .await
    }

    /// Decides every fitting campaign of a group of triggers (one transaction), then publishes
    /// the coupons and marks them delivered (one more).
    async fn fire(&self, pending: &[Pending]) -> DomainResult<()> {
        let campaigns = self.parts.catalog.active();
        if campaigns.is_empty() || pending.is_empty() {
            return Ok(());
        }
        struct Item<'a> {
            campaign: &'a crate::campaigns::spec::Campaign,
            p: &'a Pending,
            visit: Option<String>,
        }
        let mut items: Vec<Item<'_>> = Vec::new();
        for p in pending {
            let local = self.local_time(&p.store, p.ts_ms).await?;
            let mut audience: Option<(Vec<String>, &'static str)> = None;
            for c in campaigns.iter() {
                if !c.fits(&p.trigger, &p.store, p.zone.as_deref(), &local) {
                    continue;
                }
                if c.spec.audience.is_personalised() {
                    if audience.is_none() {
                        let tags = shoppers::tags(&self.store, &p.shopper)
                            .await?
                            .into_iter()
                            .map(|t| t.tag)
                            .collect();
                        let loyalty = visits::loyalty(&self.store, &p.shopper, p.ts_ms).await?;
                        audience = Some((tags, loyalty));
                    }
                    let (tags, loyalty) = audience.as_ref().expect("set above");
                    if !c.audience_matches(tags, loyalty) {
                        continue;
                    }
                }
                let visit = visits::at(
                    &self.store,
                    &p.shopper,
                    &p.store,
                    p.ts_ms,
                    &self.parts.definitions,
                )
                .await?;
                items.push(Item {
                    campaign: c,
                    p,
                    visit,
                });
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let ctxs: Vec<(&crate::campaigns::spec::Campaign, TriggerCtx<'_>)> = items
            .iter()
            .map(|i| {
                (
                    i.campaign,
                    TriggerCtx {
                        shopper: &i.p.shopper,
                        trigger_key: &i.p.key,
                        store: &i.p.store,
                        zone: i.p.zone.as_deref(),
                        ts_ms: i.p.ts_ms,
                        visit: i.visit.as_deref(),
                    },
                )
            })
            .collect();
        let decisions = if self.parts.event_clock {
            // History: each decision at its own event time.
            let mut d = Vec::with_capacity(ctxs.len());
            for (c, ctx) in &ctxs {
                d.push(
                    decide(
                        &self.store,
                        c,
                        &self.parts.coupon_key,
                        &self.parts.holdout_salt,
                        ctx,
                        self.now(ctx.ts_ms),
                    )
                    .await?,
                );
            }
            d
        } else {
            decide_all(
                &self.store,
                &ctxs,
                &self.parts.coupon_key,
                &self.parts.holdout_salt,
                now_ms(),
            )
            .await?
        };
        let mut delivered = Vec::new();
        let mut delivered_at = 0;
        for d in &decisions {
            self.stats.count(d);
            if let Decision::Sent(coupon) | Decision::Already(Some(coupon)) = d {
                match self.parts.sink.deliver(coupon).await {
                    Ok(()) => {
                        let now = self.now(coupon.ts_ms);
                        delivered_at = delivered_at.max(now);
                        let delay = (now - coupon.ts_ms).max(0) as u64;
                        self.stats
                            .trigger_to_publish_ms_sum
                            .fetch_add(delay, Ordering::Relaxed);
                        self.stats
                            .trigger_to_publish_ms_max
                            .fetch_max(delay, Ordering::Relaxed);
                        delivered.push(coupon.code.clone());
                    }
                    Err(e) => {
                        // Stays undelivered: the shopper's wallet (HTTP) lists it, and a redelivered
                        // trigger publishes it again.
                        self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, campaign = %coupon.campaign, "coupon publish failed");
                    }
                }
            }
        }
        wallet::mark_delivered_all(&self.store, &delivered, delivered_at).await
    }

    /// An app-reported sighting of a store beacon (already checked for plausibility): a visit
    /// part of one instant, and the same triggers as the gateways' events.
    pub async fn app_sighting(
        &self,
        shopper: &str,
        id: &str,
        store_id: &str,
        zone: Option<&str>,
        ts_ms: i64,
    ) -> DomainResult<()> {
        let shopper_arc: Arc<str> = Arc::from(shopper);
        let continuing = self.seen(&shopper_arc, store_id, ts_ms);
        let key = format!("app:{id}");
        if !continuing {
            let n = self.visit_number(shopper, store_id, ts_ms).await?;
            self.trigger(
                shopper,
                &key,
                store_id,
                zone,
                ts_ms,
                Trigger::Visit { number: n },
            )
            .await?;
        }
        let part = Part {
            key,
            store: store_id.to_owned(),
            shopper: shopper.to_owned(),
            start_ms: ts_ms,
            end_ms: ts_ms,
            class: "passerby".into(),
            path: zone
                .map(|z| {
                    vec![Stay {
                        zone: z.to_owned(),
                        enter_ms: ts_ms,
                        exit_ms: ts_ms,
                    }]
                })
                .unwrap_or_default(),
        };
        self.visit_part(&part).await
    }
}

impl CommitHook for Engine {
    fn committed<'a>(
        &'a self,
        events: &'a [EventRow],
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(async move {
            match self.process(events).await {
                Ok(()) => Ok(()),
                Err(DomainError::Store(e)) if e.is_transient() => Err(e),
                Err(e) => {
                    // Not retryable (bad data): counted and logged, ingest goes on.
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "engine could not process a group of events");
                    Ok(())
                }
            }
        })
    }
}

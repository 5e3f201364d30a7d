//! Data retention: personal and raw data are deleted once older than their configured limit
//! (`[retention]` in `dwell-cloud.toml`, [`RetentionConfig`]), every `interval_s` while the cloud
//! runs ([`run_periodically`], started by `run::serve`, so by `dwell-cloud demo` too).
//!
//! # What goes, and by which time
//! "Older than N days" means the row's time is before `now − N × 24 h` (a row exactly at that
//! instant stays). In deletion order, children before what they point to:
//!
//! - `events` (raw gateway events), after `events_days`: by `ts_ms`, when it happened;
//! - `dead_letters`, after `dead_letters_days`: by `received_ms`;
//! - `app_sightings`, after `app_sightings_days`: by `ts_ms`;
//! - `campaign_decisions`, after `coupons_days`: by `ts_ms`, the trigger's;
//! - `coupons`, after `coupons_days`: once it **expired** (`expires_ms`) that long ago — a coupon
//!   that can still be redeemed stays;
//! - `campaign_caps`, after `coupons_days`: once its cap window (the campaign's `cap.window_s`)
//!   **ended** that long ago — an open window stays, or the shopper's cap would start over;
//! - `visit_parts`, then `visits`, after `visits_days`: once the visit **ended** (`end_ms`) that
//!   long ago; coupons attributed to it stay, with `visit` set to NULL.
//!
//! **Kept whatever the limits say**: the aggregated, anonymous roll-ups (`footfall_hour`,
//! `footfall_day`, `footfall_week`, `zone_day`, `zone_transition_day`, `zone_reach_day`,
//! `path_day`) — counts, never ids — so footfall and zone history outlives the raw events. Also
//! kept: stores, gateways, campaigns, API tokens, and shopper profiles with their identities and
//! tags (a profile lives until the shopper erases it, which de-links their visits and coupons).
//!
//! # Consequences
//! - [`crate::analytics::rebuild()`] can only recompute roll-ups from the events still kept: do
//!   not rebuild days older than `events_days` (their rows would be recomputed from nothing).
//! - Loyalty classes, "n-th visit" triggers and tag rules see the visits kept. `coupons_days` may
//!   not exceed `visits_days` (the config refuses it): campaign lift looks for each decision's
//!   visits in the 7 days after it, and a decision kept without its visits would count as a
//!   shopper who never came back.
//!
//! # How
//! Every delete removes at most [`CHUNK_ROWS`] rows per statement and loops until fewer were left,
//! so a first run over years of data never holds one huge transaction (or SQLite's write lock for
//! long): ingest's transactions get in between. Each statement finds its rows through an index:
//! per store (`events`, `visits`), per reason (`dead_letters`) or per campaign (`coupons`,
//! `campaign_caps`) through the existing indexes, the distinct keys read with a loose index scan;
//! `app_sightings` and `campaign_decisions` through the time indexes of migration 5. A chunk of
//! visits is one transaction: the visits are selected (on PostgreSQL locked, `FOR UPDATE`, so a
//! visit that stitching extends meanwhile is skipped), then their parts, their coupons' links and
//! the visits themselves go. Several workers may enforce at the same time: they delete disjoint
//! rows or wait for each other, and each reports what it deleted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use crate::config::RetentionConfig;
use crate::ingest::now_ms;
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite, StoreError};

/// Rows deleted per statement, at most.
pub const CHUNK_ROWS: u32 = 10_000;
/// The largest chunk [`enforce_in_chunks`] accepts: a chunk of visits is bound as one list, and
/// SQLite binds at most 32,766 parameters per statement.
pub const MAX_CHUNK_ROWS: u32 = 30_000;

const DAY_MS: i64 = 86_400_000;

/// The tables retention deletes from, in the order of [`RetentionReport::deleted`] (and the
/// `table` label of `dwell_cloud_retention_deleted_total`).
pub const TABLES: [&str; 8] = [
    "events",
    "dead_letters",
    "app_sightings",
    "campaign_decisions",
    "coupons",
    "campaign_caps",
    "visit_parts",
    "visits",
];

/// What one enforcement did: rows deleted per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub events: u64,
    pub dead_letters: u64,
    pub app_sightings: u64,
    pub campaign_decisions: u64,
    pub coupons: u64,
    pub campaign_caps: u64,
    pub visit_parts: u64,
    pub visits: u64,
    /// Coupons kept (not expired long enough) whose attributed visit was deleted: `visit` set to
    /// NULL. Not a deletion.
    pub coupons_unlinked: u64,
    /// Delete statements run (chunks, including the last, short one of each key).
    pub statements: u64,
}

impl RetentionReport {
    /// Rows deleted per table, in [`TABLES`] order.
    pub fn deleted(&self) -> [(&'static str, u64); TABLES.len()] {
        let n = [
            self.events,
            self.dead_letters,
            self.app_sightings,
            self.campaign_decisions,
            self.coupons,
            self.campaign_caps,
            self.visit_parts,
            self.visits,
        ];
        std::array::from_fn(|i| (TABLES[i], n[i]))
    }

    /// Rows deleted, all tables.
    pub fn total(&self) -> u64 {
        self.deleted().iter().map(|(_, n)| n).sum()
    }
}

/// The instant before which rows older than `days` are deleted.
fn cutoff(now_ms: i64, days: u32) -> i64 {
    now_ms.saturating_sub(i64::from(days) * DAY_MS)
}

/// Deletes what is older than its limit (see the module doc), [`CHUNK_ROWS`] rows per statement.
pub async fn enforce(
    store: &AnyStore,
    cfg: &RetentionConfig,
    now_ms: i64,
) -> Result<RetentionReport, StoreError> {
    enforce_in_chunks(store, cfg, now_ms, CHUNK_ROWS).await
}

/// [`enforce`] with another chunk size (1 to [`MAX_CHUNK_ROWS`]; clamped to that range).
pub async fn enforce_in_chunks(
    store: &AnyStore,
    cfg: &RetentionConfig,
    now_ms: i64,
    chunk_rows: u32,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    enforce_into(store, cfg, now_ms, chunk_rows, &mut report).await?;
    Ok(report)
}

/// Does the work, counting into `report` as it goes (so a failure half-way still tells what was
/// deleted before it).
async fn enforce_into(
    store: &AnyStore,
    cfg: &RetentionConfig,
    now_ms: i64,
    chunk_rows: u32,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let mut d = Deleter {
        store,
        chunk: chunk_rows.clamp(1, MAX_CHUNK_ROWS),
        statements: 0,
    };
    let result = delete_all(&mut d, cfg, now_ms, report).await;
    report.statements += d.statements;
    result
}

/// Every table, in order (see the module doc).
async fn delete_all(
    d: &mut Deleter<'_>,
    cfg: &RetentionConfig,
    now_ms: i64,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let store = d.store;
    let events = cutoff(now_ms, cfg.events_days);
    for s in distinct(store, DISTINCT_EVENT_STORES).await? {
        report.events += d
            .by_key(
                "DELETE FROM events WHERE (gateway, seq) IN (SELECT gateway, seq FROM events \
                 WHERE store = $1 AND ts_ms < $2 LIMIT $3)",
                &s,
                events,
            )
            .await?;
    }

    let dead = cutoff(now_ms, cfg.dead_letters_days);
    for reason in distinct(store, DISTINCT_DEAD_LETTER_REASONS).await? {
        report.dead_letters += d
            .by_key(
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
                 WHERE reason = $1 AND received_ms < $2 LIMIT $3)",
                &reason,
                dead,
            )
            .await?;
    }

    report.app_sightings += d
        .all(
            "DELETE FROM app_sightings WHERE id IN (SELECT id FROM app_sightings \
             WHERE ts_ms < $1 LIMIT $2)",
            cutoff(now_ms, cfg.app_sightings_days),
        )
        .await?;

    // Decisions point at their coupon (`coupon`): they go first.
    let coupons = cutoff(now_ms, cfg.coupons_days);
    report.campaign_decisions += d
        .all(
            "DELETE FROM campaign_decisions WHERE (campaign, shopper, trigger_key) IN \
             (SELECT campaign, shopper, trigger_key FROM campaign_decisions \
              WHERE ts_ms < $1 LIMIT $2)",
            coupons,
        )
        .await?;
    // Issued no later than it expires, so `issued_ms < $2` only narrows the index range.
    for campaign in distinct(store, DISTINCT_COUPON_CAMPAIGNS).await? {
        report.coupons += d
            .by_key(
                "DELETE FROM coupons WHERE code IN (SELECT code FROM coupons \
                 WHERE campaign = $1 AND issued_ms < $2 AND expires_ms < $2 LIMIT $3)",
                &campaign,
                coupons,
            )
            .await?;
    }
    // A cap window goes once it ended before the limit: start + window < cutoff.
    for (campaign, window_ms) in cap_windows(store).await? {
        report.campaign_caps += d
            .by_key(
                "DELETE FROM campaign_caps WHERE (campaign, shopper, window_start_ms) IN \
                 (SELECT campaign, shopper, window_start_ms FROM campaign_caps \
                  WHERE campaign = $1 AND window_start_ms < $2 LIMIT $3)",
                &campaign,
                coupons.saturating_sub(window_ms),
            )
            .await?;
    }

    let visits = cutoff(now_ms, cfg.visits_days);
    for s in distinct(store, DISTINCT_VISIT_STORES).await? {
        d.visits(&s, visits, report).await?;
    }
    Ok(())
}

// Loose index scans: the distinct values of an indexed leading column, one index probe each
// (`SELECT DISTINCT` would read the whole index). One SQL text for both backends.
const DISTINCT_EVENT_STORES: &str = "WITH RECURSIVE k(v) AS (SELECT min(store) FROM events \
     UNION ALL SELECT (SELECT min(store) FROM events WHERE store > k.v) FROM k \
     WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL";
const DISTINCT_DEAD_LETTER_REASONS: &str = "WITH RECURSIVE k(v) AS (SELECT min(reason) FROM \
     dead_letters UNION ALL SELECT (SELECT min(reason) FROM dead_letters WHERE reason > k.v) \
     FROM k WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL";
const DISTINCT_COUPON_CAMPAIGNS: &str = "WITH RECURSIVE k(v) AS (SELECT min(campaign) FROM \
     coupons UNION ALL SELECT (SELECT min(campaign) FROM coupons WHERE campaign > k.v) \
     FROM k WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL";
const DISTINCT_VISIT_STORES: &str = "WITH RECURSIVE k(v) AS (SELECT min(store) FROM visits \
     UNION ALL SELECT (SELECT min(store) FROM visits WHERE store > k.v) FROM k \
     WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL";

async fn distinct(store: &AnyStore, sql: &'static str) -> Result<Vec<String>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_scalar(sql).fetch_all(pool).await)?)
}

/// Each campaign's cap window in ms, from its spec (`cap.window_s`, default one day). Caps of a
/// campaign whose spec can't be read are kept.
async fn cap_windows(store: &AnyStore) -> Result<Vec<(String, i64)>, StoreError> {
    let rows: Vec<(String, String)> = on_pool!(store, pool =>
        sqlx::query_as("SELECT id, spec FROM campaigns ORDER BY id").fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, spec)| {
            let window_s = match serde_json::from_str::<serde_json::Value>(&spec) {
                Ok(v) => match v.get("cap") {
                    None => crate::campaigns::spec::Cap::default().window_s.into(),
                    Some(cap) => cap.get("window_s")?.as_u64()?,
                },
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e,
                        "retention: campaign spec unreadable; keeping its frequency caps");
                    return None;
                }
            };
            Some((id, i64::try_from(window_s.saturating_mul(1000)).ok()?))
        })
        .collect())
}

struct Deleter<'a> {
    store: &'a AnyStore,
    chunk: u32,
    statements: u64,
}

impl Deleter<'_> {
    /// Runs `sql` (`$1` = key, `$2` = cutoff, `$3` = chunk) until it deletes less than a chunk.
    async fn by_key(
        &mut self,
        sql: &'static str,
        key: &str,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        self.chunked(sql, Some(key), cutoff).await
    }

    /// Runs `sql` (`$1` = cutoff, `$2` = chunk) until it deletes less than a chunk.
    async fn all(&mut self, sql: &'static str, cutoff: i64) -> Result<u64, StoreError> {
        self.chunked(sql, None, cutoff).await
    }

    /// Runs `sql` (`[key,] cutoff, chunk`) until a statement deletes less than a chunk.
    async fn chunked(
        &mut self,
        sql: &'static str,
        key: Option<&str>,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = on_pool!(self.store, pool => {
                let mut q = sqlx::query(sql);
                if let Some(key) = key {
                    q = q.bind(key);
                }
                q.bind(cutoff)
                    .bind(i64::from(self.chunk))
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            self.statements += 1;
            total += n;
            if n < u64::from(self.chunk) {
                return Ok(total);
            }
        }
    }

    /// One store's visits that ended before `cutoff`, a chunk per transaction: their parts, their
    /// coupons' links, then the visits.
    async fn visits(
        &mut self,
        store_id: &str,
        cutoff: i64,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        // end_ms >= start_ms, so `start_ms < $2` only narrows the range of the (store, start_ms)
        // index. PostgreSQL locks the rows (and skips one that stitching extended meanwhile);
        // SQLite's write transaction excludes every other writer anyway.
        let select = match self.store {
            AnyStore::Sqlite(_) => {
                "SELECT id FROM visits WHERE store = $1 AND start_ms < $2 AND end_ms < $2 LIMIT $3"
            }
            AnyStore::Postgres(_) => {
                "SELECT id FROM visits WHERE store = $1 AND start_ms < $2 AND end_ms < $2 LIMIT $3 \
                 FOR UPDATE"
            }
        };
        let chunk = self.chunk;
        loop {
            let (ids, parts, unlinked, visits) = on_pool!(self.store, pool => {
                let mut tx = pool.begin_write().await?;
                let ids: Vec<String> = sqlx::query_scalar(select)
                    .bind(store_id)
                    .bind(cutoff)
                    .bind(i64::from(chunk))
                    .fetch_all(&mut *tx)
                    .await?;
                let mut counts = (0, 0, 0);
                if !ids.is_empty() {
                    counts.0 = id_list("DELETE FROM visit_parts WHERE visit IN", &ids)
                        .build()
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    counts.1 = id_list("UPDATE coupons SET visit = NULL WHERE visit IN", &ids)
                        .build()
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    counts.2 = id_list("DELETE FROM visits WHERE id IN", &ids)
                        .build()
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok::<_, StoreError>((ids.len(), counts.0, counts.1, counts.2))
            })?;
            self.statements += 1;
            report.visit_parts += parts;
            report.coupons_unlinked += unlinked;
            report.visits += visits;
            if ids < chunk as usize {
                return Ok(());
            }
        }
    }
}

/// `head (…ids as bound parameters…)`.
fn id_list<DB: sqlx::Database>(head: &str, ids: &[String]) -> sqlx::QueryBuilder<DB>
where
    DB::Arguments: Default,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(head);
    qb.push(" (");
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id.clone());
    }
    qb.push(")");
    qb
}

/// Counters for `/metrics`, shared by the periodic task and the API.
#[derive(Debug, Default)]
pub struct RetentionStats {
    deleted: [AtomicU64; TABLES.len()],
    runs: AtomicU64,
    failures: AtomicU64,
    /// Unix ms of the end of the last enforcement that completed; 0: none yet.
    last_success_ms: AtomicI64,
}

impl RetentionStats {
    /// Adds what a run deleted (a failed run's partial counts too).
    pub fn add(&self, report: &RetentionReport) {
        for (c, (_, n)) in self.deleted.iter().zip(report.deleted()) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Rows deleted since start, per table in [`TABLES`] order.
    pub fn deleted(&self) -> [(&'static str, u64); TABLES.len()] {
        std::array::from_fn(|i| (TABLES[i], self.deleted[i].load(Ordering::Relaxed)))
    }

    /// Enforcements completed.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Enforcements that failed (retried at the next interval).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Unix ms when the last completed enforcement ended, if any did.
    pub fn last_success_ms(&self) -> Option<i64> {
        Some(self.last_success_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0)
    }
}

/// Enforces `cfg` now and then every `cfg.interval_s` until `shutdown` (which also interrupts a
/// run between two statements' results: what was committed stays deleted, the rest waits for the
/// next start). Logs what was deleted, and counts it in `stats`.
pub async fn run_periodically(
    store: AnyStore,
    cfg: RetentionConfig,
    stats: Arc<RetentionStats>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        events_days = cfg.events_days,
        dead_letters_days = cfg.dead_letters_days,
        app_sightings_days = cfg.app_sightings_days,
        visits_days = cfg.visits_days,
        coupons_days = cfg.coupons_days,
        interval_s = cfg.interval_s,
        "data retention enforced"
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut report = RetentionReport::default();
        let result = tokio::select! {
            _ = shutdown.cancelled() => None,
            r = enforce_into(&store, &cfg, now_ms(), CHUNK_ROWS, &mut report) => Some(r),
        };
        stats.add(&report);
        let Some(result) = result else { return };
        match result {
            Ok(()) => {
                stats.runs.fetch_add(1, Ordering::Relaxed);
                stats.last_success_ms.store(now_ms(), Ordering::Relaxed);
                if report.total() > 0 || report.coupons_unlinked > 0 {
                    log_report(&report);
                } else {
                    tracing::debug!("retention: nothing older than its limit");
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if report.total() > 0 {
                    log_report(&report);
                }
                tracing::warn!(error = %e,
                    "retention: enforcement failed; retrying at the next interval");
            }
        }
    }
}

fn log_report(r: &RetentionReport) {
    tracing::info!(
        events = r.events,
        dead_letters = r.dead_letters,
        app_sightings = r.app_sightings,
        campaign_decisions = r.campaign_decisions,
        coupons = r.coupons,
        campaign_caps = r.campaign_caps,
        visit_parts = r.visit_parts,
        visits = r.visits,
        coupons_unlinked = r.coupons_unlinked,
        statements = r.statements,
        "retention: deleted rows older than their limit"
    );
}

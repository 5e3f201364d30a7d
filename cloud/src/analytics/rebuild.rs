//! Rebuilding the roll-ups from the raw `events`, and reading them back for comparison.
//!
//! [`rebuild`] clears the roll-up rows (of one store, or all) and recomputes them with the same
//! [`Rollup`] code ingest uses, reading each store's events in pages, all in one transaction: the
//! result equals what incremental maintenance would have produced from the same events (the tests
//! check it on a generated year). It is how to repair roll-ups after a store's time zone is
//! corrected (hours and days move), after a definition changes, or to fill them for events stored
//! before migration 3. It ends by recomputing the chain's and regions' sums (`footfall_scope_*`)
//! from the store rows with the regions the stores have now, which is also how to apply a change
//! of a store's region to them.
//!
//! Data retention (`[retention] events_days`, [`crate::retention`]) deletes old events but never
//! roll-ups, so a rebuild can only recompute what the kept events cover: rebuilding a store (or
//! all) after events were deleted would replace its older roll-up rows with nothing.
//!
//! While it runs, ingest waits: on SQLite the rebuild holds the write lock (`BEGIN IMMEDIATE`); on
//! PostgreSQL it takes `LOCK TABLE events IN SHARE MODE`, which lets readers through but makes
//! ingest's inserts wait until the rebuild commits, so no event is counted twice or missed. The
//! MQTT messages stay unacknowledged meanwhile and the broker holds them; nothing is lost.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row, SqliteConnection};

use super::rollup::{ROLLED_UP, Rollup};
use super::upsert::{
    TABLES, refresh_scopes_sql, write_postgres, write_sqlite, zones_postgres, zones_sqlite,
};
use crate::store::{AnyStore, StoreError};

/// Events read per page while rebuilding.
const PAGE: i64 = 20_000;

/// What a rebuild did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildReport {
    /// Stores recomputed.
    pub stores: u64,
    /// Events that contributed.
    pub events: u64,
    /// Events of a rolled-up type that could not be placed (unreadable, absurd time).
    pub skipped: u64,
    /// Roll-up rows written (over all tables, before merging into existing rows).
    pub rows: u64,
}

/// The `IN (…)` list of rolled-up event types, as SQL literals (constants, not input).
fn rolled_up_list() -> String {
    ROLLED_UP
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Recomputes every `footfall_scope_*` row from the store rows, on `conn` (a transaction).
macro_rules! refresh_scopes_in {
    ($conn:expr) => {
        for sql in refresh_scopes_sql() {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *$conn)
                .await?;
        }
    };
}

/// Runs the backend's expression (using the transaction `$tx`) in one transaction that ingest
/// waits for: SQLite's write lock (`BEGIN IMMEDIATE`), PostgreSQL's `LOCK TABLE events IN SHARE
/// MODE` (readers pass, inserts wait); commits and yields the expression's value.
macro_rules! holding_ingest {
    ($store:expr, $tx:ident => sqlite: $sqlite:expr, postgres: $postgres:expr) => {
        match $store {
            AnyStore::Sqlite(s) => {
                let mut $tx = s.pool().begin_with("BEGIN IMMEDIATE").await?;
                let r = $sqlite;
                $tx.commit().await?;
                r
            }
            AnyStore::Postgres(s) => {
                let mut $tx = s.pool().begin().await?;
                sqlx::query("LOCK TABLE events IN SHARE MODE")
                    .execute(&mut *$tx)
                    .await?;
                let r = $postgres;
                $tx.commit().await?;
                r
            }
        }
    };
}

macro_rules! rebuild_backend {
    ($name:ident, $conn:ty, $write:ident, $zones:ident, $payload:literal) => {
        async fn $name(conn: &mut $conn, only: Option<&str>) -> Result<RebuildReport, StoreError> {
            for t in TABLES {
                match only {
                    Some(s) => {
                        let sql = format!("DELETE FROM {t} WHERE store = $1");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(s)
                            .execute(&mut *conn)
                            .await?;
                    }
                    None => {
                        let sql = format!("DELETE FROM {t}");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut *conn)
                            .await?;
                    }
                }
            }
            let stores: Vec<String> = match only {
                Some(s) => vec![s.to_owned()],
                None => {
                    sqlx::query_scalar("SELECT DISTINCT store FROM events ORDER BY store")
                        .fetch_all(&mut *conn)
                        .await?
                }
            };
            let refs: Vec<&str> = stores.iter().map(String::as_str).collect();
            let zones = $zones(&mut *conn, &refs).await?;
            let page_sql = format!(
                "SELECT ts_ms, gateway, seq, {payload} FROM events \
                 WHERE store = $1 AND type IN ({types}) \
                   AND (ts_ms > $2 OR (ts_ms = $2 AND (gateway > $3 OR (gateway = $3 AND seq > $4)))) \
                 ORDER BY ts_ms, gateway, seq LIMIT $5",
                payload = $payload,
                types = rolled_up_list()
            );
            let mut report = RebuildReport::default();
            for s in &stores {
                let tz = zones.get(s).map_or(TimeZone::UTC, |i| i.tz.clone());
                let mut rollup = Rollup::default();
                let mut after = (i64::MIN, String::new(), i64::MIN);
                loop {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql.clone()))
                        .bind(s)
                        .bind(after.0)
                        .bind(&after.1)
                        .bind(after.2)
                        .bind(PAGE)
                        .fetch_all(&mut *conn)
                        .await?;
                    for r in &rows {
                        let payload: String = r.try_get(3)?;
                        rollup.add_json(s, &tz, &payload);
                    }
                    match rows.last() {
                        Some(r) if rows.len() as i64 == PAGE => {
                            after = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                        }
                        _ => break,
                    }
                }
                let (applied, skipped) = rollup.events();
                report.stores += 1;
                report.events += applied;
                report.skipped += skipped;
                report.rows += rollup.rows() as u64;
                $write(&mut *conn, &rollup, None).await?;
            }
            // The chain's and regions' sums, from the store rows just written (and the others'),
            // with the regions the stores have now.
            refresh_scopes_in!(conn);
            Ok(report)
        }
    };
}

rebuild_backend!(
    rebuild_sqlite,
    SqliteConnection,
    write_sqlite,
    zones_sqlite,
    "payload"
);
rebuild_backend!(
    rebuild_postgres,
    PgConnection,
    write_postgres,
    zones_postgres,
    "payload::text"
);

/// Recomputes the roll-ups of `only` one store (or of every store that has events) from `events`,
/// in one transaction. See the module docs.
pub async fn rebuild(store: &AnyStore, only: Option<&str>) -> Result<RebuildReport, StoreError> {
    let report = holding_ingest!(store, tx =>
        sqlite: rebuild_sqlite(&mut tx, only).await?,
        postgres: rebuild_postgres(&mut tx, only).await?);
    tracing::info!(
        stores = report.stores,
        events = report.events,
        skipped = report.skipped,
        rows = report.rows,
        "analytics roll-ups rebuilt"
    );
    Ok(report)
}

/// Recomputes only the chain's and regions' sums (`footfall_scope_*`) from the per-store roll-ups
/// and the stores' current regions, locked against ingest as [`rebuild`] is: after a store's
/// region changes, or after per-store roll-ups were loaded by other means.
pub async fn refresh_scopes(store: &AnyStore) -> Result<(), StoreError> {
    holding_ingest!(store, tx => sqlite: refresh_scopes_in!(tx), postgres: refresh_scopes_in!(tx));
    Ok(())
}

/// Every roll-up row, as text, by table: for comparing two states (a rebuild against incremental
/// maintenance, one backend against the other). Rows are in key order; values are rendered by the
/// database (`CAST(… AS TEXT)`), so the same numbers print the same on both backends.
pub type Snapshot = BTreeMap<&'static str, Vec<Vec<String>>>;

/// Reads every roll-up row (of one store, or all): see [`Snapshot`].
pub async fn snapshot(store: &AnyStore, only: Option<&str>) -> Result<Snapshot, StoreError> {
    let mut out = Snapshot::new();
    for (table, cols) in super::upsert::table_columns() {
        // Scope rows belong to no one store.
        if only.is_some() && cols[0] == "scope" {
            continue;
        }
        let list = cols
            .iter()
            .map(|c| format!("CAST({c} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ");
        let cond = if only.is_some() {
            "store = $1"
        } else {
            "1 = 1"
        };
        // Ordered by the table's columns (`t.`), not by the text casts of the same names, which
        // PostgreSQL would pick (and sort 14 before 8).
        let order = cols
            .iter()
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {list} FROM {table} t WHERE {cond} ORDER BY {order}");
        let rows: Vec<Vec<String>> = crate::on_pool!(store, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(s) = only {
                q = q.bind(s);
            }
            q.fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    (0..cols.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        out.insert(table, rows);
    }
    Ok(out)
}

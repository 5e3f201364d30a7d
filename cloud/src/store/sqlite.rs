//! [`Store`] on SQLite: one file in a data directory, the embedded default.
//!
//! WAL journal (readers don't block the writer) with `synchronous = FULL`: ingest acknowledges a
//! message to the broker after the commit, so the commit must survive a power cut, and in WAL mode
//! FULL costs one fsync of the log per transaction — which ingest amortises by grouping many MQTT
//! messages into one transaction. Writes start with `BEGIN IMMEDIATE` so two writers queue on the
//! busy timeout instead of failing a read-to-write lock upgrade.
//!
//! Before the events go in, the transaction asks which of those the analytics roll-ups read are
//! not stored yet (exact, since it holds the only write lock), and after they are in it adds those
//! events' roll-up deltas (`crate::analytics::upsert`): each event is rolled up exactly once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{
    Backend, Committed, DeadLetter, EVENT_COLUMNS, EventRow, GatewayRow, Store, StoreError,
    StoredEvent, WriteSet, migrator,
};
use crate::analytics::{rollup, upsert};

/// SQLite's bound-parameter limit per statement (`SQLITE_MAX_VARIABLE_NUMBER`, 32,766 since
/// 3.32; the bundled library is newer).
pub const MAX_PARAMS: usize = 32_766;

/// Event rows per `INSERT` statement: as many as the parameter limit allows.
pub const ROWS_PER_INSERT: usize = MAX_PARAMS / EVENT_COLUMNS;

/// The database file's name inside a data directory.
pub const FILE_NAME: &str = "dwell.db";

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections in the pool: one writer at a time (SQLite's rule) plus readers for the API.
const MAX_CONNECTIONS: u32 = 4;

/// SQLite behind a small pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens `dir/dwell.db`, creating the directory and the file as needed.
    pub async fn open_dir(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(&dir.join(FILE_NAME)).await
    }

    /// Opens (creating if needed) and migrates the database file at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::DataDir {
                path: dir.to_owned(),
                error,
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        migrator(Backend::Sqlite).run(&pool).await?;
        Ok(SqliteStore {
            pool,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The events of `events` that the roll-ups read and that the insert about to run will store:
/// the first copy of each `(gateway, seq)` in the set, unless the table has it already.
///
/// Asking before inserting is exact here because the transaction began `IMMEDIATE`: it holds
/// SQLite's only write lock, so no other writer can add a row in between. It costs an index probe
/// per rolled-up event (the seqs go in as one JSON array per gateway), where `INSERT … RETURNING`
/// would hand every new row back through sqlx's worker channel (~2 µs a row, measured).
/// PostgreSQL, with concurrent writers, uses `RETURNING` instead.
async fn new_rolled_up<'a>(
    tx: &mut SqliteConnection,
    events: &'a [EventRow],
) -> Result<Vec<&'a EventRow>, sqlx::Error> {
    let mut seqs: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in events.iter().filter(|e| rollup::rolls_up(e.kind)) {
        seqs.entry(e.gateway.as_str()).or_default().push(e.seq);
    }
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut stored: HashSet<(&str, i64)> = HashSet::new();
    for (gateway, seqs) in &seqs {
        let list = serde_json::Value::from(seqs.as_slice()).to_string();
        let found: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM events WHERE gateway = ? AND seq IN (SELECT value FROM json_each(?))",
        )
        .bind(*gateway)
        .bind(list)
        .fetch_all(&mut *tx)
        .await?;
        stored.extend(found.into_iter().map(|s| (*gateway, s)));
    }
    let mut seen: HashSet<(&str, i64)> = HashSet::with_capacity(events.len());
    Ok(events
        .iter()
        .filter(|e| {
            let key = (e.gateway.as_str(), e.seq);
            seen.insert(key) && rollup::rolls_up(e.kind) && !stored.contains(&key)
        })
        .collect())
}

fn gateway_row(r: &SqliteRow) -> Result<GatewayRow, sqlx::Error> {
    Ok(GatewayRow {
        gateway: r.try_get("gateway")?,
        store: r.try_get("store")?,
        registered: r.try_get("registered")?,
        first_seen_ms: r.try_get("first_seen_ms")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        online: r.try_get("online")?,
        backlog: r.try_get("backlog")?,
        version: r.try_get("version")?,
        status_ms: r.try_get("status_ms")?,
    })
}

/// `SELECT … FROM gateways` followed by `$tail`, as one literal.
macro_rules! select_gateways {
    ($tail:literal) => {
        concat!(
            "SELECT gateway, store, registered, first_seen_ms, last_seen_ms, online, backlog, ",
            "version, status_ms FROM gateways ",
            $tail
        )
    };
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn write(&self, set: &WriteSet) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let fresh = new_rolled_up(&mut tx, &set.events).await?;
        let mut inserted = 0;
        for chunk in set.events.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events \
                 (gateway, seq, store, ts_ms, type, device, zone, payload, received_ms) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.gateway.clone())
                    .push_bind(e.seq)
                    .push_bind(e.store.clone())
                    .push_bind(e.ts_ms)
                    .push_bind(e.kind)
                    .push_bind(e.device.clone())
                    .push_bind(e.zone.clone())
                    .push_bind(e.payload.clone())
                    .push_bind(e.received_ms);
            });
            q.push(" ON CONFLICT (gateway, seq) DO NOTHING");
            inserted += q.build().execute(&mut *tx).await?.rows_affected();
        }
        for d in &set.dead_letters {
            sqlx::query(
                "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload, message_key) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_key) DO NOTHING",
            )
            .bind(d.received_ms)
            .bind(&d.topic)
            .bind(d.reason)
            .bind(&d.detail)
            .bind(&d.payload)
            .bind(d.key.as_ref().map(|k| k.as_slice()))
            .execute(&mut *tx)
            .await?;
        }
        for s in &set.statuses {
            sqlx::query(
                "UPDATE gateways SET online = ?, status_ms = ?, \
                   backlog = COALESCE(?, backlog), version = COALESCE(?, version), \
                   last_seen_ms = MAX(COALESCE(last_seen_ms, ?), ?), \
                   first_seen_ms = COALESCE(first_seen_ms, ?) \
                 WHERE gateway = ? AND (status_ms IS NULL OR status_ms <= ?)",
            )
            .bind(s.online)
            .bind(s.ts_ms)
            .bind(s.backlog)
            .bind(&s.version)
            .bind(s.seen_ms)
            .bind(s.seen_ms)
            .bind(s.seen_ms)
            .bind(&s.gateway)
            .bind(s.ts_ms)
            .execute(&mut *tx)
            .await?;
        }
        for (gateway, ms) in set.seen_by_gateway() {
            sqlx::query(
                "UPDATE gateways SET last_seen_ms = MAX(COALESCE(last_seen_ms, ?), ?), \
                   first_seen_ms = COALESCE(first_seen_ms, ?) WHERE gateway = ?",
            )
            .bind(ms)
            .bind(ms)
            .bind(ms)
            .bind(gateway)
            .execute(&mut *tx)
            .await?;
        }
        // Last, so the roll-up rows every writer shares are held for the shortest time.
        upsert::sqlite(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(Committed { inserted })
    }

    async fn register_gateway(&self, store: &str, gateway: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateways (gateway, store, registered) VALUES (?, ?, 1) \
             ON CONFLICT (gateway) DO UPDATE SET store = excluded.store, registered = 1",
        )
        .bind(gateway)
        .bind(store)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_gateway(
        &self,
        store: &str,
        gateway: &str,
        now_ms: i64,
    ) -> Result<GatewayRow, StoreError> {
        sqlx::query(
            "INSERT INTO gateways (gateway, store, registered, first_seen_ms) VALUES (?, ?, 0, ?) \
             ON CONFLICT (gateway) DO NOTHING",
        )
        .bind(gateway)
        .bind(store)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        // Just inserted or already there: the row exists.
        Ok(self
            .gateway(gateway)
            .await?
            .expect("the gateway row was inserted above"))
    }

    async fn gateway(&self, gateway: &str) -> Result<Option<GatewayRow>, StoreError> {
        let row = sqlx::query(select_gateways!("WHERE gateway = ?"))
            .bind(gateway)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(gateway_row).transpose()?)
    }

    async fn gateways(&self) -> Result<Vec<GatewayRow>, StoreError> {
        let rows = sqlx::query(select_gateways!("ORDER BY gateway"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(gateway_row).collect::<Result<_, _>>()?)
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn events(&self, gateway: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT gateway, seq, store, ts_ms, type, device, zone, payload, received_ms \
             FROM events WHERE gateway = ? ORDER BY seq",
        )
        .bind(gateway)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(StoredEvent {
                    gateway: r.try_get("gateway")?,
                    seq: r.try_get("seq")?,
                    store: r.try_get("store")?,
                    ts_ms: r.try_get("ts_ms")?,
                    kind: r.try_get("type")?,
                    device: r.try_get("device")?,
                    zone: r.try_get("zone")?,
                    payload: serde_json::from_str(&payload)?,
                    received_ms: r.try_get("received_ms")?,
                })
            })
            .collect()
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_ms, topic, reason, detail, payload FROM dead_letters ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(DeadLetter {
                    id: r.try_get("id")?,
                    received_ms: r.try_get("received_ms")?,
                    topic: r.try_get("topic")?,
                    reason: r.try_get("reason")?,
                    detail: r.try_get("detail")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

// The chunk size uses the parameter limit fully and never exceeds it.
const _: () = assert!(ROWS_PER_INSERT * EVENT_COLUMNS <= MAX_PARAMS);
const _: () = assert!((ROWS_PER_INSERT + 1) * EVENT_COLUMNS > MAX_PARAMS);

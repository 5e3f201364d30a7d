//! Storage: the SQL database behind ingest (and, later, profiles, campaigns and analytics).
//!
//! One small trait, [`Store`], with two implementations: [`SqliteStore`] (a file in a data
//! directory, WAL mode: the embedded default) and [`PgStore`] (PostgreSQL by URL: production,
//! shared by any number of stateless cloud workers). [`AnyStore`] picks one from a database URL
//! (`sqlite:///path/dwell.db` or `postgres://…`), so the rest of the cloud is written once.
//!
//! # What the database guarantees (not worker memory)
//! - **Exactly once in effect**: `events` has `PRIMARY KEY (gateway, seq)` and every insert is
//!   `ON CONFLICT DO NOTHING`, so a redelivered, reordered or concurrently delivered event is
//!   stored once and the first copy wins. [`Committed::inserted`] says how many rows were new.
//! - **All or nothing per [`WriteSet`]**: one transaction holds a set's events, dead letters,
//!   status and last-seen updates. Ingest acknowledges the MQTT messages a set came from only
//!   after [`Store::write`] returned Ok (the commit).
//! - **Batched**: events go in one multi-row statement per set — SQLite: `INSERT … VALUES
//!   (…),(…)` in chunks of [`sqlite::ROWS_PER_INSERT`] rows (SQLite allows 32,766 bound
//!   parameters per statement); PostgreSQL: a single `INSERT … SELECT FROM UNNEST($1…$9)` with one
//!   array per column, which has no row limit and is prepared once (the 65,535 parameter limit
//!   never applies). Row by row through sqlx would be ~80× slower on SQLite.
//! - **Bound parameters only**: every value reaches SQL as a bind; the only SQL text built at run
//!   time is the SQLite `VALUES` list of placeholders, by sqlx's `QueryBuilder`.
//! - **Migrations** are embedded SQL, one directory per backend (`cloud/migrations/{sqlite,
//!   postgres}`), run by sqlx's migrator at open (checksummed; on PostgreSQL under an advisory
//!   lock, so workers starting together don't race).
//!
//! # Tables (see the migrations)
//! `gateways` (registration and status), `events` (one row per `(gateway, seq)`, the event's JSON
//! kept as sent), `dead_letters` (what ingest refused, with reason, detail and the raw payload).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Columns of one `events` row; the statements bind this many parameters per row.
pub const EVENT_COLUMNS: usize = 9;

/// One event as it goes into `events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub gateway: String,
    pub seq: i64,
    pub store: String,
    pub ts_ms: i64,
    /// The wire `type` (`EventKind::type_name`).
    pub kind: &'static str,
    pub device: Option<String>,
    pub zone: Option<String>,
    /// The event's JSON as the gateway sent it.
    pub payload: String,
    pub received_ms: i64,
}

/// One refused message (or refused event inside an accepted batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterRow {
    pub received_ms: i64,
    pub topic: String,
    /// A stable label (`DeadLetterReason::label` in ingest), also the metric label.
    pub reason: &'static str,
    /// What exactly was wrong, for the operator.
    pub detail: String,
    pub payload: Vec<u8>,
    /// Identifies the refused message (ingest: SHA-256 of reason, topic and payload), so a
    /// redelivery of a message already dead-lettered adds no second row; `None` always adds one.
    pub key: Option<[u8; 32]>,
}

/// A gateway status to apply, unless a newer one (by `ts_ms`) was applied already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    pub gateway: String,
    pub online: bool,
    /// The status's own `ts_ms` (the gateway's clock); orders statuses.
    pub ts_ms: i64,
    pub backlog: Option<i64>,
    pub version: Option<String>,
    /// Raise `last_seen_ms` to this (never lowers it).
    pub seen_ms: i64,
}

/// Everything one transaction writes: the outcome of a group of MQTT messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    pub events: Vec<EventRow>,
    pub dead_letters: Vec<DeadLetterRow>,
    pub statuses: Vec<StatusUpdate>,
    /// `(gateway, received_ms)`: raise the gateway's `last_seen_ms` (events prove it is alive).
    pub seen: Vec<(String, i64)>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.dead_letters.is_empty()
            && self.statuses.is_empty()
            && self.seen.is_empty()
    }

    /// The `seen` updates reduced to one per gateway (the latest), so a transaction touches each
    /// gateway row once.
    pub(crate) fn seen_by_gateway(&self) -> Vec<(&str, i64)> {
        let mut latest: std::collections::BTreeMap<&str, i64> = Default::default();
        for (g, ms) in &self.seen {
            let e = latest.entry(g.as_str()).or_insert(*ms);
            *e = (*e).max(*ms);
        }
        latest.into_iter().collect()
    }
}

/// What a committed [`WriteSet`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Event rows that were new; `events.len() - inserted` were already stored (duplicates).
    pub inserted: u64,
}

/// A stored event, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub gateway: String,
    pub seq: i64,
    pub store: String,
    pub ts_ms: i64,
    pub kind: String,
    pub device: Option<String>,
    pub zone: Option<String>,
    /// Parsed, so SQLite's text and PostgreSQL's normalised JSONB compare equal.
    pub payload: serde_json::Value,
    pub received_ms: i64,
}

/// A `gateways` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRow {
    pub gateway: String,
    pub store: String,
    pub registered: bool,
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub online: Option<bool>,
    pub backlog: Option<i64>,
    pub version: Option<String>,
    pub status_ms: Option<i64>,
}

/// A `dead_letters` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub received_ms: i64,
    pub topic: String,
    pub reason: String,
    pub detail: String,
    pub payload: Vec<u8>,
}

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {error}")]
    DataDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("stored event payload is not JSON: {0}")]
    Payload(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether retrying the same write may succeed (the connection, the pool, the disk), as
    /// opposed to the database refusing this data (a constraint or a value it can't hold), which
    /// will fail again however often it is retried.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(db)) => {
                // SQLite reports a busy/locked database as a database error: transient.
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                matches!(code, "5" | "6" | "517" | "261" | "262")
                    // PostgreSQL: serialization failure, deadlock, admin shutdown, cannot connect now
                    || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
                    || code.starts_with("08")
                    || code.starts_with("53")
            }
            StoreError::Sql(_) => true,
            StoreError::Migrate(_) | StoreError::DataDir { .. } | StoreError::Payload(_) => false,
        }
    }
}

/// The storage interface the cloud is written against.
///
/// Implementations are cheap to clone (a connection pool inside) and safe to share between
/// ingest workers.
pub trait Store: Clone + Send + Sync + fmt::Debug + 'static {
    fn backend(&self) -> Backend;

    /// Writes a set in one transaction (events idempotently on `(gateway, seq)`).
    fn write(&self, set: &WriteSet) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Registers `gateway` as belonging to `store` (operator or config registration): inserts it,
    /// or moves it to `store` and marks it registered.
    fn register_gateway(
        &self,
        store: &str,
        gateway: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims an unknown gateway for `store` on first sight (demo mode): inserts it unregistered
    /// unless it exists, and returns the row as it now is (it may belong to another store).
    fn claim_gateway(
        &self,
        store: &str,
        gateway: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<GatewayRow, StoreError>> + Send;

    fn gateway(
        &self,
        gateway: &str,
    ) -> impl Future<Output = Result<Option<GatewayRow>, StoreError>> + Send;

    fn gateways(&self) -> impl Future<Output = Result<Vec<GatewayRow>, StoreError>> + Send;

    fn event_count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// One gateway's events in seq order.
    fn events(
        &self,
        gateway: &str,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Dead letters, oldest first.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Closes the pool, waiting for connections in use.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Where the database is: parsed from `[database] url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:///abs/path/dwell.db` (or `sqlite://relative/path.db`): the file.
    Sqlite(PathBuf),
    /// `postgres://…` / `postgresql://…`, passed to the driver as is.
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            // The URL may carry a password.
            DatabaseUrl::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl DatabaseUrl {
    /// Parses a database URL, saying what is accepted when it isn't.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("has no file path after sqlite://".into());
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            Err(format!(
                "{:?} is neither sqlite://… nor postgres://…",
                url.split('@').next_back().unwrap_or(url)
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Either backend, chosen at run time from the configured URL.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, max_connections: u32) -> Result<AnyStore, StoreError> {
        Ok(match url {
            DatabaseUrl::Sqlite(path) => AnyStore::Sqlite(SqliteStore::open(path).await?),
            DatabaseUrl::Postgres(url) => {
                AnyStore::Postgres(PgStore::connect(url, max_connections).await?)
            }
        })
    }
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend: domain modules write
/// one SQL text (numbered `$1` placeholders, `ON CONFLICT`, `RETURNING`, JSON as TEXT: all
/// understood by both) and it is compiled once per backend.
///
/// ```ignore
/// let n: i64 = on_pool!(store, pool => sqlx::query_scalar("SELECT count(*) FROM shoppers")
///     .fetch_one(pool).await)?;
/// ```
#[macro_export]
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::AnyStore::Sqlite(s) => {
                let $pool = s.pool();
                $body
            }
            $crate::store::AnyStore::Postgres(s) => {
                let $pool = s.pool();
                $body
            }
        }
    };
}

/// A write transaction on either backend: SQLite's starts `BEGIN IMMEDIATE` (it takes the write
/// lock up front, so a transaction that reads before it writes can't fail to upgrade with
/// `SQLITE_BUSY` when another connection — another worker process — writes); PostgreSQL's is a
/// plain `BEGIN` (row locks and `ON CONFLICT` do the rest). Domain modules call it inside
/// [`on_pool!`](crate::on_pool): `let mut tx = pool.begin_write().await?;`.
pub trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl Store for AnyStore {
    fn backend(&self) -> Backend {
        delegate!(self, s => s.backend())
    }
    async fn write(&self, set: &WriteSet) -> Result<Committed, StoreError> {
        delegate!(self, s => s.write(set).await)
    }
    async fn register_gateway(&self, store: &str, gateway: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.register_gateway(store, gateway).await)
    }
    async fn claim_gateway(
        &self,
        store: &str,
        gateway: &str,
        now_ms: i64,
    ) -> Result<GatewayRow, StoreError> {
        delegate!(self, s => s.claim_gateway(store, gateway, now_ms).await)
    }
    async fn gateway(&self, gateway: &str) -> Result<Option<GatewayRow>, StoreError> {
        delegate!(self, s => s.gateway(gateway).await)
    }
    async fn gateways(&self) -> Result<Vec<GatewayRow>, StoreError> {
        delegate!(self, s => s.gateways().await)
    }
    async fn event_count(&self) -> Result<u64, StoreError> {
        delegate!(self, s => s.event_count().await)
    }
    async fn events(&self, gateway: &str) -> Result<Vec<StoredEvent>, StoreError> {
        delegate!(self, s => s.events(gateway).await)
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        delegate!(self, s => s.dead_letters().await)
    }
    async fn close(&self) {
        delegate!(self, s => s.close().await)
    }
}

/// The embedded migrations of one backend, in version order.
fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (
                1,
                "ingest",
                include_str!("../../migrations/sqlite/0001_ingest.sql"),
            ),
            (
                2,
                "shoppers",
                include_str!("../../migrations/sqlite/0002_shoppers.sql"),
            ),
            (
                3,
                "analytics",
                include_str!("../../migrations/sqlite/0003_analytics.sql"),
            ),
            (
                4,
                "dead_letter_keys",
                include_str!("../../migrations/sqlite/0004_dead_letter_keys.sql"),
            ),
            (
                5,
                "retention",
                include_str!("../../migrations/sqlite/0005_retention.sql"),
            ),
            (
                6,
                "footfall_scopes",
                include_str!("../../migrations/sqlite/0006_footfall_scopes.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "ingest",
                include_str!("../../migrations/postgres/0001_ingest.sql"),
            ),
            (
                2,
                "shoppers",
                include_str!("../../migrations/postgres/0002_shoppers.sql"),
            ),
            (
                3,
                "analytics",
                include_str!("../../migrations/postgres/0003_analytics.sql"),
            ),
            (
                4,
                "dead_letter_keys",
                include_str!("../../migrations/postgres/0004_dead_letter_keys.sql"),
            ),
            (
                5,
                "retention",
                include_str!("../../migrations/postgres/0005_retention.sql"),
            ),
            (
                6,
                "footfall_scopes",
                include_str!("../../migrations/postgres/0006_footfall_scopes.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/dwell-cloud/dwell.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/dwell-cloud/dwell.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/dwell.db?mode=rwc"),
            Ok(DatabaseUrl::Sqlite("data/dwell.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@db/dwell").map(|u| u.backend()),
            Ok(Backend::Postgres)
        );
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        let e = DatabaseUrl::parse("mysql://u:secret@db/x").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(
            format!(
                "{:?}",
                DatabaseUrl::parse("postgres://u:secret@db").unwrap()
            ) == "Postgres(..)"
        );
    }

    #[test]
    fn seen_is_reduced_to_the_latest_per_gateway() {
        let set = WriteSet {
            seen: vec![
                ("a".into(), 5),
                ("b".into(), 1),
                ("a".into(), 9),
                ("a".into(), 7),
            ],
            ..WriteSet::default()
        };
        assert_eq!(set.seen_by_gateway(), vec![("a", 9), ("b", 1)]);
    }

    #[test]
    fn both_migration_sets_have_the_same_versions() {
        let v = |b| migrator(b).iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(v(Backend::Sqlite), v(Backend::Postgres));
    }
}

//! [`Store`] on PostgreSQL: production, shared by any number of cloud workers.
//!
//! Events go in with one statement per [`WriteSet`], whatever its size: each column is bound as
//! one array and `UNNEST` turns the arrays back into rows, so the statement text never changes
//! (prepared once per connection) and PostgreSQL's 65,535 bind-parameter limit never applies.
//! The payload arrives as text and is stored as `jsonb`. Events of the types the analytics
//! roll-ups read get a second such statement with `RETURNING gateway, seq`, and the deltas of the
//! rows it reports new are added in the same transaction (`crate::analytics::upsert`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

use super::{
    Backend, Committed, DeadLetter, EventRow, GatewayRow, Store, StoreError, StoredEvent, WriteSet,
    migrator,
};
use crate::analytics::{rollup, upsert};

/// How long to wait for a pooled connection before reporting the database unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL behind a pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and runs the migrations (under sqlx's advisory lock, so workers starting
    /// together apply them once).
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        migrator(Backend::Postgres).run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Inserts `rows` into `events` with one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT (gateway,
/// seq) DO NOTHING`: how many were new, and with `returning` their `(gateway, seq)`.
async fn insert_events(
    tx: &mut PgConnection,
    rows: &[&EventRow],
    returning: bool,
) -> Result<(u64, Vec<(String, i64)>), sqlx::Error> {
    if rows.is_empty() {
        return Ok((0, Vec::new()));
    }
    let n = rows.len();
    let mut gateway = Vec::with_capacity(n);
    let mut seq = Vec::with_capacity(n);
    let mut store = Vec::with_capacity(n);
    let mut ts_ms = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut device = Vec::with_capacity(n);
    let mut zone = Vec::with_capacity(n);
    let mut payload = Vec::with_capacity(n);
    let mut received_ms = Vec::with_capacity(n);
    for e in rows {
        gateway.push(e.gateway.as_str());
        seq.push(e.seq);
        store.push(e.store.as_str());
        ts_ms.push(e.ts_ms);
        kind.push(e.kind);
        device.push(e.device.as_deref());
        zone.push(e.zone.as_deref());
        payload.push(e.payload.as_str());
        received_ms.push(e.received_ms);
    }
    macro_rules! insert {
        ($tail:literal) => {
            sqlx::query(concat!(
                "INSERT INTO events \
                   (gateway, seq, store, ts_ms, type, device, zone, payload, received_ms) \
                 SELECT g, s, st, t, k, d, z, p::jsonb, r FROM UNNEST( \
                   $1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], \
                   $7::text[], $8::text[], $9::int8[]) AS u(g, s, st, t, k, d, z, p, r) \
                 ON CONFLICT (gateway, seq) DO NOTHING",
                $tail
            ))
            .bind(&gateway)
            .bind(&seq)
            .bind(&store)
            .bind(&ts_ms)
            .bind(&kind)
            .bind(&device)
            .bind(&zone)
            .bind(&payload)
            .bind(&received_ms)
        };
    }
    if returning {
        let keys: Vec<(String, i64)> = insert!(" RETURNING gateway, seq")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((keys.len() as u64, keys))
    } else {
        let n = insert!("").execute(&mut *tx).await?.rows_affected();
        Ok((n, Vec::new()))
    }
}

fn gateway_row(r: &PgRow) -> Result<GatewayRow, sqlx::Error> {
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

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn write(&self, set: &WriteSet) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The first copy of each (gateway, seq) in the set is the one stored. Events that feed
        // the analytics roll-ups go in by their own statement, which returns the keys of the rows
        // that were new — with concurrent workers only the insert itself can tell — and the rest
        // (most events) go in as before.
        let mut seen: HashSet<(&str, i64)> = HashSet::with_capacity(set.events.len());
        let (rolled, plain): (Vec<&EventRow>, Vec<&EventRow>) = set
            .events
            .iter()
            .filter(|e| seen.insert((e.gateway.as_str(), e.seq)))
            .partition(|e| rollup::rolls_up(e.kind));
        let mut inserted = insert_events(&mut tx, &plain, false).await?.0;
        let mut fresh = Vec::new();
        if !rolled.is_empty() {
            let (n, keys) = insert_events(&mut tx, &rolled, true).await?;
            inserted += n;
            let by_key: HashMap<(&str, i64), &EventRow> = rolled
                .iter()
                .map(|e| ((e.gateway.as_str(), e.seq), *e))
                .collect();
            for (gateway, seq) in &keys {
                fresh.extend(by_key.get(&(gateway.as_str(), *seq)).copied());
            }
        }
        for d in &set.dead_letters {
            sqlx::query(
                "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload, message_key) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_key) DO NOTHING",
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
                "UPDATE gateways SET online = $1, status_ms = $2, \
                   backlog = COALESCE($3, backlog), version = COALESCE($4, version), \
                   last_seen_ms = GREATEST(last_seen_ms, $5), \
                   first_seen_ms = COALESCE(first_seen_ms, $5) \
                 WHERE gateway = $6 AND (status_ms IS NULL OR status_ms <= $2)",
            )
            .bind(s.online)
            .bind(s.ts_ms)
            .bind(s.backlog)
            .bind(&s.version)
            .bind(s.seen_ms)
            .bind(&s.gateway)
            .execute(&mut *tx)
            .await?;
        }
        for (gateway, ms) in set.seen_by_gateway() {
            sqlx::query(
                "UPDATE gateways SET last_seen_ms = GREATEST(last_seen_ms, $1), \
                   first_seen_ms = COALESCE(first_seen_ms, $1) WHERE gateway = $2",
            )
            .bind(ms)
            .bind(gateway)
            .execute(&mut *tx)
            .await?;
        }
        // Last, so the roll-up rows every worker shares are locked for the shortest time (and in
        // key order: see analytics::upsert).
        upsert::postgres(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(Committed { inserted })
    }

    async fn register_gateway(&self, store: &str, gateway: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateways (gateway, store, registered) VALUES ($1, $2, true) \
             ON CONFLICT (gateway) DO UPDATE SET store = excluded.store, registered = true",
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
            "INSERT INTO gateways (gateway, store, registered, first_seen_ms) \
             VALUES ($1, $2, false, $3) ON CONFLICT (gateway) DO NOTHING",
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
        let row = sqlx::query(select_gateways!("WHERE gateway = $1"))
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
            "SELECT gateway, seq, store, ts_ms, type, device, zone, payload::text AS payload, \
               received_ms FROM events WHERE gateway = $1 ORDER BY seq",
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

//! Helpers shared by the cloud's tests (and `examples/ingest_bench.rs`): free ports, an embedded
//! rumqttd, a private Mosquitto with the project's config, a scratch PostgreSQL server, and "every
//! backend" for storage tests.
//!
//! Skip rule for external programs (Mosquitto, PostgreSQL): when missing, print `SKIP: … (apt-get
//! install …)` and return — but panic if `CI` is set, so CI can't pass by skipping. Servers listen
//! on free ports, never the standard ones.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dwell_cloud::store::{AnyStore, PgStore, SqliteStore};
use sqlx::Connection;

// ---------------------------------------------------------------------------------------------
// Free ports, the skip rule, Mosquitto (plain, and TLS with passwords): the gateway's test kit,
// one copy for both crates.

#[path = "../../../edge/tests/support/mod.rs"]
mod brokers;
pub use brokers::*;

// ---------------------------------------------------------------------------------------------
// Brokers

/// An embedded rumqttd on `port`, on its own thread until the process exits (no shutdown API):
/// the demo's broker, with the same configuration.
pub fn start_rumqttd(port: u16) {
    dwell_cloud::demo::broker::spawn(port).unwrap();
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A scratch PostgreSQL server for this test process: `initdb` into a temporary directory and
/// `postgres` on a free port, run by a small shell watchdog that stops the server and deletes
/// the directory once this process is gone (statics are never dropped, and a killed test run
/// must not leave a server behind). As root, it runs as the `postgres` user (`runuser`), which
/// owns the directory.
#[derive(Debug)]
pub struct PgServer {
    pub port: u16,
    pub dir: PathBuf,
    /// The watchdog shell; it outlives this process on purpose (it stops the server after us).
    _watchdog: std::process::Child,
}

/// The newest installed `/usr/lib/postgresql/<version>/bin`.
pub fn pg_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `sh -c script` as the postgres user when root, else as ourselves.
fn pg_shell(script: &str) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    c.stdin(Stdio::null());
    c
}

impl PgServer {
    /// Starts a server; `durable = false` turns fsync off (tests), `true` keeps PostgreSQL's
    /// defaults (benchmarks). `None` after the skip rule when PostgreSQL isn't installed.
    pub fn start(durable: bool) -> Option<PgServer> {
        let Some(bin) = pg_bin_dir() else {
            skip_or_panic("postgresql", "postgresql");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("dwell-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(
                ok,
                "chown {} to postgres (is there a postgres user?)",
                dir.display()
            );
        }
        let data = dir.join("data");
        let out = pg_shell(&format!(
            "{}/initdb -D {} -A trust -U postgres -E UTF8 --locale=C --no-sync",
            bin.display(),
            data.display()
        ))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let fsync = if durable {
            ""
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let script = format!(
            "{bin}/postgres -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 \
               -c max_connections=200 {fsync} >{dir}/postgres.log 2>&1 & pg=$!; \
             while [ -d /proc/{me} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
             kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
            bin = bin.display(),
            data = data.display(),
            dir = dir.display(),
            me = std::process::id(),
        );
        let watchdog = pg_shell(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        Some(PgServer {
            port,
            dir,
            _watchdog: watchdog,
        })
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh, empty database on this server; its URL.
    pub async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut last = None;
        // The server may still be starting ("the database system is starting up").
        for _ in 0..300 {
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(mut c) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut c)
                        .await
                        .unwrap();
                    let _ = c.close().await;
                    return self.url(&name);
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        panic!(
            "postgres on {} never accepted connections: {last:?}\n{log}",
            self.port
        );
    }
}

/// This process's scratch server (fsync off), started on first use; `None` if not installed.
pub fn pg() -> Option<&'static PgServer> {
    static PG: OnceLock<Option<PgServer>> = OnceLock::new();
    PG.get_or_init(|| PgServer::start(false)).as_ref()
}

// ---------------------------------------------------------------------------------------------
// Every backend

/// A store under test and what keeps it alive.
#[derive(Debug)]
pub struct TestDb {
    pub name: &'static str,
    pub store: AnyStore,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another connection pool to the same database (as a second worker process would have).
    pub async fn reopen(&self) -> AnyStore {
        match &self.store {
            AnyStore::Sqlite(s) => AnyStore::Sqlite(SqliteStore::open(s.path()).await.unwrap()),
            AnyStore::Postgres(_) => {
                AnyStore::Postgres(PgStore::connect(&self.url, 8).await.unwrap())
            }
        }
    }
}

pub async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).await.unwrap();
    TestDb {
        name: "sqlite",
        url: format!("sqlite://{}", store.path().display()),
        store: AnyStore::Sqlite(store),
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, or `None` after the skip rule.
pub async fn postgres_db() -> Option<TestDb> {
    let server = pg()?;
    let url = server.create_database().await;
    let store = PgStore::connect(&url, 8).await.unwrap();
    Some(TestDb {
        name: "postgres",
        store: AnyStore::Postgres(store),
        url,
        _dir: None,
    })
}

/// SQLite in a temporary directory, and PostgreSQL when installed (skip rule otherwise).
pub async fn every_backend() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db().await];
    dbs.extend(postgres_db().await);
    dbs
}

// ---------------------------------------------------------------------------------------------
// Payloads

use dwell_shared::wire::{DeviceRef, Event, EventBatch, EventKind};

/// A zone-enter event with a given seq (the content depends on seq, so copies can be compared).
pub fn event(seq: u64) -> Event {
    Event {
        seq,
        ts_ms: 1_760_000_000_000 + seq as i64,
        kind: EventKind::ZoneEnter {
            device: DeviceRef::new(format!("h:{seq:08x}")),
            zone: "cosmetics".into(),
        },
    }
}

/// A batch of events with the given seqs.
pub fn batch(store: &str, gateway: &str, seqs: impl IntoIterator<Item = u64>) -> EventBatch {
    EventBatch::new(
        store,
        gateway,
        1_760_000_000_000,
        seqs.into_iter().map(event).collect(),
    )
}

pub fn json(batch: &EventBatch) -> Vec<u8> {
    serde_json::to_vec(batch).unwrap()
}

/// Polls `done` until it holds, or panics naming `what` after `secs`.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

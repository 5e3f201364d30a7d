//! Helpers shared by the cloud's tests (and `examples/ingest_bench.rs`): free ports, an embedded
//! rumqttd, a private Mosquitto with the project's config, a scratch PostgreSQL server, and "every
//! backend" for storage tests.
//!
//! Skip rule for external programs (Mosquitto, PostgreSQL): when missing, print `SKIP: … (apt-get
//! install …)` and return — but panic if `CI` is set, so CI can't pass by skipping. Servers listen
//! on free ports, never the standard ones.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dwell_cloud::store::{AnyStore, PgStore, SqliteStore};
use sqlx::Connection;

pub fn free_port() -> u16 {
    // rumqttd, mosquitto and postgres take a fixed port: ask the OS for a free one, release it.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {port}");
}

fn skip_or_panic(what: &str, package: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} not installed (apt-get install {package}) and CI is set"
    );
    println!("SKIP: {what} not installed (apt-get install {package})");
}

// ---------------------------------------------------------------------------------------------
// Brokers

/// An embedded rumqttd on `port`, on its own thread until the process exits (no shutdown API):
/// the demo's broker, with the same configuration.
pub fn start_rumqttd(port: u16) {
    dwell_cloud::demo::broker::spawn(port).unwrap();
}

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Mosquitto {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deploy/mosquitto/dwell.conf` with this test's listener, persistence directory, logging and
/// anonymous access; every delivery setting stays as shipped.
pub fn mosquitto_conf(port: u16, dir: &Path) -> String {
    let shipped = include_str!("../../../deploy/mosquitto/dwell.conf");
    let replaced = [
        "listener",
        "persistence_location",
        "allow_anonymous",
        "password_file",
        "log_dest",
    ];
    let mut conf: String = shipped
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("max_queued_messages 0"));
    assert!(conf.contains("max_inflight_messages 100"));
    conf.push_str(&format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence_location {}/\nlog_dest stderr\n",
        dir.display()
    ));
    conf
}

/// A private Mosquitto on `port` with the project config, or `None` (after the skip rule).
pub fn start_mosquitto(port: u16) -> Option<Mosquitto> {
    if !Path::new(MOSQUITTO).exists() {
        skip_or_panic("mosquitto", "mosquitto");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dwell.conf");
    std::fs::write(&conf, mosquitto_conf(port, dir.path())).unwrap();
    let child = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    Some(Mosquitto { child, _dir: dir })
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

// ---------------------------------------------------------------------------------------------
// TLS and passwords: a throwaway PKI (openssl) and a Mosquitto with a TLS listener and a
// password file (mosquitto_passwd), as in edge/tests/support. Skip rule as above.

/// Whether `program` is on the PATH (or is a path that exists).
pub fn have_program(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs a command, panicking with its output if it fails.
fn run(command: &mut std::process::Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway PKI in a directory: a CA, a server certificate it signed for `localhost` and
/// `127.0.0.1` (both in the subjectAltName: rustls ignores the CN), and an unrelated second CA.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA that signed the server certificate (PEM).
    pub ca_file: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
    /// A CA that signed nothing here (PEM).
    pub other_ca_file: std::path::PathBuf,
}

const PKI_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes the PKI with the `openssl` command line (P-256 keys, valid for two days).
pub fn make_test_pki(dir: &Path) -> TestPki {
    let cnf = dir.join("pki.cnf");
    std::fs::write(&cnf, PKI_CNF).unwrap();
    let openssl = |args: &[&str]| {
        run(std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "Dwell test CA"), ("other-ca", "Unrelated test CA")] {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-config",
            "pki.cnf",
            "-extensions",
            "ca_ext",
        ];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(&args);
    }
    let mut args = vec!["req", "-new", "-config", "pki.cnf"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&args);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        "pki.cnf",
        "-extensions",
        "server_ext",
        "-out",
        "server.pem",
    ]);
    TestPki {
        ca_file: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        other_ca_file: dir.join("other-ca.pem"),
    }
}

/// `deploy/mosquitto/dwell.conf` with this test's TLS listener (server certificate from `pki`,
/// no client certificates asked for), logins from `password_file` only, and this test's
/// persistence directory and logging; every delivery setting stays as shipped. `user root`: a
/// Mosquitto started as root otherwise switches to the `mosquitto` user before it reads the key,
/// and that user can't read this test's private directory (as any other user the line does
/// nothing: the broker runs as whoever runs the test).
pub fn mosquitto_tls_conf(port: u16, dir: &Path, pki: &TestPki, password_file: &Path) -> String {
    let shipped = include_str!("../../../deploy/mosquitto/dwell.conf");
    let replaced = [
        "listener",
        "persistence_location",
        "allow_anonymous",
        "password_file",
        "log_dest",
        "cafile",
        "certfile",
        "keyfile",
        "require_certificate",
    ];
    let mut conf: String = shipped
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("max_queued_messages 0"));
    assert!(conf.contains("max_inflight_messages 100"));
    conf.push_str(&format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate false\n\
         allow_anonymous false\npassword_file {}\npersistence_location {}/\nlog_dest stderr\n\
         user root\n",
        pki.ca_file.display(),
        pki.server_cert.display(),
        pki.server_key.display(),
        password_file.display(),
        dir.display()
    ));
    conf
}

/// A private Mosquitto that speaks only TLS and wants a login, and the PKI it uses.
pub struct TlsMosquitto {
    pub port: u16,
    pub pki: TestPki,
    /// The one login the broker accepts.
    pub username: String,
    pub password: String,
    log: std::path::PathBuf,
    _broker: Mosquitto,
}

impl TlsMosquitto {
    /// What the broker logged so far (lossy: a log line may carry a client's bytes).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

/// Starts a [`TlsMosquitto`] on a free port and waits until it listens, or `None` (after the
/// skip rule) when `openssl`, `mosquitto` or `mosquitto_passwd` is missing.
pub async fn start_mosquitto_tls(username: &str, password: &str) -> Option<TlsMosquitto> {
    for (program, package) in [
        ("openssl", "openssl"),
        (MOSQUITTO, "mosquitto"),
        ("mosquitto_passwd", "mosquitto"),
    ] {
        if !have_program(program) {
            skip_or_panic(program, package);
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = make_test_pki(dir.path());
    let password_file = dir.path().join("passwd");
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&password_file)
        .args([username, password]));
    let port = free_port();
    let conf = dir.path().join("dwell.conf");
    std::fs::write(
        &conf,
        mosquitto_tls_conf(port, dir.path(), &pki, &password_file),
    )
    .unwrap();
    let log = dir.path().join("mosquitto.log");
    let child = std::process::Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start mosquitto");
    let mut broker = Mosquitto { child, _dir: dir };
    let mut listening = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            listening = true;
            break;
        }
        if let Ok(Some(status)) = broker.child.try_wait() {
            panic!(
                "mosquitto exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        listening,
        "mosquitto did not listen on {port}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    Some(TlsMosquitto {
        port,
        pki,
        username: username.into(),
        password: password.into(),
        log,
        _broker: broker,
    })
}

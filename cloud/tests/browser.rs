//! The dashboard in a real browser, against demo data: `dwell-cloud demo` (the debug binary: its
//! embedded broker, SQLite in a temporary data directory, the 120-store chain, two pilot stores with
//! simulated gateways and two days of simulated history, campaigns, coupons), then
//! `cloud/tests/browser/dashboard.test.mjs` drives Debian's Chromium through every page
//! (playwright-core, never a downloaded browser), checks what is shown against the API and saves
//! full-page screenshots to `target/screenshots/`.
//!
//! The HQ token is one we pass to the demo (`--token`); a store manager's token for one pilot store
//! is created through the library in the demo's own database while it runs.
//!
//! Needs `node` (with npm) and `/usr/bin/chromium`: without them it prints `SKIP: …` and passes,
//! unless `CI` is set. `npm ci` runs first when `node_modules` is missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dwell_cloud::api::Role;
use dwell_cloud::api::auth::create_token;
use dwell_cloud::store::{AnyStore, SqliteStore, Store};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The debug build simulates the history in about a minute on two cores; leave room for a busy
/// machine.
const DEMO_READY_TIMEOUT: Duration = Duration::from_secs(600);
/// After SIGTERM, how long the demo may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn skip_or_panic(what: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}, and CI is set: install it (apt-get install -y nodejs npm chromium)"
    );
    println!("SKIP: {what} (apt-get install -y nodejs npm chromium)");
    true
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The demo process; stopped (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]) when dropped, so a
/// failing assertion doesn't leave it running.
struct Demo {
    child: Child,
    /// Its stderr so far.
    log: Arc<Mutex<String>>,
    stopped: Option<std::process::ExitStatus>,
}

impl Demo {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, wait; SIGKILL if it is still running after the timeout. Returns how it exited.
    fn stop(&mut self) -> std::process::ExitStatus {
        if let Some(s) = self.stopped {
            return s;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                eprintln!(
                    "dwell-cloud demo still running {}s after SIGTERM: killing it",
                    STOP_TIMEOUT.as_secs()
                );
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.stopped = Some(status);
        status
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 32 random hex digits: the HQ token the demo is started with.
fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Starts `dwell-cloud demo` and waits for its `dashboard: URL` line; returns the process and the
/// base URL (`http://ADDR`).
fn start_demo(data_dir: &Path, token: &str) -> (Demo, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dwell-cloud"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--stores",
            "2",
            "--history-days",
            "2",
            "--token",
            token,
            "--data-dir",
        ])
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dwell-cloud demo");
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    {
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("dashboard: ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
    }
    let mut demo = Demo {
        child,
        log,
        stopped: None,
    };
    let started = Instant::now();
    let url = loop {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(url) => break url,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = demo.child.try_wait().unwrap() {
                    panic!("dwell-cloud demo exited with {status}:\n{}", demo.log());
                }
                assert!(
                    started.elapsed() < DEMO_READY_TIMEOUT,
                    "dwell-cloud demo printed no dashboard URL in {}s:\n{}",
                    DEMO_READY_TIMEOUT.as_secs(),
                    demo.log()
                );
                let log = demo.log();
                let last = log.lines().rev().find(|l| !l.trim().is_empty());
                eprintln!(
                    "waiting for dwell-cloud demo ({}s): {}",
                    started.elapsed().as_secs(),
                    last.unwrap_or("starting")
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = demo.stop();
                panic!(
                    "dwell-cloud demo closed its stdout without a dashboard URL ({status}):\n{}",
                    demo.log()
                );
            }
        }
    };
    eprintln!(
        "dwell-cloud demo ready after {}s",
        started.elapsed().as_secs()
    );
    let base = url
        .split_once("/#")
        .map_or(url.as_str(), |(base, _)| base)
        .to_owned();
    assert!(
        base.starts_with("http://") && url.ends_with(&format!("#token={token}")),
        "unexpected dashboard line: {url}"
    );
    (demo, base)
}

/// In the running demo's database: a store manager's token for the first pilot store (one with a
/// registered gateway), and that store's id.
async fn manager_token(db: &Path) -> (String, String) {
    let store = AnyStore::Sqlite(SqliteStore::open(db).await.unwrap());
    let mut pilots: Vec<String> = store
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.registered)
        .map(|g| g.store)
        .collect();
    pilots.sort();
    let pilot = pilots
        .first()
        .expect("the demo registered its pilots' gateways")
        .clone();
    let token = create_token(
        &store,
        Role::Manager,
        Some(&pilot),
        None,
        "browser test manager",
    )
    .await
    .unwrap();
    store.close().await;
    (token, pilot)
}

#[test]
fn every_dashboard_page_in_chromium() {
    if !have("node") || !have("npm") {
        skip_or_panic("node/npm not installed");
        return;
    }
    if !Path::new(CHROMIUM).exists() {
        skip_or_panic("chromium not installed");
        return;
    }
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .current_dir(&dir)
            .output()
            .expect("run npm ci");
        assert!(
            out.status.success(),
            "npm ci failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let hq = random_token();
    let (mut demo, base) = start_demo(&data, &hq);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (manager, manager_store) = rt.block_on(manager_token(&data.join("dwell.db")));

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    let browsing = Instant::now();
    let out = Command::new("node")
        .arg("dashboard.test.mjs")
        .args(["--base", &base, "--token", &hq])
        .args([
            "--manager-token",
            &manager,
            "--manager-store",
            &manager_store,
        ])
        .arg("--out")
        .arg(&screenshots)
        .current_dir(&dir)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "browser: {}s; whole test: {}s",
        browsing.elapsed().as_secs(),
        started.elapsed().as_secs()
    );

    let status = demo.stop();
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}\n--- dwell-cloud demo's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        demo.log()
    );
    assert!(
        stdout.contains(" 0 failed"),
        "no summary line from the browser test:\n{stdout}"
    );
    assert!(
        status.success(),
        "dwell-cloud demo exited with {status:?} after SIGTERM:\n{}",
        demo.log()
    );
    for page in [
        "overview",
        "store",
        "campaigns",
        "expansion",
        "gateways",
        "manager-overview",
    ] {
        assert!(
            screenshots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}

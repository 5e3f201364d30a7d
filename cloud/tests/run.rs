//! `dwell-cloud run --config FILE` and `print-default-config` as operators use them: the binary
//! against an embedded rumqttd and SQLite in a temporary directory, stopped with SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwell_cloud::store::{SqliteStore, Store};
use dwell_shared::topic;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{batch, free_port, json, start_rumqttd, wait_for_port, wait_until};

fn cloud() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dwell-cloud"));
    c.env_remove("RUST_BACKTRACE").env_remove("RUST_LOG");
    c
}

#[test]
fn print_default_config_prints_the_shipped_file() {
    let out = cloud().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/cloud/dwell-cloud.toml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), shipped);
}

#[test]
fn a_bad_config_names_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloud.toml");
    std::fs::write(
        &path,
        "[database]\nurl = \"mysql://db/x\"\n[[gateways]]\nstore = \"s\"\nid = \"g\"\n",
    )
    .unwrap();
    let out = cloud()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cloud.toml: database.url"), "{err}");
    assert!(err.contains("postgres://"), "{err}");
    let out = cloud()
        .args(["run", "--config", "/nonexistent/dwell-cloud.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read the config file")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ingests_until_sigterm_then_drains_and_exits_cleanly() {
    let port = free_port();
    start_rumqttd(port);
    wait_for_port(port).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/dwell.db");
    let config = dir.path().join("dwell-cloud.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"cloud-run-test\"\n\
             [database]\nurl = \"sqlite://{}\"\n\
             [[gateways]]\nstore = \"store-001\"\nid = \"gw-1\"\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = cloud()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let l = log.clone();
    wait_until("the database is ready", 20, || {
        let ready = l.lock().unwrap().contains("database ready");
        async move { ready }
    })
    .await;

    // Publish the same batch until it is stored: before the worker subscribes a shared
    // subscription has no one to deliver to, and after, repeats are duplicates.
    let mut options = MqttOptions::new("run-test-publisher", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let poller = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let store = SqliteStore::open(&db).await.unwrap();
    let payload = json(&batch("store-001", "gw-1", 1..=250));
    let t = topic::events("store-001", "gw-1").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.event_count().await.unwrap() < 250 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch not stored; dwell-cloud's log:\n{}",
            log.lock().unwrap()
        );
        client
            .publish(&t, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    poller.abort();

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("ingest counters"), "{log}");
    assert!(log.contains("ingest worker stopped"), "{log}");
    assert_eq!(store.event_count().await.unwrap(), 250);
}

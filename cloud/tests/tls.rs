//! dwell-cloud to the broker over TLS with a login: a private Mosquitto started with
//! `deploy/mosquitto/dwell.conf` plus a TLS listener, `allow_anonymous false` and a password
//! file; a per-run PKI made with `openssl` (a CA, a server certificate for `localhost` and
//! `127.0.0.1`, an unrelated CA).
//!
//! - A `dwell-cloud.toml` with `url = "mqtts://localhost:PORT"`, `ca_file` and `password_file`
//!   relative to it, loaded as `dwell-cloud run` loads it: its ingest worker subscribes over TLS
//!   and stores every event a TLS publisher sends into SQLite, and the coupon publisher
//!   (`engine::setup::mqtt_sink`) delivers a coupon over TLS to a subscriber.
//! - A worker trusting a CA that did not sign the broker's certificate, and one with a wrong
//!   password, are both refused: neither subscribes (no fallback to plain TCP, no skipped
//!   verification), and both stop cleanly.
//!
//! Needs `openssl`, `mosquitto` and `mosquitto_passwd`: without them the tests print `SKIP: …`
//! and pass, unless `CI` is set.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwell_cloud::config::Config;
use dwell_cloud::coupons::delivery::CouponSink;
use dwell_cloud::engine::setup::mqtt_sink;
use dwell_cloud::ingest::{BrokerTls, Ingestor, Worker, WorkerConfig};
use dwell_cloud::store::{AnyStore, Store};
use dwell_shared::topic;
use dwell_shared::wire::{Coupon, Version};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use support::{TlsMosquitto, batch, json, start_mosquitto_tls, wait_until};
use tokio_util::sync::CancellationToken;

const STORE: &str = "store-001";
const GW: &str = "gw-1";
const USER: &str = "dwell-cloud";
const PASSWORD: &str = "correct horse battery staple";

/// A test client on TLS with the broker's login, connected to `127.0.0.1` (the certificate's IP
/// name; the cloud uses its DNS name); `filter`: subscribe and collect payloads.
async fn test_client(
    broker: &TlsMosquitto,
    id: &str,
    filter: Option<&str>,
) -> (
    AsyncClient,
    Arc<Mutex<Vec<Vec<u8>>>>,
    tokio::task::JoinHandle<()>,
) {
    let tls = BrokerTls::from_ca_file(&broker.pki.ca_file).unwrap();
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
    options
        .set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024)
        .set_credentials(&broker.username, &broker.password)
        .set_transport(tls.transport());
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let received = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (rec, c, filter) = (received.clone(), client.clone(), filter.map(str::to_owned));
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => match &filter {
                    Some(f) => c.subscribe(f, QoS::AtLeastOnce).await.unwrap(),
                    None => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(Ok(()));
                        }
                    }
                },
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    rec.lock().unwrap().push(p.payload.to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let ready = tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("test client connected within 10 s")
        .unwrap();
    if let Err(e) = ready {
        panic!("test client {id} could not connect: {e}\n{}", broker.log());
    }
    (client, received, task)
}

/// The config file `dwell-cloud run` would load: TLS and login from files next to it.
fn write_config(broker: &TlsMosquitto, dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::copy(&broker.pki.ca_file, dir.join("broker-ca.pem")).unwrap();
    std::fs::write(dir.join("broker-password"), format!("{PASSWORD}\n")).unwrap();
    let path = dir.join("dwell-cloud.toml");
    std::fs::write(
        &path,
        format!(
            r#"[broker]
url = "mqtts://localhost:{port}"
ca_file = "broker-ca.pem"
username = "{USER}"
password_file = "broker-password"
client_id = "cloud-tls-test"

[database]
url = "sqlite://{db}"

[ingest]
max_messages_per_tx = 16
drain_timeout_s = 5

[engine]
secrets_dir = "secrets"

[[gateways]]
store = "{STORE}"
id = "{GW}"
"#,
            port = broker.port,
            db = dir.join("dwell.db").display(),
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_ingests_through_tls_and_a_login_into_sqlite() {
    let Some(broker) = start_mosquitto_tls(USER, PASSWORD).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&write_config(&broker, dir.path())).unwrap();
    assert_eq!(
        config.broker.tls.as_ref().map(|t| t.ca_file().to_owned()),
        Some(dir.path().join("broker-ca.pem"))
    );
    assert_eq!(config.broker.password.as_deref(), Some(PASSWORD));

    let store = AnyStore::open(&config.database.url, config.database.max_connections)
        .await
        .unwrap();
    for g in &config.gateways {
        store.register_gateway(&g.store, &g.id).await.unwrap();
    }
    let ingestor = Arc::new(Ingestor::new(store.clone(), false));
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for w in config.worker_configs() {
        assert!(w.tls.is_some());
        let mut handle = Worker::spawn(w, ingestor.clone(), shutdown.clone()).unwrap();
        if tokio::time::timeout(Duration::from_secs(10), handle.subscribed())
            .await
            .is_err()
        {
            panic!("worker did not subscribe over TLS\n{}", broker.log());
        }
        workers.push(handle);
    }

    // A gateway's batches (published over TLS with the login) end up in SQLite.
    let (publisher, _, publisher_task) = test_client(&broker, "test-publisher", None).await;
    let events = topic::events(STORE, GW).unwrap();
    for chunk in [1..=100u64, 101..=200, 201..=300] {
        publisher
            .publish(
                &events,
                QoS::AtLeastOnce,
                false,
                json(&batch(STORE, GW, chunk)),
            )
            .await
            .unwrap();
    }
    wait_until("300 events stored", 20, || {
        let store = store.clone();
        async move { store.event_count().await.unwrap() >= 300 }
    })
    .await;
    let stored: BTreeSet<i64> = store
        .events(GW)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(stored, (1..=300).collect::<BTreeSet<_>>());
    assert_eq!(store.event_count().await.unwrap(), 300);
    assert!(store.dead_letters().await.unwrap().is_empty());

    // The coupon publisher connects with the same TLS set-up and login.
    let coupons_filter = format!("{}/{}/+/coupons", topic::PREFIX, topic::SHOPPERS);
    let (_sub, coupons, sub_task) =
        test_client(&broker, "test-coupons", Some(&coupons_filter)).await;
    let (sink, sink_task) = mqtt_sink(&config.broker, shutdown.clone());
    let coupon = Coupon {
        v: Version,
        code: "DW-TEST-0001".into(),
        campaign: "tls-check".into(),
        shopper: "s-42".into(),
        store: STORE.into(),
        zone: None,
        title: "TLS works".into(),
        ts_ms: 1_760_000_000_000,
        issued_ms: 1_760_000_000_100,
        expires_ms: 1_760_086_400_000,
    };
    sink.deliver(&coupon).await.unwrap();
    wait_until("coupon delivered over TLS", 20, || {
        let n = coupons.lock().unwrap().len();
        async move { n >= 1 }
    })
    .await;
    let got: Coupon = serde_json::from_slice(&coupons.lock().unwrap()[0]).unwrap();
    assert_eq!(got.code, coupon.code);

    shutdown.cancel();
    for w in workers {
        tokio::time::timeout(Duration::from_secs(10), w.join())
            .await
            .expect("worker stops");
    }
    tokio::time::timeout(Duration::from_secs(5), sink_task)
        .await
        .expect("coupon publisher stops")
        .unwrap();
    publisher_task.abort();
    sub_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_or_password_is_refused() {
    let Some(broker) = start_mosquitto_tls(USER, PASSWORD).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = AnyStore::open(
        &dwell_cloud::store::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("dwell.db").display()
        ))
        .unwrap(),
        1,
    )
    .await
    .unwrap();
    let ingestor = Arc::new(Ingestor::new(store.clone(), true));
    let shutdown = CancellationToken::new();
    let worker = |id: &str, ca_file: &std::path::Path, password: &str| WorkerConfig {
        username: Some(USER.into()),
        password: Some(password.into()),
        tls: Some(BrokerTls::from_ca_file(ca_file).unwrap()),
        drain_timeout: Duration::from_millis(500),
        ..WorkerConfig::new("localhost", broker.port, id)
    };
    let mut refused = Vec::new();
    for config in [
        worker("wrong-ca", &broker.pki.other_ca_file, PASSWORD),
        worker("wrong-password", &broker.pki.ca_file, "not the password"),
    ] {
        refused.push(Worker::spawn(config, ingestor.clone(), shutdown.clone()).unwrap());
    }
    // Several connect attempts each (backoff) in 3 s; none may get as far as subscribing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for handle in &mut refused {
        assert!(
            tokio::time::timeout(Duration::from_millis(10), handle.subscribed())
                .await
                .is_err(),
            "a refused worker subscribed\n{}",
            broker.log()
        );
    }
    // The broker's view: the wrong CA made the worker abort the handshake (its TLS alert), the
    // wrong password was refused at login; neither got an MQTT session.
    let log = broker.log();
    assert!(log.contains("alert unknown ca"), "broker log:\n{log}");
    assert!(log.contains("not authorised"), "broker log:\n{log}");
    assert!(
        !log.contains("as wrong-ca") && !log.contains("as wrong-password"),
        "a refused worker got an MQTT session:\n{log}"
    );
    shutdown.cancel();
    for handle in refused {
        tokio::time::timeout(Duration::from_secs(10), handle.join())
            .await
            .expect("a refused worker stops cleanly");
    }
    assert_eq!(store.event_count().await.unwrap(), 0);
}

//! The uplink over TLS with a login (issue 6), against a private Mosquitto started with the
//! project config (`deploy/mosquitto/dwell.conf`) plus a TLS listener, `allow_anonymous false`
//! and a password file. The PKI is made per run with `openssl`: a CA, a server certificate it
//! signed for `localhost` and `127.0.0.1`, and an unrelated CA.
//!
//! Asserted, with the real [`MqttTransport`] and [`Uplink`]:
//! - (a) with the right CA and login, every event of the outbox reaches a subscriber (itself on
//!   TLS with a login) and leaves the outbox;
//! - (b) a wrong password is refused: the transport's error says to check the username and
//!   password, the uplink keeps retrying and logs it, nothing panics, every event stays in the
//!   outbox, and the same outbox delivers everything once the password is right;
//! - (c) a CA that did not sign the broker's certificate is refused with a TLS error pointing at
//!   `tls.ca_file`, the events stay; a CA file that can't be read is refused at set-up, naming the
//!   file.
//!
//! Needs `openssl`, `mosquitto` and `mosquitto_passwd`: without them the tests print `SKIP: …`
//! and pass, unless `CI` is set.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwell_edge::outbox::{FIRST_SEQ, Outbox, OutboxConfig, SledOutbox};
use dwell_edge::uplink::{
    MqttTransport, TlsConfig, Transport, TransportError, Uplink, UplinkConfig, UplinkError,
    UplinkStats,
};
use dwell_shared::topic;
use dwell_shared::wire::{DeviceRef, Event, EventBatch, EventKind};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;

mod support;
use support::{TlsMosquitto, start_mosquitto_tls};

const STORE: &str = "store-001";
const GATEWAY: &str = "gw-1";
const USER: &str = "gw-1";
const PASSWORD: &str = "correct horse battery staple";
/// Events in the outbox before the uplink starts.
const N: u64 = 200;

fn tls(ca_file: &Path) -> TlsConfig {
    TlsConfig {
        ca_file: ca_file.to_owned(),
        client_cert_file: None,
        client_key_file: None,
    }
}

/// The gateway's config: `localhost` (the certificate's DNS name), the given CA and password.
fn uplink_config(broker: &TlsMosquitto, ca_file: &Path, password: &str) -> UplinkConfig {
    UplinkConfig {
        host: "localhost".into(),
        port: broker.port,
        username: Some(broker.username.clone()),
        password: Some(password.into()),
        tls: Some(tls(ca_file)),
        connect_timeout_s: 5,
        batch_max_events: 50,
        max_inflight: 8,
        backoff_initial_ms: 100,
        backoff_max_ms: 400,
        drain_timeout_ms: 3_000,
        ..UplinkConfig::new(STORE, GATEWAY)
    }
}

// ---------------------------------------------------------------------------------------------
// What the uplink logs (its errors are reported there: it retries the network forever).

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway side: a sled outbox and the uplink over the real MQTT transport.

fn event(i: u64) -> Event {
    Event {
        seq: 0,
        ts_ms: 1_760_000_000_000 + i as i64,
        kind: EventKind::ZoneEnter {
            device: DeviceRef::new(format!("h:{i:08x}")),
            zone: "cosmetics".into(),
        },
    }
}

/// A fresh outbox holding `N` events (seqs `FIRST_SEQ..FIRST_SEQ + N`).
fn outbox_with_events(dir: &Path) -> Arc<SledOutbox> {
    let outbox = Arc::new(SledOutbox::open(&OutboxConfig::new(dir.join("outbox"))).unwrap());
    let mut events: Vec<Event> = (0..N).map(event).collect();
    assert_eq!(
        outbox.append(&mut events).unwrap(),
        FIRST_SEQ..FIRST_SEQ + N
    );
    outbox
}

struct Gateway {
    shutdown: CancellationToken,
    stats: tokio::sync::watch::Receiver<UplinkStats>,
    logs: Logs,
    task: JoinHandle<Result<UplinkStats, UplinkError>>,
}

impl Gateway {
    fn start(outbox: &Arc<SledOutbox>, config: UplinkConfig) -> Gateway {
        let transport = MqttTransport::new(&config).unwrap();
        let uplink = Uplink::new(config, outbox.clone(), transport).unwrap();
        let stats = uplink.stats();
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()).with_subscriber(subscriber));
        Gateway {
            shutdown,
            stats,
            logs,
            task,
        }
    }

    /// Waits until the counters satisfy `done`, or panics with the uplink's log.
    async fn wait_for(&mut self, what: &str, secs: u64, done: impl FnMut(&UplinkStats) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(secs), self.stats.wait_for(done));
        if !matches!(waited.await, Ok(Ok(_))) {
            panic!(
                "timed out waiting for {what}; uplink log:\n{}",
                self.logs.text()
            );
        }
    }

    /// Cancels and returns the final counters; the uplink must stop cleanly (no panic, no error).
    async fn stop(self) -> (UplinkStats, String) {
        self.shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("uplink stops within 10 s")
            .expect("uplink task did not panic")
            .expect("uplink stopped without error");
        (stats, self.logs.text())
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber on TLS with the broker's login, recording every event seq it receives.

async fn subscribe(broker: &TlsMosquitto) -> (Arc<Mutex<Vec<u64>>>, JoinHandle<()>) {
    // 127.0.0.1: the certificate's IP name (the gateway uses its DNS name).
    let mut options = MqttOptions::new("test-subscriber", "127.0.0.1", broker.port);
    options
        .set_max_packet_size(4 * 1024 * 1024, 64 * 1024)
        .set_keep_alive(Duration::from_secs(30))
        .set_credentials(&broker.username, &broker.password)
        .set_transport(rumqttc::Transport::tls_with_config(
            dwell_edge::uplink::mqtt::tls_config(&tls(&broker.pki.ca_file)).unwrap(),
        ));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let received = Arc::new(Mutex::new(Vec::new()));
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let rec = received.clone();
    let task = tokio::spawn(async move {
        let mut subscribed = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .subscribe(topic::ALL_EVENTS, QoS::AtLeastOnce)
                        .await
                        .unwrap();
                }
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                    assert_eq!(
                        (batch.store.as_str(), batch.gateway.as_str()),
                        (STORE, GATEWAY)
                    );
                    rec.lock()
                        .unwrap()
                        .extend(batch.events.iter().map(|e| e.seq));
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(tx) = subscribed.take() {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let subscribed = tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
        .await
        .expect("subscriber connected within 10 s")
        .unwrap();
    if let Err(e) = subscribed {
        panic!("subscriber could not connect: {e}\n{}", broker.log());
    }
    (received, task)
}

fn all_seqs() -> BTreeSet<u64> {
    (FIRST_SEQ..FIRST_SEQ + N).collect()
}

/// Delivers the outbox with the right CA and login: every event arrives and is acked.
async fn deliver_all(
    broker: &TlsMosquitto,
    outbox: &Arc<SledOutbox>,
    received: &Arc<Mutex<Vec<u64>>>,
) -> UplinkStats {
    let mut gateway = Gateway::start(outbox, uplink_config(broker, &broker.pki.ca_file, PASSWORD));
    let o = outbox.clone();
    gateway
        .wait_for("every event acked", 30, move |s| {
            s.acked_events >= N && o.stats().records == 0
        })
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received
        .lock()
        .unwrap()
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        != all_seqs()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acked but not all received: {} of {N}",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stats, _) = gateway.stop().await;
    stats
}

// ---------------------------------------------------------------------------------------------
// (a)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uplink_delivers_over_tls_with_a_login() {
    let Some(broker) = start_mosquitto_tls(USER, PASSWORD).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (received, sub) = subscribe(&broker).await;
    let outbox = outbox_with_events(dir.path());

    let stats = deliver_all(&broker, &outbox, &received).await;
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.connect_failures, 0, "{stats:?}");
    assert_eq!(stats.acked_events, N, "{stats:?}");
    assert_eq!(outbox.stats().records, 0);
    let rec = received.lock().unwrap().clone();
    assert_eq!(rec.len() as u64, N, "no event twice on a clean run");
    sub.abort();
}

// ---------------------------------------------------------------------------------------------
// (b) and (c): refused connections

/// The uplink with `config` is refused: the transport's connect error contains every one of
/// `expect`, the uplink retries and logs the same, stops cleanly, and the outbox keeps every event.
async fn refused(
    broker: &TlsMosquitto,
    outbox: &Arc<SledOutbox>,
    config: UplinkConfig,
    expect: &[&str],
) {
    // The transport alone: one connect attempt, a clear error (not a hang, not a panic).
    let mut transport = MqttTransport::new(&config).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), transport.connect())
        .await
        .expect("connect answers within 10 s")
        .unwrap_err();
    let TransportError::Connect(message) = &err else {
        panic!("expected a connect error, got {err:?}");
    };
    for needle in expect {
        assert!(
            message.contains(needle),
            "{needle:?} not in the connect error: {message}\nbroker log:\n{}",
            broker.log()
        );
    }
    eprintln!("refused as expected: {message}");
    drop(transport);

    // The forwarder: keeps retrying with backoff, says why, loses nothing.
    let mut gateway = Gateway::start(outbox, config);
    gateway
        .wait_for("three refused connects", 20, |s| s.connect_failures >= 3)
        .await;
    let (stats, log) = gateway.stop().await;
    assert_eq!(stats.connects, 0, "{stats:?}");
    assert_eq!(stats.acked_events, 0, "{stats:?}");
    assert_eq!(outbox.stats().records, N, "events left the outbox unacked");
    assert!(
        log.contains("events wait in the outbox"),
        "uplink log:\n{log}"
    );
    for needle in expect {
        assert!(log.contains(needle), "{needle:?} not logged:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_events_stay() {
    let Some(broker) = start_mosquitto_tls(USER, PASSWORD).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (received, sub) = subscribe(&broker).await;
    let outbox = outbox_with_events(dir.path());

    let wrong = uplink_config(&broker, &broker.pki.ca_file, "not the password");
    refused(
        &broker,
        &outbox,
        wrong,
        &["check broker.username and broker.password"],
    )
    .await;
    assert!(received.lock().unwrap().is_empty(), "something got through");
    // The broker's own view: a refused login, not a TLS problem.
    assert!(
        broker.log().contains("not authorised"),
        "broker log:\n{}",
        broker.log()
    );

    // No silent loss: with the right password the same outbox delivers everything.
    let stats = deliver_all(&broker, &outbox, &received).await;
    assert_eq!(stats.acked_events, N, "{stats:?}");
    sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_that_did_not_sign_the_broker_is_refused() {
    let Some(broker) = start_mosquitto_tls(USER, PASSWORD).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (received, sub) = subscribe(&broker).await;
    let outbox = outbox_with_events(dir.path());

    let wrong_ca = uplink_config(&broker, &broker.pki.other_ca_file, PASSWORD);
    refused(
        &broker,
        &outbox,
        wrong_ca,
        &[
            "TLS",
            "invalid peer certificate",
            "UnknownIssuer",
            "check that broker.ca_file is the CA that signed the broker's certificate",
        ],
    )
    .await;
    assert!(received.lock().unwrap().is_empty(), "something got through");
    // The broker's view: the gateway aborted the handshake with its "unknown CA" alert.
    let log = broker.log();
    assert!(log.contains("alert unknown ca"), "broker log:\n{log}");

    // A CA file that can't be used fails at set-up, before any connection, naming the file.
    let missing = dir.path().join("no-such-ca.pem");
    let err = MqttTransport::new(&uplink_config(&broker, &missing, PASSWORD)).unwrap_err();
    assert!(matches!(err, UplinkError::Tls(_)), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let err = MqttTransport::new(&uplink_config(&broker, &not_pem, PASSWORD)).unwrap_err();
    assert!(
        err.to_string().contains(&not_pem.display().to_string()),
        "{err}"
    );
    sub.abort();
}

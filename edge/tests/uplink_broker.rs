//! The uplink end to end against real brokers: an embedded rumqttd, and Mosquitto started with
//! the project config (`deploy/mosquitto/dwell.conf`). Between the gateway and the broker sits a
//! TCP proxy the test controls, so the broker can be "cut" mid-stream and brought back (rumqttd
//! has no shutdown API; the proxy works for both). A subscriber connected directly to the broker
//! counts what arrives.
//!
//! Asserted: every event arrives; each batch is in seq order and the first arrivals are the live
//! and backlog streams, each in seq order; nothing is lost across the cut; `seq` continues after
//! the outbox is reopened; the retained status says online with the backlog.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwell_edge::outbox::{FIRST_SEQ, Outbox, OutboxConfig, SledOutbox};
use dwell_edge::uplink::{MqttTransport, Uplink, UplinkConfig};
use dwell_shared::topic;
use dwell_shared::wire::{Event, EventBatch, EventKind, GatewayState, GatewayStatus};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const STORE: &str = "store-001";
const GATEWAY: &str = "gw-1";

mod support;
use support::{free_port, mosquitto_conf, start_mosquitto, wait_for_port};

// ---------------------------------------------------------------------------------------------
// A TCP proxy between gateway and broker that the test can cut and restore.

struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    up: bool,
    conns: Vec<JoinHandle<()>>,
}

impl Proxy {
    async fn start(broker_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            up: true,
            conns: Vec::new(),
        }));
        let st = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut st = st.lock().unwrap();
                if !st.up {
                    drop(client); // refused while cut
                    continue;
                }
                st.conns.push(tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(("127.0.0.1", broker_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            state,
            accept,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        let mut st = self.state.lock().unwrap();
        st.up = false;
        for conn in st.conns.drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber that records every batch and the last status.

#[derive(Default)]
struct Received {
    batches: Vec<Vec<u64>>,
    statuses: Vec<GatewayStatus>,
}

impl Received {
    fn seqs(&self) -> BTreeSet<u64> {
        self.batches.iter().flatten().copied().collect()
    }
}

async fn subscribe(port: u16) -> (Arc<Mutex<Received>>, JoinHandle<()>) {
    let mut options = MqttOptions::new("test-subscriber", "127.0.0.1", port);
    options.set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let received = Arc::new(Mutex::new(Received::default()));
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let rec = received.clone();
    let task = tokio::spawn(async move {
        let _client = client; // keep the request channel open
        let mut subscribed = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    _client
                        .subscribe(topic::ALL_EVENTS, QoS::AtLeastOnce)
                        .await
                        .unwrap();
                    _client
                        .subscribe(topic::ALL_STATUSES, QoS::AtLeastOnce)
                        .await
                        .unwrap();
                }
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed.take() {
                        let _ = tx.send(());
                    } else {
                        subscribed = None;
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let mut rec = rec.lock().unwrap();
                    if p.topic.ends_with("/events") {
                        let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                        assert_eq!(
                            (batch.store.as_str(), batch.gateway.as_str()),
                            (STORE, GATEWAY)
                        );
                        rec.batches
                            .push(batch.events.iter().map(|e| e.seq).collect());
                    } else {
                        rec.statuses
                            .push(serde_json::from_slice(&p.payload).unwrap());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
        .await
        .expect("subscriber connected")
        .unwrap();
    (received, task)
}

// ---------------------------------------------------------------------------------------------
// The gateway side.

fn event(i: u64) -> Event {
    Event {
        seq: 0,
        ts_ms: 1_760_000_000_000 + i as i64,
        kind: EventKind::ZoneEnter {
            device: dwell_shared::wire::DeviceRef::new(format!("h:{i:08x}")),
            zone: "cosmetics".into(),
        },
    }
}

fn uplink_config(port: u16) -> UplinkConfig {
    UplinkConfig {
        port,
        batch_max_events: 50,
        max_inflight: 8,
        backoff_initial_ms: 100,
        backoff_max_ms: 400,
        drain_timeout_ms: 3_000,
        ..UplinkConfig::new(STORE, GATEWAY)
    }
}

struct Gateway {
    outbox: Arc<SledOutbox>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<dwell_edge::uplink::UplinkStats, dwell_edge::uplink::UplinkError>>,
}

impl Gateway {
    fn start(outbox_dir: &Path, port: u16) -> Gateway {
        let outbox = Arc::new(SledOutbox::open(&OutboxConfig::new(outbox_dir)).unwrap());
        let config = uplink_config(port);
        let transport = MqttTransport::new(&config).unwrap();
        let uplink = Uplink::new(config, outbox.clone(), transport).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()));
        Gateway {
            outbox,
            shutdown,
            task,
        }
    }

    async fn stop(self) -> dwell_edge::uplink::UplinkStats {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap()
    }
}

/// Appends `n` events in chunks, as the tracker would (durable appends off the runtime).
async fn produce(
    outbox: &Arc<SledOutbox>,
    n: u64,
    chunk: u64,
    pause: Duration,
) -> std::ops::Range<u64> {
    {
        let mut first = None;
        let mut last = 0;
        let mut i = 0;
        while i < n {
            let k = chunk.min(n - i);
            let outbox = outbox.clone();
            let range = tokio::task::spawn_blocking(move || {
                let mut events: Vec<Event> = (i..i + k).map(event).collect();
                outbox.append(&mut events).unwrap()
            })
            .await
            .unwrap();
            first.get_or_insert(range.start);
            last = range.end;
            i += k;
            tokio::time::sleep(pause).await;
        }
        first.unwrap()..last
    }
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `seqs` splits into at most two ascending subsequences (the live and the backlog
/// stream). Greedy: put each seq on the chain with the largest tail below it.
fn at_most_two_ascending_streams(seqs: &[u64]) -> bool {
    let mut tails: Vec<u64> = Vec::new();
    for &s in seqs {
        match tails.iter_mut().filter(|t| **t < s).max_by_key(|t| **t) {
            Some(t) => *t = s,
            None => tails.push(s),
        }
        if tails.len() > 2 {
            return false;
        }
    }
    true
}

/// The shared scenario: stream events, cut the broker mid-stream, restore, check everything
/// arrived in order; then stop, reopen the outbox and check seq continues.
async fn cut_mid_stream_and_reopen(broker_port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let (received, sub_task) = subscribe(broker_port).await;
    let proxy = Proxy::start(broker_port).await;
    let gateway = Gateway::start(&outbox_dir, proxy.addr.port());

    // Stream 3,000 events; cut the broker for 1 s after about a third.
    const N: u64 = 3_000;
    let producer = {
        let outbox = gateway.outbox.clone();
        tokio::spawn(async move { produce(&outbox, N, 10, Duration::from_millis(10)).await })
    };
    wait_until("first third delivered", 30, || {
        received.lock().unwrap().seqs().len() >= 1_000
    })
    .await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let backlog_during_cut = gateway.outbox.stats().records;
    proxy.restore();
    let produced = producer.await.unwrap();
    assert_eq!(produced, FIRST_SEQ..FIRST_SEQ + N);

    wait_until("every event delivered and acked", 60, || {
        received.lock().unwrap().seqs().len() as u64 == N && gateway.outbox.stats().records == 0
    })
    .await;
    {
        let rec = received.lock().unwrap();
        assert_eq!(
            rec.seqs(),
            (FIRST_SEQ..FIRST_SEQ + N).collect::<BTreeSet<_>>(),
            "lost events"
        );
        for batch in &rec.batches {
            assert!(
                batch.windows(2).all(|w| w[0] < w[1]),
                "batch out of order: {batch:?}"
            );
        }
        let mut seen = BTreeSet::new();
        let first_arrivals: Vec<u64> = rec
            .batches
            .iter()
            .flatten()
            .copied()
            .filter(|s| seen.insert(*s))
            .collect();
        assert!(
            at_most_two_ascending_streams(&first_arrivals),
            "arrivals are not two in-order streams (live and backlog)"
        );
        assert!(backlog_during_cut > 0, "the cut built no backlog");
        let online = rec
            .statuses
            .iter()
            .filter(|s| s.state == GatewayState::Online)
            .count();
        assert!(online >= 2, "online status at each connect");
        let duplicates = rec.batches.iter().map(Vec::len).sum::<usize>() - N as usize;
        eprintln!(
            "cut_mid_stream: {N} events in {} batches, {duplicates} resent after the cut, backlog at cut {backlog_during_cut}",
            rec.batches.len()
        );
    }
    let stats = gateway.stop().await;
    assert!(stats.connects >= 2, "{stats:?}");
    assert!(stats.backlog_batches > 0, "no catch-up happened: {stats:?}");

    // Restart: reopen the outbox; seq continues and the new events are delivered too.
    let gateway = Gateway::start(&outbox_dir, proxy.addr.port());
    let more = produce(&gateway.outbox, 100, 50, Duration::ZERO).await;
    assert!(
        more.start >= FIRST_SEQ + N,
        "seq reused after reopen: {more:?}"
    );
    wait_until("events after restart delivered", 30, || {
        let rec = received.lock().unwrap();
        more.clone().all(|s| rec.seqs().contains(&s))
    })
    .await;
    gateway.stop().await;
    wait_until("offline status", 10, || {
        received
            .lock()
            .unwrap()
            .statuses
            .last()
            .is_some_and(|s| s.state == GatewayState::Offline)
    })
    .await;
    sub_task.abort();
}

// ---------------------------------------------------------------------------------------------
// (a) embedded rumqttd

fn start_rumqttd(port: u16) {
    let config = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 100
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 100
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&config).unwrap();
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        // Runs until the test process exits (rumqttd has no shutdown API).
        broker.start().unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttd_cut_mid_stream_loses_nothing() {
    let port = free_port();
    start_rumqttd(port);
    wait_for_port(port).await;
    cut_mid_stream_and_reopen(port).await;
}

// ---------------------------------------------------------------------------------------------
// (b) real Mosquitto with the project config

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_cut_mid_stream_loses_nothing() {
    let port = free_port();
    let Some(_mosquitto) = start_mosquitto(port) else {
        return;
    };
    wait_for_port(port).await;
    cut_mid_stream_and_reopen(port).await;
}

#[test]
fn mosquitto_conf_keeps_the_delivery_settings() {
    let dir = tempfile::tempdir().unwrap();
    let conf = mosquitto_conf(1234, dir.path());
    for line in [
        "max_queued_messages 0",
        "max_inflight_messages 100",
        "persistence true",
        "listener 1234 127.0.0.1",
    ] {
        assert!(conf.lines().any(|l| l == line), "missing {line:?}");
    }
    assert!(!conf.contains("password_file"));
}

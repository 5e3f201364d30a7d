//! Ingest end to end through real brokers — an embedded rumqttd and a private Mosquitto started
//! with `deploy/mosquitto/dwell.conf` — into SQLite and PostgreSQL.
//!
//! - Two ingest workers share the subscription `$share/dwell-cloud/dwell/v1/+/+/events`; a plain
//!   MQTT publisher sends every batch twice, some overlapping and in reverse, plus a malformed
//!   payload and a gateway speaking for another store: every event is stored exactly once, both
//!   workers took part, the refusals are dead letters with their reasons.
//! - The edge→cloud smoke: `dwell_edge`'s `MemOutbox` + `Uplink` over `MqttTransport` publish into
//!   the same broker, the cloud stores every event once and tracks the gateway's status (online
//!   with its backlog, then offline after the gateway's drain).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dwell_cloud::ingest::{DeadLetterReason, Ingestor, Worker, WorkerConfig, WorkerHandle};
use dwell_cloud::store::{AnyStore, Store};
use dwell_edge::outbox::{MemOutbox, Outbox};
use dwell_edge::uplink::{MqttTransport, Uplink, UplinkConfig};
use dwell_shared::topic;
use dwell_shared::wire::{GatewayState, GatewayStatus};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use support::{
    TestDb, batch, event, every_backend, free_port, json, start_mosquitto, start_rumqttd,
    wait_for_port, wait_until,
};
use tokio_util::sync::CancellationToken;

const STORE: &str = "store-001";
const GW: &str = "gw-1";

async fn start_worker(
    port: u16,
    client_id: &str,
    store: AnyStore,
    shutdown: &CancellationToken,
) -> (Arc<Ingestor<AnyStore>>, WorkerHandle) {
    let ingestor = Arc::new(Ingestor::new(store, false));
    let config = WorkerConfig {
        max_messages_per_tx: 16,
        drain_timeout: Duration::from_secs(5),
        ..WorkerConfig::new("127.0.0.1", port, client_id)
    };
    let mut handle = Worker::spawn(config, ingestor.clone(), shutdown.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle.subscribed())
        .await
        .expect("worker subscribed");
    (ingestor, handle)
}

/// A plain publisher that counts PubAcks.
struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    sent: u64,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn connect(port: u16) -> Publisher {
        let mut options = MqttOptions::new("test-publisher", "127.0.0.1", port);
        options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let acked = Arc::new(AtomicU64::new(0));
        let a = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Publisher {
            client,
            acked,
            sent: 0,
            task,
        }
    }

    async fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .unwrap();
        self.sent += 1;
    }

    async fn all_acked(&self) {
        let (acked, sent) = (self.acked.clone(), self.sent);
        wait_until("publisher PubAcks", 20, || {
            let n = acked.load(Ordering::SeqCst);
            async move { n >= sent }
        })
        .await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two workers on the shared subscription; duplicates, reordering, refusals.
async fn two_workers_store_every_event_once(port: u16, db: &TestDb) {
    db.store.register_gateway(STORE, GW).await.unwrap();
    db.store
        .register_gateway("store-002", "gw-2")
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let (a, wa) = start_worker(port, "cloud-a", db.store.clone(), &shutdown).await;
    let (b, wb) = start_worker(port, "cloud-b", db.reopen().await, &shutdown).await;

    let mut publisher = Publisher::connect(port);
    let t1 = topic::events(STORE, GW).unwrap();
    let t2 = topic::events("store-002", "gw-2").unwrap();
    let status = GatewayStatus {
        backlog: Some(7),
        ..GatewayStatus::new(STORE, GW, GatewayState::Online, 1_760_000_000_000)
    };
    publisher
        .publish(
            &topic::status(STORE, GW).unwrap(),
            serde_json::to_vec(&status).unwrap(),
            true,
        )
        .await;
    // gw-1: 2,000 events in batches of 100, each batch twice; then overlapping resends.
    for k in 0..20u64 {
        let p = json(&batch(STORE, GW, k * 100 + 1..=k * 100 + 100));
        publisher.publish(&t1, p.clone(), false).await;
        publisher.publish(&t1, p, false).await;
    }
    for k in (0..10u64).rev() {
        let p = json(&batch(STORE, GW, k * 200 + 50..=k * 200 + 150));
        publisher.publish(&t1, p, false).await;
    }
    // gw-2: newest first.
    for k in (0..10u64).rev() {
        let p = json(&batch("store-002", "gw-2", k * 50 + 1..=k * 50 + 50));
        publisher.publish(&t2, p, false).await;
    }
    // Refused: garbage, and gw-2 speaking for store-001.
    publisher.publish(&t1, b"{\"v\":1,".to_vec(), false).await;
    let spoof_topic = topic::events(STORE, "gw-2").unwrap();
    publisher
        .publish(
            &spoof_topic,
            json(&batch(STORE, "gw-2", 1000..=1010)),
            false,
        )
        .await;
    publisher.all_acked().await;

    let total = 2_000 + 500;
    let store = db.store.clone();
    wait_until("every event stored", 30, || {
        let store = store.clone();
        async move { store.event_count().await.unwrap() >= total }
    })
    .await;
    let (ia, ib, sent) = (a.clone(), b.clone(), publisher.sent);
    wait_until("every message handled", 30, || {
        let n = ia.stats().snapshot().messages + ib.stats().snapshot().messages;
        async move { n >= sent }
    })
    .await;

    let gw1 = db.store.events(GW).await.unwrap();
    assert_eq!(gw1.len(), 2_000, "{}", db.name);
    assert!(gw1.iter().zip(1..).all(|(e, s)| e.seq == s));
    assert!(
        gw1.iter()
            .all(|e| e.payload == serde_json::to_value(event(e.seq as u64)).unwrap())
    );
    let gw2 = db.store.events("gw-2").await.unwrap();
    assert_eq!(gw2.len(), 500);
    assert_eq!(db.store.event_count().await.unwrap(), total);

    let (ca, cb) = (a.stats().snapshot(), b.stats().snapshot());
    assert!(
        ca.messages > 0 && cb.messages > 0,
        "both workers share the load: {ca:?} {cb:?}"
    );
    assert_eq!(ca.events_ingested + cb.events_ingested, total);
    // 2,000 duplicated batch copies + 10 × 101 overlapping resends.
    assert_eq!(ca.duplicates + cb.duplicates, 2_000 + 1_010);
    let dead = |r| ca.dead(r) + cb.dead(r);
    assert_eq!(dead(DeadLetterReason::MalformedJson), 1);
    assert_eq!(dead(DeadLetterReason::WrongStore), 1);
    let mut reasons: Vec<String> = db
        .store
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.reason)
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["malformed_json", "wrong_store"]);
    // Every worker saw the retained status (not shared), applying it is idempotent.
    let g = db.store.gateway(GW).await.unwrap().unwrap();
    assert_eq!((g.online, g.backlog), (Some(true), Some(7)));
    // Everything handled was acked on the connection it came on.
    assert_eq!(ca.acks + cb.acks, ca.messages + cb.messages);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        wa.join().await;
        wb.join().await;
    })
    .await
    .expect("workers stop");
}

/// The real gateway uplink publishing into the broker, the cloud storing.
async fn edge_uplink_into_cloud(port: u16, db: &TestDb) {
    db.store.register_gateway(STORE, GW).await.unwrap();
    let shutdown = CancellationToken::new();
    let (ingestor, worker) =
        start_worker(port, "cloud-edge-smoke", db.store.clone(), &shutdown).await;

    let outbox = Arc::new(MemOutbox::new());
    // Some backlog before the gateway connects, more while it is live.
    let mut first: Vec<_> = (0..700).map(event).collect();
    outbox.append(&mut first).unwrap();
    let config = UplinkConfig {
        port,
        batch_max_events: 100,
        max_inflight: 8,
        backoff_initial_ms: 100,
        backoff_max_ms: 400,
        drain_timeout_ms: 3_000,
        ..UplinkConfig::new(STORE, GW)
    };
    let transport = MqttTransport::new(&config).unwrap();
    let uplink = Uplink::new(config, outbox.clone(), transport).unwrap();
    let gateway_stop = CancellationToken::new();
    let gateway = tokio::spawn(uplink.run(gateway_stop.clone()));
    for _ in 0..3 {
        let mut more: Vec<_> = (0..100).map(event).collect();
        outbox.append(&mut more).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let store = db.store.clone();
    wait_until("edge events stored", 30, || {
        let store = store.clone();
        async move { store.event_count().await.unwrap() >= 1_000 }
    })
    .await;
    let stored = db.store.events(GW).await.unwrap();
    assert_eq!(stored.len(), 1_000, "{}", db.name);
    assert!(
        stored.iter().zip(1..).all(|(e, s)| e.seq == s),
        "seqs 1..=1000"
    );
    let g = db.store.gateway(GW).await.unwrap().unwrap();
    assert_eq!(g.online, Some(true));
    assert!(g.backlog.is_some(), "the online status carries the backlog");

    gateway_stop.cancel();
    gateway.await.unwrap().unwrap();
    let store = db.store.clone();
    wait_until("offline status", 10, || {
        let store = store.clone();
        async move { store.gateway(GW).await.unwrap().unwrap().online == Some(false) }
    })
    .await;
    assert_eq!(ingestor.stats().snapshot().dead_total(), 0);
    shutdown.cancel();
    worker.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rumqttd_two_workers_every_backend() {
    for db in every_backend().await {
        let port = free_port();
        start_rumqttd(port);
        wait_for_port(port).await;
        two_workers_store_every_event_once(port, &db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mosquitto_two_workers_every_backend() {
    for db in every_backend().await {
        let port = free_port();
        let Some(_mosquitto) = start_mosquitto(port) else {
            return;
        };
        wait_for_port(port).await;
        two_workers_store_every_event_once(port, &db).await;
    }
}

/// Many small messages at once, faster than the database takes them: the worker's queue stays
/// within its bound (the broker holds the rest), nothing deadlocks between acks and the queue
/// (the failure mode of a bounded queue whose writer acks through the network task), and every
/// event is stored once and acked.
async fn a_flood_of_small_messages_stays_bounded(port: u16, db: &TestDb) {
    const MESSAGES: u64 = 10_000;
    db.store.register_gateway(STORE, GW).await.unwrap();
    let shutdown = CancellationToken::new();
    let (ing, worker) = start_worker(port, "cloud-flood", db.store.clone(), &shutdown).await;
    let mut publisher = Publisher::connect(port);
    let t = topic::events(STORE, GW).unwrap();
    for seq in 1..=MESSAGES {
        publisher
            .publish(&t, json(&batch(STORE, GW, seq..=seq)), false)
            .await;
    }
    publisher.all_acked().await;
    let store = db.store.clone();
    wait_until("every flooded event stored", 120, || {
        let store = store.clone();
        async move { store.event_count().await.unwrap() >= MESSAGES }
    })
    .await;
    let c = ing.stats().snapshot();
    assert_eq!(
        db.store.event_count().await.unwrap(),
        MESSAGES,
        "{}",
        db.name
    );
    let bound = dwell_cloud::ingest::queue_capacity(16) as u64;
    assert!(
        c.queue_high_water <= bound,
        "{}: {} queued at most, bound {bound}",
        db.name,
        c.queue_high_water
    );
    // Acks go out (none of this ran across a reconnect).
    let acks = ing.stats().clone();
    wait_until("every message acked", 20, || {
        let n = acks.snapshot().acks;
        async move { n >= MESSAGES }
    })
    .await;
    shutdown.cancel();
    worker.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mosquitto_flood_of_small_messages_every_backend() {
    for db in every_backend().await {
        let port = free_port();
        let Some(_mosquitto) = start_mosquitto(port) else {
            return;
        };
        wait_for_port(port).await;
        a_flood_of_small_messages_stays_bounded(port, &db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rumqttd_edge_uplink_into_cloud_every_backend() {
    for db in every_backend().await {
        let port = free_port();
        start_rumqttd(port);
        wait_for_port(port).await;
        edge_uplink_into_cloud(port, &db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mosquitto_edge_uplink_into_cloud_every_backend() {
    for db in every_backend().await {
        let port = free_port();
        let Some(_mosquitto) = start_mosquitto(port) else {
            return;
        };
        wait_for_port(port).await;
        edge_uplink_into_cloud(port, &db).await;
    }
}

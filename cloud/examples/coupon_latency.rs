//! Coupon latency: from the dwell milestone at the gateway to the coupon on the shopper's topic,
//! at 2,000 events per second, through a private Mosquitto (`deploy/mosquitto/dwell.conf`).
//!
//! ```text
//! cargo run --release -p dwell-cloud --example coupon_latency -- [SECONDS] [EVENTS_PER_S] [sqlite|postgres]
//! ```
//! Method: 2,000 opted-in shoppers are registered and one campaign fires on every 60 s dwell
//! milestone (no cap that binds, no holdout). A "gateway" publishes a batch of 20 events every
//! 10 ms (2,000 events/s, QoS 1), stamping each event's `ts_ms` when the batch is built, as the
//! gateway does when the tracker emits it; one event in ten is a dwell milestone of a registered
//! shopper's current EID, the rest are anonymous zone entries. One ingest worker with the engine
//! (the same code as `dwell-cloud run`) stores, resolves, decides and publishes; a subscriber on
//! `dwell/v1/shoppers/+/coupons` takes its receive time minus the coupon's `ts_ms`. Clocks are
//! one machine's. Reported: coupons expected and received, p50/p99/max latency.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dwell_cloud::campaigns::catalog;
use dwell_cloud::config::Config;
use dwell_cloud::engine::setup;
use dwell_cloud::ingest::{Ingestor, Worker, WorkerConfig, now_ms};
use dwell_cloud::profiles::shoppers::{self, Registration};
use dwell_cloud::store::{AnyStore, PgStore, SqliteStore, Store};
use dwell_shared::eid;
use dwell_shared::hex;
use dwell_shared::wire::{DeviceRef, Event, EventBatch, EventKind};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

const SHOPPERS: u32 = 2_000;
const BATCH: usize = 20;

fn key(i: u32) -> [u8; 16] {
    let mut k = [0x5au8; 16];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(30);
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let backend = args.get(2).cloned().unwrap_or_else(|| "sqlite".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(seconds, rate, &backend));
}

async fn run(seconds: u64, rate: u64, backend: &str) {
    let port = support::free_port();
    let _mosquitto = support::start_mosquitto(port).expect("mosquitto installed");
    support::wait_for_port(port).await;
    let dir = tempfile::tempdir().unwrap();
    let store = match backend {
        "postgres" => {
            let server = support::PgServer::start(true).expect("postgresql installed");
            support::wait_for_port(server.port).await;
            let url = server.create_database().await;
            std::mem::forget(server);
            AnyStore::Postgres(PgStore::connect(&url, 8).await.unwrap())
        }
        _ => AnyStore::Sqlite(SqliteStore::open_dir(dir.path()).await.unwrap()),
    };
    store.register_gateway("store-001", "gw-1").await.unwrap();
    for i in 0..SHOPPERS {
        shoppers::register(
            &store,
            &Registration {
                identity_key: Some(hex::encode(&key(i))),
                exponent: Some(10),
                ..Registration::default()
            },
            0,
        )
        .await
        .unwrap();
    }
    catalog::create(
        &store,
        serde_json::from_str(
            r#"{"id":"bench","name":"bench","trigger":{"kind":"dwell","seconds":60},
                "offer":{"title":"bench","expires_after_s":600},
                "cap":{"per_shopper":1000000,"window_s":86400}}"#,
        )
        .unwrap(),
        0,
    )
    .await
    .unwrap();
    let text = format!(
        "[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"bench-cloud\"\n[database]\nurl = \"sqlite:///unused\"\n\
         [ingest]\nallow_unknown_gateways = false\n[engine]\nsecrets_dir = \"{}\"\n[[gateways]]\nstore = \"store-001\"\nid = \"gw-1\"\n",
        dir.path().display()
    );
    let config = Config::from_toml_str(&text, "bench", dir.path()).unwrap();
    let shutdown = CancellationToken::new();
    let (sink, _sink_task) = setup::mqtt_sink(&config.broker, shutdown.clone());
    let engine = setup::build(
        &store,
        &config,
        setup::secrets(dir.path()).unwrap(),
        Arc::new(sink),
        false,
    )
    .await
    .unwrap();
    let ingestor = Arc::new(Ingestor::new(store.clone(), false).with_hook(engine.clone()));
    let mut worker = Worker::spawn(
        WorkerConfig::new("127.0.0.1", port, "bench-worker"),
        ingestor.clone(),
        shutdown.clone(),
    )
    .unwrap();
    worker.subscribed().await;

    // The shoppers' phones: receive coupons, measure.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let (sub, mut sub_ev) =
        AsyncClient::new(MqttOptions::new("bench-apps", "127.0.0.1", port), 1000);
    sub.subscribe("dwell/v1/shoppers/+/coupons", QoS::AtLeastOnce)
        .await
        .unwrap();
    let lat = latencies.clone();
    let subscriber = tokio::spawn(async move {
        loop {
            match sub_ev.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let now = now_ms();
                    if let Ok(c) = serde_json::from_slice::<dwell_shared::wire::Coupon>(&p.payload)
                    {
                        lat.lock().unwrap().push(now - c.ts_ms);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The gateway.
    let (gw, mut gw_ev) = AsyncClient::new(MqttOptions::new("bench-gw", "127.0.0.1", port), 1000);
    tokio::spawn(async move {
        loop {
            if gw_ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let interval_ms = (BATCH as u64 * 1000 / rate).max(1);
    let batches = seconds * 1000 / interval_ms;
    let expected = AtomicU64::new(0);
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
    let mut seq = 0u64;
    let started = Instant::now();
    for b in 0..batches {
        tick.tick().await;
        let ts = now_ms();
        let events: Vec<Event> = (0..BATCH)
            .map(|i| {
                seq += 1;
                let kind = if i % 10 == 0 {
                    let s = ((b as u32) * 2 + i as u32 / 10) % SHOPPERS;
                    expected.fetch_add(1, Ordering::Relaxed);
                    EventKind::ZoneDwell {
                        device: DeviceRef::new(format!(
                            "eid:{}",
                            hex::encode(&eid::compute(&key(s), 10, (ts / 1000) as u32))
                        )),
                        zone: "cosmetics".into(),
                        dwell_s: 60,
                    }
                } else {
                    EventKind::ZoneEnter {
                        device: DeviceRef::new(format!("h:{seq:012x}")),
                        zone: "snacks".into(),
                    }
                };
                Event {
                    seq,
                    ts_ms: ts,
                    kind,
                }
            })
            .collect();
        let payload =
            serde_json::to_vec(&EventBatch::new("store-001", "gw-1", ts, events)).unwrap();
        gw.publish(
            "dwell/v1/store-001/gw-1/events",
            QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    }
    let sent_for = started.elapsed().as_secs_f64();
    let expected = expected.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (latencies.lock().unwrap().len() as u64) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    worker.join().await;
    subscriber.abort();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let q = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(-1)
    };
    println!(
        "coupon_latency ({backend}): {} events in {sent_for:.1} s ({:.0} events/s), {expected} milestones, {} coupons received; trigger→phone p50 {} ms, p99 {} ms, max {} ms",
        seq,
        seq as f64 / sent_for,
        l.len(),
        q(0.5),
        q(0.99),
        l.last().copied().unwrap_or(-1)
    );
}

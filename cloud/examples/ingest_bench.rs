//! Ingest throughput through a private Mosquitto (started with `deploy/mosquitto/dwell.conf` on a
//! free port): events per second stored into SQLite and into PostgreSQL (a scratch server with
//! PostgreSQL's durable defaults), beside what the broker alone carries, measured twice: to a
//! plain rumqttc subscriber, and with Mosquitto's own tools (`mosquitto_pub -l` per gateway,
//! `mosquitto_sub -C`), each on a fresh broker.
//!
//! ```text
//! cargo run --release -p dwell-cloud --example ingest_bench -- [EVENTS] [EVENTS_PER_BATCH] [GATEWAYS] [WORKERS]
//! ```
//! Defaults: 200,000 events, 500 per batch (the uplink's default), 4 gateways, 1 worker.
//! Gateways publish pre-encoded `EventBatch`es at QoS 1 as fast as the broker acks them; the
//! clock runs from the first publish until the last event is committed (or received).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dwell_cloud::ingest::{Ingestor, Worker, WorkerConfig};
use dwell_cloud::store::{AnyStore, PgStore, SqliteStore, Store};
use dwell_shared::topic;
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

struct Params {
    events: u64,
    per_batch: u64,
    gateways: u64,
    workers: usize,
}

fn gateway_id(g: u64) -> String {
    format!("gw-{g}")
}

fn store_id(g: u64) -> String {
    format!("store-{g:03}")
}

/// Every gateway's payloads, encoded once.
fn payloads(p: &Params) -> Vec<(String, Vec<Vec<u8>>)> {
    let per_gateway = p.events / p.gateways;
    (0..p.gateways)
        .map(|g| {
            let (s, gw) = (store_id(g), gateway_id(g));
            let batches = (0..per_gateway.div_ceil(p.per_batch))
                .map(|k| {
                    let first = k * p.per_batch + 1;
                    let last = ((k + 1) * p.per_batch).min(per_gateway);
                    support::json(&support::batch(&s, &gw, first..=last))
                })
                .collect();
            (topic::events(&s, &gw).unwrap(), batches)
        })
        .collect()
}

/// Publishes every payload, one client per gateway, QoS 1; returns when all are acked.
async fn publish_all(port: u16, payloads: &[(String, Vec<Vec<u8>>)]) {
    let mut tasks = Vec::new();
    for (i, (t, batches)) in payloads.iter().enumerate() {
        let (t, batches) = (t.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            let mut o = MqttOptions::new(format!("bench-gw-{i}"), "127.0.0.1", port);
            o.set_max_packet_size(16 << 20, 16 << 20).set_inflight(100);
            let (client, mut eventloop) = AsyncClient::new(o, 256);
            let n = batches.len() as u64;
            let sender = tokio::spawn(async move {
                for b in batches {
                    client
                        .publish(&t, QoS::AtLeastOnce, false, b)
                        .await
                        .unwrap();
                }
                client
            });
            let mut acked = 0;
            while acked < n {
                if let Packet::PubAck(_) = match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(p)) => p,
                    Ok(_) => continue,
                    Err(e) => panic!("publisher: {e}"),
                } {
                    acked += 1;
                }
            }
            drop(sender.await);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The broker alone: a plain QoS 1 subscriber (auto acks) counting events.
async fn broker_alone(port: u16, p: &Params, payloads: &[(String, Vec<Vec<u8>>)]) -> f64 {
    let mut o = MqttOptions::new("bench-plain-sub", "127.0.0.1", port);
    o.set_max_packet_size(16 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(o, 256);
    client
        .subscribe(topic::ALL_EVENTS, QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) = eventloop.poll().await {
            break;
        }
    }
    let total = p.events / p.gateways * p.gateways;
    let start = Instant::now();
    let publish = publish_all(port, payloads);
    let receive = async {
        let mut got = 0u64;
        while got < total {
            if let Ok(rumqttc::Event::Incoming(Packet::Publish(m))) = eventloop.poll().await {
                // Count the events without storing them (a cheap scan for `"seq":`).
                got += m.payload.windows(6).filter(|w| w == b"\"seq\":").count() as u64;
            }
        }
    };
    tokio::join!(publish, receive);
    let _ = client.disconnect().await;
    total as f64 / start.elapsed().as_secs_f64()
}

/// The broker alone, measured with Mosquitto's own tools: one `mosquitto_pub -l -q 1` per gateway
/// (a batch per line: the JSON has no newlines) and one `mosquitto_sub -q 1 -C N` on every
/// gateway's events topic, writing to /dev/null; from the publishers' start until the subscriber
/// has received every message. `None` when the tools aren't installed.
fn mosquitto_tools_alone(
    port: u16,
    p: &Params,
    payloads: &[(String, Vec<Vec<u8>>)],
) -> Option<f64> {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let messages: usize = payloads.iter().map(|(_, b)| b.len()).sum();
    let mut files = Vec::new();
    for (i, (t, batches)) in payloads.iter().enumerate() {
        let path = dir.path().join(format!("gw-{i}.jsonl"));
        let mut text = Vec::new();
        for b in batches {
            assert!(!b.contains(&b'\n'));
            text.extend_from_slice(b);
            text.push(b'\n');
        }
        std::fs::write(&path, text).unwrap();
        files.push((t.clone(), path));
    }
    let port = port.to_string();
    let mut sub = Command::new("mosquitto_sub")
        .args(["-p", &port, "-q", "1", "-t", topic::ALL_EVENTS, "-C"])
        .arg(messages.to_string())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    // Give the subscription time to be in place before anything is published.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let pubs: Vec<_> = files
        .iter()
        .map(|(t, path)| {
            Command::new("mosquitto_pub")
                .args(["-p", &port, "-q", "1", "-l", "-t", t])
                .stdin(std::fs::File::open(path).unwrap())
                .spawn()
                .expect("mosquitto_pub")
        })
        .collect();
    for mut child in pubs {
        assert!(child.wait().unwrap().success(), "mosquitto_pub failed");
    }
    assert!(sub.wait().unwrap().success(), "mosquitto_sub failed");
    let total = p.events / p.gateways * p.gateways;
    Some(total as f64 / start.elapsed().as_secs_f64())
}

async fn through_cloud(
    port: u16,
    p: &Params,
    payloads: &[(String, Vec<Vec<u8>>)],
    store: AnyStore,
    label: &str,
) -> f64 {
    for g in 0..p.gateways {
        store
            .register_gateway(&store_id(g), &gateway_id(g))
            .await
            .unwrap();
    }
    let ingestor = Arc::new(Ingestor::new(store.clone(), false));
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    for w in 0..p.workers {
        let config = WorkerConfig::new("127.0.0.1", port, format!("bench-{label}-{w}"));
        let mut h = Worker::spawn(config, ingestor.clone(), shutdown.clone()).unwrap();
        h.subscribed().await;
        handles.push(h);
    }
    let total = p.events / p.gateways * p.gateways;
    let start = Instant::now();
    let publish = publish_all(port, payloads);
    let wait = async {
        let mut last_report = Instant::now();
        loop {
            let c = ingestor.stats().snapshot();
            if c.events_ingested + c.duplicates >= total {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                last_report = Instant::now();
                eprintln!("  … {label}: {c:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::join!(publish, wait);
    let secs = start.elapsed().as_secs_f64();
    let c = ingestor.stats().snapshot();
    shutdown.cancel();
    for h in handles {
        h.join().await;
    }
    assert_eq!(
        store.event_count().await.unwrap(),
        total,
        "{label}: every event stored"
    );
    println!(
        "  {label:<28} {total} events in {secs:.2} s: {:>9.0} events/s ({} transactions, {} duplicates, at most {} messages queued)",
        total as f64 / secs,
        c.commits,
        c.duplicates,
        c.queue_high_water
    );
    store.close().await;
    total as f64 / secs
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("numbers: EVENTS EVENTS_PER_BATCH GATEWAYS WORKERS")
        })
        .collect();
    let p = Params {
        events: args.first().copied().unwrap_or(200_000),
        per_batch: args.get(1).copied().unwrap_or(500),
        gateways: args.get(2).copied().unwrap_or(4),
        workers: args.get(3).copied().unwrap_or(1) as usize,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let payloads = payloads(&p);
        let bytes: usize = payloads.iter().flat_map(|(_, b)| b).map(Vec::len).sum();
        println!(
            "ingest_bench: {} events, {} per batch ({} messages, {:.1} MiB), {} gateways, {} worker(s), Mosquitto with deploy/mosquitto/dwell.conf",
            p.events,
            p.per_batch,
            payloads.iter().map(|(_, b)| b.len()).sum::<usize>(),
            bytes as f64 / 1048576.0,
            p.gateways,
            p.workers
        );
        // A fresh broker for each run, so no run inherits another's sessions or queues.
        let fresh_broker = || async {
            let port = support::free_port();
            let m = support::start_mosquitto(port).expect("mosquitto installed");
            support::wait_for_port(port).await;
            (port, m)
        };

        let (port, m) = fresh_broker().await;
        let alone = broker_alone(port, &p, &payloads).await;
        println!("  {:<28} {alone:>9.0} events/s", "Mosquitto alone (QoS 1 sub)");
        drop(m);
        let (port, m) = fresh_broker().await;
        let tools = mosquitto_tools_alone(port, &p, &payloads);
        match tools {
            Some(t) => println!("  {:<28} {t:>9.0} events/s", "Mosquitto alone (pub/sub)"),
            None => println!("  mosquitto_pub/mosquitto_sub not installed: no tools figure"),
        }
        drop(m);

        let (port, m) = fresh_broker().await;
        let dir = tempfile::tempdir().unwrap();
        let sqlite = AnyStore::Sqlite(SqliteStore::open_dir(dir.path()).await.unwrap());
        let s = through_cloud(port, &p, &payloads, sqlite, "SQLite (WAL, synchronous=FULL)").await;
        drop(m);

        let pg = match support::PgServer::start(true) {
            Some(server) => {
                let (port, m) = fresh_broker().await;
                let url = server.create_database().await;
                let store = AnyStore::Postgres(PgStore::connect(&url, 8).await.unwrap());
                let r = through_cloud(port, &p, &payloads, store, "PostgreSQL (fsync on)").await;
                drop(m);
                Some(r)
            }
            None => None,
        };
        let ratio = |label: &str, base: f64| {
            println!(
                "  ratio to the broker alone ({label}): SQLite {:.0}%{}",
                100.0 * s / base,
                pg.map(|r| format!(", PostgreSQL {:.0}%", 100.0 * r / base))
                    .unwrap_or_default()
            );
        };
        ratio("rumqttc subscriber", alone);
        if let Some(t) = tools {
            ratio("mosquitto_pub/mosquitto_sub", t);
        }
    });
}

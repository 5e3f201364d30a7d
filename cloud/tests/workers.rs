//! Two `dwell-cloud run` workers on a real Mosquitto (shared subscription, the project's config)
//! and a real PostgreSQL, a simulated chain publishing for a while, one worker killed (SIGKILL)
//! and restarted in the middle: every event is stored exactly once, every resolved dwell
//! milestone is decided once, and caps and budgets are never exceeded.

mod support;

use dwell_cloud::campaigns::catalog;
use dwell_cloud::on_pool;
use dwell_cloud::profiles::shoppers::{self, Registration};
use dwell_cloud::store::{AnyStore, Store};
use dwell_edge::simulate::{self, SimParams};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const POOL: u32 = 40;
const SEED: u64 = 11;

fn worker(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dwell-cloud"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A simulated store's hour as event batches (the gateway's own pipeline, offline).
fn store_batches(store: &str, gateway: &str, seed: u64, start_ms: i64) -> Vec<Vec<u8>> {
    let example = dwell_cloud::demo::chain::EXAMPLE_STORE.replacen(
        "id = \"gw-1\"\nstore = \"store-042\"",
        &format!("id = \"{gateway}\"\nstore = \"{store}\""),
        1,
    );
    let config = dwell_edge::config::Config::from_toml_str(&example, "t").unwrap();
    let sim = simulate::run(
        config.store_layout(),
        &SimParams {
            shoppers: 80,
            minutes: 40,
            seed,
            start_ms,
            app_share: 0.8,
            app_key_pool: POOL,
            app_key_seed: SEED,
            ..SimParams::default()
        },
    )
    .unwrap();
    let mut out = Vec::new();
    dwell_edge::replay::run(&config, sim.observations(), &mut out, |_| {}).unwrap();
    let events: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    events
        .chunks(50)
        .map(|c| {
            serde_json::to_vec(&serde_json::json!({
                "v": 1, "store": store, "gateway": gateway, "sent_ms": start_ms, "events": c,
            }))
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_and_restarted_store_everything_once_within_caps() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    let port = support::free_port();
    let Some(_mosquitto) = support::start_mosquitto(port) else {
        return;
    };
    support::wait_for_port(port).await;
    let store: &AnyStore = &db.store;
    for (s, g) in [("store-001", "gw-1"), ("store-002", "gw-2")] {
        store.register_gateway(s, g).await.unwrap();
    }
    for i in 0..POOL {
        shoppers::register(
            store,
            &Registration {
                identity_key: Some(dwell_shared::hex::encode(&simulate::pool_key(SEED, i))),
                exponent: Some(10),
                ..Registration::default()
            },
            0,
        )
        .await
        .unwrap();
    }
    for spec in [
        r#"{"id":"dwell-60","name":"a","trigger":{"kind":"dwell","seconds":60},
            "offer":{"title":"t","expires_after_s":600},"cap":{"per_shopper":1,"window_s":86400},"budget":15}"#,
        r#"{"id":"dwell-30","name":"b","trigger":{"kind":"dwell","seconds":30},
            "offer":{"title":"t","expires_after_s":600},"cap":{"per_shopper":2,"window_s":86400},"holdout_permille":200}"#,
    ] {
        catalog::create(store, serde_json::from_str(spec).unwrap(), 0)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let configs: Vec<_> = (1..=2)
        .map(|n| {
            let path = dir.path().join(format!("w{n}.toml"));
            std::fs::write(
                &path,
                format!(
                    "[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"worker-{n}\"\n\
                     [database]\nurl = \"{}\"\n[ingest]\nallow_unknown_gateways = false\nmax_messages_per_tx = 20\n\
                     [engine]\nsecrets_dir = \"{}\"\n\
                     [[gateways]]\nstore = \"store-001\"\nid = \"gw-1\"\n[[gateways]]\nstore = \"store-002\"\nid = \"gw-2\"\n",
                    db.url,
                    secrets.display()
                ),
            )
            .unwrap();
            path
        })
        .collect();
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let mut w1 = worker(&configs[0], &log("w1"));
    let mut w2 = worker(&configs[1], &log("w2"));

    // The chain's hour: two stores, published by "gateways" (QoS 1) while the workers run.
    let start_ms = dwell_cloud::ingest::now_ms() - 40 * 60_000;
    let mut batches: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (s, g)) in [("store-001", "gw-1"), ("store-002", "gw-2")]
        .iter()
        .enumerate()
    {
        let topic = format!("dwell/v1/{s}/{g}/events");
        for b in store_batches(s, g, 100 + i as u64, start_ms) {
            batches.push((topic.clone(), b));
        }
    }
    let total_events: usize = batches
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["events"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    // Let both workers subscribe before publishing (their sessions are persistent after that).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut opts = rumqttc::MqttOptions::new("chain", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut ev) = rumqttc::AsyncClient::new(opts, 1000);
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a2 = acks.clone();
    let pump = tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    a2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let n = batches.len();
    for (i, (topic, payload)) in batches.into_iter().enumerate() {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        if i == n / 3 {
            // Kill worker 1 in the middle, without warning; restart it a little later.
            w1.kill().unwrap();
            w1.wait().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if i == n / 2 {
            w1 = worker(&configs[0], &log("w1-restarted"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    support::wait_until("every PubAck", 60, || {
        let a = acks.clone();
        async move { a.load(std::sync::atomic::Ordering::Relaxed) >= n }
    })
    .await;
    support::wait_until("every event stored", 120, || async {
        store.event_count().await.unwrap() as usize >= total_events
    })
    .await;
    // Let the workers finish what they hold, then stop them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for w in [&mut w1, &mut w2] {
        let _ = Command::new("kill").arg(w.id().to_string()).status();
        w.wait().unwrap();
    }
    pump.abort();

    assert_eq!(
        store.event_count().await.unwrap() as usize,
        total_events,
        "every event stored exactly once"
    );
    let issued: i64 = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT count(*) FROM coupons WHERE campaign = 'dwell-60'"
    ).fetch_one(pool).await)
    .unwrap();
    assert!(issued <= 15, "budget 15, issued {issued}");
    let spent: i64 = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT issued FROM campaigns WHERE id = 'dwell-60'"
    ).fetch_one(pool).await)
    .unwrap();
    assert_eq!(spent, issued, "the budget counter matches the coupons");
    let over_cap: Vec<(String, String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT c.campaign, c.shopper, count(*) FROM coupons c GROUP BY c.campaign, c.shopper \
         HAVING count(*) > CASE c.campaign WHEN 'dwell-60' THEN 1 ELSE 2 END"
    ).fetch_all(pool).await)
    .unwrap();
    assert!(over_cap.is_empty(), "caps exceeded: {over_cap:?}");
    let decided: Vec<(String, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT campaign, shopper, trigger_key FROM campaign_decisions"
    ).fetch_all(pool).await)
    .unwrap();
    let unique: HashSet<_> = decided.iter().collect();
    assert_eq!(unique.len(), decided.len());
    assert!(
        !decided.is_empty() && issued > 0,
        "the simulated chain's opted-in shoppers triggered campaigns ({} decisions)",
        decided.len()
    );
    let both_worked = ["w1", "w2"].iter().all(|w| {
        std::fs::read_to_string(log(w))
            .unwrap()
            .contains("engine ready")
    });
    assert!(both_worked, "both workers started their engines");
    println!(
        "{total_events} events in {n} batches; {} decisions, {issued} coupons of budget 15",
        decided.len()
    );
}

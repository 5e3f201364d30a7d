//! `dwell-cloud demo`: the whole product on one machine, with nothing installed but Rust.
//!
//! 1. an embedded MQTT broker (rumqttd) on a free port, and SQLite in a temporary data directory;
//! 2. a chain ([`chain`]): pilot stores with the example floor plan and a time zone, a pool of
//!    opted-in shoppers whose app keys the simulator uses (so their EIDs resolve), sample
//!    campaigns and a tag rule;
//! 3. history ([`history`]): past days of each pilot store simulated and run through the gateway's
//!    own pipeline offline, ingested like any gateway's batches (so footfall, visits, profiles and
//!    campaign results have something to show), with some coupons redeemed at the till;
//! 4. live: one in-process gateway per pilot store (`dwell_edge::gateway::run` with its simulator
//!    source, sled outbox, MQTT uplink to the embedded broker), the cloud's ingest workers, engine,
//!    API and dashboard (`crate::run::serve`), and a listener that prints coupons as they reach the
//!    shoppers' topic, with a live progress line.
//!
//! It stops on Ctrl-C (or after `--minutes`), and prints where the data directory was.

pub mod broker;
pub mod chain;
pub mod history;

use crate::config::Config;
use crate::engine::setup;
use crate::store::{AnyStore, SqliteStore};
use anyhow::Context;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `dwell-cloud demo` options.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where the dashboard and API listen; a taken port falls back to a free one.
    pub listen: SocketAddr,
    /// Pilot stores with simulated gateways (1..=8).
    pub stores: u32,
    /// Shoppers passing each store per hour, live.
    pub shoppers_per_hour: u32,
    /// Opted-in app shoppers (the key pool).
    pub app_shoppers: u32,
    /// Days of simulated history before today.
    pub history_days: u32,
    pub seed: u64,
    /// Keep the data here instead of a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// Stop after this many minutes (default: run until Ctrl-C).
    pub minutes: Option<u64>,
    /// The HQ token to create (default: random); printed with the URL.
    pub token: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            stores: 4,
            shoppers_per_hour: 600,
            app_shoppers: 2_000,
            history_days: 7,
            seed: 1,
            data_dir: None,
            minutes: None,
            token: None,
        }
    }
}

/// Runs the demo until `shutdown` (or `minutes`).
pub async fn run(opts: DemoOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=8).contains(&opts.stores),
        "--stores must be 1 to 8 (each runs a simulated gateway in this process)"
    );
    let tmp;
    let dir = match &opts.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("dwell-demo-")
                .tempdir()
                .context("creating a temporary data directory")?;
            tmp.path().to_owned()
        }
    };
    let say = |s: String| eprintln!("{s}");

    // 1. broker and database
    let broker_port = broker::start().context("starting the embedded MQTT broker")?;
    let listener = match tokio::net::TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind(SocketAddr::new(opts.listen.ip(), 0))
            .await
            .context("binding the dashboard's address")?,
    };
    let api_addr = listener.local_addr()?;
    drop(listener); // `serve` binds it again from the config
    let config = demo_config(&dir, broker_port, api_addr)?;
    let store = AnyStore::Sqlite(
        SqliteStore::open(&dir.join("dwell.db"))
            .await
            .context("opening SQLite")?,
    );
    say(format!(
        "dwell demo: data in {}, MQTT broker on 127.0.0.1:{broker_port}",
        dir.display()
    ));

    // 2. the chain
    let chain = chain::Chain::new(&opts)?;
    chain.install(&store).await?;
    let token = chain.hq_token(&store, opts.token.clone()).await?;
    say(format!(
        "dwell demo: {} stores ({} with live gateways), {} opted-in shoppers, {} campaigns",
        chain.all_stores.len(),
        chain.pilots.len(),
        opts.app_shoppers,
        chain::campaigns().len()
    ));

    // 3. history, through an engine whose coupons are kept, not published
    let secrets = setup::secrets(&config.engine.secrets_dir)?;
    if opts.history_days > 0 {
        let memory = Arc::new(crate::coupons::delivery::MemorySink::default());
        let hist_engine = setup::build(
            &store,
            &config,
            setup::secrets(&config.engine.secrets_dir)?,
            memory,
            true,
        )
        .await?;
        history::backfill(&store, hist_engine, &chain, &opts, &shutdown).await?;
    }

    // 4. live
    let (sink, sink_task) = setup::mqtt_sink(&config.broker, shutdown.clone());
    let engine = setup::build(&store, &config, secrets, Arc::new(sink), false).await?;
    let printed = Arc::new(AtomicU64::new(0));
    let printer = tokio::spawn(print_coupons(
        broker_port,
        printed.clone(),
        shutdown.clone(),
    ));
    let mut gateways = Vec::new();
    for (i, pilot) in chain.pilots.iter().enumerate() {
        let cfg = chain.gateway_config(pilot, i, broker_port, &dir, &opts)?;
        let token = shutdown.clone();
        let name = pilot.gateway.clone();
        gateways.push(tokio::spawn(async move {
            if let Err(e) = dwell_edge::gateway::run(cfg, &name, token).await {
                tracing::error!(gateway = %name, error = %format!("{e:#}"), "demo gateway stopped");
            }
        }));
    }
    let url = format!("http://{api_addr}/#token={token}");
    say(format!(
        "\n  Dashboard: {url}\n  API:       http://{api_addr}/api/v1/openapi.json  (Authorization: Bearer {token})\n"
    ));
    println!("dashboard: {url}");

    let progress = tokio::spawn(progress_line(
        store.clone(),
        engine.clone(),
        printed,
        shutdown.clone(),
    ));
    if let Some(m) = opts.minutes {
        let s = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(m * 60)).await;
            s.cancel();
        });
    }
    let counters = crate::run::serve(
        &config,
        store,
        engine,
        chain.expansion.clone(),
        shutdown.clone(),
    )
    .await?;
    for g in gateways {
        let _ = g.await;
    }
    let _ = printer.await;
    let _ = progress.await;
    let _ = sink_task.await;
    eprintln!(
        "\ndwell demo: stopped; {} events ingested this run; data was in {}",
        counters.events_ingested,
        dir.display()
    );
    Ok(())
}

fn demo_config(dir: &std::path::Path, broker_port: u16, api: SocketAddr) -> anyhow::Result<Config> {
    let text = format!(
        r#"
[broker]
url = "mqtt://127.0.0.1:{broker_port}"
client_id = "dwell-demo-cloud"
[database]
url = "sqlite://{db}"
[ingest]
allow_unknown_gateways = true
[api]
listen = "{api}"
[engine]
secrets_dir = "{secrets}"

[[tag_rules]]
tag = "cosmetics-lover"
zone = "cosmetics"
min_dwell_s = 120
visits = 2
days = 30

[[tag_rules]]
tag = "snacker"
zone = "snacks"
min_dwell_s = 60
visits = 2
days = 14
"#,
        db = dir.join("dwell.db").display(),
        secrets = dir.join("secrets").display(),
    );
    Ok(Config::from_toml_str(&text, "demo", dir)?)
}

/// Prints every coupon that reaches a shopper's topic on the broker, as the app would get it.
async fn print_coupons(port: u16, printed: Arc<AtomicU64>, shutdown: CancellationToken) {
    let opts = rumqttc::MqttOptions::new("dwell-demo-wallets", "127.0.0.1", port);
    let (client, mut ev) = rumqttc::AsyncClient::new(opts, 64);
    let _ = client
        .subscribe("dwell/v1/shoppers/+/coupons", rumqttc::QoS::AtLeastOnce)
        .await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            e = ev.poll() => match e {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(c) = serde_json::from_slice::<dwell_shared::wire::Coupon>(&p.payload) {
                        printed.fetch_add(1, Ordering::Relaxed);
                        let delay = c.issued_ms - c.ts_ms;
                        eprintln!(
                            "\r\x1b[2Kcoupon  {}  {}  {} in {}  ({} ms after the trigger)",
                            c.shopper,
                            c.title,
                            c.store,
                            c.zone.as_deref().unwrap_or("store"),
                            delay
                        );
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            },
        }
    }
}

/// One live status line: events, visits, coupons.
async fn progress_line(
    store: AnyStore,
    engine: Arc<crate::engine::Engine>,
    printed: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    use crate::store::Store;
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(if tty { 2 } else { 30 }));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let events = store.event_count().await.unwrap_or(0);
                let s = engine.stats();
                let line = format!(
                    "events stored {events} · EIDs resolved {} · visits stitched {} · coupons sent {} (held out {}, capped {}) · received by apps {}",
                    s.eids_resolved.load(Ordering::Relaxed),
                    s.visits_stitched.load(Ordering::Relaxed),
                    s.coupons_sent.load(Ordering::Relaxed),
                    s.decisions_holdout.load(Ordering::Relaxed),
                    s.decisions_capped.load(Ordering::Relaxed),
                    printed.load(Ordering::Relaxed),
                );
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }
}

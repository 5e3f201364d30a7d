//! The demo's history: past days of each pilot store, simulated and run through the gateway's own
//! pipeline offline (`dwell_edge::replay`, as fast as the CPU allows), then ingested as the
//! gateway's event batches — so every roll-up, visit, profile and campaign result is built the way
//! live data builds it.
//!
//! History batches use the pilot's gateway id with sequence numbers from 2⁴⁰ up, far above anything
//! the live gateway reaches in a demo, so the two never collide on `(gateway, seq)`. The engine that
//! processes history takes "now" from each event (a coupon is issued 250 ms after its trigger) and
//! keeps coupons instead of publishing them; afterwards about a third of them are redeemed at the
//! till with a purchase amount, so campaign results have redemptions and revenue.

use super::DemoOptions;
use super::chain::{Chain, DemoStore};
use crate::coupons::wallet;
use crate::engine::Engine;
use crate::ingest::{Ingestor, Message, now_ms};
use anyhow::Context;
use dwell_edge::simulate::{self, SimParams};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use std::sync::Arc;

/// Shoppers per hour in the simulated history (fewer than live: history is simulated up front).
pub const HISTORY_SHOPPERS_PER_HOUR: u32 = 30;
/// Opening hours simulated each day, local time (the demo's stores are in Asia/Shanghai, UTC+8).
const OPEN_LOCAL_HOUR: i64 = 9;
const OPEN_HOURS: u32 = 12;
const UTC_OFFSET_H: i64 = 8;
/// Events per batch, as a gateway sends them.
const BATCH: usize = 200;
/// First sequence number of history batches.
pub const HISTORY_SEQ_BASE: u64 = 1 << 40;

/// One simulated store-day as gateway batches (JSON), ready to ingest.
fn simulate_day(
    chain: &Chain,
    pilot: &DemoStore,
    pilot_index: usize,
    day: u32,
    days: u32,
    gateway_config: &dwell_edge::config::Config,
) -> anyhow::Result<(String, Vec<Vec<u8>>)> {
    const DAY_MS: i64 = 86_400_000;
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS;
    let start_ms =
        today - i64::from(days - day) * DAY_MS + (OPEN_LOCAL_HOUR - UTC_OFFSET_H) * 3_600_000;
    // Weekends are busier.
    let weekday = (start_ms.div_euclid(DAY_MS) + 4).rem_euclid(7); // 0 = Sunday
    let busy = if weekday == 0 || weekday == 6 {
        1.5
    } else {
        1.0
    };
    let params = SimParams {
        shoppers: (f64::from(HISTORY_SHOPPERS_PER_HOUR * OPEN_HOURS) * busy) as u32,
        minutes: OPEN_HOURS * 60,
        seed: chain.seed * 1_000_003 + pilot_index as u64 * 1_009 + u64::from(day),
        start_ms,
        app_key_pool: chain.app_shoppers,
        app_key_seed: chain.seed,
        ..SimParams::default()
    };
    let sim = simulate::run(gateway_config.store_layout(), &params)?;
    let mut out = Vec::new();
    dwell_edge::replay::run(gateway_config, sim.observations(), &mut out, |_| {})?;
    let topic = format!("dwell/v1/{}/{}/events", pilot.id, pilot.gateway);
    let base = HISTORY_SEQ_BASE + (u64::from(day) << 24);
    let mut batches = Vec::new();
    let mut events = Vec::with_capacity(BATCH);
    let lines: Vec<&[u8]> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let mut e: serde_json::Value = serde_json::from_slice(line)?;
        e["seq"] = serde_json::json!(base + n as u64);
        events.push(e);
        if events.len() == BATCH || n + 1 == lines.len() {
            let batch = serde_json::json!({
                "v": 1, "store": pilot.id, "gateway": pilot.gateway,
                "sent_ms": events.last().and_then(|e| e["ts_ms"].as_i64()).unwrap_or(start_ms),
                "events": std::mem::take(&mut events),
            });
            batches.push(serde_json::to_vec(&batch)?);
        }
    }
    Ok((topic, batches))
}

/// Simulates and ingests `opts.history_days` days of every pilot store, then redeems some coupons.
pub async fn backfill(
    store: &crate::store::AnyStore,
    engine: Arc<Engine>,
    chain: &Chain,
    opts: &DemoOptions,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let days = opts.history_days;
    let jobs: Vec<(usize, u32)> = (0..chain.pilots.len())
        .flat_map(|p| (0..days).map(move |d| (p, d)))
        .collect();
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} store-days, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("simulating {days} days of history"));
    eprintln!(
        "dwell demo: simulating {days} days of history for {} stores ({} store-days)…",
        chain.pilots.len(),
        jobs.len()
    );
    let ingestor = Ingestor::new(store.clone(), true).with_hook(engine.clone());
    let configs: Vec<_> = chain
        .pilots
        .iter()
        .enumerate()
        .map(|(i, p)| chain.gateway_config(p, i, 1, std::path::Path::new("/nonexistent"), opts))
        .collect::<anyhow::Result<_>>()?;
    // Simulate on a blocking thread per core while the previous store-day is ingested.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<(String, Vec<Vec<u8>>)>>(2);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let jobs = Arc::new(std::sync::Mutex::new(jobs.into_iter()));
    let chain_pilots = chain.pilots.clone();
    let seed = chain.seed;
    let app_shoppers = chain.app_shoppers;
    let layout = chain.layout.clone();
    for _ in 0..threads {
        let tx = tx.clone();
        let jobs = jobs.clone();
        let configs = configs.clone();
        let pilots = chain_pilots.clone();
        let layout = layout.clone();
        std::thread::spawn(move || {
            let chain = Chain {
                all_stores: Vec::new(),
                pilots: pilots.clone(),
                layout,
                app_shoppers,
                seed,
                expansion: None,
            };
            loop {
                let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((p, d)) = job else { break };
                let r = simulate_day(&chain, &pilots[p], p, d, days, &configs[p]);
                if tx.blocking_send(r).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let received = now_ms();
    loop {
        let r = tokio::select! {
            _ = shutdown.cancelled() => {
                bar.finish_and_clear();
                anyhow::bail!("stopped while loading the history");
            }
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let (topic, batches) = r.context("simulating history")?;
        for chunk in batches.chunks(20) {
            let messages: Vec<Message<'_>> = chunk
                .iter()
                .map(|p| Message {
                    topic: &topic,
                    payload: p,
                    retain: false,
                    received_ms: received,
                })
                .collect();
            ingestor.ingest(&messages).await?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let sink_coupons = engine
        .stats()
        .coupons_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    let redeemed = redeem_some(store, &engine).await?;
    eprintln!(
        "dwell demo: history ready: {} events, {} coupons issued, {} redeemed",
        ingestor.stats().snapshot().events_ingested,
        sink_coupons,
        redeemed
    );
    Ok(())
}

/// Redeems about a third of the history's coupons, 5–40 minutes after issue, with an amount.
async fn redeem_some(store: &crate::store::AnyStore, engine: &Engine) -> anyhow::Result<u64> {
    let rows: Vec<(String, String, i64)> = crate::on_pool!(store, pool => sqlx::query_as(
        "SELECT code, store, issued_ms FROM coupons WHERE redeemed_ms IS NULL ORDER BY code",
    )
    .fetch_all(pool)
    .await)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut n = 0;
    for (code, store_id, issued) in rows {
        if !rng.random_bool(0.35) {
            continue;
        }
        let at = issued + rng.random_range(5..40) * 60_000;
        let amount = rng.random_range(1_500..18_000);
        if wallet::redeem(
            store,
            engine.coupon_key(),
            &code,
            &store_id,
            Some(amount),
            at,
        )
        .await
        .is_ok()
        {
            n += 1;
        }
    }
    Ok(n)
}

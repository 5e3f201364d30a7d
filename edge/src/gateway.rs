//! `dwell-edge run`: the gateway's stages joined by bounded channels.
//!
//! ```text
//! sources ──Observation──▶ pipeline stage (identify → track) ──Event──▶ outbox (sled) ──▶ uplink ──▶ broker
//!                              ▲
//! control (MQTT) ─────────────┘  retained store layout, zone-node reports
//! ```
//!
//! - Each configured source runs as its own task. Recorded sources (btsnoop, pcap, JSONL) and
//!   the simulator are paced in real time and re-stamped with the gateway's clock, so live and
//!   recorded observations share one timeline.
//! - The pipeline stage is the only owner of the tracker. It ticks once a second, appends events
//!   to the outbox in batches (every [`APPEND_EVERY`] or [`APPEND_BATCH`] events: one flush per
//!   batch, not per event), and applies pushed layouts without a restart.
//! - The uplink forwards from the outbox and deletes only on PubAck.
//! - Shutdown (the token `main` cancels on SIGINT/SIGTERM) stops the sources, lets the pipeline
//!   close open visits and append what it has, then lets the uplink drain acks in flight.
//!
//! Time comes from one [`Clock`] built on tokio's clock, so tests can pause it.

use crate::config::{Config, SourceConfig};
use crate::control::{self, Control, ControlStats};
use crate::metrics::{self, Family};
use crate::outbox::{Outbox, SledOutbox};
use crate::pipeline::Pipeline;
use crate::simulate::{self, SimParams};
use crate::source::capture::{BtsnoopSource, PcapSource};
use crate::source::jsonl::JsonlSource;
use crate::source::{Observation, Scanner, SourceError};
use crate::track::TrackEvent;
use crate::uplink::mqtt::MqttTransport;
use crate::uplink::{Uplink, UplinkState, UplinkStats};
use anyhow::Context;
use dwell_shared::node_report::Report;
use dwell_shared::wire::Event;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Observations buffered between the sources and the pipeline: about 0.4 s of a busy store
/// (20,000 sightings/s). Recorded sources wait when it is full; live radios then lose packets in
/// the kernel's buffer, which the source counters show.
pub const OBSERVATION_CAPACITY: usize = 8192;
/// Control messages buffered (layouts, node reports: a few per minute per node).
const CONTROL_CAPACITY: usize = 256;
/// The pipeline appends to the outbox at least this often…
pub const APPEND_EVERY: Duration = Duration::from_millis(200);
/// …or as soon as this many events wait: one durable flush per batch.
pub const APPEND_BATCH: usize = 500;
/// On shutdown, how long the outbox may take to empty (while connected) before the uplink drains.
const SEND_ON_STOP: Duration = Duration::from_secs(5);

/// The gateway's one clock: Unix milliseconds, advancing with tokio's clock (pausable in tests).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    unix_at_start: i64,
    start: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock::starting_at(unix)
    }

    /// A clock that reads `unix_ms` now.
    pub fn starting_at(unix_ms: i64) -> Clock {
        Clock {
            unix_at_start: unix_ms,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.unix_at_start + self.start.elapsed().as_millis() as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Per-source counters.
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub kind: &'static str,
    pub observations: AtomicU64,
    pub bad_records: AtomicU64,
    pub failed: AtomicU64,
}

/// Snapshot of the pipeline stage, refreshed every tick, for metrics.
#[derive(Clone, Debug, Default)]
struct PipelineSnapshot {
    pipeline: crate::pipeline::PipelineStats,
    tracker: crate::track::TrackStats,
    devices: usize,
    events: BTreeMap<&'static str, u64>,
    rejected_layouts: u64,
    rejected_node_reports: u64,
}

/// Everything `/metrics` reads.
struct Shared {
    sources: Vec<Arc<SourceCounters>>,
    pipeline: Mutex<PipelineSnapshot>,
    control: Arc<ControlStats>,
    uplink: watch::Receiver<UplinkStats>,
    outbox: Arc<SledOutbox>,
}

/// Runs the gateway until `shutdown` is cancelled. `origin` names the config file in errors.
pub async fn run(
    mut config: Config,
    origin: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let uplink_config = config.uplink(origin)?;
    let outbox_config = config.outbox.clone();
    let outbox = Arc::new(
        tokio::task::spawn_blocking(move || SledOutbox::open(&outbox_config))
            .await
            .context("opening the outbox")?
            .with_context(|| format!("opening the outbox at {}", config.outbox.path.display()))?,
    );
    let clock = Clock::new();

    let transport = MqttTransport::new(&uplink_config)?;
    let uplink = Uplink::new(uplink_config.clone(), outbox.clone(), transport)?;
    let uplink_stats = uplink.stats();
    let uplink_token = CancellationToken::new();
    let uplink_task = tokio::spawn(uplink.run(uplink_token.clone()));

    let control_stats = Arc::new(ControlStats::default());
    let (control_tx, control_rx) = mpsc::channel(CONTROL_CAPACITY);
    let control_task = tokio::spawn(control::run(
        uplink_config,
        control_tx,
        control_stats.clone(),
        shutdown.clone(),
    ));

    let (obs_tx, obs_rx) = mpsc::channel(OBSERVATION_CAPACITY);
    let mut sources = Vec::new();
    let mut source_tasks = Vec::new();
    for src in &config.sources {
        if matches!(src, SourceConfig::Nodes {}) {
            continue; // zone nodes arrive over the control connection
        }
        let counters = Arc::new(SourceCounters {
            kind: src.kind(),
            ..SourceCounters::default()
        });
        sources.push(counters.clone());
        let receiver = config
            .receiver_of(src)
            .unwrap_or(&config.gateway.id)
            .to_owned();
        let task = spawn_source(
            src.clone(),
            receiver,
            &config,
            clock,
            obs_tx.clone(),
            counters,
            shutdown.clone(),
        )?;
        source_tasks.push(task);
    }
    drop(obs_tx);

    let shared = Arc::new(Shared {
        sources,
        pipeline: Mutex::new(PipelineSnapshot::default()),
        control: control_stats,
        uplink: uplink_stats,
        outbox: outbox.clone(),
    });
    let metrics_task = if config.metrics.listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&config.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "{origin}: metrics.listen: cannot listen on {}; choose a free address or \"\" to turn /metrics off",
                    config.metrics.listen
                )
            })?;
        tracing::info!(address = %config.metrics.listen, "serving /metrics");
        Some(tokio::spawn(serve_metrics(
            listener,
            shared.clone(),
            shutdown.clone(),
        )))
    };

    tracing::info!(
        store = config.store(),
        gateway = %config.gateway.id,
        sources = config.sources.len(),
        "gateway running"
    );
    pipeline_stage(
        &mut config,
        obs_rx,
        control_rx,
        outbox.clone(),
        clock,
        &shared,
        shutdown.clone(),
    )
    .await?;

    for t in source_tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "a source task failed");
        }
    }
    match control_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "control connection stopped with an error"),
        Err(e) => tracing::error!(error = %e, "control task failed"),
    }
    // The visits closed at shutdown were just appended: while the broker is reachable, give the
    // uplink a bounded moment to send them before it drains (if not, they wait on disk).
    let give_up = tokio::time::Instant::now() + SEND_ON_STOP;
    while outbox.stats().records > 0
        && tokio::time::Instant::now() < give_up
        && matches!(
            shared.uplink.borrow().state,
            UplinkState::Live | UplinkState::CatchUp
        )
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    uplink_token.cancel();
    match uplink_task.await {
        Ok(Ok(stats)) => tracing::info!(acked = stats.acked_events, "uplink drained"),
        Ok(Err(e)) => tracing::error!(error = %e, "uplink stopped with an error"),
        Err(e) => tracing::error!(error = %e, "uplink task failed"),
    }
    if let Some(t) = metrics_task
        && let Err(e) = t.await
    {
        tracing::error!(error = %e, "metrics task failed");
    }
    let flush = outbox.clone();
    tokio::task::spawn_blocking(move || flush.flush()).await??;
    Ok(())
}

fn spawn_source(
    src: SourceConfig,
    receiver: String,
    config: &Config,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
    counters: Arc<SourceCounters>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let layout = config.store_layout().clone();
    Ok(match src {
        SourceConfig::Btsnoop { path, speed, .. } => {
            let s = BtsnoopSource::open(&path, &receiver)?;
            tokio::spawn(paced(s, speed, clock, tx, counters, shutdown))
        }
        SourceConfig::Pcap { path, speed, .. } => {
            let s = PcapSource::open(&path, &receiver)?;
            tokio::spawn(paced(s, speed, clock, tx, counters, shutdown))
        }
        SourceConfig::Jsonl { path, speed } => {
            let f = std::fs::File::open(&path)
                .with_context(|| format!("sources: jsonl: opening {}", path.display()))?;
            tokio::spawn(paced(
                JsonlSource::new(BufReader::new(f)),
                speed,
                clock,
                tx,
                counters,
                shutdown,
            ))
        }
        SourceConfig::Simulator {
            shoppers,
            seed,
            app_key_pool,
            app_key_seed,
        } => tokio::spawn(async move {
            // An endless store day: one simulated hour after another, each with its own seed.
            let mut hour = 0u64;
            while !shutdown.is_cancelled() {
                let params = SimParams {
                    shoppers,
                    minutes: 60,
                    seed: seed.wrapping_add(hour),
                    start_ms: clock.now_ms(),
                    app_key_pool,
                    app_key_seed,
                    ..SimParams::default()
                };
                match simulate::run(&layout, &params) {
                    Ok(sim) => {
                        let obs: Vec<_> = sim.observations().collect();
                        paced(
                            obs.into_iter(),
                            1.0,
                            clock,
                            tx.clone(),
                            counters.clone(),
                            shutdown.clone(),
                        )
                        .await;
                    }
                    Err(e) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "simulator cannot run this layout");
                        return;
                    }
                }
                hour += 1;
            }
        }),
        SourceConfig::Hci { device, .. } => {
            #[cfg(target_os = "linux")]
            {
                let beacon = config.beacon.clone();
                tokio::spawn(async move {
                    match crate::source::hci_socket::HciSource::open(device, &receiver).await {
                        Ok(mut s) => {
                            if let Some(b) = beacon {
                                let store_beacon = crate::source::hci_socket::StoreBeacon {
                                    uuid: b.uuid,
                                    store: b.store_number,
                                    zone: b.zone_number,
                                    measured_power: b.measured_power,
                                    interval:
                                        crate::source::hci_socket::StoreBeacon::DEFAULT_INTERVAL,
                                };
                                match s.advertise(&store_beacon).await {
                                    Ok(()) => tracing::info!(
                                        major = b.store_number,
                                        minor = b.zone_number,
                                        "advertising the store iBeacon"
                                    ),
                                    // Scanning goes on: presence matters more than waking apps.
                                    Err(e) => {
                                        tracing::error!(error = %e, "the controller refused to advertise the store iBeacon; scanning only")
                                    }
                                }
                            }
                            live(s, tx, counters, shutdown).await
                        }
                        Err(e) => opening_failed(&counters, &e),
                    }
                })
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = (device, tx, shutdown);
                anyhow::bail!("sources: hci needs Linux (the kernel's HCI user channel)")
            }
        }
        SourceConfig::Btleplug { adapter, .. } => tokio::spawn(async move {
            match crate::source::btleplug::BtleplugSource::open(adapter.as_deref(), &receiver).await
            {
                Ok(s) => live(s, tx, counters, shutdown).await,
                Err(e) => opening_failed(&counters, &e),
            }
        }),
        SourceConfig::Wifi { interface, .. } => {
            #[cfg(target_os = "linux")]
            {
                match crate::source::wifi_monitor::WifiMonitorSource::open(&interface, &receiver) {
                    Ok(s) => tokio::spawn(live(s, tx, counters, shutdown)),
                    Err(e) => {
                        opening_failed(&counters, &e);
                        tokio::spawn(async {})
                    }
                }
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = (interface, tx, shutdown);
                anyhow::bail!("sources: wifi needs Linux (AF_PACKET on a monitor-mode interface)")
            }
        }
        // Zone nodes arrive over the control connection; `run` does not spawn them.
        SourceConfig::Nodes {} => tokio::spawn(async {}),
    })
}

/// A live source that could not open: the gateway keeps running its other sources (and its
/// outbox and uplink), says why on the log and in `/metrics`, and `doctor` says how to fix it.
fn opening_failed(counters: &SourceCounters, e: &SourceError) {
    counters.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(source = counters.kind, error = %e, "source could not start");
}

/// Feeds a live source's observations (stamped by the source's own clock reading) until it ends,
/// fails, or shutdown.
async fn live<S: Scanner>(
    mut source: S,
    tx: mpsc::Sender<Observation>,
    counters: Arc<SourceCounters>,
    shutdown: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            _ = shutdown.cancelled() => return,
            item = source.next() => item,
        };
        match item {
            Some(Ok(obs)) => {
                counters.observations.fetch_add(1, Ordering::Relaxed);
                if tx.send(obs).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) if e.is_fatal() => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(source = counters.kind, error = %e, "source stopped");
                return;
            }
            Some(Err(e)) => {
                counters.bad_records.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = counters.kind, error = %e, "bad record skipped");
            }
            None => return,
        }
    }
}

/// Feeds recorded observations in real time (or `speed` times faster): the first is stamped now,
/// each next one after the recording's gap divided by `speed`.
async fn paced<I>(
    records: I,
    speed: f64,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
    counters: Arc<SourceCounters>,
    shutdown: CancellationToken,
) where
    I: Iterator<Item = Result<Observation, SourceError>>,
{
    // A speed that is not a positive number is read as real time (validated in the config).
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let mut first: Option<(i64, i64)> = None; // (recorded ts, stamped ts) of the first record
    for item in records {
        match item {
            Ok(mut obs) => {
                let (rec0, now0) = *first.get_or_insert_with(|| (obs.ts_ms, clock.now_ms()));
                let due = now0 + ((obs.ts_ms - rec0) as f64 / speed) as i64;
                let wait = due - clock.now_ms();
                if wait > 0 {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    }
                } else if shutdown.is_cancelled() {
                    return;
                }
                obs.ts_ms = due;
                counters.observations.fetch_add(1, Ordering::Relaxed);
                if tx.send(obs).await.is_err() {
                    return;
                }
            }
            Err(e) if e.is_fatal() => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(source = counters.kind, error = %e, "source stopped");
                return;
            }
            Err(e) => {
                counters.bad_records.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = counters.kind, error = %e, "bad record skipped");
            }
        }
    }
    tracing::info!(source = counters.kind, "recording ended");
}

async fn pipeline_stage(
    config: &mut Config,
    mut observations: mpsc::Receiver<Observation>,
    mut control: mpsc::Receiver<Control>,
    outbox: Arc<SledOutbox>,
    clock: Clock,
    shared: &Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut pipeline = Pipeline::new(config);
    let mut concluded: Vec<TrackEvent> = Vec::new();
    let mut pending: Vec<Event> = Vec::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut rejected_layouts, mut rejected_reports) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut flush = tokio::time::interval(APPEND_EVERY);
    let mut sources_open = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            obs = observations.recv(), if sources_open => match obs {
                Some(o) => pipeline.observe(&o, &mut concluded),
                None => sources_open = false,
            },
            Some(msg) = control.recv() => match msg {
                Control::Layout(layout) => {
                    let now = clock.now_ms();
                    match config.replace_layout(*layout) {
                        Ok(()) => {
                            pipeline.replace_layout(config, now, &mut concluded);
                            tracing::info!("applied the layout pushed by the cloud");
                        }
                        Err(e) => {
                            rejected_layouts += 1;
                            tracing::warn!(error = %e, "pushed layout refused; keeping the current one");
                        }
                    }
                }
                Control::NodeReport { node, payload } => match Report::decode(&payload) {
                    Ok(report) => pipeline.observe_node_report(&node, &report, clock.now_ms(), &mut concluded),
                    Err(e) => {
                        rejected_reports += 1;
                        tracing::warn!(node = %node, error = ?e, "zone-node report rejected");
                    }
                },
            },
            _ = tick.tick() => {
                pipeline.tick(clock.now_ms(), &mut concluded);
                let mut snap = shared.pipeline.lock().unwrap_or_else(|e| e.into_inner());
                *snap = PipelineSnapshot {
                    pipeline: pipeline.stats(),
                    tracker: pipeline.tracker().stats(),
                    devices: pipeline.tracker().devices(),
                    events: counts.clone(),
                    rejected_layouts,
                    rejected_node_reports: rejected_reports,
                };
            }
            _ = flush.tick() => append(&outbox, &mut pending).await?,
        }
        for e in concluded.drain(..) {
            *counts.entry(e.kind.type_name()).or_default() += 1;
            pending.push(e.into_event(0));
        }
        if pending.len() >= APPEND_BATCH {
            append(&outbox, &mut pending).await?;
        }
    }
    // Close what is open so no visit is lost across a restart, then store it.
    pipeline.finish(&mut concluded);
    pending.extend(concluded.drain(..).map(|e| e.into_event(0)));
    append(&outbox, &mut pending).await
}

/// Appends (and, when durable, flushes) on a blocking thread; the outbox numbers the events.
async fn append(outbox: &Arc<SledOutbox>, pending: &mut Vec<Event>) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut batch = std::mem::take(pending);
    let ob = outbox.clone();
    tokio::task::spawn_blocking(move || ob.append(&mut batch))
        .await
        .context("outbox append task")?
        .context("appending to the outbox")?;
    Ok(())
}

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let shared = shared.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    render(&shared),
                )
            }
        }),
    );
    let serve = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await });
    if let Err(e) = serve.await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

fn render(s: &Shared) -> String {
    let p = s.pipeline.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let u = *s.uplink.borrow();
    let o = s.outbox.stats();
    let c = &s.control;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    let by_source = |f: fn(&SourceCounters) -> &AtomicU64| {
        s.sources
            .iter()
            .map(|c| ("", vec![("source", c.kind.to_string())], load(f(c))))
            .collect()
    };
    let fams = vec![
        Family {
            name: "dwell_edge_observations_total",
            help: "Observations a source delivered.",
            kind: "counter",
            samples: by_source(|c| &c.observations),
        },
        Family {
            name: "dwell_edge_bad_records_total",
            help: "Unreadable source records (skipped, logged).",
            kind: "counter",
            samples: by_source(|c| &c.bad_records),
        },
        Family {
            name: "dwell_edge_source_failures_total",
            help: "Sources that stopped on an error.",
            kind: "counter",
            samples: by_source(|c| &c.failed),
        },
        Family::single(
            "dwell_edge_tracked_devices",
            "Devices the tracker holds.",
            "gauge",
            p.devices as f64,
        ),
        Family::single(
            "dwell_edge_sightings_total",
            "Sightings the tracker took.",
            "counter",
            p.tracker.sightings as f64,
        ),
        Family::single(
            "dwell_edge_unknown_receiver_total",
            "Sightings from receivers not in the layout (dropped).",
            "counter",
            p.tracker.unknown_receiver as f64,
        ),
        Family::single(
            "dwell_edge_evicted_cap_total",
            "Devices evicted at the max_devices cap.",
            "counter",
            p.tracker.evicted_cap as f64,
        ),
        Family::single(
            "dwell_edge_app_presence_total",
            "iOS overflow-area advertisements counted as app presence.",
            "counter",
            p.pipeline.app_presence as f64,
        ),
        Family::single(
            "dwell_edge_own_beacon_total",
            "Advertisements of the store's own beacons (ignored).",
            "counter",
            p.pipeline.own_beacons as f64,
        ),
        Family {
            name: "dwell_edge_events_total",
            help: "Events concluded by the tracker, by type.",
            kind: "counter",
            samples: p
                .events
                .iter()
                .map(|(t, n)| ("", vec![("type", (*t).to_string())], *n as f64))
                .collect(),
        },
        Family::single(
            "dwell_edge_outbox_records",
            "Events in the outbox, waiting for a PubAck.",
            "gauge",
            o.records as f64,
        ),
        Family::single(
            "dwell_edge_outbox_bytes",
            "Bytes the outbox cap counts.",
            "gauge",
            o.bytes as f64,
        ),
        Family::single(
            "dwell_edge_outbox_dropped_total",
            "Events dropped by the outbox cap (data loss: raise max_bytes).",
            "counter",
            o.dropped as f64,
        ),
        Family {
            name: "dwell_edge_uplink_state",
            help: "1 for the uplink's current state.",
            kind: "gauge",
            samples: ["disconnected", "live", "catch_up", "draining", "stopped"]
                .iter()
                .map(|st| {
                    (
                        "",
                        vec![("state", (*st).to_string())],
                        f64::from(u8::from(
                            format!("{:?}", u.state)
                                .to_lowercase()
                                .replace("catchup", "catch_up")
                                == *st,
                        )),
                    )
                })
                .collect(),
        },
        Family::single(
            "dwell_edge_uplink_acked_events_total",
            "Events the broker acknowledged.",
            "counter",
            u.acked_events as f64,
        ),
        Family::single(
            "dwell_edge_uplink_connects_total",
            "Successful broker connects.",
            "counter",
            u.connects as f64,
        ),
        Family::single(
            "dwell_edge_uplink_connect_failures_total",
            "Failed broker connect attempts.",
            "counter",
            u.connect_failures as f64,
        ),
        Family::single(
            "dwell_edge_layouts_total",
            "Store layouts received from the cloud.",
            "counter",
            load(&c.layouts),
        ),
        Family::single(
            "dwell_edge_layouts_rejected_total",
            "Pushed layouts refused by validation.",
            "counter",
            p.rejected_layouts as f64,
        ),
        Family::single(
            "dwell_edge_node_reports_total",
            "Zone-node reports received.",
            "counter",
            load(&c.node_reports),
        ),
        Family::single(
            "dwell_edge_node_reports_rejected_total",
            "Zone-node reports that failed to decode (CRC, version, length).",
            "counter",
            p.rejected_node_reports as f64,
        ),
        Family::single(
            "dwell_edge_control_rejected_total",
            "Control messages of the wrong shape or topic.",
            "counter",
            load(&c.rejected),
        ),
    ];
    metrics::render(&fams)
}

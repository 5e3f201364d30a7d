//! `dwell-cloud run`: ingest workers and the HTTP API (with the dashboard and `/metrics`) in one
//! process, on one database pool, until shutdown.
//!
//! Start-up order: open and migrate the database, register the config's `[[gateways]]`, start the
//! engine's maintenance and data retention (`[retention]`: enforced at once, then every
//! `interval_s`), bind the API's address (a taken port fails the start, before any broker
//! connection), start the ingest workers, then serve. On shutdown the API stops taking
//! connections and finishes requests in flight while every worker writes and acks what it
//! received; the database closes last.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::setup;
use crate::ingest::{IngestCounters, IngestError, Ingestor, Worker};
use crate::retention::RetentionStats;
use crate::store::{AnyStore, Store, StoreError};

/// How often the counters are logged.
const STATS_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Why `dwell-cloud run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}; check [database] url and that the database is reachable")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("engine: {0:#}")]
    Engine(anyhow::Error),
    #[error(
        "api.listen: cannot listen on {addr}: {error}; choose a free address, or \"\" to serve no HTTP"
    )]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Runs ingest and (if `[api] listen` is set) the API until `shutdown` is cancelled; returns the
/// final ingest counters.
pub async fn run(config: &Config, shutdown: CancellationToken) -> Result<IngestCounters, RunError> {
    let store = AnyStore::open(&config.database.url, config.database.max_connections).await?;
    let secrets = setup::secrets(&config.engine.secrets_dir).map_err(RunError::Engine)?;
    let (sink, sink_task) = setup::mqtt_sink(&config.broker, shutdown.clone());
    let engine = setup::build(&store, config, secrets, Arc::new(sink), false)
        .await
        .map_err(|e| RunError::Engine(e.into()))?;
    let counters = serve(config, store, engine, None, shutdown).await;
    let _ = sink_task.await;
    counters
}

/// [`run`] on an open database with a built engine (`dwell-cloud demo` seeds both first, and
/// hands over its chain's expansion data).
pub async fn serve(
    config: &Config,
    store: AnyStore,
    engine: Arc<Engine>,
    expansion: Option<Arc<crate::expansion::Dataset>>,
    shutdown: CancellationToken,
) -> Result<IngestCounters, RunError> {
    for g in &config.gateways {
        store.register_gateway(&g.store, &g.id).await?;
    }
    tracing::info!(backend = %store.backend(), gateways = config.gateways.len(),
        allow_unknown_gateways = config.ingest.allow_unknown_gateways, "database ready");
    let ingestor = Arc::new(
        Ingestor::new(store.clone(), config.ingest.allow_unknown_gateways)
            .with_hook(engine.clone()),
    );
    let maintenance = tokio::spawn(setup::maintain(
        engine.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    let retention_stats = Arc::new(RetentionStats::default());
    let retention = tokio::spawn(crate::retention::run_periodically(
        store.clone(),
        config.retention.clone(),
        retention_stats.clone(),
        shutdown.clone(),
    ));

    let listener = match config.api.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| RunError::Listen { addr, error })?,
        ),
        None => None,
    };

    let mut workers = Vec::new();
    for w in config.worker_configs() {
        tracing::info!(broker = %format_args!("{}:{}", w.host, w.port), client_id = %w.client_id,
            group = %w.group, "starting ingest worker");
        workers.push(Worker::spawn(w, ingestor.clone(), shutdown.clone())?);
    }

    let api_task = listener.map(|listener| {
        let url = listener
            .local_addr()
            .map_or_else(|_| "?".into(), |a| format!("http://{a}/"));
        tracing::info!(url = %url, "serving the API and dashboard");
        let mut state = ApiState::new(store.clone(), Some(ingestor.stats().clone()));
        state.engine = Some(engine.clone());
        state.expansion = expansion;
        state.retention = Some(retention_stats.clone());
        let state = Arc::new(state);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = api::serve(listener, state, shutdown).await {
                // Ingest goes on: losing the dashboard must not stop data from being stored.
                tracing::error!(error = %e, "the HTTP API stopped; ingest continues");
            }
        })
    });
    if api_task.is_none() {
        tracing::info!("no HTTP API ([api] listen is empty)");
    }

    let mut tick = tokio::time::interval(STATS_LOG_INTERVAL);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => log_counters(&ingestor.stats().snapshot()),
        }
    }
    tracing::info!("shutting down: writing and acknowledging what was received");
    for w in workers {
        w.join().await;
    }
    if let Some(task) = api_task {
        let _ = task.await;
    }
    let _ = maintenance.await;
    let _ = retention.await;
    store.close().await;
    let counters = ingestor.stats().snapshot();
    log_counters(&counters);
    Ok(counters)
}

fn log_counters(c: &IngestCounters) {
    tracing::info!(
        messages = c.messages,
        events = c.events_ingested,
        duplicates = c.duplicates,
        statuses = c.statuses,
        dead_letters = c.dead_total(),
        commits = c.commits,
        commit_failures = c.commit_failures,
        "ingest counters"
    );
}

//! The uplink: the forwarder that moves events from the [outbox](crate::outbox) to the broker, and
//! the only code that deletes from the outbox.
//!
//! # Delivery
//! Events are published at QoS 1 as [`EventBatch`]es on `dwell/v1/{store}/{gateway}/events`. A
//! record leaves the outbox only when the broker's PubAck for the publish that carried it arrives;
//! `publish()` returning Ok only means "queued". The forwarder keeps a map from each publish's
//! [`PublishId`] to the seqs of its batch and acks exactly those seqs when that publish is acked
//! (out of order is fine). How a PubAck's MQTT packet id becomes a [`PublishId`] is the MQTT
//! transport's business, documented in [`mqtt`].
//!
//! On any connection loss everything in flight is forgotten (the transport does not retransmit),
//! and after reconnecting the forwarder resends every record still in the outbox. Records whose
//! PubAck was lost are therefore sent twice: delivery is at-least-once, made exactly-once in
//! effect by ingest's idempotency on `(gateway, seq)`.
//!
//! # States (one async fn each, in its own file)
//! ```text
//!             connect ok, outbox empty           cancel
//!  Disconnected ───────────────────────▶ Live ───────────▶ Draining ──▶ stopped
//!     ▲  │ connect ok, outbox has records  ▲ │ lag > backlog_after_events
//!     │  └──────────────────────▶ CatchUp ─┘ ◀──────────────┘
//!     │        connection lost       │  backlog all sent → Live; cancel → Draining
//!     └──────────────────────────────┘ (from Live and CatchUp alike)
//! ```
//! - [`Disconnected`](UplinkState::Disconnected) (`disconnected.rs`): connect, with capped
//!   exponential backoff; on ConnAck publish the retained `online` status (with the backlog) and
//!   fix the *live floor* = the outbox's `next_seq`: records below it are the backlog.
//! - [`Live`](UplinkState::Live) (`live.rs`): send new records as they are appended, up to
//!   `max_inflight` batches in flight.
//! - [`CatchUp`](UplinkState::CatchUp) (`catch_up.rs`, "backlogged"): live first without starving the
//!   backlog: every `live_batches_per_backlog` live batches are followed by at least one backlog
//!   batch, and an idle live stream leaves the whole window to the backlog.
//! - [`Draining`](UplinkState::Draining) (`draining.rs`): on cancellation, send nothing new, wait up
//!   to `drain_timeout_ms` for the acks in flight, publish the retained `offline` status (a clean
//!   DISCONNECT suppresses the last will), disconnect.
//!
//! # Ordering
//! Within a batch seqs ascend; the live stream and the backlog stream each go out in seq order;
//! during catch-up live batches overtake backlog ones (that is the point of live-first), and a
//! reconnect resends. Consumers order by `(gateway, seq)`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dwell_shared::topic;
use dwell_shared::wire::{Event, EventBatch, GatewayState, GatewayStatus};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::outbox::{Outbox, OutboxError};

mod catch_up;
mod disconnected;
mod draining;
pub mod fake;
mod live;
pub mod mqtt;
#[cfg(test)]
mod tests;
mod transport;

pub use mqtt::MqttTransport;
pub use transport::{Message, PublishId, Session, Transport, TransportError, TransportEvent};

/// The broker connection and forwarding knobs. The config module maps the TOML onto this; every
/// field but `store` and `gateway` has a default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// The store id (topic level).
    pub store: String,
    /// This gateway's id (topic level).
    pub gateway: String,
    #[serde(default = "defaults::host")]
    pub host: String,
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// MQTT client id; stable across restarts so the broker keeps the session. Default
    /// `dwell-edge-{store}-{gateway}`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// TLS to the broker; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default = "defaults::keep_alive_s")]
    pub keep_alive_s: u64,
    #[serde(default = "defaults::connect_timeout_s")]
    pub connect_timeout_s: u64,
    /// Event batches published and not yet acked, at most.
    #[serde(default = "defaults::max_inflight")]
    pub max_inflight: u16,
    /// Events per batch, at most.
    #[serde(default = "defaults::batch_max_events")]
    pub batch_max_events: usize,
    /// Stored event bytes per batch, at most (the payload is a little larger).
    #[serde(default = "defaults::batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// During catch-up, live batches sent before at least one backlog batch must go.
    #[serde(default = "defaults::live_batches_per_backlog")]
    pub live_batches_per_backlog: u32,
    /// When unsent live events pile up beyond this (the broker is slower than the store), the
    /// pile becomes backlog and fresh events go first again.
    #[serde(default = "defaults::backlog_after_events")]
    pub backlog_after_events: u64,
    #[serde(default = "defaults::backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "defaults::backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// On shutdown, how long to wait for the acks in flight.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

/// TLS to the broker, verified against the given CA (rustls with the ring provider).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate chain and key, for brokers that want client certificates.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

mod defaults {
    pub fn host() -> String {
        "127.0.0.1".into()
    }
    pub fn port() -> u16 {
        1883
    }
    pub fn keep_alive_s() -> u64 {
        30
    }
    pub fn connect_timeout_s() -> u64 {
        10
    }
    pub fn max_inflight() -> u16 {
        32
    }
    pub fn batch_max_events() -> usize {
        500
    }
    pub fn batch_max_bytes() -> usize {
        256 * 1024
    }
    pub fn live_batches_per_backlog() -> u32 {
        4
    }
    pub fn backlog_after_events() -> u64 {
        20_000
    }
    pub fn backoff_initial_ms() -> u64 {
        500
    }
    pub fn backoff_max_ms() -> u64 {
        30_000
    }
    pub fn drain_timeout_ms() -> u64 {
        5_000
    }
}

/// A config value that can't work.
#[derive(Debug, thiserror::Error)]
#[error("uplink config: `{key}` {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl UplinkConfig {
    /// Defaults for everything but the ids.
    pub fn new(store: impl Into<String>, gateway: impl Into<String>) -> Self {
        UplinkConfig {
            store: store.into(),
            gateway: gateway.into(),
            host: defaults::host(),
            port: defaults::port(),
            client_id: None,
            username: None,
            password: None,
            tls: None,
            keep_alive_s: defaults::keep_alive_s(),
            connect_timeout_s: defaults::connect_timeout_s(),
            max_inflight: defaults::max_inflight(),
            batch_max_events: defaults::batch_max_events(),
            batch_max_bytes: defaults::batch_max_bytes(),
            live_batches_per_backlog: defaults::live_batches_per_backlog(),
            backlog_after_events: defaults::backlog_after_events(),
            backoff_initial_ms: defaults::backoff_initial_ms(),
            backoff_max_ms: defaults::backoff_max_ms(),
            drain_timeout_ms: defaults::drain_timeout_ms(),
        }
    }

    /// The MQTT client id in use.
    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("dwell-edge-{}-{}", self.store, self.gateway))
    }

    /// Checks values that would fail later, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, problem: &str| {
            Err(ConfigError {
                key,
                problem: problem.to_owned(),
            })
        };
        if let Err(e) = topic::events(&self.store, &self.gateway) {
            return Err(ConfigError {
                key: "store/gateway",
                problem: format!("cannot be used in a topic: {e}"),
            });
        }
        if self.host.is_empty() {
            return err("host", "is empty: set the broker's host name or address");
        }
        if self.max_inflight == 0 {
            return err("max_inflight", "must be at least 1");
        }
        if self.batch_max_events == 0 || self.batch_max_bytes == 0 {
            return err("batch_max_events", "and batch_max_bytes must be at least 1");
        }
        if self.live_batches_per_backlog == 0 {
            return err("live_batches_per_backlog", "must be at least 1");
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            return err(
                "backoff_initial_ms",
                "must be at least 1 and at most backoff_max_ms",
            );
        }
        if self.password.is_some() && self.username.is_none() {
            return err("password", "is set without `username`: set both or neither");
        }
        if let Some(tls) = &self.tls
            && tls.client_cert_file.is_some() != tls.client_key_file.is_some()
        {
            return err(
                "tls.client_cert_file",
                "and tls.client_key_file must be set together",
            );
        }
        Ok(())
    }

    fn backoff_initial(&self) -> Duration {
        Duration::from_millis(self.backoff_initial_ms)
    }

    fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }
}

/// The forwarder's state; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UplinkState {
    Disconnected,
    Live,
    /// Connected, with a backlog being caught up while live data still flows ("backlogged").
    CatchUp,
    Draining,
    Stopped,
}

/// Counters and the current state, for metrics, `doctor` and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkStats {
    pub state: UplinkState,
    /// Successful connects.
    pub connects: u64,
    /// Failed connect attempts.
    pub connect_failures: u64,
    pub live_batches: u64,
    pub backlog_batches: u64,
    /// Events whose PubAck arrived (and that were deleted from the outbox).
    pub acked_events: u64,
    /// Batches in flight when the connection dropped or the drain timed out (resent later).
    pub abandoned_batches: u64,
}

impl Default for UplinkStats {
    fn default() -> Self {
        UplinkStats {
            state: UplinkState::Disconnected,
            connects: 0,
            connect_failures: 0,
            live_batches: 0,
            backlog_batches: 0,
            acked_events: 0,
            abandoned_batches: 0,
        }
    }
}

/// Why the forwarder stopped before being asked to.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("uplink: could not encode a payload: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("uplink TLS setup: {0}")]
    Tls(String),
}

/// One batch in flight: which seqs its PubAck deletes.
#[derive(Debug)]
struct Inflight {
    seqs: Vec<u64>,
}

/// What the forwarder moves into, and why it left its state.
type Next = Result<UplinkState, UplinkError>;

/// Why a step inside a state stopped: the connection (retry) or the disk (give up).
#[derive(Debug)]
enum Stop {
    Lost(TransportError),
    Fatal(UplinkError),
}

impl From<TransportError> for Stop {
    fn from(e: TransportError) -> Self {
        Stop::Lost(e)
    }
}

impl From<UplinkError> for Stop {
    fn from(e: UplinkError) -> Self {
        Stop::Fatal(e)
    }
}

impl From<OutboxError> for Stop {
    fn from(e: OutboxError) -> Self {
        Stop::Fatal(e.into())
    }
}

/// The forwarder: owns a [`Transport`] and reads and acks an [`Outbox`].
#[derive(Debug)]
pub struct Uplink<O, T> {
    config: UplinkConfig,
    outbox: O,
    transport: T,
    events_topic: String,
    status_topic: String,
    /// The outbox's `next_seq` after each (durable) append.
    appended: watch::Receiver<u64>,
    inflight: HashMap<PublishId, Inflight>,
    /// Records with seq below this, present at connect, are the backlog.
    live_floor: u64,
    /// Next seq to consider for a live batch (>= `live_floor`).
    live_cursor: u64,
    /// Next seq to consider for a backlog batch (< `live_floor` while there is backlog).
    backlog_cursor: u64,
    /// Live batches sent since the last backlog batch, during catch-up.
    live_since_backlog: u32,
    backoff: Duration,
    stats: UplinkStats,
    stats_tx: watch::Sender<UplinkStats>,
    transitions: Option<mpsc::UnboundedSender<UplinkState>>,
}

impl<O: Outbox, T: Transport> Uplink<O, T> {
    /// A forwarder for `outbox` over `transport`. Fails on an invalid config.
    pub fn new(config: UplinkConfig, outbox: O, transport: T) -> Result<Self, UplinkError> {
        config.validate()?;
        // Validated above: the ids make topics.
        let events_topic = topic::events(&config.store, &config.gateway).expect("validated ids");
        let status_topic = topic::status(&config.store, &config.gateway).expect("validated ids");
        let appended = outbox.subscribe();
        let (stats_tx, _) = watch::channel(UplinkStats::default());
        Ok(Uplink {
            backoff: config.backoff_initial(),
            config,
            outbox,
            transport,
            events_topic,
            status_topic,
            appended,
            inflight: HashMap::new(),
            live_floor: 0,
            live_cursor: 0,
            backlog_cursor: 0,
            live_since_backlog: 0,
            stats: UplinkStats::default(),
            stats_tx,
            transitions: None,
        })
    }

    /// Watches the counters and state.
    pub fn stats(&self) -> watch::Receiver<UplinkStats> {
        self.stats_tx.subscribe()
    }

    /// Every state the forwarder enters, in order (tests; a watch would skip quick ones).
    pub fn transitions(&mut self) -> mpsc::UnboundedReceiver<UplinkState> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.transitions = Some(tx);
        rx
    }

    /// Runs until `shutdown` is cancelled, then drains and returns the final counters. Errors
    /// only on outbox failure (the disk), never on the network: the network is retried forever.
    pub async fn run(
        mut self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<UplinkStats, UplinkError> {
        let mut state = UplinkState::Disconnected;
        loop {
            self.enter(state);
            state = match state {
                UplinkState::Disconnected => self.disconnected(&shutdown).await?,
                UplinkState::Live => self.live(&shutdown).await?,
                UplinkState::CatchUp => self.catch_up(&shutdown).await?,
                UplinkState::Draining => self.draining().await?,
                UplinkState::Stopped => break,
            };
        }
        // Acks are not flushed one by one (see the outbox spec); make them durable on the way out.
        self.outbox.flush()?;
        Ok(self.stats)
    }

    fn enter(&mut self, state: UplinkState) {
        tracing::debug!(?state, inflight = self.inflight.len(), "uplink state");
        self.stats.state = state;
        self.publish_stats();
        if let Some(tx) = &self.transitions {
            let _ = tx.send(state);
        }
    }

    fn publish_stats(&self) {
        self.stats_tx.send_replace(self.stats);
    }

    /// After a ConnAck: everything unacked in the outbox below `next_seq` is the backlog.
    fn on_connected(&mut self) -> Next {
        self.backoff = self.config.backoff_initial();
        self.stats.connects += 1;
        let outbox = self.outbox.stats();
        self.live_floor = *self.appended.borrow_and_update();
        self.live_cursor = self.live_floor;
        self.backlog_cursor = 0;
        self.live_since_backlog = 0;
        let status = GatewayStatus {
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            backlog: Some(outbox.records),
            ..GatewayStatus::new(
                &self.config.store,
                &self.config.gateway,
                GatewayState::Online,
                now_ms(),
            )
        };
        if let Err(error) = self.publish_status(&status) {
            return Ok(self.on_connection_lost(error));
        }
        tracing::info!(backlog = outbox.records, "uplink connected");
        Ok(if outbox.records > 0 {
            UplinkState::CatchUp
        } else {
            UplinkState::Live
        })
    }

    fn publish_status(&mut self, status: &GatewayStatus) -> Result<PublishId, TransportError> {
        // A GatewayStatus always serializes (strings, numbers and enums only).
        let payload = serde_json::to_vec(status).expect("status serializes");
        self.transport.publish(Message {
            topic: self.status_topic.clone(),
            payload,
            retain: true,
        })
    }

    /// Forgets what was in flight: it is all still in the outbox and goes again after reconnect.
    fn on_connection_lost(&mut self, error: TransportError) -> UplinkState {
        tracing::warn!(%error, inflight = self.inflight.len(), "uplink: broker connection lost; events stay in the outbox");
        self.stats.abandoned_batches += self.inflight.len() as u64;
        self.inflight.clear();
        UplinkState::Disconnected
    }

    fn on_event(&mut self, event: TransportEvent) -> Result<(), Stop> {
        match event {
            TransportEvent::Acked(id) => {
                // Acks for publishes we don't track (the status) are fine to ignore.
                if let Some(batch) = self.inflight.remove(&id) {
                    let deleted = self.outbox.ack(&batch.seqs)?;
                    self.stats.acked_events += deleted;
                    self.publish_stats();
                }
            }
        }
        Ok(())
    }

    fn window_open(&self) -> bool {
        self.inflight.len() < usize::from(self.config.max_inflight)
    }

    fn has_backlog(&self) -> bool {
        self.backlog_cursor < self.live_floor
    }

    /// Sends batches until the window is full or there is nothing to send. With `backlog`, backlog
    /// batches share the window: live first, but one backlog batch after every
    /// `live_batches_per_backlog` live ones, and all of the window when live is idle.
    fn fill_window(&mut self, backlog: bool) -> Result<(), Stop> {
        while self.window_open() {
            let backlog_turn = backlog
                && self.has_backlog()
                && self.live_since_backlog >= self.config.live_batches_per_backlog;
            if backlog_turn && self.send_backlog()? {
                self.live_since_backlog = 0;
                continue;
            }
            if self.send_live()? {
                self.live_since_backlog += 1;
                continue;
            }
            // Live is idle: the backlog may use the window.
            if backlog && self.has_backlog() && self.send_backlog()? {
                self.live_since_backlog = 0;
                continue;
            }
            break;
        }
        Ok(())
    }

    /// One live batch from `live_cursor`, if any is stored; `false`: nothing to send.
    fn send_live(&mut self) -> Result<bool, Stop> {
        let end = *self.appended.borrow();
        if self.live_cursor >= end {
            return Ok(false);
        }
        let events = self.read(self.live_cursor, end)?;
        let Some(last) = events.last() else {
            self.live_cursor = end;
            return Ok(false);
        };
        self.live_cursor = last.seq + 1;
        self.publish_batch(events)?;
        self.stats.live_batches += 1;
        Ok(true)
    }

    /// One backlog batch from `backlog_cursor`; at the end of the backlog, closes it.
    fn send_backlog(&mut self) -> Result<bool, Stop> {
        let events = self.read(self.backlog_cursor, self.live_floor)?;
        let Some(last) = events.last() else {
            self.backlog_cursor = self.live_floor;
            return Ok(false);
        };
        self.backlog_cursor = last.seq + 1;
        self.publish_batch(events)?;
        self.stats.backlog_batches += 1;
        Ok(true)
    }

    fn read(&self, from: u64, to: u64) -> Result<Vec<Event>, Stop> {
        Ok(self.outbox.read(
            from,
            to,
            self.config.batch_max_events,
            self.config.batch_max_bytes,
        )?)
    }

    fn publish_batch(&mut self, events: Vec<Event>) -> Result<(), Stop> {
        let seqs = events.iter().map(|e| e.seq).collect();
        let batch = EventBatch::new(&self.config.store, &self.config.gateway, now_ms(), events);
        let payload = serde_json::to_vec(&batch).map_err(UplinkError::from)?;
        let id = self.transport.publish(Message {
            topic: self.events_topic.clone(),
            payload,
            retain: false,
        })?;
        self.inflight.insert(id, Inflight { seqs });
        Ok(())
    }

    /// Turns an internal stop into the next state: the network is retried, the disk is fatal.
    fn stopped(&mut self, stop: Stop) -> Next {
        match stop {
            Stop::Lost(error) => Ok(self.on_connection_lost(error)),
            Stop::Fatal(error) => Err(error),
        }
    }

    /// In live mode: if unsent live events pile up past `backlog_after_events`, turn the pile
    /// into backlog so fresh events go first again. Returns whether it did.
    fn demote_lagging_live(&mut self) -> bool {
        let end = *self.appended.borrow();
        if end.saturating_sub(self.live_cursor) <= self.config.backlog_after_events {
            return false;
        }
        tracing::info!(
            lag = end - self.live_cursor,
            "uplink: broker slower than the store; older events become backlog"
        );
        self.backlog_cursor = self.live_cursor;
        self.live_floor = end;
        self.live_cursor = end;
        self.live_since_backlog = 0;
        true
    }
}

/// Wall-clock now, unix ms (for `sent_ms` and status `ts_ms`: timestamps, never timers).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! Ingest: gateways' MQTT messages into the database, each event exactly once in effect, and
//! everything refused kept as a counted dead letter — never a crash, never silent loss.
//!
//! # Delivery
//! A [`Worker`] holds one MQTT connection with a persistent session (`clean_session = false`,
//! stable client id) and **manual acks**. It subscribes to the shared subscription
//! `$share/{group}/dwell/v1/+/+/events` (the broker spreads the gateways' batches over every
//! worker of the group, on any number of machines) and to `dwell/v1/+/+/status` (retained; every
//! worker sees every status, applying one twice is harmless).
//!
//! The network task hands each Publish to the writer task over a **bounded** queue (see
//! [`queue_capacity`]); when the writer falls behind, the network task waits, stops reading from
//! the broker, and TCP backpressure leaves the rest queued at the broker (persistent, with the
//! limits of `deploy/mosquitto/dwell.conf`) instead of in this process's memory. The writer takes
//! what is queued (up to `max_messages_per_tx`), turns it into one [`WriteSet`], writes that in
//! **one transaction**, and only after the commit acks each message (PubAck), through a separate
//! ack task so the writer never waits on the MQTT request channel (which only the network task
//! drains: a writer waiting there while the network task waits on the full queue would be a
//! deadlock). So:
//! - a message is acked only once everything it produced — events, dead letters, status — is
//!   durable; a crash or kill before that leaves it unacked and the broker redelivers it;
//! - redeliveries, reordering and two workers racing on the same events are harmless because
//!   `events` is keyed by `(gateway, seq)` with `ON CONFLICT DO NOTHING` (the first copy wins),
//!   counted as duplicates;
//! - a database outage stalls acks and the writer retries the same group with backoff: nothing
//!   is acked that isn't stored. The queue fills, the network task stops reading and the broker
//!   keeps the rest; if the broker drops the connection for missed keep-alives meanwhile, it
//!   resends everything unacked after the reconnect;
//! - an ack is sent only on the connection the message came in on; after a reconnect the broker
//!   resends, and the resend is stored idempotently and acked then.
//!
//! # Refusals (dead letters)
//! Checked in this order; each refusal is one `dead_letters` row (reason, detail, raw payload) and
//! one count in [`IngestCounters::dead_letters`], and the message is then acked so the broker
//! doesn't redeliver it forever. A message redelivered before its ack arrived (a crash or a lost
//! connection between commit and ack) is refused again and counted again, but its row is keyed by
//! reason, topic and payload and is stored once:
//! 1. `bad_topic` — not an events or status topic of v1 (or ids that can't be topic levels);
//! 2. `unknown_gateway` — the topic's gateway is not registered (`[[gateways]]` in the config,
//!    or claimed on first sight under `allow_unknown_gateways`, demo only);
//! 3. `wrong_store` — the gateway is registered to another store than the topic's: a gateway
//!    speaking for another store;
//! 4. `malformed_json` / `unsupported_version` — the payload isn't a v1 batch (or status);
//! 5. `topic_mismatch` — the payload's store/gateway differ from the topic's
//!    ([`EventBatch::matches_topic`]); broker ACLs are per topic, so the topic is the trustworthy
//!    half;
//! 6. per event, inside an accepted batch (the rest of the batch is stored): `malformed_event`
//!    (fails to parse, seq beyond `i64`, NUL characters) and `unknown_event_type` (a newer
//!    gateway's type: kept, with the event's JSON, until this build learns it);
//! 7. `store_rejected` — the database refused the message's rows for a reason retrying can't
//!    fix (found by writing the group's messages one by one after a non-transient error).
//!
//! Events are stored with their JSON exactly as sent, so fields this build doesn't know survive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dwell_shared::topic::{self, Topic};
use dwell_shared::wire::{Event, EventBatch, EventKind, GatewayState, GatewayStatus, Version};
use rumqttc::{AsyncClient, MqttOptions, Outgoing, Packet, Publish, QoS};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::store::{DeadLetterRow, EventRow, StatusUpdate, Store, StoreError, WriteSet};

/// The default shared-subscription group: every `dwell-cloud` worker of one deployment.
pub const DEFAULT_GROUP: &str = "dwell-cloud";

/// How many received Publishes may wait between the network task and the writer: enough for the
/// writer to take a full group while the next ones arrive, small enough that a slow database
/// holds a few MiB here at most (the broker holds the rest). The high-water mark is exported as
/// `queue_high_water`.
pub fn queue_capacity(max_messages_per_tx: usize) -> usize {
    (4 * max_messages_per_tx).clamp(64, 4096)
}

/// Requests (acks, subscribes) queued to the MQTT event loop: one ack per message in flight.
const REQUEST_CAPACITY: usize = 4096;

/// Largest MQTT packet accepted (a catch-up batch of 500 events is ~100 KiB).
const MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;

/// Reconnect and database-retry backoff bounds.
const BACKOFF_INITIAL: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why a message or event was refused: the dead letter's `reason` and the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterReason {
    BadTopic,
    UnknownGateway,
    WrongStore,
    MalformedJson,
    UnsupportedVersion,
    TopicMismatch,
    MalformedEvent,
    UnknownEventType,
    StoreRejected,
}

impl DeadLetterReason {
    pub const ALL: [DeadLetterReason; 9] = [
        DeadLetterReason::BadTopic,
        DeadLetterReason::UnknownGateway,
        DeadLetterReason::WrongStore,
        DeadLetterReason::MalformedJson,
        DeadLetterReason::UnsupportedVersion,
        DeadLetterReason::TopicMismatch,
        DeadLetterReason::MalformedEvent,
        DeadLetterReason::UnknownEventType,
        DeadLetterReason::StoreRejected,
    ];

    /// The stable label stored in `dead_letters.reason` and used as the metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DeadLetterReason::BadTopic => "bad_topic",
            DeadLetterReason::UnknownGateway => "unknown_gateway",
            DeadLetterReason::WrongStore => "wrong_store",
            DeadLetterReason::MalformedJson => "malformed_json",
            DeadLetterReason::UnsupportedVersion => "unsupported_version",
            DeadLetterReason::TopicMismatch => "topic_mismatch",
            DeadLetterReason::MalformedEvent => "malformed_event",
            DeadLetterReason::UnknownEventType => "unknown_event_type",
            DeadLetterReason::StoreRejected => "store_rejected",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Counters

/// Live counters, shared by every worker of a process (cheap atomics; read with
/// [`IngestStats::snapshot`]).
#[derive(Debug, Default)]
pub struct IngestStats {
    messages: AtomicU64,
    event_batches: AtomicU64,
    events_ingested: AtomicU64,
    duplicates: AtomicU64,
    statuses: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    acks: AtomicU64,
    stale_acks_skipped: AtomicU64,
    queued: AtomicU64,
    queue_high_water: AtomicU64,
    dead_letters: [AtomicU64; DeadLetterReason::ALL.len()],
}

/// A snapshot of [`IngestStats`]: what the lead's `/metrics` exports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestCounters {
    /// Messages whose outcome was committed (accepted or dead-lettered).
    pub messages: u64,
    /// Event batches accepted.
    pub event_batches: u64,
    /// Events stored (new rows).
    pub events_ingested: u64,
    /// Events already stored (redelivery, reorder, another worker): not stored again.
    pub duplicates: u64,
    /// Status messages accepted.
    pub statuses: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Transactions that failed (retried, or split to find a message the database refuses).
    pub commit_failures: u64,
    /// PubAcks sent.
    pub acks: u64,
    /// Acks not sent because the connection the message came on is gone (it will be resent).
    pub stale_acks_skipped: u64,
    /// Messages received and waiting for the database now, and the most there ever were.
    pub queued: u64,
    pub queue_high_water: u64,
    /// Dead letters by reason (every reason present, zeros included).
    pub dead_letters: Vec<(DeadLetterReason, u64)>,
}

impl IngestCounters {
    pub fn dead(&self, reason: DeadLetterReason) -> u64 {
        self.dead_letters
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    pub fn dead_total(&self) -> u64 {
        self.dead_letters.iter().map(|(_, n)| n).sum()
    }
}

impl IngestStats {
    pub fn snapshot(&self) -> IngestCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IngestCounters {
            messages: get(&self.messages),
            event_batches: get(&self.event_batches),
            events_ingested: get(&self.events_ingested),
            duplicates: get(&self.duplicates),
            statuses: get(&self.statuses),
            commits: get(&self.commits),
            commit_failures: get(&self.commit_failures),
            acks: get(&self.acks),
            stale_acks_skipped: get(&self.stale_acks_skipped),
            queued: get(&self.queued),
            queue_high_water: get(&self.queue_high_water),
            dead_letters: DeadLetterReason::ALL
                .iter()
                .map(|r| (*r, get(&self.dead_letters[r.index()])))
                .collect(),
        }
    }

    fn add(&self, t: &Tally, inserted: u64) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.messages, t.messages);
        add(&self.event_batches, t.event_batches);
        add(&self.events_ingested, inserted);
        add(&self.duplicates, t.events.saturating_sub(inserted));
        add(&self.statuses, t.statuses);
        add(&self.commits, 1);
        for (i, n) in t.dead.iter().enumerate() {
            add(&self.dead_letters[i], *n);
        }
    }
}

/// What a group of messages will count once committed.
#[derive(Debug, Default)]
struct Tally {
    messages: u64,
    event_batches: u64,
    events: u64,
    statuses: u64,
    dead: [u64; DeadLetterReason::ALL.len()],
}

// ---------------------------------------------------------------------------------------------
// Gateway registration

/// Which gateways may publish, and for which store.
///
/// The database's `gateways` table is the authority (the config's `[[gateways]]` are written into
/// it at start-up; an operator API can add more), so every worker agrees. Known gateways are
/// cached; moving a gateway to another store takes effect on workers' restart.
#[derive(Debug)]
pub struct Registry<S> {
    store: S,
    allow_unknown: bool,
    known: Mutex<HashMap<String, String>>,
}

impl<S: Store> Registry<S> {
    pub fn new(store: S, allow_unknown: bool) -> Self {
        Registry {
            store,
            allow_unknown,
            known: Mutex::default(),
        }
    }

    /// Whether `gateway` may publish on `store`'s topics; the refusal says why.
    async fn check(
        &self,
        store: &str,
        gateway: &str,
        now_ms: i64,
    ) -> Result<Result<(), (DeadLetterReason, String)>, StoreError> {
        let cached = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(gateway)
            .cloned();
        let registered_store = match cached {
            Some(s) => s,
            None => {
                let row = match self.store.gateway(gateway).await? {
                    Some(row) if row.registered || self.allow_unknown => row,
                    Some(_) | None if !self.allow_unknown => {
                        return Ok(Err((
                            DeadLetterReason::UnknownGateway,
                            format!(
                                "gateway {gateway:?} is not registered; add it to [[gateways]] \
                                 with store = {store:?}"
                            ),
                        )));
                    }
                    _ => self.store.claim_gateway(store, gateway, now_ms).await?,
                };
                self.known
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(gateway.to_owned(), row.store.clone());
                row.store
            }
        };
        if registered_store != store {
            return Ok(Err((
                DeadLetterReason::WrongStore,
                format!(
                    "gateway {gateway:?} is registered to store {registered_store:?}, \
                     not {store:?}"
                ),
            )));
        }
        Ok(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------
// Turning messages into rows

/// One received MQTT message, as ingest sees it.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// Delivered from the broker's retained store (an old status), not live.
    pub retain: bool,
    /// When this worker received it, unix ms (the cloud's clock).
    pub received_ms: i64,
}

/// An [`EventBatch`] with each event left as its raw JSON: events are parsed one by one (a bad
/// one doesn't sink the batch) and stored as sent.
#[derive(Deserialize)]
struct RawBatch<'a> {
    #[allow(dead_code)] // read only for its check: a batch of another version is refused
    v: Version,
    store: String,
    gateway: String,
    sent_ms: i64,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// What one group of messages became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub messages: u64,
    /// New event rows.
    pub inserted: u64,
    /// Events that were already stored.
    pub duplicates: u64,
    pub dead_letters: u64,
}

/// What runs after a group's transaction commits and before its messages are acknowledged: the
/// engine (identity, profiles, campaigns). It sees every event of the group, new or redelivered,
/// and must be idempotent. An `Err` (transient) makes ingest retry the whole group.
pub trait CommitHook: Send + Sync + std::fmt::Debug {
    fn committed<'a>(
        &'a self,
        events: &'a [crate::store::EventRow],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;
}

/// Turns messages into one transaction each group, against a [`Store`]. Shared by every worker
/// of a process (through an `Arc`).
#[derive(Debug)]
pub struct Ingestor<S> {
    store: S,
    registry: Registry<S>,
    stats: Arc<IngestStats>,
    hook: Option<Arc<dyn CommitHook>>,
}

impl<S: Store> Ingestor<S> {
    pub fn new(store: S, allow_unknown_gateways: bool) -> Self {
        Ingestor {
            registry: Registry::new(store.clone(), allow_unknown_gateways),
            store,
            stats: Arc::default(),
            hook: None,
        }
    }

    /// Runs `hook` after every commit, before the acks.
    pub fn with_hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Writes a group of messages in one transaction. Ok means committed: the caller may ack
    /// every message of the group. Err is a transient database failure: ack nothing and retry.
    ///
    /// If the database refuses the group for a reason that retrying can't fix, the messages are
    /// written one by one, and the one(s) it refuses become `store_rejected` dead letters.
    pub async fn ingest(&self, messages: &[Message<'_>]) -> Result<Outcome, StoreError> {
        let mut set = WriteSet::default();
        let mut tally = Tally::default();
        for m in messages {
            self.prepare(m, &mut set, &mut tally).await?;
        }
        match self.commit(&set, &tally).await {
            Ok(outcome) => Ok(outcome),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, messages = messages.len(),
                    "database refused a group; writing its messages one by one");
                let mut total = Outcome::default();
                for m in messages {
                    let o = self.ingest_one(m).await?;
                    total.messages += o.messages;
                    total.inserted += o.inserted;
                    total.duplicates += o.duplicates;
                    total.dead_letters += o.dead_letters;
                }
                Ok(total)
            }
        }
    }

    async fn ingest_one(&self, m: &Message<'_>) -> Result<Outcome, StoreError> {
        let mut set = WriteSet::default();
        let mut tally = Tally::default();
        self.prepare(m, &mut set, &mut tally).await?;
        match self.commit(&set, &tally).await {
            Err(e) if !e.is_transient() => {
                tracing::error!(topic = m.topic, error = %e,
                    "database refused a message; dead-lettered as store_rejected");
                let mut set = WriteSet::default();
                let mut tally = Tally {
                    messages: 1,
                    ..Tally::default()
                };
                dead_letter(
                    &mut set,
                    &mut tally,
                    m,
                    DeadLetterReason::StoreRejected,
                    e.to_string(),
                    m.payload,
                );
                self.commit(&set, &tally).await
            }
            other => other,
        }
    }

    async fn commit(&self, set: &WriteSet, tally: &Tally) -> Result<Outcome, StoreError> {
        match self.store.write(set).await {
            Ok(c) => {
                self.stats.add(tally, c.inserted);
                if let Some(hook) = &self.hook
                    && !set.events.is_empty()
                {
                    // Stored already; the retry after a hook failure finds them as duplicates.
                    hook.committed(&set.events).await?;
                }
                Ok(Outcome {
                    messages: tally.messages,
                    inserted: c.inserted,
                    duplicates: tally.events.saturating_sub(c.inserted),
                    dead_letters: tally.dead.iter().sum(),
                })
            }
            Err(e) => {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Adds what `m` produces to `set`: its events, status, or dead letters. Errs only when the
    /// registration lookup can't reach the database.
    async fn prepare(
        &self,
        m: &Message<'_>,
        set: &mut WriteSet,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        tally.messages += 1;
        let parsed = match topic::parse(m.topic) {
            Ok(t @ (Topic::Events { .. } | Topic::Status { .. })) => t,
            Ok(_) => {
                let detail = "not an events or status topic".to_owned();
                dead_letter(set, tally, m, DeadLetterReason::BadTopic, detail, m.payload);
                return Ok(());
            }
            Err(e) => {
                dead_letter(
                    set,
                    tally,
                    m,
                    DeadLetterReason::BadTopic,
                    e.to_string(),
                    m.payload,
                );
                return Ok(());
            }
        };
        // Both shapes have a store and a gateway.
        let (store, gateway) = (
            parsed.store().expect("events/status topics name a store"),
            parsed
                .gateway()
                .expect("events/status topics name a gateway"),
        );
        if let Err((reason, detail)) = self.registry.check(store, gateway, m.received_ms).await? {
            dead_letter(set, tally, m, reason, detail, m.payload);
            return Ok(());
        }
        match parsed {
            Topic::Events { .. } => prepare_batch(m, &parsed, set, tally),
            _ => prepare_status(m, &parsed, set, tally),
        }
        Ok(())
    }
}

fn dead_letter(
    set: &mut WriteSet,
    tally: &mut Tally,
    m: &Message<'_>,
    reason: DeadLetterReason,
    detail: String,
    payload: &[u8],
) {
    tracing::debug!(topic = m.topic, reason = reason.label(), %detail, "dead letter");
    tally.dead[reason.index()] += 1;
    set.dead_letters.push(DeadLetterRow {
        received_ms: m.received_ms,
        topic: m.topic.to_owned(),
        reason: reason.label(),
        // PostgreSQL text can't hold NUL; the detail quotes outside input.
        detail: detail.replace('\0', "\u{fffd}"),
        payload: payload.to_vec(),
        key: Some(dead_letter_key(reason, m.topic, payload)),
    });
}

/// What identifies a refused message (or event): a redelivery has the same reason, topic and
/// bytes, and is stored once. Each part is length-prefixed so no two inputs run together.
fn dead_letter_key(reason: DeadLetterReason, topic: &str, payload: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [reason.label().as_bytes(), topic.as_bytes(), payload] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// `malformed_json`, or `unsupported_version` when the wire's version check is what failed.
fn json_refusal(e: &serde_json::Error) -> DeadLetterReason {
    // The wording comes from `dwell_shared::wire::Version` (its tests pin it).
    if e.to_string().contains("payload version `v`") {
        DeadLetterReason::UnsupportedVersion
    } else {
        DeadLetterReason::MalformedJson
    }
}

fn prepare_batch(m: &Message<'_>, topic: &Topic<'_>, set: &mut WriteSet, tally: &mut Tally) {
    let batch: RawBatch<'_> = match serde_json::from_slice(m.payload) {
        Ok(b) => b,
        Err(e) => {
            dead_letter(set, tally, m, json_refusal(&e), e.to_string(), m.payload);
            return;
        }
    };
    let RawBatch {
        store,
        gateway,
        sent_ms,
        events,
        ..
    } = batch;
    let header = EventBatch::new(store, gateway, sent_ms, Vec::new());
    if !header.matches_topic(topic) {
        let detail = format!(
            "payload says store {:?} gateway {:?}, the topic says otherwise",
            header.store, header.gateway
        );
        dead_letter(
            set,
            tally,
            m,
            DeadLetterReason::TopicMismatch,
            detail,
            m.payload,
        );
        return;
    }
    tally.event_batches += 1;
    set.seen.push((header.gateway.clone(), m.received_ms));
    set.events.reserve(events.len());
    for raw in events {
        let text = raw.get();
        let refuse = |set: &mut WriteSet, tally: &mut Tally, reason, detail: String| {
            dead_letter(set, tally, m, reason, detail, text.as_bytes());
        };
        let event: Event = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                refuse(set, tally, DeadLetterReason::MalformedEvent, e.to_string());
                continue;
            }
        };
        if matches!(event.kind, EventKind::Unknown) {
            let detail = format!("seq {}: event type unknown to this build", event.seq);
            refuse(set, tally, DeadLetterReason::UnknownEventType, detail);
            continue;
        }
        let Ok(seq) = i64::try_from(event.seq) else {
            let detail = format!("seq {} is beyond the range stored (i64)", event.seq);
            refuse(set, tally, DeadLetterReason::MalformedEvent, detail);
            continue;
        };
        // PostgreSQL can hold neither a NUL in text nor `\u0000` in jsonb; no real id has one.
        if text.contains("\\u0000") {
            let detail = format!("seq {seq}: contains a NUL character");
            refuse(set, tally, DeadLetterReason::MalformedEvent, detail);
            continue;
        }
        let kind = event.kind.type_name();
        let zone = match &event.kind {
            EventKind::VisitStart { zone, .. } => zone.clone(),
            EventKind::ZoneEnter { zone, .. }
            | EventKind::ZoneDwell { zone, .. }
            | EventKind::ZoneExit { zone, .. } => Some(zone.clone()),
            _ => None,
        };
        let device = event.kind.device().map(|d| d.device.clone());
        tally.events += 1;
        set.events.push(EventRow {
            gateway: header.gateway.clone(),
            seq,
            store: header.store.clone(),
            ts_ms: event.ts_ms,
            kind,
            device,
            zone,
            payload: text.to_owned(),
            received_ms: m.received_ms,
        });
    }
}

fn prepare_status(m: &Message<'_>, topic: &Topic<'_>, set: &mut WriteSet, tally: &mut Tally) {
    let status: GatewayStatus = match serde_json::from_slice(m.payload) {
        Ok(s) => s,
        Err(e) => {
            dead_letter(set, tally, m, json_refusal(&e), e.to_string(), m.payload);
            return;
        }
    };
    if !status.matches_topic(topic) {
        let detail = format!(
            "payload says store {:?} gateway {:?}, the topic says otherwise",
            status.store, status.gateway
        );
        dead_letter(
            set,
            tally,
            m,
            DeadLetterReason::TopicMismatch,
            detail,
            m.payload,
        );
        return;
    }
    tally.statuses += 1;
    set.statuses.push(StatusUpdate {
        gateway: status.gateway,
        online: status.state == GatewayState::Online,
        ts_ms: status.ts_ms,
        backlog: status.backlog.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        version: status.version.map(|v| v.replace('\0', "")),
        // A retained status may be old: it proves the gateway was alive when it wrote it, not
        // now. A live one proves it now.
        seen_ms: if m.retain {
            status.ts_ms.min(m.received_ms)
        } else {
            m.received_ms
        },
    });
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------------
// The MQTT worker

/// One worker's broker connection and batching knobs.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    pub host: String,
    pub port: u16,
    /// Unique per worker and stable across its restarts (the broker keeps its session).
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Shared-subscription group.
    pub group: String,
    pub keep_alive_s: u64,
    /// Messages written per transaction, at most.
    pub max_messages_per_tx: usize,
    /// On shutdown, how long to finish writing and acking what was received.
    pub drain_timeout: Duration,
    /// TLS to the broker (`mqtts://`); plain TCP when `None`.
    pub tls: Option<BrokerTls>,
}

/// TLS to the broker, verified against the CA certificates of one PEM file: rustls with the ring
/// provider chosen explicitly, never a process-wide default (NOTES-dependencies.md, "rustls
/// provider clash"). Built with the gateway's own builder
/// ([`dwell_edge::uplink::mqtt::tls_config`]), so both ends of the broker accept the same CA
/// files and report the same errors. The file is read once, here: every connection made with
/// it (ingest workers, the coupon publisher) trusts exactly what was read.
#[derive(Clone)]
pub struct BrokerTls {
    ca_file: PathBuf,
    config: rumqttc::TlsConfiguration,
}

impl BrokerTls {
    /// Reads the CA certificate(s) in `ca_file` (PEM). The error names the file and what is
    /// wrong with it.
    pub fn from_ca_file(ca_file: impl Into<PathBuf>) -> Result<BrokerTls, String> {
        let ca_file = ca_file.into();
        let tls = dwell_edge::uplink::TlsConfig {
            ca_file: ca_file.clone(),
            client_cert_file: None,
            client_key_file: None,
        };
        match dwell_edge::uplink::mqtt::tls_config(&tls) {
            Ok(config) => Ok(BrokerTls { ca_file, config }),
            Err(dwell_edge::uplink::UplinkError::Tls(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The CA file the certificates came from.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The rumqttc transport for a connection with this TLS set-up.
    pub fn transport(&self) -> rumqttc::Transport {
        rumqttc::Transport::tls_with_config(self.config.clone())
    }
}

/// Equal when read from the same file (the parsed certificates have no equality).
impl PartialEq for BrokerTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
    }
}

impl Eq for BrokerTls {}

impl std::fmt::Debug for BrokerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTls")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("group", &self.group)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("max_messages_per_tx", &self.max_messages_per_tx)
            .field("drain_timeout", &self.drain_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl WorkerConfig {
    /// Defaults for everything but where the broker is and who this worker is.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        WorkerConfig {
            host: host.into(),
            port,
            client_id: client_id.into(),
            username: None,
            password: None,
            group: DEFAULT_GROUP.into(),
            keep_alive_s: 30,
            max_messages_per_tx: 100,
            drain_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest: shared-subscription group {group:?} can't be used: {error}")]
    Group {
        group: String,
        error: topic::TopicError,
    },
}

/// A received Publish and the connection it came on.
#[derive(Debug)]
struct Delivery {
    publish: Publish,
    connection: u64,
    received_ms: i64,
}

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    subacks: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Waits until the worker's subscriptions are acknowledged (both of them, once).
    pub async fn subscribed(&mut self) {
        let _ = self.subacks.wait_for(|n| *n >= 2).await;
    }

    /// Waits for the worker to stop (after its shutdown token is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// An ingest worker: one MQTT connection feeding an [`Ingestor`].
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// Starts a worker; it runs until `shutdown` is cancelled, then writes and acks what it has
    /// received (within `drain_timeout`) and disconnects.
    pub fn spawn<S: Store>(
        config: WorkerConfig,
        ingestor: Arc<Ingestor<S>>,
        shutdown: CancellationToken,
    ) -> Result<WorkerHandle, IngestError> {
        let filter = topic::shared_events(&config.group).map_err(|error| IngestError::Group {
            group: config.group.clone(),
            error,
        })?;
        let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
        options
            .set_manual_acks(true)
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)))
            .set_max_packet_size(MAX_PACKET_BYTES, 64 * 1024)
            .set_request_channel_capacity(REQUEST_CAPACITY);
        if let Some(user) = &config.username {
            options.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        if let Some(tls) = &config.tls {
            options.set_transport(tls.transport());
        }
        let (client, eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let (subacks_tx, subacks) = watch::channel(0);
        let task = tokio::spawn(worker_main(
            config, filter, client, eventloop, ingestor, subacks_tx, shutdown,
        ));
        Ok(WorkerHandle { subacks, task })
    }
}

async fn worker_main<S: Store>(
    config: WorkerConfig,
    filter: String,
    client: AsyncClient,
    eventloop: rumqttc::EventLoop,
    ingestor: Arc<Ingestor<S>>,
    subacks: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let max_group = config.max_messages_per_tx.max(1);
    let (tx, rx) = mpsc::channel(queue_capacity(max_group));
    let connection = Arc::new(AtomicU64::new(0));
    let stop_network = CancellationToken::new();
    let disconnecting = CancellationToken::new();
    let network = tokio::spawn(network(
        eventloop,
        client.clone(),
        filter,
        tx,
        ingestor.stats().clone(),
        connection.clone(),
        subacks,
        stop_network.clone(),
        disconnecting.clone(),
    ));
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(send_acks(
        acks_rx,
        client.clone(),
        connection,
        ingestor.stats().clone(),
    ));
    let writer = Writer {
        acks: acks_tx,
        ingestor,
        max_group,
    };
    writer.run(rx, &shutdown, config.drain_timeout).await;
    drop(writer);
    // Acks already queued go out before the DISCONNECT (one request channel, in order).
    let mut acker = acker;
    if tokio::time::timeout(config.drain_timeout, &mut acker)
        .await
        .is_err()
    {
        acker.abort();
    }
    disconnecting.cancel();
    let _ = client.try_disconnect();
    let mut network = network;
    if tokio::time::timeout(config.drain_timeout, &mut network)
        .await
        .is_err()
    {
        stop_network.cancel();
        let _ = network.await;
    }
    tracing::info!(client_id = %config.client_id, "ingest worker stopped");
}

/// Polls the MQTT event loop: (re)connects, subscribes on every ConnAck, hands Publishes over.
#[allow(clippy::too_many_arguments)]
async fn network(
    mut eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    filter: String,
    tx: mpsc::Sender<Delivery>,
    stats: Arc<IngestStats>,
    connection: Arc<AtomicU64>,
    subacks: watch::Sender<u64>,
    stop: CancellationToken,
    disconnecting: CancellationToken,
) {
    let mut backoff = BACKOFF_INITIAL;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = BACKOFF_INITIAL;
                let n = connection.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::info!(
                    connection = n,
                    session_present = ack.session_present,
                    "ingest connected to the broker"
                );
                // try_: this task is the one draining the request channel, so it must not wait
                // on it; it has room (acks are few compared to REQUEST_CAPACITY).
                for f in [filter.as_str(), topic::ALL_STATUSES] {
                    if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                        tracing::error!(error = %e, filter = f, "ingest could not subscribe");
                    }
                }
            }
            Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                subacks.send_modify(|n| *n += 1);
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                let delivery = Delivery {
                    publish,
                    connection: connection.load(Ordering::SeqCst),
                    received_ms: now_ms(),
                };
                let sent = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = tx.send(delivery) => r.is_ok(),
                };
                // Not sent: the writer stopped (shutting down); the message stays unacked and
                // comes back. The queue's length is the channel's own, never an estimate.
                if sent {
                    let queued = (tx.max_capacity() - tx.capacity()) as u64;
                    stats.queued.store(queued, Ordering::Relaxed);
                    stats.queue_high_water.fetch_max(queued, Ordering::Relaxed);
                }
            }
            Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if disconnecting.is_cancelled() {
                    return;
                }
                let error = dwell_edge::uplink::mqtt::describe(&e);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64,
                    "ingest lost the broker; reconnecting");
                // Stopping while the broker is away: nothing to drain, no reason to wait.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = disconnecting.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Sends the acks of committed messages, on the connection each came in on only.
async fn send_acks(
    mut acks: mpsc::UnboundedReceiver<Delivery>,
    client: AsyncClient,
    connection: Arc<AtomicU64>,
    stats: Arc<IngestStats>,
) {
    while let Some(d) = acks.recv().await {
        if d.connection != connection.load(Ordering::SeqCst) {
            stats.stale_acks_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if client.ack(&d.publish).await.is_ok() {
            stats.acks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Groups deliveries into transactions and hands them to the ack task after each commit.
struct Writer<S> {
    acks: mpsc::UnboundedSender<Delivery>,
    ingestor: Arc<Ingestor<S>>,
    max_group: usize,
}

impl<S: Store> Writer<S> {
    async fn run(
        &self,
        mut rx: mpsc::Receiver<Delivery>,
        shutdown: &CancellationToken,
        drain_timeout: Duration,
    ) {
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                d = rx.recv() => match d {
                    Some(d) => d,
                    None => return,
                },
            };
            let mut group = vec![first];
            while group.len() < self.max_group {
                match rx.try_recv() {
                    Ok(d) => group.push(d),
                    Err(_) => break,
                }
            }
            let queued = &self.ingestor.stats().queued;
            queued.store(rx.len() as u64, Ordering::Relaxed);
            self.write_and_ack(group, shutdown, None).await;
        }
        // Draining: write and ack what was received before the shutdown, once; anything later
        // stays unacked and the broker redelivers it.
        let deadline = tokio::time::Instant::now() + drain_timeout;
        let mut left = rx.len();
        while left > 0 {
            let mut group = Vec::new();
            while group.len() < self.max_group.min(left) {
                match rx.try_recv() {
                    Ok(d) => group.push(d),
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                break;
            }
            left -= group.len();
            self.write_and_ack(group, shutdown, Some(deadline)).await;
        }
    }

    /// Writes a group, retrying transient failures with backoff (while running, or until the
    /// drain deadline), then acks it. A group that can't be written is not acked.
    async fn write_and_ack(
        &self,
        group: Vec<Delivery>,
        shutdown: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) {
        let messages: Vec<Message<'_>> = group
            .iter()
            .map(|d| Message {
                topic: &d.publish.topic,
                payload: &d.publish.payload,
                retain: d.publish.retain,
                received_ms: d.received_ms,
            })
            .collect();
        let mut backoff = BACKOFF_INITIAL;
        loop {
            match self.ingestor.ingest(&messages).await {
                Ok(_) => break,
                Err(e) => {
                    let give_up = match deadline {
                        Some(d) => tokio::time::Instant::now() + backoff > d,
                        None => shutdown.is_cancelled(),
                    };
                    if give_up {
                        tracing::warn!(error = %e, messages = group.len(),
                            "database unavailable while stopping; leaving messages unacked for redelivery");
                        return;
                    }
                    tracing::error!(error = %e, messages = group.len(),
                        retry_in_ms = backoff.as_millis() as u64,
                        "database write failed; messages stay unacked, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled(), if deadline.is_none() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        drop(messages);
        for mut d in group {
            // The ack needs only the packet id and QoS; the payload can go now.
            d.publish.payload = Default::default();
            let _ = self.acks.send(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_labels_and_indexes() {
        let labels: std::collections::BTreeSet<_> =
            DeadLetterReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), DeadLetterReason::ALL.len());
        for (i, r) in DeadLetterReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn version_errors_are_told_apart_from_malformed_json() {
        let e = serde_json::from_str::<RawBatch<'_>>(
            r#"{"v":2,"store":"s","gateway":"g","sent_ms":1,"events":[]}"#,
        )
        .err()
        .unwrap();
        assert_eq!(json_refusal(&e), DeadLetterReason::UnsupportedVersion);
        let e = serde_json::from_str::<RawBatch<'_>>(r#"{"v":1,"store":"s""#)
            .err()
            .unwrap();
        assert_eq!(json_refusal(&e), DeadLetterReason::MalformedJson);
        let e = serde_json::from_str::<RawBatch<'_>>(r#"{"store":"s","gateway":"g"}"#)
            .err()
            .unwrap();
        assert_eq!(json_refusal(&e), DeadLetterReason::UnsupportedVersion);
    }
}

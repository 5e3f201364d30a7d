//! The outbox: every event the gateway produces is written here before anything tries to send it,
//! and leaves only when the broker's PubAck for the publish that carried it arrives. It is what
//! makes "a gateway that loses its broker for a day loses nothing" and "a gateway killed mid-write
//! loses nothing it acknowledged" true (PRODUCT.md, "Users' expectations").
//!
//! The store is behind the small [`Outbox`] trait so the forwarder ([`crate::uplink`]) and tests can
//! run against another implementation; [`SledOutbox`] is the one the product ships.
//!
//! # Spec (each rule has a named test in `edge/tests/outbox.rs`)
//!
//! **Key layout.** One sled database with two trees:
//! - `records`: key = the event's `seq` as a **big-endian u64** (8 bytes), value = the event as
//!   [`wire::Event`](dwell_shared::wire::Event) JSON (the same bytes that go inside an
//!   `EventBatch`). Big-endian keys sort numerically, so iterating the tree is send order
//!   (`iteration_is_send_order`).
//! - `meta`: `layout` = `1` (the on-disk format version), `next_seq` = the first sequence number
//!   not yet *reserved* (big-endian u64), `dropped` = records dropped by the cap, ever (big-endian
//!   u64).
//!
//! **Sequence numbers** are assigned by [`Outbox::append`], are strictly increasing and are never
//! reused, across restarts and crashes included (`seq_survives_restart_and_is_never_reused`).
//! Numbers are handed out from reserved blocks: before the first number of a block is used,
//! `meta/next_seq` is set past the block and the database is flushed. A restart continues after
//! the reserved block (and after the highest stored key, whichever is larger), so a crash can skip
//! at most one block ([`SEQ_BLOCK`] numbers) but never repeat one. Seqs are therefore monotonic
//! with possible gaps (also from the cap): ingest must not treat a gap as loss.
//!
//! **What is durable when.** With `durable = true` (the default), [`Outbox::append`] returns only
//! after its records are flushed to disk (`append_durable_returns_after_flush`): an event whose
//! append returned survives `kill -9` (`kill9_loses_nothing_acknowledged`). Each call is one sled
//! batch and one flush, so appending many events per call amortises the flush (see the numbers in
//! `examples/outbox_bench.rs`). With `durable = false`, records are durable after the next
//! explicit [`Outbox::flush`] or sled's background flush (every 500 ms). Caveat, from sled
//! 0.34.7 itself: on Linux its flush uses `sync_file_range`, which does not flush the drive's cache
//! or file metadata, so a *power cut* can still lose the last writes; a process crash cannot.
//!
//! **Acks** delete exactly the given seqs ([`Outbox::ack`]), in any order
//! (`ack_deletes_only_acked`); acking a seq that is not stored (already acked, or dropped by the
//! cap) does nothing. Acks are not flushed by themselves: an ack lost in a crash makes the record
//! be sent again, which idempotent ingest on `(gateway, seq)` absorbs. At-least-once, never
//! at-most-once.
//!
//! **Cap.** The outbox holds at most `max_bytes` of records, counted as key + value bytes by a
//! running counter kept in memory (sled's `len()` is a full scan) and rebuilt by one scan at open.
//! When an append takes it over the cap, the **oldest** records are deleted until it fits again
//! and each is counted in the persisted `dropped` counter (`cap_drops_oldest_and_counts`). The
//! counter is flushed with the append that dropped. Disk use is larger than the logical bytes
//! (sled's log and page overhead: measured by the bench); size the cap for that.
//!
//! **Restart** recovers every record not acked (`reopen_recovers_unacked`), their byte count, the
//! drop counter, and the sequence (see above).
//!
//! **Concurrency.** [`SledOutbox`] is `Send + Sync`: one producer (the tracker) appends while the
//! forwarder reads and acks. Appends, acks and drops are serialized by one mutex so the counters
//! stay exact; reads take no lock. Calls block on disk I/O (a durable append waits for a flush):
//! async callers should append from `spawn_blocking` or a dedicated thread. [`Outbox::subscribe`]
//! tells waiters the new `next_seq` after each append is stored (and flushed, when durable).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dwell_shared::wire::Event;
use serde::Deserialize;
use tokio::sync::watch;

/// How many sequence numbers one reservation covers: one extra flush per this many appended
/// events, and at most this many numbers skipped after a crash.
pub const SEQ_BLOCK: u64 = 4096;

/// Default cap: 1 GiB of records (about 5M typical events; sled needs roughly twice that on disk).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// How long `open` waits for sled's directory lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The first seq a new outbox hands out. Not 0, so a zero on the wire always means "unset", and
/// `dwell-edge replay` numbers the same way.
pub const FIRST_SEQ: u64 = 1;

/// The on-disk layout version written to `meta/layout`.
const LAYOUT_VERSION: u64 = 1;
const META_LAYOUT: &[u8] = b"layout";
const META_NEXT_SEQ: &[u8] = b"next_seq";
const META_DROPPED: &[u8] = b"dropped";
/// Bytes of a record's key, counted against the cap with its value.
const KEY_LEN: u64 = 8;

/// Where and how the outbox stores records.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The sled directory (created if missing).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The cap on stored records, key + value bytes; oldest are dropped beyond it.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Whether `append` returns only after its records are flushed.
    #[serde(default = "default_durable")]
    pub durable: bool,
}

/// Where the packaged gateway keeps its outbox (the systemd unit's StateDirectory).
pub const DEFAULT_PATH: &str = "/var/lib/dwell-edge/outbox";

fn default_path() -> PathBuf {
    DEFAULT_PATH.into()
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig::new(DEFAULT_PATH)
    }
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

fn default_durable() -> bool {
    true
}

impl OutboxConfig {
    /// The defaults (1 GiB cap, durable appends) at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OutboxConfig {
            path: path.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            durable: true,
        }
    }
}

/// Counters of an outbox, cheap to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// The seq the next appended event gets (at least; a new reservation may skip ahead).
    pub next_seq: u64,
    /// Records stored (not acked, not dropped).
    pub records: u64,
    /// Their key + value bytes, what the cap counts.
    pub bytes: u64,
    /// Records dropped by the cap, ever (persisted).
    pub dropped: u64,
    /// Records that could not be decoded and were removed since open (disk corruption).
    pub corrupt: u64,
}

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "outbox store at {path}: {source} (check the directory exists, is writable and the disk is not full)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("outbox at {path} is in use by another process (is another dwell-edge running?)")]
    Locked { path: PathBuf },
    #[error("outbox store: {0}")]
    Store(#[from] sled::Error),
    #[error("outbox at {path} has layout version {found}, this build reads {LAYOUT_VERSION}")]
    Layout { path: PathBuf, found: u64 },
    #[error("outbox: could not encode event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("outbox: one event of {len} bytes is larger than the whole cap of {cap} bytes")]
    TooLarge { len: u64, cap: u64 },
}

/// A durable, capped, seq-ordered store of events awaiting delivery. See the module spec.
pub trait Outbox: Send + Sync {
    /// Assigns each event the next seq (overwriting its `seq` field), stores them in one batch
    /// and, when durable, flushes before returning. Returns the seqs assigned.
    fn append(&self, events: &mut [Event]) -> Result<Range<u64>, OutboxError>;

    /// Stored events with `from <= seq < to`, in seq order, at most `max_events` of them and at
    /// most `max_bytes` of stored bytes (always at least one event if any is in range).
    fn read(
        &self,
        from: u64,
        to: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, OutboxError>;

    /// Deletes exactly these seqs (those whose PubAck arrived); returns how many were stored.
    fn ack(&self, seqs: &[u64]) -> Result<u64, OutboxError>;

    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), OutboxError>;

    fn stats(&self) -> OutboxStats;

    /// Receives the new `next_seq` after every append (the forwarder's "new data" signal).
    fn subscribe(&self) -> watch::Receiver<u64>;
}

impl<T: Outbox + ?Sized> Outbox for std::sync::Arc<T> {
    fn append(&self, events: &mut [Event]) -> Result<Range<u64>, OutboxError> {
        (**self).append(events)
    }
    fn read(
        &self,
        from: u64,
        to: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, OutboxError> {
        (**self).read(from, to, max_events, max_bytes)
    }
    fn ack(&self, seqs: &[u64]) -> Result<u64, OutboxError> {
        (**self).ack(seqs)
    }
    fn flush(&self) -> Result<(), OutboxError> {
        (**self).flush()
    }
    fn stats(&self) -> OutboxStats {
        (**self).stats()
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        (**self).subscribe()
    }
}

/// The shipped [`Outbox`], on sled 0.34.
#[derive(Debug)]
pub struct SledOutbox {
    db: sled::Db,
    records: sled::Tree,
    meta: sled::Tree,
    max_bytes: u64,
    durable: bool,
    state: Mutex<State>,
    appended: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    next_seq: u64,
    /// Seqs below this are reserved durably (`meta/next_seq`).
    reserved_until: u64,
    records: u64,
    bytes: u64,
    dropped: u64,
    corrupt: u64,
}

fn be(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

impl SledOutbox {
    /// Opens (or creates) the outbox, recovering every unacked record: one scan of the records
    /// rebuilds the counters.
    pub fn open(config: &OutboxConfig) -> Result<Self, OutboxError> {
        // sled releases its directory lock from background threads a moment after the last
        // handle is dropped, so a quick reopen (a restart in-process, tests) can find it still
        // held: retry briefly before saying another process has the outbox open.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(&config.path)
                .flush_every_ms(Some(500))
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    return Err(OutboxError::Locked {
                        path: config.path.clone(),
                    });
                }
                Err(source) => {
                    return Err(OutboxError::Open {
                        path: config.path.clone(),
                        source,
                    });
                }
            }
        };
        Self::from_db(db, &config.path, config.max_bytes, config.durable)
    }

    fn from_db(
        db: sled::Db,
        path: &Path,
        max_bytes: u64,
        durable: bool,
    ) -> Result<Self, OutboxError> {
        let records = db.open_tree("records")?;
        let meta = db.open_tree("meta")?;
        match meta.get(META_LAYOUT)?.as_deref().and_then(read_u64) {
            None => {
                meta.insert(META_LAYOUT, &be(LAYOUT_VERSION))?;
            }
            Some(LAYOUT_VERSION) => {}
            Some(found) => {
                return Err(OutboxError::Layout {
                    path: path.to_owned(),
                    found,
                });
            }
        }
        let (mut count, mut bytes, mut last) = (0u64, 0u64, None);
        for kv in records.iter() {
            let (k, v) = kv?;
            count += 1;
            bytes += k.len() as u64 + v.len() as u64;
            last = read_u64(&k);
        }
        let reserved = meta.get(META_NEXT_SEQ)?.as_deref().and_then(read_u64);
        let next_seq = reserved
            .unwrap_or(FIRST_SEQ)
            .max(last.map_or(FIRST_SEQ, |l| l + 1));
        let dropped = meta
            .get(META_DROPPED)?
            .as_deref()
            .and_then(read_u64)
            .unwrap_or(0);
        let (appended, _) = watch::channel(next_seq);
        Ok(SledOutbox {
            db,
            records,
            meta,
            max_bytes,
            durable,
            state: Mutex::new(State {
                next_seq,
                // Nothing at or past `next_seq` is reserved by this process yet: the first append
                // reserves (and flushes) a fresh block.
                reserved_until: next_seq,
                records: count,
                bytes,
                dropped,
                corrupt: 0,
            }),
            appended,
        })
    }

    /// Bytes sled uses on disk (its own accounting; includes log overhead).
    pub fn size_on_disk(&self) -> Result<u64, OutboxError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Flushes and returns how many bytes that flush wrote: 0 when every write was already
    /// durable (how the tests check that a durable append flushed before returning).
    pub fn flush_bytes(&self) -> Result<usize, OutboxError> {
        Ok(self.db.flush()?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the counters at worst stale, never unsafe: keep
        // going rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes oldest records until the byte count fits the cap. Called with the lock held.
    fn enforce_cap(&self, st: &mut State) -> Result<(), OutboxError> {
        if st.bytes <= self.max_bytes {
            return Ok(());
        }
        let before = st.dropped;
        while st.bytes > self.max_bytes {
            let Some((k, _)) = self.records.first()? else {
                break;
            };
            if let Some(v) = self.records.remove(&k)? {
                st.bytes -= k.len() as u64 + v.len() as u64;
                st.records -= 1;
                st.dropped += 1;
            }
        }
        self.meta.insert(META_DROPPED, &be(st.dropped))?;
        tracing::error!(
            dropped = st.dropped - before,
            dropped_total = st.dropped,
            cap_bytes = self.max_bytes,
            "outbox full: dropped oldest events (broker unreachable for too long, or the cap is too small)"
        );
        Ok(())
    }
}

impl Outbox for SledOutbox {
    fn append(&self, events: &mut [Event]) -> Result<Range<u64>, OutboxError> {
        let range = {
            let mut st = self.lock();
            let n = events.len() as u64;
            let first = st.next_seq;
            if first + n > st.reserved_until {
                // Reserve durably before any number of the block is used or returned.
                let until = first + n.max(SEQ_BLOCK);
                self.meta.insert(META_NEXT_SEQ, &be(until))?;
                self.db.flush()?;
                st.reserved_until = until;
            }
            let mut batch = sled::Batch::default();
            let mut added = 0u64;
            for (i, event) in events.iter_mut().enumerate() {
                event.seq = first + i as u64;
                let json = serde_json::to_vec(event)?;
                let len = KEY_LEN + json.len() as u64;
                if len > self.max_bytes {
                    return Err(OutboxError::TooLarge {
                        len,
                        cap: self.max_bytes,
                    });
                }
                added += len;
                batch.insert(&be(event.seq), json);
            }
            // Seqs are consumed from here on, even if the write below fails: never reused.
            st.next_seq = first + n;
            self.records.apply_batch(batch)?;
            st.records += n;
            st.bytes += added;
            self.enforce_cap(&mut st)?;
            first..first + n
        };
        if self.durable {
            self.db.flush()?;
        }
        self.appended.send_replace(range.end);
        Ok(range)
    }

    fn read(
        &self,
        from: u64,
        to: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, OutboxError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let mut size = 0usize;
        let mut corrupt = Vec::new();
        for kv in self.records.range(be(from)..be(to)) {
            let (k, v) = kv?;
            if out.len() >= max_events || (!out.is_empty() && size + v.len() > max_bytes) {
                break;
            }
            match serde_json::from_slice::<Event>(&v) {
                Ok(event) => {
                    size += v.len();
                    out.push(event);
                }
                Err(error) => {
                    tracing::error!(seq = read_u64(&k), %error, "outbox: undecodable record removed (disk corruption?)");
                    corrupt.push(k);
                }
            }
        }
        if !corrupt.is_empty() {
            let mut st = self.lock();
            for k in corrupt {
                if let Some(v) = self.records.remove(&k)? {
                    st.bytes -= k.len() as u64 + v.len() as u64;
                    st.records -= 1;
                    st.corrupt += 1;
                }
            }
        }
        Ok(out)
    }

    fn ack(&self, seqs: &[u64]) -> Result<u64, OutboxError> {
        let mut st = self.lock();
        let mut n = 0;
        for &seq in seqs {
            // `remove` returns the old value, so the counters only count what really was there
            // (an ack for a record the cap already dropped changes nothing).
            if let Some(v) = self.records.remove(be(seq))? {
                st.bytes -= KEY_LEN + v.len() as u64;
                st.records -= 1;
                n += 1;
            }
        }
        Ok(n)
    }

    fn flush(&self) -> Result<(), OutboxError> {
        self.db.flush()?;
        Ok(())
    }

    fn stats(&self) -> OutboxStats {
        let st = self.lock();
        OutboxStats {
            next_seq: st.next_seq,
            records: st.records,
            bytes: st.bytes,
            dropped: st.dropped,
            corrupt: st.corrupt,
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

impl Drop for SledOutbox {
    fn drop(&mut self) {
        // Make acks durable on a clean stop, so a restart does not resend what was delivered.
        if let Err(error) = self.db.flush() {
            tracing::warn!(%error, "outbox: final flush failed; some delivered events may be sent again");
        }
    }
}

/// An in-memory [`Outbox`] with the same ordering and ack rules and no durability or cap: for
/// tests of the stages around the outbox, and tools that need no disk.
#[derive(Debug)]
pub struct MemOutbox {
    state: Mutex<std::collections::BTreeMap<u64, Event>>,
    next_seq: Mutex<u64>,
    appended: watch::Sender<u64>,
}

impl Default for MemOutbox {
    fn default() -> Self {
        MemOutbox {
            state: Mutex::default(),
            next_seq: Mutex::new(FIRST_SEQ),
            appended: watch::channel(FIRST_SEQ).0,
        }
    }
}

impl MemOutbox {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Outbox for MemOutbox {
    fn append(&self, events: &mut [Event]) -> Result<Range<u64>, OutboxError> {
        let mut next = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let first = *next;
        for event in events.iter_mut() {
            event.seq = *next;
            *next += 1;
            map.insert(event.seq, event.clone());
        }
        let range = first..*next;
        drop(map);
        drop(next);
        self.appended.send_replace(range.end);
        Ok(range)
    }

    fn read(
        &self,
        from: u64,
        to: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, OutboxError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut size = 0;
        for event in map.range(from..to).map(|(_, e)| e) {
            let len = serde_json::to_vec(event)?.len();
            if out.len() >= max_events || (!out.is_empty() && size + len > max_bytes) {
                break;
            }
            size += len;
            out.push(event.clone());
        }
        Ok(out)
    }

    fn ack(&self, seqs: &[u64]) -> Result<u64, OutboxError> {
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(seqs.iter().filter(|s| map.remove(s).is_some()).count() as u64)
    }

    fn flush(&self) -> Result<(), OutboxError> {
        Ok(())
    }

    fn stats(&self) -> OutboxStats {
        let map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        OutboxStats {
            next_seq: *self.next_seq.lock().unwrap_or_else(|e| e.into_inner()),
            records: map.len() as u64,
            bytes: 0,
            dropped: 0,
            corrupt: 0,
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

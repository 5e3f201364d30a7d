//! Outbox numbers on this machine: `cargo run --release -p dwell-edge --example outbox_bench [N]`.
//!
//! Measures [`SledOutbox`] on the outbox workload — durable appends one event per flush vs
//! batched, bulk appends, bytes on disk for N (default 1,000,000) events, reopen (recovery scan)
//! time, and draining (read + ack) — and the same appends against a minimal append-only segment
//! log (length-prefixed records in files, `fsync` per append when durable), the simplest
//! alternative design, to see what sled's generality costs.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dwell_edge::outbox::{Outbox, OutboxConfig, SledOutbox};
use dwell_shared::wire::{DeviceRef, Event, EventKind};

fn event(i: u64) -> Event {
    Event {
        seq: 0,
        ts_ms: 1_760_000_000_000 + i as i64,
        kind: EventKind::ZoneDwell {
            device: DeviceRef::new(format!("h:{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
            zone: "cosmetics".into(),
            dwell_s: 60,
        },
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            // Allocated blocks, like `du`, not the apparent size of sparse files.
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    total
}

fn rate(n: u64, t: Instant) -> String {
    let s = t.elapsed().as_secs_f64();
    format!("{:>10.0}/s ({n} in {s:.2} s)", n as f64 / s)
}

fn sled_appends(dir: &Path, name: &str, durable: bool, per_append: u64, n: u64) -> SledOutbox {
    let outbox = SledOutbox::open(&OutboxConfig {
        durable,
        max_bytes: u64::MAX,
        ..OutboxConfig::new(dir.join(name))
    })
    .unwrap();
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut batch: Vec<Event> = (i..i + per_append).map(event).collect();
        outbox.append(&mut batch).unwrap();
        i += per_append;
    }
    outbox.flush().unwrap();
    println!(
        "sled   append durable={durable:<5} {per_append:>4} events/append: {}",
        rate(n, t)
    );
    outbox
}

/// The alternative: an append-only segment log. Records are `[u32 len][u64 seq][json]`, in
/// segment files of up to 64 MiB; a durable append is write + `fdatasync`. (Acks would be a second
/// log of acked seqs, and a segment is deleted when all of it is acked; not needed to measure
/// appends and space.)
struct SegmentLog {
    dir: PathBuf,
    file: BufWriter<File>,
    segment_bytes: u64,
    next_seq: u64,
    durable: bool,
}

const SEGMENT_MAX: u64 = 64 << 20;

impl SegmentLog {
    fn open(dir: PathBuf, durable: bool) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let file = Self::segment(&dir, 0);
        SegmentLog {
            dir,
            file,
            segment_bytes: 0,
            next_seq: 0,
            durable,
        }
    }

    fn segment(dir: &Path, first_seq: u64) -> BufWriter<File> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{first_seq:020}.seg")))
            .unwrap();
        BufWriter::with_capacity(1 << 20, f)
    }

    fn append(&mut self, events: &mut [Event]) {
        for e in events.iter_mut() {
            e.seq = self.next_seq;
            self.next_seq += 1;
            let json = serde_json::to_vec(e).unwrap();
            self.file
                .write_all(&(json.len() as u32).to_le_bytes())
                .unwrap();
            self.file.write_all(&e.seq.to_le_bytes()).unwrap();
            self.file.write_all(&json).unwrap();
            self.segment_bytes += 12 + json.len() as u64;
        }
        if self.durable {
            self.file.flush().unwrap();
            self.file.get_ref().sync_data().unwrap();
        }
        if self.segment_bytes >= SEGMENT_MAX {
            self.file.flush().unwrap();
            self.file.get_ref().sync_data().unwrap();
            self.file = Self::segment(&self.dir, self.next_seq);
            self.segment_bytes = 0;
        }
    }

    fn finish(&mut self) {
        self.file.flush().unwrap();
        self.file.get_ref().sync_data().unwrap();
    }
}

fn log_appends(dir: &Path, name: &str, durable: bool, per_append: u64, n: u64) {
    let mut log = SegmentLog::open(dir.join(name), durable);
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut batch: Vec<Event> = (i..i + per_append).map(event).collect();
        log.append(&mut batch);
        i += per_append;
    }
    log.finish();
    println!(
        "seglog append durable={durable:<5} {per_append:>4} events/append: {}",
        rate(n, t)
    );
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N: number of events"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let json_len = serde_json::to_vec(&event(0)).unwrap().len();
    println!("event JSON ~{json_len} bytes; N = {n}");

    // Durable appends: one flush per append.
    drop(sled_appends(dir, "one", true, 1, 2_000));
    drop(sled_appends(dir, "batch10", true, 10, 20_000));
    drop(sled_appends(dir, "batch100", true, 100, 100_000));
    log_appends(dir, "log-one", true, 1, 2_000);
    log_appends(dir, "log-batch100", true, 100, 100_000);

    // Bulk: N events, 500 per append, not flushed per append (a backlog building up).
    let outbox = sled_appends(dir, "bulk", false, 500, n);
    let logical = outbox.stats().bytes;
    println!(
        "sled   {n} events: logical {:.1} MiB, sled size_on_disk {:.1} MiB, on disk (du) {:.1} MiB",
        logical as f64 / 1048576.0,
        outbox.size_on_disk().unwrap() as f64 / 1048576.0,
        dir_bytes(&dir.join("bulk")) as f64 / 1048576.0
    );
    drop(outbox);
    log_appends(dir, "log-bulk", false, 500, n);
    println!(
        "seglog {n} events: on disk (du) {:.1} MiB",
        dir_bytes(&dir.join("log-bulk")) as f64 / 1048576.0
    );

    // Restart: reopen rebuilds the counters with one scan.
    let t = Instant::now();
    let outbox = SledOutbox::open(&OutboxConfig {
        max_bytes: u64::MAX,
        ..OutboxConfig::new(dir.join("bulk"))
    })
    .unwrap();
    println!(
        "sled   reopen with {} records: {:.2} s",
        outbox.stats().records,
        t.elapsed().as_secs_f64()
    );

    // Drain as the forwarder does: read 500, ack them.
    let t = Instant::now();
    let mut from = 0;
    let mut drained = 0;
    loop {
        let batch = outbox.read(from, u64::MAX, 500, 256 * 1024).unwrap();
        let Some(last) = batch.last() else { break };
        from = last.seq + 1;
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
        drained += outbox.ack(&seqs).unwrap();
    }
    outbox.flush().unwrap();
    println!("sled   drain (read 500 + ack): {}", rate(drained, t));
    println!(
        "sled   after drain: on disk (du) {:.1} MiB",
        dir_bytes(&dir.join("bulk")) as f64 / 1048576.0
    );
}

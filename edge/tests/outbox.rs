//! The outbox spec (`edge/src/outbox.rs`), one test per rule, plus a `kill -9` in the middle of
//! appending.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dwell_edge::outbox::{Outbox, OutboxConfig, SEQ_BLOCK, SledOutbox};
use dwell_shared::wire::{Event, EventKind};

fn traffic(count: u32) -> Event {
    Event {
        seq: 0,
        ts_ms: 1_760_000_000_000 + i64::from(count),
        kind: EventKind::Traffic {
            count,
            window_s: 60,
        },
    }
}

fn events(n: u32) -> Vec<Event> {
    (0..n).map(traffic).collect()
}

fn open(dir: &std::path::Path) -> SledOutbox {
    SledOutbox::open(&OutboxConfig::new(dir.join("outbox"))).unwrap()
}

fn all_seqs(outbox: &impl Outbox) -> Vec<u64> {
    outbox
        .read(0, u64::MAX, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

#[test]
fn append_assigns_increasing_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    let mut a = events(3);
    let mut b = events(2);
    // A new outbox starts at FIRST_SEQ (1): 0 never appears on the wire.
    assert_eq!(outbox.append(&mut a).unwrap(), 1..4);
    assert_eq!(outbox.append(&mut b).unwrap(), 4..6);
    assert_eq!(a.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(b.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    let stats = outbox.stats();
    assert_eq!((stats.records, stats.next_seq), (5, 6));
    // What is read back is what was appended, seq included.
    let read = outbox.read(0, 6, 10, usize::MAX).unwrap();
    assert_eq!(read, [a, b].concat());
}

#[test]
fn iteration_is_send_order() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    // Cross the 255 → 256 and 65535 → 65536 boundaries where little-endian keys would misorder.
    for _ in 0..70 {
        outbox.append(&mut events(1000)).unwrap();
    }
    let seqs = all_seqs(&outbox);
    assert_eq!(seqs.len(), 70_000);
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "not in seq order"
    );
    // Bounded reads page through in order.
    let page = outbox.read(250, 70_000, 10, usize::MAX).unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (250..260).collect::<Vec<_>>()
    );
    // A byte bound still returns at least one event.
    assert_eq!(outbox.read(65_535, 70_000, 10, 1).unwrap().len(), 1);
    assert!(outbox.read(5, 5, 10, usize::MAX).unwrap().is_empty());
}

#[test]
fn seq_survives_restart_and_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for round in 0..3 {
        let outbox = open(dir.path());
        let range = outbox.append(&mut events(10)).unwrap();
        assert!(
            seen.last().is_none_or(|&last| range.start > last),
            "round {round}: {range:?} reuses a seq (last {seen:?})"
        );
        seen.extend(range.clone());
        // Ack everything: an empty outbox must still not restart numbering.
        outbox.ack(&range.collect::<Vec<_>>()).unwrap();
        assert_eq!(outbox.stats().records, 0);
    }
    // A restart skips at most one reservation block.
    assert!(seen.last().unwrap() - seen.first().unwrap() < 3 * SEQ_BLOCK);
}

#[test]
fn reopen_recovers_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, next) = {
        let outbox = open(dir.path());
        outbox.append(&mut events(100)).unwrap();
        outbox.ack(&(1..41).collect::<Vec<_>>()).unwrap();
        let s = outbox.stats();
        (s.bytes, s.next_seq)
    };
    let outbox = open(dir.path());
    assert_eq!(all_seqs(&outbox), (41..101).collect::<Vec<_>>());
    let stats = outbox.stats();
    assert_eq!(stats.records, 60);
    assert_eq!(stats.bytes, bytes, "byte counter rebuilt at open");
    assert!(stats.next_seq >= next);
    let range = outbox.append(&mut events(1)).unwrap();
    assert!(range.start >= 101);
}

#[test]
fn ack_deletes_only_acked() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    outbox.append(&mut events(10)).unwrap();
    let before = outbox.stats().bytes;
    // Out of order, with a duplicate and a seq that was never stored.
    assert_eq!(outbox.ack(&[7, 2, 5, 2, 999]).unwrap(), 3);
    assert_eq!(all_seqs(&outbox), [1, 3, 4, 6, 8, 9, 10]);
    let stats = outbox.stats();
    assert_eq!(stats.records, 7);
    assert!(stats.bytes < before);
    // Acking again changes nothing.
    assert_eq!(outbox.ack(&[7]).unwrap(), 0);
    assert_eq!(outbox.stats(), stats);
}

#[test]
fn cap_drops_oldest_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox");
    // Each traffic record is 8 key bytes + ~70 JSON bytes: a cap of 2000 holds ~25 of them.
    let config = OutboxConfig {
        max_bytes: 2000,
        ..OutboxConfig::new(&path)
    };
    let dropped = {
        let outbox = SledOutbox::open(&config).unwrap();
        outbox.append(&mut events(20)).unwrap();
        assert_eq!(outbox.stats().dropped, 0);
        outbox.append(&mut events(20)).unwrap();
        let stats = outbox.stats();
        assert!(stats.bytes <= 2000, "{stats:?}");
        assert!(stats.dropped > 0);
        assert_eq!(stats.records + stats.dropped, 40);
        // The newest are kept, the oldest are gone, order intact.
        let seqs = all_seqs(&outbox);
        assert_eq!(seqs.first().copied(), Some(stats.dropped + 1));
        assert_eq!(seqs.last().copied(), Some(40));
        stats.dropped
    };
    // The drop counter is persisted.
    let outbox = SledOutbox::open(&config).unwrap();
    assert_eq!(outbox.stats().dropped, dropped);
    // Acking a dropped seq changes nothing.
    assert_eq!(outbox.ack(&[1]).unwrap(), 0);
}

#[test]
fn oversized_event_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        max_bytes: 10,
        ..OutboxConfig::new(dir.path().join("outbox"))
    };
    let outbox = SledOutbox::open(&config).unwrap();
    let err = outbox.append(&mut events(1)).unwrap_err();
    assert!(
        err.to_string().contains("larger than the whole cap"),
        "{err}"
    );
    assert_eq!(outbox.stats().records, 0);
}

#[test]
fn append_durable_returns_after_flush() {
    // After a durable append, sled has nothing left to flush: the records were written by the
    // time append returned. (With durable = false they are still in sled's buffers.)
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    outbox.append(&mut events(50)).unwrap();
    assert_eq!(outbox.flush_bytes().unwrap(), 0);

    let lazy = SledOutbox::open(&OutboxConfig {
        durable: false,
        ..OutboxConfig::new(dir.path().join("lazy"))
    })
    .unwrap();
    // The first append reserves a seq block (one flush); later ones are not flushed. (Tried a few
    // times: sled's 500 ms background flusher may happen to run between append and check.)
    lazy.append(&mut events(1)).unwrap();
    let unflushed = (0..5).any(|_| {
        lazy.append(&mut events(50)).unwrap();
        lazy.flush_bytes().unwrap() > 0
    });
    assert!(unflushed);
}

#[test]
fn subscribe_sees_each_append() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    let mut rx = outbox.subscribe();
    assert_eq!(*rx.borrow_and_update(), 1);
    outbox.append(&mut events(3)).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 4);
}

/// Env var that turns this test binary into the appending child of `kill9_loses_nothing_acknowledged`.
const CHILD_ENV: &str = "DWELL_OUTBOX_KILL9_DIR";

/// Not a test on its own: when [`CHILD_ENV`] is set, appends forever and prints `ACK <seq>` for
/// every seq whose durable append returned.
#[test]
fn kill9_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let outbox = SledOutbox::open(&OutboxConfig::new(dir)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut n = 0u32;
    loop {
        let mut batch = events(1 + n % 7);
        let range = outbox.append(&mut batch).unwrap();
        for seq in range {
            use std::io::Write;
            writeln!(out, "ACK {seq}").unwrap();
        }
        std::io::Write::flush(&mut out).unwrap();
        n += 1;
    }
}

#[test]
fn kill9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox");
    let mut last_max = None::<u64>;
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        let started = Instant::now();
        let mut lines = BufReader::new(stdout).lines();
        // Let it append for a while (at least 300 acknowledged events), then SIGKILL it mid-write.
        while acked.len() < 300 && started.elapsed() < Duration::from_secs(60) {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(seq) = line.strip_prefix("ACK ") {
                acked.push(seq.parse::<u64>().unwrap());
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Anything it printed after we stopped reading was acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(seq) = line.strip_prefix("ACK ") {
                acked.push(seq.parse::<u64>().unwrap());
            }
        }
        assert!(
            acked.len() >= 300,
            "round {round}: child acknowledged only {}",
            acked.len()
        );

        let outbox = SledOutbox::open(&OutboxConfig::new(&path)).unwrap();
        let stored: std::collections::HashSet<u64> = all_seqs(&outbox).into_iter().collect();
        let missing: Vec<_> = acked.iter().filter(|s| !stored.contains(s)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: lost acknowledged seqs {missing:?}"
        );
        // Seq continues past everything acknowledged, also after the second kill.
        if let Some(prev) = last_max {
            assert!(
                acked.iter().all(|&s| s > prev),
                "round {round}: a seq was reused"
            );
        }
        let max = *acked.iter().max().unwrap();
        assert!(outbox.stats().next_seq > max);
        last_max = Some(max);
    }
}

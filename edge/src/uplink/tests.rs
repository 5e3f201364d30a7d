//! The forwarder's state machine against the scripted fake broker, with paused time: one named
//! test per transition, plus live-first-without-starvation and ack bookkeeping.

use std::sync::Arc;
use std::time::Duration;

use dwell_shared::wire::{Event, EventKind, GatewayState};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fake::{FakeBroker, FakeTransport};
use super::{Uplink, UplinkConfig, UplinkError, UplinkState, UplinkStats};
use crate::outbox::{MemOutbox, Outbox};

fn events(n: u32) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            seq: 0,
            ts_ms: 1_760_000_000_000 + i64::from(i),
            kind: EventKind::Traffic {
                count: i,
                window_s: 60,
            },
        })
        .collect()
}

fn config() -> UplinkConfig {
    UplinkConfig {
        batch_max_events: 10,
        max_inflight: 4,
        live_batches_per_backlog: 2,
        backoff_initial_ms: 500,
        backoff_max_ms: 2_000,
        drain_timeout_ms: 3_000,
        ..UplinkConfig::new("store-001", "gw-1")
    }
}

struct Harness {
    outbox: Arc<MemOutbox>,
    broker: FakeBroker,
    transitions: mpsc::UnboundedReceiver<UplinkState>,
    seen: Vec<UplinkState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<UplinkStats, UplinkError>>>,
}

impl Harness {
    fn start(config: UplinkConfig, outbox: Arc<MemOutbox>, up: bool) -> Self {
        let (transport, broker) = FakeTransport::new();
        broker.set_up(up);
        let mut uplink = Uplink::new(config, outbox.clone(), transport).unwrap();
        let transitions = uplink.transitions();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()));
        Harness {
            outbox,
            broker,
            transitions,
            seen: Vec::new(),
            shutdown,
            task: Some(task),
        }
    }

    /// Lets every task run until idle, advancing paused time by `ms`.
    async fn run_for(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        while let Ok(state) = self.transitions.try_recv() {
            self.seen.push(state);
        }
    }

    fn append(&self, n: u32) -> std::ops::Range<u64> {
        self.outbox.append(&mut events(n)).unwrap()
    }

    fn state(&self) -> Option<UplinkState> {
        self.seen.last().copied()
    }

    /// Seqs received in event batches, in arrival order (duplicates kept).
    fn received(&self) -> Vec<u64> {
        self.broker
            .batches()
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.seq))
            .collect()
    }

    async fn stop(&mut self) -> UplinkStats {
        self.shutdown.cancel();
        let stats = self.task.take().unwrap().await.unwrap().unwrap();
        self.run_for(0).await;
        stats
    }
}

fn sorted_unique(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup();
    v
}

#[tokio::test(start_paused = true)]
async fn disconnected_to_live() {
    let mut h = Harness::start(config(), Arc::default(), true);
    h.run_for(10).await;
    assert_eq!(h.seen, [UplinkState::Disconnected, UplinkState::Live]);
    // The retained online status, with the (empty) backlog.
    let status = &h.broker.statuses()[0];
    assert_eq!(
        (status.state, status.backlog),
        (GatewayState::Online, Some(0))
    );
    assert!(h.broker.published()[0].message.retain);

    h.append(3);
    h.run_for(10).await;
    assert_eq!(h.received(), [1, 2, 3]);
    // Published is not delivered: nothing leaves the outbox before the PubAck.
    assert_eq!(h.outbox.stats().records, 3);
    h.broker.ack_oldest(10);
    h.run_for(10).await;
    assert_eq!(h.outbox.stats().records, 0);
    let stats = h.stop().await;
    assert_eq!(stats.acked_events, 3);
}

#[tokio::test(start_paused = true)]
async fn disconnected_retries_with_capped_backoff() {
    let mut h = Harness::start(config(), Arc::default(), false);
    h.run_for(9_000).await;
    let attempts = h.broker.connect_attempts();
    let gaps: Vec<u128> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 500 ms doubling, capped at 2 s.
    assert_eq!(gaps[..5], [500, 1000, 2000, 2000, 2000], "{gaps:?}");
    assert_eq!(h.state(), Some(UplinkState::Disconnected));
    h.append(5);

    h.broker.set_up(true);
    h.run_for(2_000).await;
    assert_eq!(h.broker.connections(), 1);
    // The backlog (one batch) is sent in catch-up; its ack is awaited in live.
    assert!(h.seen.ends_with(&[UplinkState::CatchUp, UplinkState::Live]));
    assert_eq!(h.outbox.stats().records, 5);
    h.broker.set_auto_ack(true);
    h.run_for(10).await;
    assert_eq!(h.received(), [1, 2, 3, 4, 5]);
    assert_eq!(h.state(), Some(UplinkState::Live));

    // After a good connect the backoff starts small again.
    h.broker.cut();
    h.run_for(10).await;
    h.broker.set_up(true);
    h.run_for(600).await;
    assert_eq!(h.broker.connections(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn disconnected_to_catch_up_when_outbox_has_records() {
    let outbox = Arc::new(MemOutbox::new());
    outbox.append(&mut events(25)).unwrap();
    let mut h = Harness::start(config(), outbox, true);
    h.broker.set_auto_ack(true);
    h.run_for(10).await;
    assert_eq!(
        h.seen,
        [
            UplinkState::Disconnected,
            UplinkState::CatchUp,
            UplinkState::Live
        ]
    );
    assert_eq!(h.broker.statuses()[0].backlog, Some(25));
    assert_eq!(h.received(), (1..=25).collect::<Vec<_>>());
    assert_eq!(h.outbox.stats().records, 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn live_to_backlogged_on_outage() {
    let mut h = Harness::start(config(), Arc::default(), true);
    h.broker.set_auto_ack(true);
    h.run_for(10).await;
    h.append(20);
    h.run_for(10).await;
    assert_eq!(h.outbox.stats().records, 0);

    // Three batches go out and are not acked, then the broker goes away.
    h.broker.set_auto_ack(false);
    let unacked = h.append(30);
    h.run_for(10).await;
    assert_eq!(h.broker.unacked_batches().len(), 3);
    h.broker.cut();
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::Disconnected));

    // An outage: events pile up in the outbox; nothing is published.
    let published = h.broker.published().len();
    h.append(100);
    h.run_for(5_000).await;
    assert_eq!(h.broker.published().len(), published);
    assert_eq!(h.outbox.stats().records, 130);

    // Back: catch up (backlogged), then live; the unacked batches go again.
    h.broker.set_up(true);
    h.broker.set_auto_ack(true);
    h.run_for(3_000).await;
    let tail = &h.seen[h.seen.len() - 3..];
    assert_eq!(
        tail,
        [
            UplinkState::Disconnected,
            UplinkState::CatchUp,
            UplinkState::Live
        ]
    );
    assert_eq!(h.broker.statuses().last().unwrap().backlog, Some(130));
    let received = h.received();
    for seq in unacked {
        assert_eq!(
            received.iter().filter(|&&s| s == seq).count(),
            2,
            "seq {seq} resent once"
        );
    }
    assert_eq!(sorted_unique(received), (1..=150).collect::<Vec<_>>());
    assert_eq!(h.outbox.stats().records, 0);
    let stats = h.stop().await;
    assert_eq!(stats.abandoned_batches, 3);
}

#[tokio::test(start_paused = true)]
async fn catch_up_drains_backlog_while_live_flows() {
    // 300 backlog events = 30 batches; window 4; 2 live batches per backlog batch.
    let outbox = Arc::new(MemOutbox::new());
    outbox.append(&mut events(300)).unwrap();
    let mut h = Harness::start(config(), outbox, true);
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::CatchUp));

    // Live events keep arriving (10 per round) while the broker acks one round at a time.
    for _ in 0..40 {
        h.append(10);
        h.run_for(10).await;
        h.broker.ack_oldest(usize::MAX);
        h.run_for(10).await;
    }
    h.broker.set_auto_ack(true);
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::Live));

    let batches = h.broker.batches();
    let is_backlog = |b: &dwell_shared::wire::EventBatch| b.events[0].seq <= 300;
    let first_backlog_done = batches
        .iter()
        .rposition(is_backlog)
        .expect("backlog batches were sent");
    let first_live = batches
        .iter()
        .position(|b| !is_backlog(b))
        .expect("live batches were sent");
    // Live was not held back behind the whole backlog ...
    assert!(
        first_live < first_backlog_done,
        "live waited for the backlog"
    );
    // ... and the backlog was never starved: while it lasted, at most 2 live batches in a row.
    let mut run = 0;
    for b in &batches[..first_backlog_done] {
        run = if is_backlog(b) { 0 } else { run + 1 };
        assert!(run <= 2, "backlog starved by live");
    }
    // Each stream in order, and everything delivered exactly once (no outage here).
    let backlog: Vec<u64> = batches
        .iter()
        .filter(|b| is_backlog(b))
        .flat_map(|b| b.events.iter().map(|e| e.seq))
        .collect();
    assert_eq!(backlog, (1..=300).collect::<Vec<_>>());
    let live: Vec<u64> = batches
        .iter()
        .filter(|b| !is_backlog(b))
        .flat_map(|b| b.events.iter().map(|e| e.seq))
        .collect();
    assert_eq!(live, (301..=700).collect::<Vec<_>>());
    assert_eq!(h.outbox.stats().records, 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn live_to_catch_up_when_the_broker_is_slower_than_the_store() {
    let cfg = UplinkConfig {
        backlog_after_events: 100,
        ..config()
    };
    let mut h = Harness::start(cfg, Arc::default(), true);
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::Live));
    // The window fills (4 batches) and 200 more events wait: the lag becomes backlog.
    h.append(40);
    h.run_for(10).await;
    h.append(200);
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::CatchUp));
    h.broker.set_auto_ack(true);
    h.run_for(10).await;
    assert_eq!(h.state(), Some(UplinkState::Live));
    assert_eq!(sorted_unique(h.received()), (1..=240).collect::<Vec<_>>());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn acks_delete_exactly_their_batches() {
    let mut h = Harness::start(config(), Arc::default(), true);
    h.run_for(10).await;
    h.append(30);
    h.run_for(10).await;
    let ids: Vec<_> = h.broker.unacked_batches();
    assert_eq!(ids.len(), 3);
    // Ack the middle batch first, out of order.
    h.broker.ack(&[ids[1]]);
    h.run_for(10).await;
    let left: Vec<u64> = h
        .outbox
        .read(0, u64::MAX, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        left,
        [(1..=10).collect::<Vec<_>>(), (21..=30).collect()].concat()
    );
    h.broker.ack(&[ids[2], ids[0]]);
    h.run_for(10).await;
    assert_eq!(h.outbox.stats().records, 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_inflight_acks() {
    let mut h = Harness::start(config(), Arc::default(), true);
    h.run_for(10).await;
    h.append(25);
    h.run_for(10).await;
    assert_eq!(h.broker.unacked_batches().len(), 3);
    // The broker answers 1 s after shutdown was asked for: within the 3 s drain timeout.
    let broker = h.broker.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        broker.set_auto_ack(true);
    });
    let stats = h.stop().await;
    assert_eq!(
        h.seen[h.seen.len() - 2..],
        [UplinkState::Draining, UplinkState::Stopped]
    );
    assert_eq!(stats.acked_events, 25);
    assert_eq!(stats.abandoned_batches, 0);
    assert_eq!(h.outbox.stats().records, 0);
    // A clean stop says offline itself (the last will is only for unclean ones).
    let last = h.broker.statuses().pop().unwrap();
    assert_eq!(last.state, GatewayState::Offline);
    assert!(!h.broker.is_connected());
}

#[tokio::test(start_paused = true)]
async fn shutdown_drain_times_out_and_keeps_unacked() {
    let mut h = Harness::start(config(), Arc::default(), true);
    h.run_for(10).await;
    h.append(25);
    h.run_for(10).await;
    let started = tokio::time::Instant::now();
    let stats = h.stop().await;
    assert_eq!(started.elapsed(), Duration::from_millis(3_000));
    assert_eq!(stats.abandoned_batches, 3);
    assert_eq!(
        h.outbox.stats().records,
        25,
        "unacked stay for the next start"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_while_disconnected_stops_at_once() {
    let mut h = Harness::start(config(), Arc::default(), false);
    h.run_for(100).await;
    let stats = h.stop().await;
    assert_eq!(stats.state, UplinkState::Stopped);
    assert_eq!(h.state(), Some(UplinkState::Stopped));
}

#[test]
fn config_validation_names_the_key() {
    let mut c = UplinkConfig::new("store-001", "gw/1");
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("store/gateway")
    );
    c.gateway = "gw-1".into();
    c.validate().unwrap();
    c.password = Some("x".into());
    assert!(c.validate().unwrap_err().to_string().contains("`password`"));
    let c: UplinkConfig = serde_json::from_str(
        r#"{"store":"s","gateway":"g","host":"broker.local","tls":{"ca_file":"/etc/ca.pem"}}"#,
    )
    .unwrap();
    assert_eq!(c.port, 1883);
    assert_eq!(c.client_id(), "dwell-edge-s-g");
    assert!(
        serde_json::from_str::<UplinkConfig>(r#"{"store":"s","gateway":"g","hots":"x"}"#).is_err()
    );
}

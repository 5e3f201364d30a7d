//! Ingest's decisions and idempotency, on both backends, without a broker: messages go straight
//! into [`Ingestor::ingest`], exactly as a worker hands them over after receiving them.
//!
//! Idempotency: the same batch twice, out of order, and by two workers at once stores each event
//! once, with the first copy's content. Security and robustness: a gateway speaking for another
//! store, a payload that disagrees with its topic, an unregistered gateway, malformed JSON, a
//! wrong version, unknown event types — each refused with its reason in `dead_letters` and its
//! counter, nothing crashes, and the rest of a batch is stored.

mod support;

use std::sync::Arc;

use dwell_cloud::ingest::{DeadLetterReason, Ingestor, Message};
use dwell_cloud::store::{AnyStore, Store};
use dwell_shared::topic;
use dwell_shared::wire::{GatewayState, GatewayStatus};
use support::{TestDb, batch, every_backend, json};

const STORE: &str = "store-001";
const GW: &str = "gw-1";

fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> Message<'a> {
    Message {
        topic,
        payload,
        retain: false,
        received_ms: 1_760_000_100_000,
    }
}

async fn ingestor(db: &TestDb, allow_unknown: bool) -> Ingestor<AnyStore> {
    db.store.register_gateway(STORE, GW).await.unwrap();
    db.store
        .register_gateway("store-002", "gw-2")
        .await
        .unwrap();
    Ingestor::new(db.store.clone(), allow_unknown)
}

fn events_topic() -> String {
    topic::events(STORE, GW).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_twice_is_stored_once() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        let p = json(&batch(STORE, GW, 1..=50));
        let first = ing.ingest(&[msg(&t, &p)]).await.unwrap();
        assert_eq!((first.inserted, first.duplicates), (50, 0), "{}", db.name);
        let before = db.store.events(GW).await.unwrap();
        // Redelivered alone, and twice within one group.
        let again = ing.ingest(&[msg(&t, &p)]).await.unwrap();
        assert_eq!((again.inserted, again.duplicates), (0, 50));
        let twice = ing.ingest(&[msg(&t, &p), msg(&t, &p)]).await.unwrap();
        assert_eq!((twice.inserted, twice.duplicates), (0, 100));
        assert_eq!(db.store.event_count().await.unwrap(), 50);
        assert_eq!(db.store.events(GW).await.unwrap(), before, "{}", db.name);
        let c = ing.stats().snapshot();
        assert_eq!(
            (c.events_ingested, c.duplicates, c.event_batches),
            (50, 150, 4)
        );
        assert_eq!(c.dead_total(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_and_overlapping_batches_store_each_event_once() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        // Catch-up order: live batches first, backlog later, and a resend overlapping both.
        let payloads = [
            json(&batch(STORE, GW, 91..=100)),
            json(&batch(STORE, GW, 1..=30)),
            json(&batch(STORE, GW, 61..=90)),
            json(&batch(STORE, GW, 31..=60)),
            json(&batch(STORE, GW, 25..=95)),
            json(&batch(STORE, GW, (1..=100).rev())),
        ];
        for p in &payloads {
            ing.ingest(&[msg(&t, p)]).await.unwrap();
        }
        let stored = db.store.events(GW).await.unwrap();
        assert_eq!(stored.len(), 100, "{}", db.name);
        let want: Vec<i64> = (1..=100).collect();
        assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), want);
        // The stored JSON is the event as sent.
        let sent = serde_json::to_value(support::event(42)).unwrap();
        assert_eq!(stored[41].payload, sent);
        assert_eq!(stored[41].device.as_deref(), Some("h:0000002a"));
        assert_eq!(stored[41].zone.as_deref(), Some("cosmetics"));
        let c = ing.stats().snapshot();
        assert_eq!((c.events_ingested, c.duplicates), (100, 71 + 100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_on_the_same_batches_store_each_event_once() {
    for db in every_backend().await {
        let a = Arc::new(ingestor(&db, false).await);
        // The second worker: its own pool and caches, as another process would have.
        let b = Arc::new(Ingestor::new(db.reopen().await, false));
        let payloads: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..40u64)
                .map(|k| json(&batch(STORE, GW, k * 25 + 1..=k * 25 + 50)))
                .collect(),
        );
        let mut tasks = Vec::new();
        for (i, ing) in [a.clone(), b.clone()].into_iter().enumerate() {
            let payloads = payloads.clone();
            tasks.push(tokio::spawn(async move {
                let t = events_topic();
                let order: Vec<usize> = if i == 0 {
                    (0..40).collect()
                } else {
                    (0..40).rev().collect()
                };
                for k in order {
                    ing.ingest(&[msg(&t, &payloads[k])]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let stored = db.store.events(GW).await.unwrap();
        assert_eq!(stored.len(), 1_025, "{}", db.name);
        assert!(stored.iter().zip(1..).all(|(e, s)| e.seq == s));
        let (ca, cb) = (a.stats().snapshot(), b.stats().snapshot());
        assert_eq!(ca.events_ingested + cb.events_ingested, 1_025);
        assert_eq!(
            ca.events_ingested + cb.events_ingested + ca.duplicates + cb.duplicates,
            2 * 40 * 50
        );
    }
}

/// Ingests one message and returns the reasons of the dead letters it added.
async fn refused(ing: &Ingestor<AnyStore>, topic: &str, payload: &[u8]) -> Vec<String> {
    let before = ing.store().dead_letters().await.unwrap().len();
    ing.ingest(&[msg(topic, payload)]).await.unwrap();
    let all = ing.store().dead_letters().await.unwrap();
    all[before..]
        .iter()
        .map(|d| {
            assert_eq!(d.topic, topic);
            assert!(!d.detail.is_empty());
            d.reason.clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_dead_lettered_with_their_reason_and_counted() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        let good = json(&batch(STORE, GW, 1..=3));

        // gw-2 is registered to store-002: publishing as store-001 (on store-001's topic, with a
        // matching payload) is a gateway speaking for another store.
        let spoof_topic = topic::events(STORE, "gw-2").unwrap();
        let spoof = json(&batch(STORE, "gw-2", 1..=3));
        assert_eq!(
            refused(&ing, &spoof_topic, &spoof).await,
            ["wrong_store"],
            "{}",
            db.name
        );
        // A payload claiming another store/gateway than its topic.
        let other = json(&batch("store-002", "gw-2", 1..=3));
        assert_eq!(refused(&ing, &t, &other).await, ["topic_mismatch"]);
        let other_gw = json(&batch(STORE, "gw-7", 1..=3));
        assert_eq!(refused(&ing, &t, &other_gw).await, ["topic_mismatch"]);
        // Not registered at all.
        let unknown_topic = topic::events(STORE, "gw-x").unwrap();
        let unknown = json(&batch(STORE, "gw-x", 1..=3));
        assert_eq!(
            refused(&ing, &unknown_topic, &unknown).await,
            ["unknown_gateway"]
        );
        // Garbage, truncated JSON, the wrong version, no version.
        assert_eq!(
            refused(&ing, &t, b"\xff\x00not json").await,
            ["malformed_json"]
        );
        assert_eq!(
            refused(&ing, &t, &good[..good.len() / 2]).await,
            ["malformed_json"]
        );
        let v2 = String::from_utf8(good.clone())
            .unwrap()
            .replacen(r#""v":1"#, r#""v":2"#, 1);
        assert_eq!(
            refused(&ing, &t, v2.as_bytes()).await,
            ["unsupported_version"]
        );
        let v0 = String::from_utf8(good.clone())
            .unwrap()
            .replacen(r#""v":1,"#, "", 1);
        assert_eq!(
            refused(&ing, &t, v0.as_bytes()).await,
            ["unsupported_version"]
        );
        // Topics that aren't ingest's.
        assert_eq!(
            refused(&ing, "dwell/v1/store-001/config", &good).await,
            ["bad_topic"]
        );
        assert_eq!(
            refused(&ing, "dwell/v9/a/b/events", &good).await,
            ["bad_topic"]
        );

        // Nothing of the refused messages was stored.
        assert_eq!(db.store.event_count().await.unwrap(), 0);
        // And the good batch still goes in.
        assert_eq!(ing.ingest(&[msg(&t, &good)]).await.unwrap().inserted, 3);

        let c = ing.stats().snapshot();
        use DeadLetterReason::*;
        for (reason, n) in [
            (WrongStore, 1),
            (TopicMismatch, 2),
            (UnknownGateway, 1),
            (MalformedJson, 2),
            (UnsupportedVersion, 2),
            (BadTopic, 2),
        ] {
            assert_eq!(c.dead(reason), n, "{} {}", db.name, reason.label());
        }
        assert_eq!(c.dead_total(), 10);
        // The raw payload is kept, byte for byte.
        let dl = db.store.dead_letters().await.unwrap();
        assert_eq!(dl[4].payload, b"\xff\x00not json");

        // A redelivery (the ack was lost) is refused and counted again, but stored once.
        assert!(refused(&ing, &t, b"\xff\x00not json").await.is_empty());
        let c = ing.stats().snapshot();
        assert_eq!(c.dead(MalformedJson), 3, "{}", db.name);
        assert_eq!(db.store.dead_letters().await.unwrap().len(), 10);
        // The same bytes refused for another reason are another row.
        assert_eq!(
            refused(&ing, "dwell/v9/a/b/events", b"\xff\x00not json").await,
            ["bad_topic"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_one_by_one_and_the_rest_stored() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        let payload = format!(
            r#"{{"v":1,"store":"{STORE}","gateway":"{GW}","sent_ms":1,"events":[
                {{"seq":1,"ts_ms":1,"type":"traffic","count":4,"window_s":60}},
                {{"seq":2,"ts_ms":2,"type":"zone_heat","grid":[[1,2]]}},
                {{"seq":3,"ts_ms":3,"type":"zone_enter","device":"h:1"}},
                {{"seq":4,"ts_ms":4,"type":"zone_enter","device":"h:\u0000","zone":"z"}},
                {{"seq":18446744073709551615,"ts_ms":5,"type":"traffic","count":1,"window_s":1}},
                {{"seq":6,"ts_ms":6,"type":"zone_exit","device":"h:2","zone":"z","dwell_s":9,"future_field":true}}
            ]}}"#
        );
        // serde_json would turn the escaped NUL into a real one; keep it escaped in the JSON.
        let payload = payload.replace('\u{0}', "\\u0000");
        let out = ing.ingest(&[msg(&t, payload.as_bytes())]).await.unwrap();
        assert_eq!((out.inserted, out.dead_letters), (2, 4), "{}", db.name);
        let stored = db.store.events(GW).await.unwrap();
        assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 6]);
        // Fields this build doesn't know survive in the stored JSON.
        assert_eq!(stored[1].payload["future_field"], true);
        assert_eq!(stored[1].kind, "zone_exit");
        let c = ing.stats().snapshot();
        assert_eq!(c.dead(DeadLetterReason::UnknownEventType), 1);
        assert_eq!(c.dead(DeadLetterReason::MalformedEvent), 3);
        let dl = db.store.dead_letters().await.unwrap();
        let unknown = dl
            .iter()
            .find(|d| d.reason == "unknown_event_type")
            .unwrap();
        // The unknown event is kept whole, to be replayed when the cloud learns its type.
        assert!(String::from_utf8_lossy(&unknown.payload).contains(r#""grid":[[1,2]]"#));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_gateways_are_claimed_only_in_demo_mode_and_stay_in_their_store() {
    for db in every_backend().await {
        let ing = ingestor(&db, true).await;
        let t = topic::events("store-009", "gw-new").unwrap();
        let p = json(&batch("store-009", "gw-new", 1..=5));
        assert_eq!(ing.ingest(&[msg(&t, &p)]).await.unwrap().inserted, 5);
        let g = db.store.gateway("gw-new").await.unwrap().unwrap();
        assert_eq!((g.store.as_str(), g.registered), ("store-009", false));
        // Once claimed, it can't speak for another store.
        let t2 = topic::events("store-001", "gw-new").unwrap();
        let p2 = json(&batch("store-001", "gw-new", 6..=9));
        assert_eq!(
            refused(&ing, &t2, &p2).await,
            ["wrong_store"],
            "{}",
            db.name
        );
        // A worker without the demo flag doesn't accept a claimed-only gateway.
        let strict = Ingestor::new(db.store.clone(), false);
        let p3 = json(&batch("store-009", "gw-new", 10..=12));
        assert_eq!(refused(&strict, &t, &p3).await, ["unknown_gateway"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_messages_track_the_gateway() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = topic::status(STORE, GW).unwrap();
        let online = GatewayStatus {
            version: Some("0.1.0".into()),
            backlog: Some(1234),
            ..GatewayStatus::new(STORE, GW, GatewayState::Online, 1_760_000_000_000)
        };
        let p = serde_json::to_vec(&online).unwrap();
        // Retained (delivered at subscribe time): last seen is the status's own time.
        ing.ingest(&[Message {
            retain: true,
            ..msg(&t, &p)
        }])
        .await
        .unwrap();
        let g = db.store.gateway(GW).await.unwrap().unwrap();
        assert_eq!(
            (g.online, g.backlog, g.version.as_deref(), g.last_seen_ms),
            (
                Some(true),
                Some(1234),
                Some("0.1.0"),
                Some(1_760_000_000_000)
            ),
            "{}",
            db.name
        );
        // The last will arrives live.
        let will = GatewayStatus::new(STORE, GW, GatewayState::Offline, 1_760_000_050_000);
        let pw = serde_json::to_vec(&will).unwrap();
        ing.ingest(&[msg(&t, &pw)]).await.unwrap();
        // Redelivery of the older online status doesn't flip it back.
        ing.ingest(&[msg(&t, &p)]).await.unwrap();
        let g = db.store.gateway(GW).await.unwrap().unwrap();
        assert_eq!(
            (g.online, g.status_ms, g.last_seen_ms),
            (
                Some(false),
                Some(1_760_000_050_000),
                Some(1_760_000_100_000)
            )
        );
        // A status for another gateway on this topic, and one from an unknown gateway.
        let lie = serde_json::to_vec(&GatewayStatus::new(STORE, "gw-2", GatewayState::Online, 1))
            .unwrap();
        assert_eq!(refused(&ing, &t, &lie).await, ["topic_mismatch"]);
        let tu = topic::status(STORE, "gw-x").unwrap();
        let pu = serde_json::to_vec(&GatewayStatus::new(STORE, "gw-x", GatewayState::Online, 1))
            .unwrap();
        assert_eq!(refused(&ing, &tu, &pu).await, ["unknown_gateway"]);
        assert_eq!(ing.stats().snapshot().statuses, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_mixing_good_and_refused_messages_commits_together() {
    for db in every_backend().await {
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        let good = json(&batch(STORE, GW, 1..=10));
        let out = ing
            .ingest(&[msg(&t, &good), msg(&t, b"{"), msg(&t, &good)])
            .await
            .unwrap();
        assert_eq!(
            (out.messages, out.inserted, out.duplicates, out.dead_letters),
            (3, 10, 10, 1)
        );
        assert_eq!(db.store.event_count().await.unwrap(), 10, "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_dead_lettered_not_retried_forever() {
    // Ingest lets nothing through that either database refuses, so the test adds a rule to the
    // database: seq 666 is refused (a constraint violation, not a transient failure). The group
    // is then written message by message: the good ones are stored, the refused one becomes a
    // `store_rejected` dead letter and is acked rather than retried forever.
    for db in every_backend().await {
        match &db.store {
            AnyStore::Sqlite(s) => {
                sqlx::query(
                    "CREATE TRIGGER refuse_666 BEFORE INSERT ON events WHEN NEW.seq = 666 \
                     BEGIN SELECT RAISE(ABORT, 'seq 666 refused'); END",
                )
                .execute(s.pool())
                .await
                .unwrap();
            }
            AnyStore::Postgres(p) => {
                sqlx::query("ALTER TABLE events ADD CONSTRAINT refuse_666 CHECK (seq <> 666)")
                    .execute(p.pool())
                    .await
                    .unwrap();
            }
        }
        let ing = ingestor(&db, false).await;
        let t = events_topic();
        let good = json(&batch(STORE, GW, 1..=10));
        let bad = json(&batch(STORE, GW, 665..=667));
        let more = json(&batch(STORE, GW, 11..=20));
        let out = ing
            .ingest(&[msg(&t, &good), msg(&t, &bad), msg(&t, &more)])
            .await
            .unwrap();
        assert_eq!((out.inserted, out.dead_letters), (20, 1), "{}", db.name);
        let c = ing.stats().snapshot();
        assert_eq!(c.dead(DeadLetterReason::StoreRejected), 1);
        // The group, then the refused message alone.
        assert_eq!(c.commit_failures, 2);
        let dl = db.store.dead_letters().await.unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].reason, "store_rejected");
        assert_eq!(dl[0].payload, bad);
        assert_eq!(db.store.event_count().await.unwrap(), 20);
    }
}

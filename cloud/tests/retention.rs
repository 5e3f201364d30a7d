//! Data retention on both backends: rows older than each limit are deleted — exactly those, in
//! chunks, children before parents — and rows inside it, shopper profiles and the analytics
//! roll-ups stay; the report counts what went; the periodic task enforces and feeds `/metrics`.
//!
//! Rows are written through the real write paths where there is one: events through
//! `Ingestor::ingest` (so the roll-ups are maintained as live), visits through `visits::stitch`,
//! app sightings through `sightings::check_and_store`, decisions, coupons and caps through
//! `decide::decide`, bulk events through `Store::write`. Dead letters are inserted with SQL.

mod support;

use std::sync::Arc;
use std::time::Duration;

use dwell_cloud::analytics::snapshot;
use dwell_cloud::api::ApiState;
use dwell_cloud::campaigns::catalog;
use dwell_cloud::campaigns::decide::{self, Decision, TriggerCtx};
use dwell_cloud::campaigns::spec::{Campaign, CampaignSpec};
use dwell_cloud::coupons::code::CouponKey;
use dwell_cloud::ingest::{Ingestor, Message};
use dwell_cloud::on_pool;
use dwell_cloud::profiles::shoppers::{self, Registration};
use dwell_cloud::profiles::sightings::{self, AppSighting, SightingStats};
use dwell_cloud::profiles::visits::{self, Part, Stay};
use dwell_cloud::retention::{
    self, RetentionConfig, RetentionReport, RetentionStats, enforce, enforce_in_chunks,
};
use dwell_cloud::store::{EventRow, Store, WriteSet};
use dwell_shared::definitions::{VisitClass, VisitDefinitions};
use dwell_shared::wire::{DeviceRef, DeviceTier, Event, EventBatch, EventKind, PathStay};
use support::TestDb;
use tokio_util::sync::CancellationToken;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// "Now" of the tests that call `enforce` themselves (2026-05-28).
const NOW: i64 = 1_780_000_000_000;
const UUID: &str = "e2c56db5-dffb-48d2-b060-d0f5a71096e0";

/// The instant before which rows older than `days` go.
fn cutoff(days: u32) -> i64 {
    NOW - i64::from(days) * DAY
}

async fn add_store(db: &TestDb, id: &str, beacon_major: i32) {
    on_pool!(&db.store, pool => sqlx::query(
        "INSERT INTO stores (id, name, tz, lat, lon, beacon_major) \
         VALUES ($1, $1, 'UTC', 48.85, 2.35, $2)")
        .bind(id).bind(beacon_major).execute(pool).await.map(|_| ()))
    .unwrap();
}

async fn shopper(db: &TestDb) -> String {
    shoppers::register(
        &db.store,
        &Registration {
            profiling: Some(true),
            ..Registration::default()
        },
        0,
    )
    .await
    .unwrap()
    .shopper
}

/// One column of text (or text-cast) values, in the query's order.
async fn strings(db: &TestDb, sql: &str) -> Vec<String> {
    on_pool!(&db.store, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool).await)
    .unwrap()
}

async fn count(db: &TestDb, table: &str) -> i64 {
    on_pool!(&db.store, pool => sqlx::query_scalar(
        sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(pool).await)
    .unwrap()
}

/// A visit_end of an anonymous person at `ts_ms` (it ended then, after 10 minutes): a visit in
/// the footfall roll-ups.
fn visit_end(seq: u64, ts_ms: i64) -> Event {
    Event {
        seq,
        ts_ms,
        kind: EventKind::VisitEnd {
            device: DeviceRef {
                device: format!("h:{seq:08x}"),
                tier: Some(DeviceTier::Anonymous),
                randomized: Some(false),
            },
            class: VisitClass::Visitor,
            start_ms: ts_ms - 10 * MIN,
            end_ms: ts_ms,
            path: vec![PathStay {
                zone: "cosmetics".into(),
                enter_ms: ts_ms - 8 * MIN,
                exit_ms: ts_ms - 2 * MIN,
            }],
        },
    }
}

/// Sends events of `store`'s gateway through ingest, as a live worker would.
async fn ingest(db: &TestDb, store: &str, events: Vec<Event>) {
    let gateway = format!("gw-{store}");
    db.store.register_gateway(store, &gateway).await.unwrap();
    let n = events.len() as u64;
    let batch = EventBatch::new(store, &gateway, 0, events);
    let payload = serde_json::to_vec(&batch).unwrap();
    let topic = format!("dwell/v1/{store}/{gateway}/events");
    let out = Ingestor::new(db.store.clone(), false)
        .ingest(&[Message {
            topic: &topic,
            payload: &payload,
            retain: false,
            received_ms: NOW,
        }])
        .await
        .unwrap();
    assert_eq!((out.inserted, out.dead_letters), (n, 0), "{out:?}");
}

async fn dead_letter(db: &TestDb, reason: &str, label: &str, received_ms: i64) {
    on_pool!(&db.store, pool => sqlx::query(
        "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload) \
         VALUES ($1, 'dwell/v1/s1/gw-s1/events', $2, $3, $4)")
        .bind(received_ms).bind(reason).bind(label).bind(b"{".to_vec())
        .execute(pool).await.map(|_| ()))
    .unwrap();
}

/// Applies a visit part (`start_ms` .. `end_ms`) of `shopper` in `store`; returns its visit's id.
async fn part(
    db: &TestDb,
    key: &str,
    store: &str,
    shopper: &str,
    start_ms: i64,
    end_ms: i64,
) -> String {
    let p = Part {
        key: key.into(),
        store: store.into(),
        shopper: shopper.into(),
        start_ms,
        end_ms,
        class: "visitor".into(),
        path: vec![Stay {
            zone: "cosmetics".into(),
            enter_ms: start_ms,
            exit_ms: end_ms,
        }],
    };
    visits::stitch(&db.store, &p, &VisitDefinitions::DEFAULT)
        .await
        .unwrap()
        .expect("a new part")
        .id
}

async fn campaign(db: &TestDb, id: &str, expires_after_s: u32, window_s: u32) -> Campaign {
    let spec: CampaignSpec = serde_json::from_value(serde_json::json!({
        "id": id, "name": id, "zones": ["cosmetics"],
        "trigger": {"kind": "dwell", "seconds": 60},
        "offer": {"title": "10% off", "expires_after_s": expires_after_s},
        "cap": {"per_shopper": 1, "window_s": window_s},
        "holdout_permille": 0
    }))
    .unwrap();
    catalog::create(&db.store, spec, 0).await.unwrap()
}

/// Decides a trigger of `shopper` at `ts_ms` (also "now" for the decision); it must send a coupon.
async fn sent(db: &TestDb, c: &Campaign, shopper: &str, trigger: &str, ts_ms: i64, visit: &str) {
    let ctx = TriggerCtx {
        shopper,
        trigger_key: trigger,
        store: "s1",
        zone: Some("cosmetics"),
        ts_ms,
        visit: Some(visit),
    };
    let d = decide::decide(
        &db.store,
        c,
        &CouponKey::from_bytes([7; 32]),
        b"salt",
        &ctx,
        ts_ms,
    )
    .await
    .unwrap();
    assert!(matches!(d, Decision::Sent(_)), "{d:?}");
}

#[tokio::test]
async fn deletes_exactly_what_is_older_than_each_limit_and_keeps_roll_ups_and_profiles() {
    for db in support::every_backend().await {
        let cfg = RetentionConfig::default();
        let name = db.name;
        add_store(&db, "s1", 1).await;
        add_store(&db, "s2", 2).await;
        let (a, b) = (shopper(&db).await, shopper(&db).await);

        // Events (90 days, by ts_ms), in two stores: one just older than the limit, one long
        // older, one exactly at the limit (kept), recent ones.
        let e = cutoff(cfg.events_days);
        ingest(
            &db,
            "s1",
            vec![
                visit_end(1, e - 1),
                visit_end(2, NOW - 200 * DAY),
                visit_end(3, e),
                visit_end(4, NOW - DAY),
            ],
        )
        .await;
        ingest(
            &db,
            "s2",
            vec![visit_end(1, NOW - 91 * DAY), visit_end(2, NOW - 89 * DAY)],
        )
        .await;

        // Dead letters (30 days, by received_ms), of two reasons.
        let d = cutoff(cfg.dead_letters_days);
        dead_letter(&db, "malformed_json", "json-old", d - 1).await;
        dead_letter(&db, "malformed_json", "json-at-limit", d).await;
        dead_letter(&db, "malformed_json", "json-new", NOW - 29 * DAY).await;
        dead_letter(&db, "unknown_gateway", "gateway-old", NOW - 100 * DAY).await;

        // App sightings (90 days, by ts_ms), each reported when it was heard.
        let stats = SightingStats::default();
        for ts in [NOW - 91 * DAY, NOW - 89 * DAY] {
            let s = AppSighting {
                uuid: UUID.into(),
                major: 1,
                minor: 0,
                rssi: -60,
                ts_ms: ts,
            };
            let (r, _) = sightings::check_and_store(&db.store, UUID, &a, &s, ts, &stats)
                .await
                .unwrap();
            assert_eq!(r.outcome, "accepted");
        }

        // Visits (365 days, by end_ms): two parts stitched into one old visit; an old visit of
        // one part in another store; one that started before the limit but ended after it
        // (kept); a recent one of two parts.
        let v = cutoff(cfg.visits_days);
        let old = part(
            &db,
            "gw-s1:101",
            "s1",
            &a,
            NOW - 400 * DAY,
            NOW - 400 * DAY + 10 * MIN,
        )
        .await;
        assert_eq!(
            part(
                &db,
                "gw-s1:102",
                "s1",
                &a,
                NOW - 400 * DAY + 5 * MIN,
                NOW - 400 * DAY + 20 * MIN
            )
            .await,
            old
        );
        let old2 = part(&db, "gw-s2:201", "s2", &b, v - 20 * MIN, v - 1).await;
        let straddling = part(&db, "gw-s1:103", "s1", &a, v - 30 * MIN, v + MIN).await;
        let recent = part(
            &db,
            "gw-s2:202",
            "s2",
            &b,
            NOW - 10 * DAY,
            NOW - 10 * DAY + 5 * MIN,
        )
        .await;
        assert_eq!(
            part(
                &db,
                "gw-s2:203",
                "s2",
                &b,
                NOW - 10 * DAY + 4 * MIN,
                NOW - 10 * DAY + 9 * MIN
            )
            .await,
            recent
        );

        // Decisions, coupons and caps (365 days). "short": coupons valid an hour, a cap window of
        // a day. "long": coupons valid 400 days, a cap window of 4,000 days (epoch-aligned: the
        // one of its old decision started before the limit and is still open).
        let short = campaign(&db, "short", 3_600, 86_400).await;
        let long = campaign(&db, "long", 400 * 86_400, 4_000 * 86_400).await;
        sent(&db, &short, &a, "t-old", NOW - 366 * DAY, &old).await;
        sent(&db, &short, &a, "t-new", NOW - 300 * DAY, &recent).await;
        sent(&db, &long, &a, "t-long", NOW - 366 * DAY, &old).await;
        sent(&db, &short, &b, "t-b", NOW - 400 * DAY, &old2).await;
        let long_window = (NOW - 366 * DAY).div_euclid(4_000 * DAY) * 4_000 * DAY;
        assert!(
            long_window < cutoff(cfg.coupons_days),
            "the open window started before the limit"
        );

        let rollups = snapshot(&db.store, None).await.unwrap();
        assert!(
            !rollups["footfall_day"].is_empty() && !rollups["path_day"].is_empty(),
            "{name}: roll-ups to keep"
        );

        let report = enforce(&db.store, &cfg, NOW).await.unwrap();
        assert!(report.statements >= 8, "{name}: {report:?}");
        assert_eq!(
            report,
            RetentionReport {
                events: 3,
                dead_letters: 2,
                app_sightings: 1,
                campaign_decisions: 3,
                coupons: 2,
                campaign_caps: 2,
                visit_parts: 3,
                visits: 2,
                coupons_unlinked: 1,
                statements: report.statements,
            },
            "{name}"
        );
        assert_eq!(report.total(), 18);

        assert_eq!(
            strings(
                &db,
                "SELECT store || ':' || CAST(seq AS TEXT) FROM events ORDER BY store, seq"
            )
            .await,
            ["s1:3", "s1:4", "s2:2"],
            "{name}: events"
        );
        assert_eq!(
            strings(&db, "SELECT detail FROM dead_letters ORDER BY detail").await,
            ["json-at-limit", "json-new"],
            "{name}: dead letters"
        );
        assert_eq!(
            strings(&db, "SELECT CAST(ts_ms AS TEXT) FROM app_sightings").await,
            [(NOW - 89 * DAY).to_string()],
            "{name}: sightings"
        );
        let mut kept = vec![straddling.clone(), recent.clone()];
        kept.sort();
        assert_eq!(
            strings(&db, "SELECT id FROM visits ORDER BY id").await,
            kept,
            "{name}: visits"
        );
        assert_eq!(
            strings(&db, "SELECT part FROM visit_parts ORDER BY part").await,
            ["gw-s1:103", "gw-s2:202", "gw-s2:203"],
            "{name}: parts"
        );
        assert_eq!(
            strings(&db, "SELECT trigger_key FROM campaign_decisions").await,
            ["t-new"],
            "{name}: decisions"
        );
        assert_eq!(
            strings(
                &db,
                "SELECT trigger_key || '>' || COALESCE(visit, '-') FROM coupons \
                 ORDER BY trigger_key"
            )
            .await,
            ["t-long>-".to_owned(), format!("t-new>{recent}")],
            "{name}: the unexpired coupon stays, unlinked from its deleted visit"
        );
        let new_window = (NOW - 300 * DAY).div_euclid(DAY) * DAY;
        let mut caps = vec![
            format!("long/{a}/{long_window}"),
            format!("short/{a}/{new_window}"),
        ];
        caps.sort();
        assert_eq!(
            strings(
                &db,
                "SELECT campaign || '/' || shopper || '/' || CAST(window_start_ms AS TEXT) \
                 FROM campaign_caps ORDER BY 1"
            )
            .await,
            caps,
            "{name}: caps"
        );

        assert_eq!(
            snapshot(&db.store, None).await.unwrap(),
            rollups,
            "{name}: roll-ups untouched"
        );
        assert_eq!(count(&db, "shoppers").await, 2, "{name}: profiles stay");
        assert_eq!(count(&db, "campaigns").await, 2, "{name}");

        let again = enforce(&db.store, &cfg, NOW).await.unwrap();
        assert_eq!(
            again,
            RetentionReport {
                statements: again.statements,
                ..RetentionReport::default()
            },
            "{name}: nothing left to delete"
        );
    }
}

#[tokio::test]
async fn more_rows_than_a_chunk_all_go_in_several_statements() {
    for db in support::every_backend().await {
        let name = db.name;
        let cfg = RetentionConfig::default();
        let old = cutoff(cfg.events_days) - DAY;
        let row = |store: &str, seq: i64, ts_ms: i64| EventRow {
            gateway: format!("gw-{store}"),
            seq,
            store: store.into(),
            ts_ms,
            kind: "zone_enter",
            device: Some(format!("h:{seq:08x}")),
            zone: Some("cosmetics".into()),
            payload: "{}".into(),
            received_ms: ts_ms,
        };
        // 2.5 chunks of old events in one store, a few in another, and recent ones.
        let mut events: Vec<EventRow> = (1..=25_000).map(|i| row("s1", i, old - i)).collect();
        events.extend((1..=3).map(|i| row("s2", i, old)));
        events.extend((25_001..=25_005).map(|i| row("s1", i, NOW - i)));
        for store in ["s1", "s2"] {
            db.store
                .register_gateway(store, &format!("gw-{store}"))
                .await
                .unwrap();
        }
        let written = db
            .store
            .write(&WriteSet {
                events,
                ..WriteSet::default()
            })
            .await
            .unwrap();
        assert_eq!(written.inserted, 25_008);

        let report = enforce(&db.store, &cfg, NOW).await.unwrap();
        assert_eq!(report.events, 25_003, "{name}: {report:?}");
        assert_eq!(report.total(), 25_003, "{name}: {report:?}");
        // s1: 10,000 + 10,000 + 5,000; s2: 3; then one each for the other tables.
        assert!(report.statements >= 4, "{name}: {report:?}");
        assert_eq!(db.store.event_count().await.unwrap(), 5, "{name}");
        assert_eq!(
            strings(&db, "SELECT CAST(seq AS TEXT) FROM events ORDER BY seq").await,
            ["25001", "25002", "25003", "25004", "25005"],
            "{name}"
        );

        // Visits (a transaction per chunk) and dead letters with a chunk of 4: 10 old visits of
        // two parts each, 9 old dead letters; one recent of each stays.
        add_store(&db, "s1", 1).await;
        let a = shopper(&db).await;
        let v = cutoff(cfg.visits_days);
        for i in 0..10 {
            let start = v - (i + 1) * DAY;
            let id = part(&db, &format!("p{i}a"), "s1", &a, start, start + 5 * MIN).await;
            assert_eq!(
                part(
                    &db,
                    &format!("p{i}b"),
                    "s1",
                    &a,
                    start + 4 * MIN,
                    start + 9 * MIN
                )
                .await,
                id
            );
        }
        let recent = part(&db, "recent", "s1", &a, NOW - DAY, NOW - DAY + MIN).await;
        for i in 0..9 {
            dead_letter(
                &db,
                "malformed_json",
                &format!("old-{i}"),
                NOW - 40 * DAY - i,
            )
            .await;
        }
        dead_letter(&db, "malformed_json", "new", NOW - DAY).await;
        let report = enforce_in_chunks(&db.store, &cfg, NOW, 4).await.unwrap();
        assert_eq!(
            (
                report.visits,
                report.visit_parts,
                report.dead_letters,
                report.total()
            ),
            (10, 20, 9, 39),
            "{name}: {report:?}"
        );
        // Visits: 4 + 4 + 2; dead letters: 4 + 4 + 1.
        assert!(report.statements >= 6, "{name}: {report:?}");
        assert_eq!(
            strings(&db, "SELECT id FROM visits").await,
            [recent],
            "{name}"
        );
        assert_eq!(
            strings(&db, "SELECT part FROM visit_parts").await,
            ["recent"],
            "{name}"
        );
        assert_eq!(
            strings(&db, "SELECT detail FROM dead_letters").await,
            ["new"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_periodic_task_enforces_at_once_and_counts_for_metrics() {
    for db in support::every_backend().await {
        let name = db.name;
        let now = dwell_cloud::ingest::now_ms();
        db.store.register_gateway("s1", "gw-s1").await.unwrap();
        let events = (1..=3)
            .map(|seq| EventRow {
                gateway: "gw-s1".into(),
                seq,
                store: "s1".into(),
                ts_ms: if seq < 3 { now - 100 * DAY } else { now },
                kind: "zone_enter",
                device: None,
                zone: None,
                payload: "{}".into(),
                received_ms: now,
            })
            .collect();
        db.store
            .write(&WriteSet {
                events,
                ..WriteSet::default()
            })
            .await
            .unwrap();

        let stats = Arc::new(RetentionStats::default());
        let shutdown = CancellationToken::new();
        // Validation would refuse 1 s; the task takes the config as given.
        let cfg = RetentionConfig {
            interval_s: 1,
            ..RetentionConfig::default()
        };
        let task = tokio::spawn(retention::run_periodically(
            db.store.clone(),
            cfg,
            stats.clone(),
            shutdown.clone(),
        ));
        support::wait_until("the first enforcement", 30, || {
            let stats = stats.clone();
            async move { stats.runs() >= 1 }
        })
        .await;
        assert_eq!(db.store.event_count().await.unwrap(), 1, "{name}");
        assert_eq!(stats.deleted()[0], ("events", 2), "{name}");
        assert_eq!(stats.failures(), 0, "{name}");
        assert!(
            stats.last_success_ms().is_some_and(|ms| ms >= now),
            "{name}"
        );

        let mut state = ApiState::new(db.store.clone(), None);
        state.retention = Some(stats.clone());
        let text = dwell_cloud::api::metrics::render(&state);
        assert!(
            text.contains("\ndwell_cloud_retention_deleted_total{table=\"events\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("\ndwell_cloud_retention_deleted_total{table=\"visits\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\ndwell_cloud_retention_failures_total 0\n"),
            "{text}"
        );

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task stops on shutdown")
            .unwrap();
    }
}

//! Analytics on both backends: footfall, loyalty, zones, paths, funnels and campaign lift on
//! hand-built event sequences whose answers are worked out beside them; and incremental roll-ups
//! equal to a rebuild from raw events (and to each other across backends) on a generated year.
//!
//! Events go in through [`Ingestor::ingest`] — the same JSON, checks and `Store::write` as a live
//! worker — so the roll-ups are maintained by the real write path, exactly once.

mod support;

use dwell_cloud::analytics::campaigns::{CampaignQuery, campaign_results};
use dwell_cloud::analytics::footfall::{
    Footfall, FootfallFigures, FootfallQuery, Granularity, Scope,
};
use dwell_cloud::analytics::generate::{HistorySpec, history};
use dwell_cloud::analytics::zones::{EntranceSource, ZoneQuery};
use dwell_cloud::analytics::{footfall, paths, rebuild, refresh_scopes, snapshot, zones};
use dwell_cloud::ingest::{Ingestor, Message};
use dwell_cloud::on_pool;
use dwell_cloud::store::{AnyStore, Store, WriteSet};
use dwell_edge::track::{DeviceKey, Positioning, Sighting, Smoothing, TrackOptions, Tracker};
use dwell_shared::definitions::{VisitClass, VisitDefinitions};
use dwell_shared::topic;
use dwell_shared::wire::{
    DeviceRef, DeviceTier, Event, EventBatch, EventKind, PathStay, Receiver, StoreConfig, Version,
    Zone,
};
use jiff::civil::{Date, date};
use support::{TestDb, every_backend};

const MIN: i64 = 60_000;
const BERLIN: &str = "Europe/Berlin";

/// Unix ms of a local wall-clock time `YYYY-MM-DDTHH:MM:SS` in `tz` (unambiguous times only).
fn at(tz: &str, local: &str) -> i64 {
    let dt: jiff::civil::DateTime = local.parse().unwrap();
    dt.to_zoned(jiff::tz::TimeZone::get(tz).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn anon(id: &str) -> DeviceRef {
    DeviceRef {
        device: id.into(),
        tier: Some(DeviceTier::Anonymous),
        randomized: Some(false),
    }
}

fn visit(device: DeviceRef, start_ms: i64, dur_ms: i64, path: Vec<PathStay>) -> (i64, EventKind) {
    let defs = VisitDefinitions::DEFAULT;
    (
        start_ms + dur_ms + 15 * MIN,
        EventKind::VisitEnd {
            device,
            class: defs.classify((dur_ms / 1000) as u64),
            start_ms,
            end_ms: start_ms + dur_ms,
            path,
        },
    )
}

fn stay(zone: &str, enter_ms: i64, exit_ms: i64) -> PathStay {
    PathStay {
        zone: zone.into(),
        enter_ms,
        exit_ms,
    }
}

async fn add_store(db: &TestDb, id: &str, tz: &str, region: &str, layout: Option<&str>) {
    let (id, tz, region, layout) = (id.to_owned(), tz.to_owned(), region.to_owned(), layout);
    on_pool!(&db.store, pool => sqlx::query(
        "INSERT INTO stores (id, name, tz, region, layout) VALUES ($1, $1, $2, $3, $4)")
        .bind(&id).bind(&tz).bind(&region).bind(layout).execute(pool).await.map(|_| ()))
    .unwrap();
}

/// Sends `events` as one batch of `store`'s gateway through ingest; returns how many were new.
/// Seqs continue from `seq`.
async fn send(db: &TestDb, store: &str, seq: &mut u64, events: &[(i64, EventKind)]) -> u64 {
    let gateway = format!("gw-{store}");
    db.store.register_gateway(store, &gateway).await.unwrap();
    let events: Vec<Event> = events
        .iter()
        .map(|(ts_ms, kind)| {
            *seq += 1;
            Event {
                seq: *seq,
                ts_ms: *ts_ms,
                kind: kind.clone(),
            }
        })
        .collect();
    let batch = EventBatch::new(store, &gateway, 0, events);
    redeliver(db, store, &batch).await
}

async fn redeliver(db: &TestDb, store: &str, batch: &EventBatch) -> u64 {
    let t = topic::events(store, &batch.gateway).unwrap();
    let payload = serde_json::to_vec(batch).unwrap();
    let ing = Ingestor::new(db.store.clone(), false);
    let out = ing
        .ingest(&[Message {
            topic: &t,
            payload: &payload,
            retain: false,
            received_ms: 0,
        }])
        .await
        .unwrap();
    assert_eq!(out.dead_letters, 0, "{out:?}");
    out.inserted
}

fn query(scope: Scope, from: Date, to: Date, g: Granularity) -> FootfallQuery {
    FootfallQuery {
        scope,
        from,
        to,
        granularity: g,
        loyalty: true,
    }
}

fn seg_of<'a>(
    r: &'a dwell_cloud::analytics::CampaignResults,
    id: &str,
) -> &'a dwell_cloud::analytics::campaigns::CampaignFigures {
    &r.segments.iter().find(|s| s.segment == id).unwrap().figures
}

fn bucket<'a>(f: &'a Footfall, local: &str) -> &'a FootfallFigures {
    &f.buckets
        .iter()
        .find(|b| b.local == local)
        .unwrap_or_else(|| {
            panic!(
                "no bucket {local} in {:?}",
                f.buckets.iter().map(|b| &b.local).collect::<Vec<_>>()
            )
        })
        .figures
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------------------------------------
// Footfall

/// One Tuesday (2025-06-10, CEST = UTC+2) in Berlin store `s1`, visit by visit:
///
/// | device | start | lasts | class | bucket | engaged |
/// |---|---|---|---|---|---|
/// | A | 10:00 | 60 s | passer-by | – | – |
/// | A | 10:20 | 90 s | passer-by | – | – |
/// | A | 10:40 | 300 s (exactly 5 min) | visitor | 5–20 | no |
/// | B | 11:00 | 600 s (exactly 10 min) | visitor | 5–20 | yes |
/// | C | 11:30 | 299.999 s | visitor | <5 | no |
/// | C2 | 12:00 | 599.999 s | visitor | 5–20 | no (599 s) |
/// | E | 13:00 | 1200 s (exactly 20 min) | visitor | 20–60 | yes |
/// | F | 14:00 | 3600 s (exactly 1 h) | visitor | 1–6 h | yes |
/// | G | 08:00 | 21600 s (exactly 6 h) | visitor | 6 h+ | yes |
/// | D | 23:50 → 00:10 next day | 1200 s | visitor | 20–60 | yes — on the 10th, hour 23 |
/// | K (consented EID) | 16:00 | 180 s | visitor | <5 | no |
/// | R (randomized) | 15:00 | 30 min | traffic only | | |
/// | S (static badge) | 09:00 | 8 h | static only | | |
///
/// Day: visits 11 (A 3, B, C, C2, E, F, G, D, K), visitors 9, passers-by 2, capture 9/11,
/// engaged 5 (B, E, F, G, D), buckets <5: 2 (C, K), 5–20: 3 (A, B, C2), 20–60: 2 (E, D),
/// 1–6 h: 1 (F), 6 h+: 1 (G). Dwell Σ = 300,000 + 600,000 + 299,999 + 599,999 + 1,200,000 +
/// 3,600,000 + 21,600,000 + 1,200,000 + 180,000 = 29,579,998 ms.
/// Hour 10: A's three visits → capture 1/3. Traffic: 7 devices in the window 10:00–10:01 and 3 in
/// 10:59–11:00 (stamped 11:00, so still hour 10) → index 10 device-minutes over 2 counted minutes.
/// Door 10:14–10:15: 4 in, 2 out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footfall_of_a_day_worked_by_hand() {
    for db in every_backend().await {
        add_store(&db, "s1", BERLIN, "north", None).await;
        let t = |s: &str| at(BERLIN, &format!("2025-06-10T{s}"));
        let consented = DeviceRef {
            device: "eid:00112233aabbccdd".into(),
            tier: Some(DeviceTier::Consented),
            randomized: Some(false),
        };
        let randomized = DeviceRef {
            device: "h:rnd".into(),
            tier: Some(DeviceTier::Anonymous),
            randomized: Some(true),
        };
        let badge = DeviceRef {
            device: "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:7".into(),
            tier: Some(DeviceTier::Static),
            randomized: None,
        };
        let events = vec![
            visit(anon("h:a"), t("10:00:00"), 60_000, vec![]),
            visit(anon("h:a"), t("10:20:00"), 90_000, vec![]),
            visit(anon("h:a"), t("10:40:00"), 300_000, vec![]),
            visit(anon("h:b"), t("11:00:00"), 600_000, vec![]),
            visit(anon("h:c"), t("11:30:00"), 299_999, vec![]),
            visit(anon("h:c2"), t("12:00:00"), 599_999, vec![]),
            visit(anon("h:e"), t("13:00:00"), 1_200_000, vec![]),
            visit(anon("h:f"), t("14:00:00"), 3_600_000, vec![]),
            visit(anon("h:g"), t("08:00:00"), 21_600_000, vec![]),
            visit(anon("h:d"), t("23:50:00"), 1_200_000, vec![]),
            visit(consented, t("16:00:00"), 180_000, vec![]),
            visit(randomized, t("15:00:00"), 30 * MIN, vec![]),
            visit(badge, t("09:00:00"), 8 * 60 * MIN, vec![]),
            (
                t("10:01:00"),
                EventKind::Traffic {
                    count: 7,
                    window_s: 60,
                },
            ),
            (
                t("11:00:00"),
                EventKind::Traffic {
                    count: 3,
                    window_s: 60,
                },
            ),
            (
                t("10:15:00"),
                EventKind::Door {
                    node: "n-1".into(),
                    entered: 4,
                    exited: 2,
                    window_s: 60,
                },
            ),
        ];
        let mut seq = 0;
        assert_eq!(send(&db, "s1", &mut seq, &events).await, 16);
        // The same events again (redelivery): stored once, counted once.
        let mut again = 0;
        assert_eq!(send(&db, "s1", &mut again, &events).await, 0, "{}", db.name);

        let s1 = Scope::Store("s1".into());
        let (d10, d11) = (date(2025, 6, 10), date(2025, 6, 11));
        let f = footfall(&db.store, &query(s1.clone(), d10, d11, Granularity::Day))
            .await
            .unwrap();
        assert_eq!(f.time_zone.as_deref(), Some(BERLIN));
        assert_eq!(f.buckets.len(), 2);
        let day = bucket(&f, "2025-06-10");
        assert_eq!(
            (day.visits, day.visitors, day.passersby, day.engaged),
            (11, 9, 2, 5),
            "{}",
            db.name
        );
        assert!(close(day.capture_rate.unwrap(), 9.0 / 11.0));
        assert!(close(day.engaged_rate.unwrap(), 5.0 / 9.0));
        let d = day.dwell;
        assert_eq!(
            [d.lt_5m, d.m5_20, d.m20_60, d.h1_6, d.h6_plus],
            [2, 3, 2, 1, 1]
        );
        assert!(close(day.mean_dwell_s.unwrap(), 29_579.998 / 9.0));
        assert_eq!((day.consented_visits, day.static_visits), (1, 1));
        assert_eq!(day.traffic.randomized_visits, 1);
        assert!(close(day.traffic.index, 10.0) && close(day.traffic.counted_minutes, 2.0));
        assert_eq!((day.door.entered, day.door.exited), (4, 2));
        // The visit across midnight belongs to the day it started; the 11th is empty.
        let next = bucket(&f, "2025-06-11");
        assert_eq!((next.visits, next.capture_rate), (0, None));
        // Day boundaries in UTC: CEST midnight is 22:00 UTC.
        assert_eq!(
            f.buckets[0].start_ms,
            Some(at("UTC", "2025-06-09T22:00:00"))
        );
        assert_eq!(f.total.visits, 11);

        let h = footfall(&db.store, &query(s1.clone(), d10, d10, Granularity::Hour))
            .await
            .unwrap();
        assert_eq!(h.buckets.len(), 24);
        let h10 = bucket(&h, "2025-06-10T10:00+02:00");
        assert_eq!((h10.visits, h10.visitors, h10.passersby), (3, 1, 2));
        assert!(close(h10.capture_rate.unwrap(), 1.0 / 3.0));
        assert!(close(h10.traffic.index, 10.0));
        assert_eq!(h10.door.entered, 4);
        let h23 = bucket(&h, "2025-06-10T23:00+02:00");
        assert_eq!((h23.visits, h23.engaged, h23.dwell.m20_60), (1, 1, 1));
        assert_eq!(h.buckets[10].start_ms, Some(t("10:00:00")));
        assert_eq!(h.total, f.buckets[0].figures, "hours sum to the day");
    }
}

/// DST in Berlin: 2025-03-30 (02:00 CET → 03:00 CEST) has 23 hours, 2025-10-26 (03:00 CEST →
/// 02:00 CET) has 25, two of them 02:00. One visit in each of the two 02:00 hours, one at 01:59:59
/// and one at 03:00:00 on the short day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dst_days_have_23_and_25_hours() {
    for db in every_backend().await {
        add_store(&db, "b", BERLIN, "north", None).await;
        let utc = |s: &str| at("UTC", s);
        let events = vec![
            visit(anon("h:1"), utc("2025-03-30T00:59:59"), 5 * MIN, vec![]), // 01:59:59 CET
            visit(anon("h:2"), utc("2025-03-30T01:00:00"), 5 * MIN, vec![]), // 03:00 CEST
            visit(anon("h:3"), utc("2025-10-26T00:30:00"), 5 * MIN, vec![]), // 02:30 CEST
            visit(anon("h:4"), utc("2025-10-26T01:30:00"), 5 * MIN, vec![]), // 02:30 CET
            visit(anon("h:5"), utc("2025-10-27T08:00:00"), 5 * MIN, vec![]), // Monday after
        ];
        let mut seq = 0;
        send(&db, "b", &mut seq, &events).await;
        let scope = Scope::Store("b".into());

        let spring = date(2025, 3, 30);
        let h = footfall(
            &db.store,
            &query(scope.clone(), spring, spring, Granularity::Hour),
        )
        .await
        .unwrap();
        assert_eq!(h.buckets.len(), 23, "{}", db.name);
        assert!(
            !h.buckets
                .iter()
                .any(|b| b.local.starts_with("2025-03-30T02"))
        );
        assert_eq!(bucket(&h, "2025-03-30T01:00+01:00").visits, 1);
        assert_eq!(bucket(&h, "2025-03-30T03:00+02:00").visits, 1);

        let autumn = date(2025, 10, 26);
        let h = footfall(
            &db.store,
            &query(scope.clone(), autumn, autumn, Granularity::Hour),
        )
        .await
        .unwrap();
        assert_eq!(h.buckets.len(), 25, "{}", db.name);
        assert_eq!(bucket(&h, "2025-10-26T02:00+02:00").visits, 1);
        assert_eq!(bucket(&h, "2025-10-26T02:00+01:00").visits, 1);

        let d = footfall(
            &db.store,
            &query(scope.clone(), spring, spring, Granularity::Day),
        )
        .await
        .unwrap();
        let b = &d.buckets[0];
        assert_eq!(b.end_ms.unwrap() - b.start_ms.unwrap(), 23 * 3_600_000);
        let d = footfall(
            &db.store,
            &query(scope.clone(), autumn, autumn, Granularity::Day),
        )
        .await
        .unwrap();
        let b = &d.buckets[0];
        assert_eq!(b.end_ms.unwrap() - b.start_ms.unwrap(), 25 * 3_600_000);
        assert_eq!(b.figures.visits, 2);

        // The week of the 26th (a Sunday) starts on Monday the 20th and holds both visits of the
        // 26th, not Monday the 27th's.
        let w = footfall(
            &db.store,
            &query(scope, date(2025, 10, 22), autumn, Granularity::Week),
        )
        .await
        .unwrap();
        assert_eq!(
            (w.from.as_str(), w.to.as_str()),
            ("2025-10-20", "2025-10-26")
        );
        assert_eq!(w.buckets.len(), 1);
        assert_eq!(
            (w.buckets[0].local.as_str(), w.buckets[0].figures.visits),
            ("2025-10-20", 2)
        );
        assert_eq!(
            w.buckets[0].end_ms.unwrap() - w.buckets[0].start_ms.unwrap(),
            (7 * 24 + 1) * 3_600_000
        );
    }
}

/// Region and chain: `s1`, `s2` in Berlin (region north), `s3` in Shanghai (region east). A visit
/// at 07:00 Shanghai time on 2025-06-10 is 23:00 UTC on the 9th, yet it is the 10th's: each store's
/// figures are in its own local time. The chain spans two time zones, so its buckets carry no
/// UTC bounds and its hours are "each store's 10:00".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_and_the_chain_sum_stores_in_their_own_local_time() {
    for db in every_backend().await {
        add_store(&db, "s1", BERLIN, "north", None).await;
        add_store(&db, "s2", BERLIN, "north", None).await;
        add_store(&db, "s3", "Asia/Shanghai", "east", None).await;
        let (mut a, mut b, mut c) = (0, 0, 0);
        send(
            &db,
            "s1",
            &mut a,
            &[visit(
                anon("h:1"),
                at(BERLIN, "2025-06-10T10:10:00"),
                3 * MIN,
                vec![],
            )],
        )
        .await;
        send(
            &db,
            "s2",
            &mut b,
            &[visit(
                anon("h:2"),
                at(BERLIN, "2025-06-10T10:20:00"),
                MIN,
                vec![],
            )],
        )
        .await;
        send(
            &db,
            "s3",
            &mut c,
            &[visit(
                anon("h:3"),
                at("Asia/Shanghai", "2025-06-10T07:00:00"),
                3 * MIN,
                vec![],
            )],
        )
        .await;
        let d = date(2025, 6, 10);

        let north = footfall(
            &db.store,
            &query(Scope::Region("north".into()), d, d, Granularity::Day),
        )
        .await
        .unwrap();
        assert_eq!(
            (north.stores, north.time_zone.as_deref()),
            (2, Some(BERLIN))
        );
        let n = &north.buckets[0].figures;
        assert_eq!(
            (n.visits, n.visitors, n.passersby),
            (2, 1, 1),
            "{}",
            db.name
        );
        assert!(north.buckets[0].start_ms.is_some());

        let chain = footfall(&db.store, &query(Scope::Chain, d, d, Granularity::Day))
            .await
            .unwrap();
        assert_eq!((chain.stores, chain.time_zone.as_deref()), (3, None));
        assert_eq!(chain.buckets.len(), 1);
        assert_eq!(
            (chain.buckets[0].figures.visits, chain.buckets[0].start_ms),
            (3, None)
        );

        let hours = footfall(&db.store, &query(Scope::Chain, d, d, Granularity::Hour))
            .await
            .unwrap();
        assert_eq!(hours.buckets.len(), 24);
        assert_eq!(bucket(&hours, "2025-06-10T10:00").visits, 2);
        assert_eq!(bucket(&hours, "2025-06-10T07:00").visits, 1);

        let e = footfall(
            &db.store,
            &query(Scope::Region("nowhere".into()), d, d, Granularity::Day),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let e = footfall(
            &db.store,
            &query(Scope::Store("nope".into()), d, d, Granularity::Day),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}

/// A device that passed by twice and came in once, and a session timeout — both through the
/// gateway's own tracker (`dwell_edge::track`) from raw sightings, then ingest:
///
/// - `h:x` inside 10:00:00–10:03:00, silent, inside again 10:17:00–10:18:00: the gap (14 min) is
///   under the 15 min session timeout → one visit of 18 min (visitor, 5–20, engaged);
/// - `h:x` again at 10:34:01–10:35:01, more than 15 min after 10:18:00 → a second visit, 60 s,
///   a passer-by; and again 10:50:30–10:51:30 (15 min 29 s later) → a third, a passer-by.
///
/// Hour 10 (Berlin): 3 visits, 1 visitor, 2 passers-by, capture 1/3, 1 engaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_and_a_device_that_passed_by_twice_via_the_tracker() {
    let layout = StoreConfig {
        v: Version,
        store: "t".into(),
        timezone: BERLIN.into(),
        receivers: vec![Receiver {
            id: "r1".into(),
            x: 5.0,
            y: 5.0,
        }],
        zones: vec![Zone {
            id: "a".into(),
            name: "A".into(),
            polygon: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
        }],
        entrance: Some("a".into()),
        visit: VisitDefinitions::DEFAULT,
    };
    let mut tracker = Tracker::new(
        &layout,
        TrackOptions {
            smoothing: Smoothing::None,
            positioning: Positioning::Nearest,
            ..TrackOptions::DEFAULT
        },
    );
    let mut out = Vec::new();
    let t0 = at(BERLIN, "2025-06-10T10:00:00");
    let mut inside = |from_s: i64, to_s: i64, out: &mut Vec<_>| {
        for s in from_s..=to_s {
            let sighting = Sighting {
                ts_ms: t0 + s * 1000,
                receiver: "r1",
                device: DeviceKey {
                    id: "h:x",
                    tier: DeviceTier::Anonymous,
                    randomized: false,
                },
                rssi: -50,
                power_1m: None,
            };
            tracker.observe(&sighting, out);
        }
    };
    inside(0, 180, &mut out);
    inside(17 * 60, 18 * 60, &mut out);
    inside(34 * 60 + 1, 35 * 60 + 1, &mut out);
    inside(50 * 60 + 30, 51 * 60 + 30, &mut out);
    tracker.tick(t0 + 3 * 3_600_000, &mut out);
    let ends: Vec<(VisitClass, i64, i64)> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::VisitEnd {
                class,
                start_ms,
                end_ms,
                ..
            } => Some((*class, (*start_ms - t0) / 1000, (*end_ms - t0) / 1000)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        vec![
            (VisitClass::Visitor, 0, 18 * 60),
            (VisitClass::Passerby, 34 * 60 + 1, 35 * 60 + 1),
            (VisitClass::Passerby, 50 * 60 + 30, 51 * 60 + 30),
        ]
    );
    let events: Vec<(i64, EventKind)> = out.into_iter().map(|e| (e.ts_ms, e.kind)).collect();
    for db in every_backend().await {
        add_store(&db, "t", BERLIN, "north", None).await;
        let mut seq = 0;
        send(&db, "t", &mut seq, &events).await;
        let d = date(2025, 6, 10);
        let h = footfall(
            &db.store,
            &query(Scope::Store("t".into()), d, d, Granularity::Hour),
        )
        .await
        .unwrap();
        let h10 = bucket(&h, "2025-06-10T10:00+02:00");
        assert_eq!(
            (h10.visits, h10.visitors, h10.passersby, h10.engaged),
            (3, 1, 2, 1),
            "{}",
            db.name
        );
        assert!(close(h10.capture_rate.unwrap(), 1.0 / 3.0));
        assert_eq!(h10.dwell.m5_20, 1);
        assert_eq!(h.total.visits, 3);
    }
}

// ---------------------------------------------------------------------------------------------
// Loyalty

async fn add_shopper(db: &TestDb, id: &str) {
    on_pool!(&db.store, pool => sqlx::query(
        "INSERT INTO shoppers (id, identity_key, exponent, profiling, created_ms, updated_ms) \
         VALUES ($1, $1, 10, true, 0, 0)")
        .bind(id).execute(pool).await.map(|_| ()))
    .unwrap();
}

async fn add_visit(db: &TestDb, id: &str, store: &str, shopper: &str, start_ms: i64, class: &str) {
    on_pool!(&db.store, pool => sqlx::query(
        "INSERT INTO visits (id, store, shopper, start_ms, end_ms, class, path, parts) \
         VALUES ($1, $2, $3, $4, $5, $6, '[]', 1)")
        .bind(id).bind(store).bind(shopper).bind(start_ms).bind(start_ms + 10 * MIN).bind(class)
        .execute(pool).await.map(|_| ()))
    .unwrap();
}

/// Visitor visits of shoppers at `s1` on 2025-06-10, classified by their history there:
/// - p1 came on the 5th, 6th, 7th, 8th and comes on the 10th: 5 of the last 7 days → daily;
/// - p2's first visit ever (at 10:00) → first time; p2 again at 15:00 → only this day in the
///   last 7 and only this week in the last 4 → occasional;
/// - p3 came on 2025-05-20 (21 days before: the 4th week back) → 2 of 4 weeks → weekly;
/// - p4 came on 2025-04-01, before the 4-week look-back → occasional;
/// - p5 passed by (class passerby) → not counted; p6's visit was at another store `s2` on the 9th,
///   which doesn't make p6's first visit to `s1` on the 10th a repeat → first time.
///
/// The 10th: first time 2 (p2, p6), daily 1, weekly 1, occasional 2 (p2's second, p4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loyalty_classes_from_stitched_visits() {
    for db in every_backend().await {
        add_store(&db, "s1", BERLIN, "north", None).await;
        add_store(&db, "s2", BERLIN, "north", None).await;
        for p in ["p1", "p2", "p3", "p4", "p5", "p6"] {
            add_shopper(&db, p).await;
        }
        let t = |d: &str, time: &str| at(BERLIN, &format!("{d}T{time}"));
        let mut n = 0;
        let mut v = async |store: &str, p: &str, ms: i64, class: &str| {
            n += 1;
            add_visit(&db, &format!("v{n}"), store, p, ms, class).await;
        };
        for d in [
            "2025-06-05",
            "2025-06-06",
            "2025-06-07",
            "2025-06-08",
            "2025-06-10",
        ] {
            v("s1", "p1", t(d, "09:00:00"), "visitor").await;
        }
        v("s1", "p2", t("2025-06-10", "10:00:00"), "visitor").await;
        v("s1", "p2", t("2025-06-10", "15:00:00"), "visitor").await;
        v("s1", "p3", t("2025-05-20", "10:00:00"), "visitor").await;
        v("s1", "p3", t("2025-06-10", "10:00:00"), "visitor").await;
        v("s1", "p4", t("2025-04-01", "10:00:00"), "visitor").await;
        v("s1", "p4", t("2025-06-10", "11:00:00"), "visitor").await;
        v("s1", "p5", t("2025-06-10", "11:00:00"), "passerby").await;
        v("s2", "p6", t("2025-06-09", "11:00:00"), "visitor").await;
        v("s1", "p6", t("2025-06-10", "12:00:00"), "visitor").await;

        let d = date(2025, 6, 10);
        let f = footfall(
            &db.store,
            &query(Scope::Store("s1".into()), d, d, Granularity::Day),
        )
        .await
        .unwrap();
        let l = f.buckets[0].figures.loyalty.unwrap();
        assert_eq!(
            (l.first_time, l.daily, l.weekly, l.occasional),
            (2, 1, 1, 2),
            "{}",
            db.name
        );
        let h = footfall(
            &db.store,
            &query(Scope::Store("s1".into()), d, d, Granularity::Hour),
        )
        .await
        .unwrap();
        let at10 = bucket(&h, "2025-06-10T10:00+02:00").loyalty.unwrap();
        assert_eq!((at10.first_time, at10.weekly), (1, 1));
        // The chain: p6 at s2 on the 9th is that day's first time there.
        let chain = footfall(
            &db.store,
            &query(Scope::Chain, date(2025, 6, 9), d, Granularity::Day),
        )
        .await
        .unwrap();
        assert_eq!(chain.buckets[0].figures.loyalty.unwrap().first_time, 1);
        assert_eq!(chain.total.loyalty.unwrap().first_time, 3);
        // Without loyalty, none is computed.
        let mut q = query(Scope::Store("s1".into()), d, d, Granularity::Day);
        q.loyalty = false;
        assert_eq!(footfall(&db.store, &q).await.unwrap().total.loyalty, None);
    }
}

// ---------------------------------------------------------------------------------------------
// Zones, paths, funnels

/// Store `z` (layout entrance `a`), on 2025-06-10 from T = 10:00 Berlin; minutes after T:
///
/// | visits | device | path (zone: enter–exit min) |
/// |---|---|---|
/// | 2 | anonymous | a 0–1, b 1–5, c 5–7 |
/// | 1 | anonymous | a 0–2, b 2–3, a 3–4, b 4–6 |
/// | 3 | anonymous | a 0–1, c 3–4 |
/// | 1 | anonymous | b 0–1, b 2–3, c 3–5 (b twice in a row: collapsed) |
/// | 1 | randomized | a 0–1, b 1–2 |
/// | 1 | static badge | a 0–60, c 60–120 (ignored) |
/// | 1 | anonymous | no path |
///
/// Visits 9 (static excluded), with zones 8. Stays: a 2+2+3+1 = 8 stays; dwell a = 2·1 + (2+1)
/// + 3·1 + 1 = 9 min; b: 2·4 + (1+2) + (1+1) + 1 = 14 min in 2+2+2+1 = 7 stays; c: 2·2 + 3·1 + 2
/// = 9 min in 6 stays. Visits reaching: a 7, b 5, c 6.
/// Transitions: a→b 2+2+1 = 5, b→c 2+1 = 3, b→a 1, a→c 3.
/// Paths: [a,c] 3, [a,b,c] 2, [a,b,a,b] 1, [b,c] 1, [a,b] 1.
/// Funnel from a: entered 7; reached b 4 (2 + 1 + randomized 1) after 1, 1, 2, 1 min → mean
/// 75 s; reached c 5 (2 + 3) after 5, 5, 3, 3, 3 min → mean 228 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_paths_transitions_and_funnel_worked_by_hand() {
    for db in every_backend().await {
        let layout = r#"{"v":1,"store":"z","timezone":"Europe/Berlin","entrance":"a",
            "zones":[{"id":"a","name":"Entrance","polygon":[]},{"id":"b","name":"Bakery","polygon":[]},
                     {"id":"c","name":"Cosmetics","polygon":[]},{"id":"d","name":"Drinks","polygon":[]}]}"#;
        add_store(&db, "z", BERLIN, "north", Some(layout)).await;
        add_store(&db, "y", BERLIN, "north", None).await;
        let t = at(BERLIN, "2025-06-10T10:00:00");
        let m = |x: i64| t + x * MIN;
        let s = |z: &str, a: i64, b: i64| stay(z, m(a), m(b));
        let mut events = Vec::new();
        let mut n = 0;
        let mut add = |device: DeviceRef, path: Vec<PathStay>, dur_min: i64| {
            n += 1;
            let d = DeviceRef {
                device: format!("{}{n}", device.device),
                ..device
            };
            events.push(visit(d, t, dur_min * MIN, path));
        };
        for _ in 0..2 {
            add(
                anon("h:"),
                vec![s("a", 0, 1), s("b", 1, 5), s("c", 5, 7)],
                7,
            );
        }
        add(
            anon("h:"),
            vec![s("a", 0, 2), s("b", 2, 3), s("a", 3, 4), s("b", 4, 6)],
            6,
        );
        for _ in 0..3 {
            add(anon("h:"), vec![s("a", 0, 1), s("c", 3, 4)], 4);
        }
        add(
            anon("h:"),
            vec![s("b", 0, 1), s("b", 2, 3), s("c", 3, 5)],
            5,
        );
        add(
            DeviceRef {
                device: "h:rnd".into(),
                tier: Some(DeviceTier::Anonymous),
                randomized: Some(true),
            },
            vec![s("a", 0, 1), s("b", 1, 2)],
            2,
        );
        add(
            DeviceRef {
                device: "ibeacon:x:1:".into(),
                tier: Some(DeviceTier::Static),
                randomized: None,
            },
            vec![s("a", 0, 60), s("c", 60, 120)],
            120,
        );
        add(anon("h:"), vec![], 3);
        // Presence: 3 devices in b over a minute → 3 device-minutes.
        events.push((
            m(1),
            EventKind::Presence {
                zones: [("b".to_string(), 3), ("a".to_string(), 0)].into(),
                window_s: 60,
            },
        ));
        let mut seq = 0;
        send(&db, "z", &mut seq, &events).await;
        // Store `y` (no layout): the same paths minus the badge.
        let mut seq_y = 0;
        send(&db, "y", &mut seq_y, &events[..9]).await;

        let d = date(2025, 6, 10);
        let q = ZoneQuery {
            store: "z".into(),
            from: d,
            to: d,
        };
        let z = zones(&db.store, &q).await.unwrap();
        assert_eq!((z.visits, z.visits_with_zones), (9, 8), "{}", db.name);
        let zone = |id: &str| z.zones.iter().find(|f| f.zone == id).unwrap();
        let (a, b, c) = (zone("a"), zone("b"), zone("c"));
        assert_eq!((a.stays, a.visits, a.dwell_s), (8, 7, 540.0));
        assert_eq!((b.stays, b.visits, b.dwell_s), (7, 5, 840.0));
        assert_eq!((c.stays, c.visits, c.dwell_s), (6, 6, 540.0));
        assert!(close(b.mean_stay_s.unwrap(), 120.0));
        assert!(close(c.visit_share.unwrap(), 6.0 / 8.0));
        assert_eq!(
            (b.name.as_deref(), b.presence_minutes),
            (Some("Bakery"), 3.0)
        );
        // Zones of the layout without any data are listed too; most dwell first.
        assert_eq!(
            z.zones.iter().map(|f| f.zone.as_str()).collect::<Vec<_>>(),
            ["b", "a", "c", "d"]
        );
        let funnel = z.funnel.unwrap();
        assert_eq!(
            (
                funnel.entrance.as_str(),
                funnel.entrance_source,
                funnel.entered
            ),
            ("a", EntranceSource::Layout, 7)
        );
        let steps: Vec<(&str, i64)> = funnel
            .steps
            .iter()
            .map(|s| (s.zone.as_str(), s.reached))
            .collect();
        assert_eq!(steps, [("c", 5), ("b", 4)]);
        assert!(close(funnel.steps[0].rate.unwrap(), 5.0 / 7.0));
        assert!(close(funnel.steps[0].mean_time_to_reach_s.unwrap(), 228.0));
        assert!(close(funnel.steps[1].mean_time_to_reach_s.unwrap(), 75.0));

        let p = paths(&db.store, &q, 2).await.unwrap();
        let listed: Vec<(Vec<&str>, i64)> = p
            .paths
            .iter()
            .map(|p| (p.zones.iter().map(String::as_str).collect(), p.visits))
            .collect();
        assert_eq!(listed, [(vec!["a", "c"], 3), (vec!["a", "b", "c"], 2)]);
        assert_eq!((p.visits_with_zones, p.other_visits), (8, 3));
        let tr: Vec<(&str, &str, i64)> = p
            .transitions
            .iter()
            .map(|t| (t.source.as_str(), t.target.as_str(), t.count))
            .collect();
        assert_eq!(
            tr,
            [("a", "b", 5), ("a", "c", 3), ("b", "c", 3), ("b", "a", 1)]
        );

        // No layout: the funnel starts where most paths start (a: 7 of 8).
        let y = zones(
            &db.store,
            &ZoneQuery {
                store: "y".into(),
                from: d,
                to: d,
            },
        )
        .await
        .unwrap();
        let f = y.funnel.unwrap();
        assert_eq!(
            (f.entrance.as_str(), f.entrance_source, f.entered),
            ("a", EntranceSource::MostCommonFirstZone, 7)
        );
        assert!(
            zones(
                &db.store,
                &ZoneQuery {
                    store: "nope".into(),
                    from: d,
                    to: d
                }
            )
            .await
            .is_err()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Campaigns

/// Campaign `c1`, decisions at 2025-06-01 10:00 UTC (D), conversion window 7 days:
/// - treated: t0..t9 sent (t0..t4 at store `s1`, t5..t9 at `s2`); t0..t8 visit again within the
///   window (t8 exactly at D + 7 d: included), t9 visits at D + 7 d + 1 ms (too late) → 9/10;
///   t0 has a second, later `sent` decision: still one shopper;
/// - holdout: h0..h9 at `s1`; h0..h2 visit again; h3 only passes by (a passer-by visit is not a
///   visit to the store), h4's visit started before the decision → 3/10;
/// - x: `capped` (not in either arm); late: sent 2 days before `as_of` — its window is still
///   open, so not in the lift yet.
///
/// Lift = 0.9 − 0.3 = 0.6. Newcombe's interval by hand (z = 1.959964, z² = 3.841459):
/// Wilson 9/10: centre (0.9 + 0.192073)/1.384146 = 0.788987, half 1.959964·√(0.009 + 0.009604)
/// /1.384146 = 0.193137 → [0.595850, 0.982124]; Wilson 3/10: centre (0.3 + 0.192073)/1.384146 =
/// 0.355507, half 1.959964·√(0.021 + 0.009604)/1.384146 = 0.247715 → [0.107791, 0.603222];
/// low = 0.6 − √((0.9 − 0.595850)² + (0.603222 − 0.3)²) = 0.6 − 0.429477 = 0.170523;
/// high = 0.6 + √((0.982124 − 0.9)² + (0.3 − 0.107791)²) = 0.6 + 0.209018 = 0.809018.
/// Coupons: 11 issued (t0 twice), 8 delivered, 4 redeemed (1000 + 2500 + none + 500 cents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_results_with_lift_and_its_interval() {
    for db in every_backend().await {
        let d = at("UTC", "2025-06-01T10:00:00");
        let week = 7 * 24 * 60 * MIN;
        let as_of = d + 20 * 24 * 60 * MIN;
        let exec = async |sql: &'static str, binds: Vec<String>, ints: Vec<i64>| {
            on_pool!(&db.store, pool => {
                let mut q = sqlx::query(sql);
                for b in &binds {
                    q = q.bind(b.clone());
                }
                for i in &ints {
                    q = q.bind(*i);
                }
                q.execute(pool).await.map(|_| ())
            })
            .unwrap();
        };
        exec(
            "INSERT INTO campaigns (id, name, spec, created_ms) VALUES ($1, $2, '{}', 0)",
            vec!["c1".into(), "Croissant morning".into()],
            vec![],
        )
        .await;
        let decide = async |shopper: &str, store: &str, outcome: &str, key: &str, ts: i64| {
            exec(
                "INSERT INTO campaign_decisions (campaign, shopper, trigger_key, outcome, store, ts_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec!["c1".into(), shopper.into(), key.into(), outcome.into(), store.into()],
                vec![ts],
            )
            .await;
        };
        let mut visit_n = 0;
        let mut visited = async |shopper: &str, ms: i64, class: &str| {
            visit_n += 1;
            add_visit(&db, &format!("cv{visit_n}"), "s1", shopper, ms, class).await;
        };
        for i in 0..10 {
            let (t, h) = (format!("t{i}"), format!("h{i}"));
            add_shopper(&db, &t).await;
            add_shopper(&db, &h).await;
            decide(&t, if i < 5 { "s1" } else { "s2" }, "sent", "k1", d).await;
            decide(&h, "s1", "holdout", "k1", d).await;
            let back = match i {
                0..8 => Some(d + (i + 1) * 3_600_000),
                8 => Some(d + week),
                _ => Some(d + week + 1),
            };
            if let Some(ms) = back {
                visited(&t, ms, "visitor").await;
            }
            match i {
                0..3 => visited(&h, d + 86_400_000, "visitor").await,
                3 => visited(&h, d + 86_400_000, "passerby").await,
                4 => visited(&h, d - 60_000, "visitor").await,
                _ => {}
            }
        }
        decide("t0", "s1", "sent", "k2", d + 86_400_000).await;
        decide("x", "s1", "capped", "k1", d).await;
        decide("late", "s1", "sent", "k1", as_of - 2 * 86_400_000).await;
        let coupon = async |code: &str,
                            shopper: &str,
                            store: &str,
                            delivered: bool,
                            amount: Option<i64>,
                            redeemed: bool| {
            on_pool!(&db.store, pool => sqlx::query(
                "INSERT INTO coupons (code, campaign, shopper, store, trigger_key, trigger_ts_ms, \
                   issued_ms, expires_ms, offer, delivered_ms, redeemed_ms, amount_cents) \
                 VALUES ($1, 'c1', $2, $3, 'k', 0, 0, 0, '{}', $4, $5, $6)")
                .bind(code).bind(shopper).bind(store)
                .bind(delivered.then_some(1_i64)).bind(redeemed.then_some(2_i64)).bind(amount)
                .execute(pool).await.map(|_| ()))
            .unwrap();
        };
        for i in 0..10 {
            let store = if i < 5 { "s1" } else { "s2" };
            let (amount, redeemed) = match i {
                0 => (Some(1000), true),
                1 => (Some(2500), true),
                2 => (None, true),
                5 => (Some(500), true),
                _ => (None, false),
            };
            coupon(
                &format!("C{i}"),
                &format!("t{i}"),
                store,
                i < 8,
                amount,
                redeemed,
            )
            .await;
        }
        coupon("C10", "t0", "s1", false, None, false).await;
        // Segments: "early" = the tag on t0..t4 and h0..h4; "vip" matches no one.
        for i in 0..5 {
            for shopper in [format!("t{i}"), format!("h{i}")] {
                exec(
                    "INSERT INTO shopper_tags (shopper, tag, source, set_ms) \
                     VALUES ($1, 'early', 'api', 0)",
                    vec![shopper],
                    vec![],
                )
                .await;
            }
        }
        for (id, expr) in [("early-birds", "early & !staff"), ("vips", "vip")] {
            exec(
                "INSERT INTO segments (id, expression, created_ms) VALUES ($1, $2, 0)",
                vec![id.into(), expr.into()],
                vec![],
            )
            .await;
        }

        let query = CampaignQuery {
            campaign: "c1".into(),
            window_days: 7,
            as_of_ms: as_of,
            store: None,
        };
        let r = campaign_results(&db.store, &query).await.unwrap();
        assert_eq!(r.name.as_deref(), Some("Croissant morning"));
        let t = &r.total;
        assert_eq!(
            (
                t.decisions.sent,
                t.decisions.holdout,
                t.decisions.capped,
                t.decisions.budget
            ),
            (12, 10, 1, 0),
            "{}",
            db.name
        );
        assert_eq!(
            (t.coupons.issued, t.coupons.delivered, t.coupons.redeemed),
            (11, 8, 4)
        );
        assert_eq!(t.coupons.revenue_cents, 4000);
        assert!(close(t.coupons.redemption_rate.unwrap(), 4.0 / 11.0));
        let l = t.lift;
        assert_eq!((l.treated.shoppers, l.treated.converted), (10, 9));
        assert_eq!((l.holdout.shoppers, l.holdout.converted), (10, 3));
        assert!(close(l.lift.unwrap(), 0.6));
        let [lo, hi] = l.ci95.unwrap();
        assert!(
            (lo - 0.170523).abs() < 1e-6 && (hi - 0.809018).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert_eq!(l.significant, Some(true));
        assert!(close(l.relative_lift.unwrap(), 2.0));
        // Per store: s1 has t0..t4 (5/5 converted) and every held-out shopper; s2 t5..t9 (4/5).
        let s1 = &r.stores.iter().find(|s| s.store == "s1").unwrap().figures;
        let s2 = &r.stores.iter().find(|s| s.store == "s2").unwrap().figures;
        assert_eq!(
            (s1.lift.treated.shoppers, s1.lift.treated.converted),
            (5, 5)
        );
        assert_eq!(
            (s2.lift.treated.shoppers, s2.lift.treated.converted),
            (5, 4)
        );
        assert_eq!((s2.lift.holdout.shoppers, s2.lift.lift), (0, None));
        assert_eq!((s1.coupons.issued, s2.coupons.issued), (6, 5));
        assert_eq!(
            (s1.coupons.revenue_cents, s2.coupons.revenue_cents),
            (3500, 500)
        );

        // Per segment, by the shoppers' tags: early birds are t0..t4 (5 of 5 back) and h0..h4
        // (3 of 5 back: h3 only passed by, h4 came before the decision).
        let early = seg_of(&r, "early-birds");
        assert_eq!((early.decisions.sent, early.decisions.holdout), (6, 5));
        assert_eq!(
            (
                early.coupons.issued,
                early.coupons.redeemed,
                early.coupons.revenue_cents
            ),
            (6, 3, 3500)
        );
        assert_eq!(
            (
                early.lift.treated.converted,
                early.lift.treated.shoppers,
                early.lift.holdout.converted,
                early.lift.holdout.shoppers
            ),
            (5, 5, 3, 5)
        );
        assert!(close(early.lift.lift.unwrap(), 0.4));
        let vips = seg_of(&r, "vips");
        assert_eq!(
            (vips.decisions.sent, vips.coupons.issued, vips.lift.lift),
            (0, 0, None)
        );

        // A store's view (a manager's token): its row is the total, its shoppers the segments'.
        let s2_only = campaign_results(
            &db.store,
            &CampaignQuery {
                store: Some("s2".into()),
                ..query.clone()
            },
        )
        .await
        .unwrap();
        assert_eq!(s2_only.stores.len(), 1);
        assert_eq!(&s2_only.total, s2);
        assert_eq!(seg_of(&s2_only, "early-birds").decisions.sent, 0);

        let e = campaign_results(&db.store, &CampaignQuery::new("nope", as_of))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Incremental = rebuild, on a generated year

/// Three stores in three time zones (DST in Berlin and New York, a +05:30 zone) × 365 days,
/// written through `Store::write` in sets out of order, a seventh of them delivered twice; then the
/// roll-ups are compared with a rebuild from `events` (of everything, and of one store), and the
/// two backends with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_roll_ups_equal_a_rebuild_on_a_generated_year() {
    let spec = HistorySpec {
        stores: vec![
            ("berlin".into(), BERLIN.into()),
            ("new-york".into(), "America/New_York".into()),
            ("mumbai".into(), "Asia/Kolkata".into()),
        ],
        first_day: date(2024, 1, 1),
        days: 365,
        visits_per_day: 25,
        counts_every_s: 1800,
        seed: 7,
        ..HistorySpec::default()
    };
    let events = history(&spec);
    // What the roll-ups must count, worked out from the generated events themselves.
    let people_visits = events
        .iter()
        .filter(|e| e.kind == "visit_end")
        .filter(|e| {
            let ev: Event = serde_json::from_str(&e.payload).unwrap();
            let EventKind::VisitEnd { device, .. } = ev.kind else {
                unreachable!()
            };
            device.randomized != Some(true) && device.tier != Some(DeviceTier::Static)
        })
        .count() as i64;
    // Sets of 1,000 events, written last set first (per store interleaved), a seventh twice.
    let sets: Vec<Vec<_>> = events.chunks(1000).map(<[_]>::to_vec).collect();
    let mut snapshots = Vec::new();
    for db in every_backend().await {
        // Berlin alone in "europe"; New York and Mumbai together in "far".
        for (id, tz) in &spec.stores {
            let region = if id == "berlin" { "europe" } else { "far" };
            add_store(&db, id, tz, region, None).await;
        }
        let mut stored = 0;
        for (i, set) in sets.iter().enumerate().rev() {
            let ws = WriteSet {
                events: set.clone(),
                ..WriteSet::default()
            };
            stored += db.store.write(&ws).await.unwrap().inserted;
            if i % 7 == 3 {
                assert_eq!(db.store.write(&ws).await.unwrap().inserted, 0);
            }
        }
        assert_eq!(stored, events.len() as u64);

        let incremental = snapshot(&db.store, None).await.unwrap();
        assert!(
            incremental["footfall_hour"].len() > 3 * 300 * 12,
            "{}",
            db.name
        );
        assert!(!incremental["path_day"].is_empty() && !incremental["zone_reach_day"].is_empty());

        // Totals agree with the events, and hours, days and weeks agree with each other.
        let year = query(
            Scope::Chain,
            date(2024, 1, 1),
            date(2024, 12, 29),
            Granularity::Day,
        );
        let by_day = footfall(&db.store, &year).await.unwrap();
        let by_week = footfall(
            &db.store,
            &FootfallQuery {
                granularity: Granularity::Week,
                ..year.clone()
            },
        )
        .await
        .unwrap();
        assert_eq!(by_week.buckets.len(), 52);
        assert_eq!(by_day.total, by_week.total);
        let all = footfall(
            &db.store,
            &query(
                Scope::Chain,
                date(2023, 12, 1),
                date(2025, 1, 31),
                Granularity::Day,
            ),
        )
        .await
        .unwrap();
        assert_eq!(all.total.visits, people_visits, "{}", db.name);
        // The chain's and regions' sums (their own roll-ups) agree with the stores' rows: a
        // region of one store is that store, hour by hour across its DST changes; the regions
        // add up to the chain, bucket by bucket.
        let in_scope = |scope: Scope, g: Granularity| FootfallQuery {
            scope,
            granularity: g,
            // Hours: a quarter (at most 92 days a query), across Berlin's spring change.
            to: if g == Granularity::Hour {
                date(2024, 3, 31)
            } else {
                year.to
            },
            ..year.clone()
        };
        for g in [Granularity::Hour, Granularity::Day, Granularity::Week] {
            let europe = footfall(&db.store, &in_scope(Scope::Region("europe".into()), g))
                .await
                .unwrap();
            let berlin = footfall(&db.store, &in_scope(Scope::Store("berlin".into()), g))
                .await
                .unwrap();
            assert_eq!(europe.buckets, berlin.buckets, "{} {g:?}", db.name);
        }
        let far = footfall(
            &db.store,
            &in_scope(Scope::Region("far".into()), Granularity::Day),
        )
        .await
        .unwrap();
        let europe = footfall(
            &db.store,
            &in_scope(Scope::Region("europe".into()), Granularity::Day),
        )
        .await
        .unwrap();
        for ((c, e), f) in by_day.buckets.iter().zip(&europe.buckets).zip(&far.buckets) {
            let (c, e, f) = (&c.figures, &e.figures, &f.figures);
            assert_eq!(c.visits, e.visits + f.visits, "{} {}", db.name, by_day.from);
            assert_eq!(c.passersby, e.passersby + f.passersby);
            assert_eq!(
                c.traffic.randomized_visits,
                e.traffic.randomized_visits + f.traffic.randomized_visits
            );
        }
        assert!(far.total.visits > 0 && europe.total.visits > 0);
        let q1 = query(
            Scope::Store("berlin".into()),
            date(2024, 1, 1),
            date(2024, 3, 31),
            Granularity::Hour,
        );
        let hours = footfall(&db.store, &q1).await.unwrap();
        assert_eq!(
            hours.buckets.len(),
            91 * 24 - 1,
            "31 March 2024 had 23 hours in Berlin"
        );
        let days = footfall(
            &db.store,
            &FootfallQuery {
                granularity: Granularity::Day,
                ..q1
            },
        )
        .await
        .unwrap();
        assert_eq!(hours.total, days.total);

        let report = rebuild(&db.store, None).await.unwrap();
        assert_eq!(report.stores, 3);
        assert_eq!(report.skipped, 0);
        let rebuilt = snapshot(&db.store, None).await.unwrap();
        assert_eq!(incremental, rebuilt, "{}: incremental ≠ rebuild", db.name);

        let one = rebuild(&db.store, Some("mumbai")).await.unwrap();
        assert_eq!(one.stores, 1);
        assert_eq!(snapshot(&db.store, None).await.unwrap(), incremental);
        snapshots.push((db.name, incremental));

        // Mumbai moves to "europe": once the scope sums are refreshed, the region is Berlin and
        // Mumbai, "far" is New York alone, and the chain is unchanged.
        on_pool!(&db.store, pool => sqlx::query("UPDATE stores SET region = 'europe' WHERE id = 'mumbai'")
            .execute(pool).await.map(|_| ()))
        .unwrap();
        refresh_scopes(&db.store).await.unwrap();
        let total = |scope: Scope| {
            let q = FootfallQuery {
                scope,
                ..year.clone()
            };
            let store = db.store.clone();
            async move { footfall(&store, &q).await.unwrap().total.visits }
        };
        let (b, m, n) = (
            total(Scope::Store("berlin".into())).await,
            total(Scope::Store("mumbai".into())).await,
            total(Scope::Store("new-york".into())).await,
        );
        assert_eq!(
            total(Scope::Region("europe".into())).await,
            b + m,
            "{}",
            db.name
        );
        assert_eq!(total(Scope::Region("far".into())).await, n);
        assert_eq!(total(Scope::Chain).await, by_day.total.visits);
    }
    if let [(_, a), (_, b)] = &snapshots[..] {
        assert_eq!(a, b, "SQLite and PostgreSQL roll up the same events alike");
    }
}

/// Two workers (two connection pools) write the same generated events at once, in different
/// groupings and orders, retrying what the database calls transient (a PostgreSQL deadlock, a
/// busy SQLite): every event is rolled up once — the roll-ups equal a rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_roll_up_each_event_once() {
    let spec = HistorySpec {
        stores: vec![
            ("a".into(), BERLIN.into()),
            ("b".into(), "Asia/Shanghai".into()),
        ],
        first_day: date(2025, 3, 20),
        days: 20,
        visits_per_day: 60,
        counts_every_s: 600,
        seed: 11,
        ..HistorySpec::default()
    };
    let events = history(&spec);
    for db in every_backend().await {
        for (id, tz) in &spec.stores {
            add_store(&db, id, tz, "r", None).await;
        }
        let write_all = |store: AnyStore, sets: Vec<Vec<dwell_cloud::store::EventRow>>| async move {
            let mut stored = 0;
            for set in sets {
                let ws = WriteSet {
                    events: set,
                    ..WriteSet::default()
                };
                let mut tries = 0;
                loop {
                    match store.write(&ws).await {
                        Ok(c) => {
                            stored += c.inserted;
                            break;
                        }
                        Err(e) if e.is_transient() && tries < 50 => tries += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            stored
        };
        let forward: Vec<_> = events.chunks(700).map(<[_]>::to_vec).collect();
        let backward: Vec<_> = events.chunks(500).rev().map(<[_]>::to_vec).collect();
        let (a, b) = tokio::join!(
            tokio::spawn(write_all(db.store.clone(), forward)),
            tokio::spawn(write_all(db.reopen().await, backward)),
        );
        assert_eq!(a.unwrap() + b.unwrap(), events.len() as u64, "{}", db.name);
        let incremental = snapshot(&db.store, None).await.unwrap();
        rebuild(&db.store, None).await.unwrap();
        assert_eq!(
            incremental,
            snapshot(&db.store, None).await.unwrap(),
            "{}",
            db.name
        );
    }
}

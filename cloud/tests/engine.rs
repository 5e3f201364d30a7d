//! The engine end to end through ingest (no broker): EID resolution of real events, visit
//! stitching across rotation, campaigns with holdout, caps and budgets, consent, coupons and
//! their redemption — on SQLite and on PostgreSQL.

mod support;

use dwell_cloud::campaigns::catalog;
use dwell_cloud::campaigns::spec::CampaignSpec;
use dwell_cloud::config::Config;
use dwell_cloud::coupons::delivery::MemorySink;
use dwell_cloud::coupons::wallet;
use dwell_cloud::engine::Engine;
use dwell_cloud::engine::setup;
use dwell_cloud::error::DomainError;
use dwell_cloud::ingest::{Ingestor, Message};
use dwell_cloud::on_pool;
use dwell_cloud::profiles::shoppers::{self, Registration};
use dwell_cloud::profiles::visits;
use dwell_cloud::store::{AnyStore, Store};
use dwell_shared::definitions::VisitClass;
use dwell_shared::eid;
use dwell_shared::hex;
use dwell_shared::wire::{DeviceRef, Event, EventBatch, EventKind, PathStay};
use std::sync::Arc;
use support::TestDb;

const STORE: &str = "store-001";
const GW: &str = "gw-1";
/// 2026-11-24 10:00 Asia/Shanghai is 02:00 UTC; the tests' events happen around now.
fn now_s() -> i64 {
    dwell_cloud::ingest::now_ms() / 1000
}

struct Rig {
    store: AnyStore,
    engine: Arc<Engine>,
    sink: Arc<MemorySink>,
    ingestor: Ingestor<AnyStore>,
    _dir: tempfile::TempDir,
}

async fn rig(db: &TestDb, campaigns: &[&str]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[database]\nurl = \"sqlite:///unused\"\n[ingest]\nallow_unknown_gateways = true\n[engine]\nsecrets_dir = \"{}\"\n",
        dir.path().display()
    );
    let config = Config::from_toml_str(&text, "test", dir.path()).unwrap();
    for c in campaigns {
        let spec: CampaignSpec = serde_json::from_str(c).unwrap();
        catalog::create(&db.store, spec, 0).await.unwrap();
    }
    db.store.register_gateway(STORE, GW).await.unwrap();
    let sink = Arc::new(MemorySink::default());
    let engine = setup::build(
        &db.store,
        &config,
        setup::secrets(dir.path()).unwrap(),
        sink.clone(),
        false,
    )
    .await
    .unwrap();
    let ingestor = Ingestor::new(db.store.clone(), false).with_hook(engine.clone());
    Rig {
        store: db.store.clone(),
        engine,
        sink,
        ingestor,
        _dir: dir,
    }
}

impl Rig {
    async fn shopper(&self, i: u8, profiling: bool) -> (String, [u8; 16]) {
        let key = [i; 16];
        let r = shoppers::register(
            &self.store,
            &Registration {
                identity_key: Some(hex::encode(&key)),
                exponent: Some(10),
                profiling: Some(profiling),
                ..Registration::default()
            },
            0,
        )
        .await
        .unwrap();
        self.engine.resolver().register(
            shoppers::registered_key(&self.store, &r.shopper)
                .await
                .unwrap()
                .unwrap(),
        );
        (r.shopper, key)
    }

    async fn send(&self, events: Vec<Event>) {
        let batch = EventBatch::new(STORE, GW, 0, events);
        let payload = serde_json::to_vec(&batch).unwrap();
        let topic = format!("dwell/v1/{STORE}/{GW}/events");
        self.ingestor
            .ingest(&[Message {
                topic: &topic,
                payload: &payload,
                retain: false,
                received_ms: 0,
            }])
            .await
            .unwrap();
    }

    fn coupons(&self) -> Vec<dwell_shared::wire::Coupon> {
        self.sink.coupons.lock().unwrap().clone()
    }
}

fn eid_device(key: &[u8; 16], t_s: i64) -> DeviceRef {
    DeviceRef::new(format!(
        "eid:{}",
        hex::encode(&eid::compute(key, 10, t_s as u32))
    ))
}

fn dwell(seq: u64, key: &[u8; 16], t_s: i64, zone: &str, secs: u32) -> Event {
    Event {
        seq,
        ts_ms: t_s * 1000,
        kind: EventKind::ZoneDwell {
            device: eid_device(key, t_s),
            zone: zone.into(),
            dwell_s: secs,
        },
    }
}

const SKINCARE: &str = r#"{"id":"skincare","name":"Skincare","zones":["cosmetics"],
    "trigger":{"kind":"dwell","seconds":120},
    "offer":{"title":"15% off","expires_after_s":3600},"cap":{"per_shopper":1,"window_s":86400}}"#;

#[tokio::test]
async fn a_dwell_milestone_of_an_opted_in_shopper_fires_one_coupon_however_often_it_arrives() {
    for db in support::every_backend().await {
        let rig = rig(&db, &[SKINCARE]).await;
        let (shopper, key) = rig.shopper(1, true).await;
        let t = now_s();
        let e = dwell(1, &key, t, "cosmetics", 120);
        rig.send(vec![e.clone()]).await;
        // The same event again, and again inside a batch with others, out of order.
        rig.send(vec![e.clone()]).await;
        rig.send(vec![dwell(3, &key, t + 5, "snacks", 120), e.clone()])
            .await;
        let coupons = rig.coupons();
        assert_eq!(coupons.len(), 1, "{}: {coupons:?}", db.name);
        let c = &coupons[0];
        assert_eq!(
            (c.shopper.as_str(), c.campaign.as_str()),
            (shopper.as_str(), "skincare")
        );
        assert_eq!(
            c.ts_ms,
            t * 1000,
            "the trigger's time travels with the coupon"
        );
        assert!(c.issued_ms >= c.ts_ms);
        // The wallet lists it, delivered.
        let w = wallet::of_shopper(&rig.store, &shopper).await.unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].delivered_ms.is_some());
        // An anonymous device's milestone fires nothing; an EID nobody registered neither.
        rig.send(vec![Event {
            seq: 10,
            ts_ms: t * 1000,
            kind: EventKind::ZoneDwell {
                device: DeviceRef::new("h:0123abcd"),
                zone: "cosmetics".into(),
                dwell_s: 120,
            },
        }])
        .await;
        rig.send(vec![dwell(11, &[0xee; 16], t, "cosmetics", 120)])
            .await;
        assert_eq!(rig.coupons().len(), 1, "{}", db.name);
    }
}

#[tokio::test]
async fn two_workers_racing_on_the_same_events_issue_each_coupon_once() {
    for db in support::every_backend().await {
        let rig = rig(&db, &[SKINCARE]).await;
        let mut keys = Vec::new();
        for i in 1..=20 {
            keys.push(rig.shopper(i, true).await.1);
        }
        let t = now_s();
        let events: Vec<Event> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| dwell(n as u64 + 1, k, t, "cosmetics", 120))
            .collect();
        // A second worker: its own pool, engine and ingestor over the same database.
        let other = db.reopen().await;
        let dir2 = tempfile::tempdir().unwrap();
        std::fs::copy(
            rig._dir.path().join("coupon.key"),
            dir2.path().join("coupon.key"),
        )
        .unwrap();
        std::fs::copy(
            rig._dir.path().join("holdout.salt"),
            dir2.path().join("holdout.salt"),
        )
        .unwrap();
        let sink2 = Arc::new(MemorySink::default());
        let text = format!(
            "[database]\nurl = \"sqlite:///unused\"\n[ingest]\nallow_unknown_gateways = true\n[engine]\nsecrets_dir = \"{}\"\n",
            dir2.path().display()
        );
        let config = Config::from_toml_str(&text, "test", dir2.path()).unwrap();
        let engine2 = setup::build(
            &other,
            &config,
            setup::secrets(dir2.path()).unwrap(),
            sink2.clone(),
            false,
        )
        .await
        .unwrap();
        let ingestor2 = Ingestor::new(other.clone(), false).with_hook(engine2);
        let batch = serde_json::to_vec(&EventBatch::new(STORE, GW, 0, events)).unwrap();
        let topic = format!("dwell/v1/{STORE}/{GW}/events");
        let msg = [Message {
            topic: &topic,
            payload: &batch,
            retain: false,
            received_ms: 0,
        }];
        let (a, b) = tokio::join!(rig.ingestor.ingest(&msg), ingestor2.ingest(&msg));
        a.unwrap();
        b.unwrap();
        let issued: i64 = on_pool!(&rig.store, pool => sqlx::query_scalar(
            "SELECT count(*) FROM coupons"
        ).fetch_one(pool).await)
        .unwrap();
        let delivered = rig.coupons().len() + sink2.coupons.lock().unwrap().len();
        assert_eq!(issued, 20, "{}", db.name);
        assert_eq!(
            delivered, 20,
            "{}: each coupon published by exactly one worker",
            db.name
        );
        assert_eq!(rig.store.event_count().await.unwrap(), 20);
    }
}

#[tokio::test]
async fn holdout_caps_and_budget_hold() {
    const HALF_HELD: &str = r#"{"id":"held","name":"Held","trigger":{"kind":"dwell","seconds":60},
        "offer":{"title":"x","expires_after_s":60},"holdout_permille":500,
        "cap":{"per_shopper":2,"window_s":86400},"budget":7}"#;
    for db in support::every_backend().await {
        let rig = rig(&db, &[HALF_HELD]).await;
        let t = now_s();
        let mut seq = 0;
        let mut events = Vec::new();
        for i in 1..=40u8 {
            let (_, key) = rig.shopper(i, true).await;
            // Three triggers each: the cap (2 per day) stops the third.
            for k in 0..3 {
                seq += 1;
                events.push(dwell(seq, &key, t + k, "snacks", 60));
            }
        }
        rig.send(events).await;
        let outcomes: Vec<(String, i64)> = on_pool!(&rig.store, pool => sqlx::query_as(
            "SELECT outcome, count(*) FROM campaign_decisions GROUP BY outcome ORDER BY outcome"
        ).fetch_all(pool).await)
        .unwrap();
        let get = |o: &str| outcomes.iter().find(|x| x.0 == o).map_or(0, |x| x.1);
        assert_eq!(get("sent"), 7, "{}: budget 7: {outcomes:?}", db.name);
        assert_eq!(rig.coupons().len(), 7);
        let held = get("holdout");
        // 40 shoppers, 3 triggers each, a deterministic half held out: 120 triggers in all.
        assert_eq!(
            held % 3,
            0,
            "a held-out shopper is held out on every trigger"
        );
        assert!(
            (30..=90).contains(&held),
            "{}: {held} of 120 held out",
            db.name
        );
        assert_eq!(
            get("sent") + get("holdout") + get("capped") + get("budget"),
            120
        );
        let issued: i64 = on_pool!(&rig.store, pool => sqlx::query_scalar(
            "SELECT issued FROM campaigns WHERE id = 'held'"
        ).fetch_one(pool).await)
        .unwrap();
        assert_eq!(issued, 7);
    }
}

#[tokio::test]
async fn consent_is_checked_on_every_send() {
    const PERSONAL: &str = r#"{"id":"personal","name":"P","trigger":{"kind":"dwell","seconds":60},
        "audience":{"segment":"vip"},"offer":{"title":"vip","expires_after_s":60}}"#;
    const OPEN: &str = r#"{"id":"open","name":"O","trigger":{"kind":"dwell","seconds":60},
        "offer":{"title":"for all","expires_after_s":60}}"#;
    for db in support::every_backend().await {
        let rig = rig(&db, &[PERSONAL, OPEN]).await;
        let (profiled, k1) = rig.shopper(1, true).await;
        let (refuser, k2) = rig.shopper(2, false).await;
        let (leaver, k3) = rig.shopper(3, true).await;
        for s in [&profiled, &refuser] {
            shoppers::set_tag(&rig.store, s, "vip", "api", 0)
                .await
                .unwrap();
        }
        shoppers::set_consent(&rig.store, &leaver, Some(true), None, 1)
            .await
            .unwrap();
        let t = now_s();
        rig.send(vec![
            dwell(1, &k1, t, "a", 60),
            dwell(2, &k2, t, "a", 60),
            dwell(3, &k3, t, "a", 60),
        ])
        .await;
        let mut got: Vec<(String, String)> = rig
            .coupons()
            .into_iter()
            .map(|c| (c.shopper, c.campaign))
            .collect();
        got.sort();
        let mut want = vec![
            (profiled.clone(), "open".to_owned()),
            (profiled.clone(), "personal".to_owned()),
            // Refused profiling: the non-personalised offer only.
            (refuser.clone(), "open".to_owned()),
        ];
        want.sort();
        assert_eq!(got, want, "{}: the opted-out shopper gets nothing", db.name);
    }
}

#[tokio::test]
async fn visits_split_by_eid_rotation_are_stitched_into_one() {
    for db in support::every_backend().await {
        let rig = rig(&db, &[]).await;
        let (shopper, key) = rig.shopper(5, true).await;
        let t0 = now_s() - 1800;
        // The phone's EID rotated at t0 + 1024 - (t0 % 1024): the gateway saw two devices.
        let rot = t0 - t0.rem_euclid(1024) + 1024;
        let part = |seq, from: i64, to: i64, zone: &str| Event {
            seq,
            ts_ms: to * 1000 + 900_000,
            kind: EventKind::VisitEnd {
                device: eid_device(&key, from),
                class: VisitClass::Passerby,
                start_ms: from * 1000,
                end_ms: to * 1000,
                path: vec![PathStay {
                    zone: zone.into(),
                    enter_ms: from * 1000,
                    exit_ms: to * 1000,
                }],
            },
        };
        let a = part(1, rot - 60, rot - 1, "cosmetics");
        let b = part(2, rot + 5, rot + 70, "cosmetics");
        rig.send(vec![b.clone(), a.clone()]).await;
        rig.send(vec![a]).await; // redelivered
        let v = visits::of_shopper(&rig.store, &shopper, 10).await.unwrap();
        assert_eq!(v.len(), 1, "{}: {v:?}", db.name);
        assert_eq!(v[0].parts, 2);
        assert_eq!(
            (v[0].start_ms, v[0].end_ms),
            ((rot - 60) * 1000, (rot + 70) * 1000)
        );
        // Each part alone was a passer-by (60 s and 65 s); stitched, 130 s make a visitor.
        assert_eq!(v[0].class, "visitor");
        assert_eq!(
            v[0].path.len(),
            1,
            "the two stays in cosmetics are one: {:?}",
            v[0].path
        );
        // Erase de-links the visit, and the EIDs stop resolving.
        shoppers::erase(&rig.store, &shopper).await.unwrap();
        rig.engine.resolver().remove(&shopper);
        let orphans: i64 = on_pool!(&rig.store, pool => sqlx::query_scalar(
            "SELECT count(*) FROM visits WHERE shopper IS NULL"
        ).fetch_one(pool).await)
        .unwrap();
        assert_eq!(orphans, 1);
        assert!(
            rig.engine
                .resolver()
                .resolve(&eid::compute(&key, 10, rot as u32), rot * 1000)
                .is_none()
        );
    }
}

#[tokio::test]
async fn redemption_rejects_forged_expired_and_repeated_codes() {
    for db in support::every_backend().await {
        let rig = rig(&db, &[SKINCARE]).await;
        let (_, key) = rig.shopper(1, true).await;
        let t = now_s();
        rig.send(vec![dwell(1, &key, t, "cosmetics", 120)]).await;
        let code = rig.coupons()[0].code.clone();
        let k = rig.engine.coupon_key();
        let now = dwell_cloud::ingest::now_ms();
        // Typed in lower case without dashes: the same coupon.
        let typed: String = code.replace('-', "").to_lowercase();
        let ok = wallet::redeem(&rig.store, k, &typed, STORE, Some(2599), now)
            .await
            .unwrap();
        assert_eq!(
            (ok.redeemed_store.as_deref(), ok.amount_cents),
            (Some(STORE), Some(2599))
        );
        // The same till retrying: the same answer.
        wallet::redeem(&rig.store, k, &code, STORE, Some(2599), now + 1000)
            .await
            .unwrap();
        // Anyone else: already redeemed.
        let e = wallet::redeem(&rig.store, k, &code, "store-002", None, now + 2000)
            .await
            .unwrap_err();
        assert_eq!(wallet::refusal_label(&e), "already_redeemed", "{e}");
        // One symbol altered: forged (or malformed), never accepted.
        let mut chars: Vec<char> = code.chars().collect();
        let i = chars.len() - 6;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        let e = wallet::redeem(&rig.store, k, &altered, STORE, None, now)
            .await
            .unwrap_err();
        assert!(
            matches!(wallet::refusal_label(&e), "forged" | "malformed"),
            "{e}"
        );
        // Signed with another key: forged.
        let other = dwell_cloud::coupons::code::CouponKey::generate();
        let claims = k.verify(&code, now).unwrap();
        let e = wallet::redeem(&rig.store, k, &other.sign(&claims), STORE, None, now)
            .await
            .unwrap_err();
        assert_eq!(wallet::refusal_label(&e), "forged");
        // Past its expiry (an hour): expired.
        rig.send(vec![dwell(2, &[1; 16], t + 90_000, "cosmetics", 120)])
            .await;
        let second = rig.coupons()[1].code.clone();
        let e = wallet::redeem(&rig.store, k, &second, STORE, None, now + 3 * 86_400_000)
            .await
            .unwrap_err();
        assert_eq!(wallet::refusal_label(&e), "expired", "{e}");
        assert!(matches!(e, DomainError::Refused(_)));
    }
}

//! The storage layer on both backends: SQLite in a temporary directory and a scratch PostgreSQL
//! (skipped with a SKIP line when PostgreSQL isn't installed, unless CI is set).

mod support;

use dwell_cloud::store::{
    AnyStore, DeadLetterRow, EventRow, SqliteStore, StatusUpdate, Store, WriteSet, sqlite,
};
use support::every_backend;

fn row(gateway: &str, seq: i64, zone: &str) -> EventRow {
    EventRow {
        gateway: gateway.into(),
        seq,
        store: "store-001".into(),
        ts_ms: 1_760_000_000_000 + seq,
        kind: "zone_enter",
        device: Some(format!("h:{seq:08x}")),
        zone: Some(zone.into()),
        payload: format!(
            r#"{{"seq":{seq},"ts_ms":{},"type":"zone_enter","device":"h:{seq:08x}","zone":"{zone}"}}"#,
            1_760_000_000_000 + seq
        ),
        received_ms: 5,
    }
}

fn events(gateway: &str, seqs: impl IntoIterator<Item = i64>, zone: &str) -> WriteSet {
    WriteSet {
        events: seqs.into_iter().map(|s| row(gateway, s, zone)).collect(),
        ..WriteSet::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_idempotent_and_the_first_copy_wins() {
    for db in every_backend().await {
        let s = &db.store;
        s.register_gateway("store-001", "gw-1").await.unwrap();
        assert_eq!(
            s.write(&events("gw-1", 1..=100, "a"))
                .await
                .unwrap()
                .inserted,
            100,
            "{}",
            db.name
        );
        // Same again, and an overlapping set with different content: only the new seqs go in.
        assert_eq!(
            s.write(&events("gw-1", 1..=100, "a"))
                .await
                .unwrap()
                .inserted,
            0
        );
        assert_eq!(
            s.write(&events("gw-1", 51..=150, "b"))
                .await
                .unwrap()
                .inserted,
            50
        );
        // Duplicates inside one set.
        assert_eq!(
            s.write(&events("gw-1", [151, 151, 152], "c"))
                .await
                .unwrap()
                .inserted,
            2
        );
        assert_eq!(s.event_count().await.unwrap(), 152);
        let stored = s.events("gw-1").await.unwrap();
        assert_eq!(stored.len(), 152);
        for e in &stored {
            let first = match e.seq {
                1..=100 => "a",
                101..=150 => "b",
                _ => "c",
            };
            assert_eq!(e.zone.as_deref(), Some(first), "{} seq {}", db.name, e.seq);
            assert_eq!(e.payload["zone"], first);
            assert_eq!(e.kind, "zone_enter");
            assert_eq!(e.ts_ms, 1_760_000_000_000 + e.seq);
        }
        // Another gateway's seq 1 is another event.
        assert_eq!(
            s.write(&events("gw-2", [1], "z")).await.unwrap().inserted,
            1
        );
        assert_eq!(s.event_count().await.unwrap(), 153);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_sets_are_split_under_the_bind_limit() {
    // More rows than one SQLite statement may bind (and more params than PostgreSQL's limit, if
    // it were a VALUES list: 9 × 8,000 = 72,000 > 65,535).
    let n = 8_000i64;
    assert!(n as usize > sqlite::ROWS_PER_INSERT * 2);
    for db in every_backend().await {
        let s = &db.store;
        let c = s.write(&events("gw-1", 1..=n, "a")).await.unwrap();
        assert_eq!(c.inserted, n as u64, "{}", db.name);
        let c = s.write(&events("gw-1", 1..=n + 10, "a")).await.unwrap();
        assert_eq!(c.inserted, 10, "{}", db.name);
        assert_eq!(s.event_count().await.unwrap(), n as u64 + 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_store_each_event_once() {
    for db in every_backend().await {
        // Two pools, as two worker processes would have.
        let a = db.store.clone();
        let b = db.reopen().await;
        let mut tasks = Vec::new();
        for (i, s) in [a, b].into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut inserted = 0;
                // Overlapping windows, in opposite orders.
                for k in 0..20i64 {
                    let k = if i == 0 { k } else { 19 - k };
                    let set = events("gw-1", k * 50 + 1..=k * 50 + 100, "a");
                    inserted += s.write(&set).await.unwrap().inserted;
                }
                inserted
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 1_050, "{}", db.name);
        assert_eq!(db.store.event_count().await.unwrap(), 1_050, "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_keep_the_raw_bytes() {
    for db in every_backend().await {
        let payload = vec![0xff, 0x00, b'{', 0xc3];
        let set = WriteSet {
            dead_letters: vec![DeadLetterRow {
                received_ms: 7,
                topic: "dwell/v1/s/g/events".into(),
                reason: "malformed_json",
                detail: "expected value at line 1 column 1".into(),
                payload: payload.clone(),
                key: None,
            }],
            ..WriteSet::default()
        };
        db.store.write(&set).await.unwrap();
        db.store.write(&set).await.unwrap();
        let dl = db.store.dead_letters().await.unwrap();
        assert_eq!(dl.len(), 2, "{}", db.name);
        assert_eq!(dl[0].payload, payload);
        assert_eq!(dl[0].reason, "malformed_json");
        assert!(dl[0].id < dl[1].id);

        // A keyed row (what ingest writes) is stored once however often it is written: a
        // redelivered message refused again; a different key is a different row.
        let mut keyed = set.clone();
        keyed.dead_letters[0].key = Some([7; 32]);
        db.store.write(&keyed).await.unwrap();
        db.store.write(&keyed).await.unwrap();
        assert_eq!(
            db.store.dead_letters().await.unwrap().len(),
            3,
            "{}",
            db.name
        );
        keyed.dead_letters[0].key = Some([8; 32]);
        db.store.write(&keyed).await.unwrap();
        assert_eq!(
            db.store.dead_letters().await.unwrap().len(),
            4,
            "{}",
            db.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_registration_claims_and_status() {
    for db in every_backend().await {
        let s = &db.store;
        s.register_gateway("store-001", "gw-1").await.unwrap();
        let g = s.gateway("gw-1").await.unwrap().unwrap();
        assert!(g.registered);
        assert_eq!(g.store, "store-001");
        assert_eq!(g.online, None);

        // A claim never steals a gateway from its store.
        let c = s.claim_gateway("store-002", "gw-1", 1).await.unwrap();
        assert_eq!(c.store, "store-001");
        let c = s.claim_gateway("store-002", "gw-9", 1).await.unwrap();
        assert_eq!((c.store.as_str(), c.registered), ("store-002", false));
        // Registration moves it and marks it registered.
        s.register_gateway("store-003", "gw-9").await.unwrap();
        let g = s.gateway("gw-9").await.unwrap().unwrap();
        assert_eq!((g.store.as_str(), g.registered), ("store-003", true));

        let status = |online, ts_ms, backlog| StatusUpdate {
            gateway: "gw-1".into(),
            online,
            ts_ms,
            backlog,
            version: Some("0.1.0".into()),
            seen_ms: ts_ms,
        };
        let w = |st| WriteSet {
            statuses: vec![st],
            ..WriteSet::default()
        };
        s.write(&w(status(true, 100, Some(12)))).await.unwrap();
        // An older status (redelivered, or a stale retained one) doesn't win.
        s.write(&w(status(false, 50, None))).await.unwrap();
        let g = s.gateway("gw-1").await.unwrap().unwrap();
        assert_eq!(
            (g.online, g.backlog, g.status_ms, g.last_seen_ms),
            (Some(true), Some(12), Some(100), Some(100)),
            "{}",
            db.name
        );
        // The last will: offline, no health fields (backlog and version kept).
        s.write(&w(StatusUpdate {
            version: None,
            ..status(false, 200, None)
        }))
        .await
        .unwrap();
        // Events raise last_seen, never lower it.
        s.write(&WriteSet {
            seen: vec![("gw-1".into(), 150), ("gw-1".into(), 300)],
            ..WriteSet::default()
        })
        .await
        .unwrap();
        s.write(&WriteSet {
            seen: vec![("gw-1".into(), 10)],
            ..WriteSet::default()
        })
        .await
        .unwrap();
        let g = s.gateway("gw-1").await.unwrap().unwrap();
        assert_eq!(
            (g.online, g.backlog, g.version.as_deref(), g.last_seen_ms),
            (Some(false), Some(12), Some("0.1.0"), Some(300)),
            "{}",
            db.name
        );
        assert_eq!(s.gateways().await.unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_leaves_nothing() {
    for db in every_backend().await {
        let s = &db.store;
        // The second row breaks a NOT NULL constraint after the events went in.
        let mut set = events("gw-1", 1..=10, "a");
        set.dead_letters.push(DeadLetterRow {
            received_ms: 1,
            topic: "t".into(),
            reason: "x",
            detail: "\0".into(), // PostgreSQL refuses NUL in text; SQLite stores it
            payload: vec![],
            key: None,
        });
        let r = s.write(&set).await;
        if db.name == "postgres" {
            let e = r.unwrap_err();
            assert!(!e.is_transient(), "{e}");
            assert_eq!(s.event_count().await.unwrap(), 0);
        } else {
            r.unwrap();
        }
    }
}

#[tokio::test]
async fn sqlite_is_a_wal_file_in_the_data_directory_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let s = SqliteStore::open_dir(&data).await.unwrap();
    assert_eq!(s.path(), data.join("dwell.db"));
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let store = AnyStore::Sqlite(s);
    store.write(&events("gw-1", 1..=3, "a")).await.unwrap();
    store.close().await;
    // Reopening runs the migrations again (a no-op) and keeps the data.
    let again = SqliteStore::open_dir(&data).await.unwrap();
    assert_eq!(again.event_count().await.unwrap(), 3);
}

//! Shoppers, sightings, campaigns and redemption over HTTP (the router in-process), on SQLite and
//! PostgreSQL: who may do what, what the app gets back, and every refusal with its reason.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dwell_cloud::api::auth::create_token;
use dwell_cloud::api::{self, ApiState, Role};
use dwell_cloud::config::Config;
use dwell_cloud::coupons::delivery::MemorySink;
use dwell_cloud::engine::setup;
use dwell_cloud::ingest::now_ms;
use dwell_cloud::on_pool;
use serde_json::{Value, json};
use tower::ServiceExt;

const UUID: &str = "e2c56db5-dffb-48d2-b060-d0f5a71096e0";
const LAYOUT: &str = r#"{"v":1,"store":"s-sh","timezone":"Asia/Shanghai",
  "receivers":[{"id":"r1","x":1.0,"y":1.0}],
  "zones":[{"id":"entrance","name":"Entrance","polygon":[[0,0],[4,0],[4,3],[0,3]]},
           {"id":"cosmetics","name":"Cosmetics","polygon":[[4,0],[8,0],[8,3],[4,3]]}],
  "entrance":"entrance"}"#;

struct Api {
    router: axum::Router,
    sink: Arc<MemorySink>,
    state: Arc<ApiState>,
    hq: String,
    app: String,
    pos_sh: String,
    _dir: tempfile::TempDir,
}

async fn api(db: &support::TestDb) -> Api {
    let store = &db.store;
    // Two stores 1,070 km apart, with beacon majors 1 and 2.
    for (id, lat, lon, major) in [("s-sh", 31.22, 121.46, 1), ("s-bj", 39.91, 116.40, 2)] {
        on_pool!(store, pool => sqlx::query(
            "INSERT INTO stores (id, name, tz, lat, lon, layout, beacon_major) \
             VALUES ($1, $1, 'Asia/Shanghai', $2, $3, $4, $5)")
            .bind(id).bind(lat).bind(lon).bind(LAYOUT).bind(major)
            .execute(pool).await.map(|_| ()))
        .unwrap();
    }
    dwell_cloud::campaigns::catalog::create(
        store,
        serde_json::from_value(json!({"id": "welcome", "name": "Welcome",
            "trigger": {"kind": "entry"}, "offer": {"title": "Hello", "expires_after_s": 3600}}))
        .unwrap(),
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(
        &format!(
            "[database]\nurl = \"sqlite:///unused\"\n[ingest]\nallow_unknown_gateways = true\n\
             [engine]\nsecrets_dir = \"{}\"\nbeacon_uuid = \"{UUID}\"\n",
            dir.path().display()
        ),
        "test",
        dir.path(),
    )
    .unwrap();
    let sink = Arc::new(MemorySink::default());
    let engine = setup::build(
        store,
        &config,
        setup::secrets(dir.path()).unwrap(),
        sink.clone(),
        false,
    )
    .await
    .unwrap();
    let mut state = ApiState::new(store.clone(), None);
    state.engine = Some(engine);
    let state = Arc::new(state);
    Api {
        router: api::router(state.clone()),
        sink,
        state,
        hq: create_token(store, Role::Hq, None, None, "hq")
            .await
            .unwrap(),
        app: create_token(store, Role::App, None, None, "app")
            .await
            .unwrap(),
        pos_sh: create_token(store, Role::Pos, Some("s-sh"), None, "till")
            .await
            .unwrap(),
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn opt_in_sightings_coupon_and_redemption_over_http() {
    for db in support::every_backend().await {
        let a = api(&db).await;
        // Opt-in: only the app backend (or HQ) registers.
        let (s, _) = a
            .call(Method::POST, "/api/v1/shoppers", &a.pos_sh, Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, reg) = a
            .call(
                Method::POST,
                "/api/v1/shoppers",
                &a.app,
                Some(json!({"identities": [{"kind": "phone", "value": "+86 138 0013 8000"}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{reg}");
        let id = reg["shopper"].as_str().unwrap().to_owned();
        let token = reg["token"].as_str().unwrap().to_owned();
        assert_eq!(reg["identity_key"].as_str().unwrap().len(), 32);
        assert_eq!(reg["exponent"], 10);
        // The shopper reads itself; the phone is stored hashed.
        let (s, me) = a
            .call(Method::GET, &format!("/api/v1/shoppers/{id}"), &token, None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let phone = me["identities"][0]["value"].as_str().unwrap();
        assert!(phone.starts_with("sha256:") && !phone.contains("13800138000"));
        // A second shopper can't read the first.
        let (_, other) = a
            .call(Method::POST, "/api/v1/shoppers", &a.app, Some(json!({})))
            .await;
        let other_token = other["token"].as_str().unwrap();
        let (s, e) = a
            .call(
                Method::GET,
                &format!("/api/v1/shoppers/{id}"),
                other_token,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["error"]["code"], "forbidden");

        // App-reported sightings: each judged and counted.
        let now = now_ms();
        let sighting = |uuid: &str, major: u16, minor: u16, ts: i64| json!({"uuid": uuid, "major": major, "minor": minor, "rssi": -70, "ts_ms": ts});
        let (s, out) = a
            .call(
                Method::POST,
                &format!("/api/v1/shoppers/{id}/sightings"),
                &token,
                Some(json!([
                    sighting(UUID, 1, 2, now - 1000),
                    sighting("00000000-0000-0000-0000-000000000000", 1, 1, now),
                    sighting(UUID, 9, 1, now),
                    sighting(UUID, 1, 7, now),
                    sighting(UUID, 1, 1, now - 3_600_000),
                    // Beijing 10 minutes after Shanghai: 6,400 km/h.
                    sighting(UUID, 2, 1, now + 10_000),
                ])),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{out}");
        let outcomes: Vec<&str> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            [
                "accepted",
                "unknown_beacon",
                "unknown_beacon",
                "unknown_beacon",
                "stale",
                "impossible_travel"
            ]
        );
        assert_eq!(
            out[0]["zone"], "cosmetics",
            "minor 2 is the layout's second zone"
        );
        // The accepted sighting started a visit: the entry campaign sent a coupon.
        let sent = a.sink.coupons.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{}", db.name);
        assert_eq!(sent[0].shopper, id);
        let (s, wallet) = a
            .call(
                Method::GET,
                &format!("/api/v1/shoppers/{id}/coupons"),
                &token,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let code = wallet[0]["code"].as_str().unwrap().to_owned();

        // Redemption at the till: a shopper can't, another store's till can't, this one can once.
        let redeem = |code: &str| format!("/api/v1/coupons/{code}/redeem");
        let (s, _) = a
            .call(
                Method::POST,
                &redeem(&code),
                &token,
                Some(json!({"store": "s-sh"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = a
            .call(
                Method::POST,
                &redeem(&code),
                &a.pos_sh,
                Some(json!({"store": "s-bj"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, r) = a
            .call(
                Method::POST,
                &redeem(&code),
                &a.pos_sh,
                Some(json!({"store": "s-sh", "amount_cents": 1999})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["amount_cents"], 1999);
        let (s, e) = a
            .call(
                Method::POST,
                &redeem(&code),
                &a.hq,
                Some(json!({"store": "s-bj"})),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("already_redeemed"))
        );
        let forged = format!(
            "{}{}",
            &code[..code.len() - 1],
            if code.ends_with('0') { '1' } else { '0' }
        );
        let (s, e) = a
            .call(
                Method::POST,
                &redeem(&forged),
                &a.pos_sh,
                Some(json!({"store": "s-sh"})),
            )
            .await;
        assert!(
            matches!(e["error"]["code"].as_str(), Some("forged" | "malformed")),
            "{s} {e}"
        );
        let (s, e) = a
            .call(
                Method::POST,
                &redeem("hello"),
                &a.pos_sh,
                Some(json!({"store": "s-sh"})),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed"))
        );

        // Opt-out stops everything at once: sightings refused, no coupon.
        let (s, _) = a
            .call(
                Method::POST,
                &format!("/api/v1/shoppers/{id}/consent"),
                &token,
                Some(json!({"opted_out": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, e) = a
            .call(
                Method::POST,
                &format!("/api/v1/shoppers/{id}/sightings"),
                &token,
                Some(json!([sighting(UUID, 1, 1, now + 2_000_000)])),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("opted_out"))
        );
        assert_eq!(a.sink.coupons.lock().unwrap().len(), 1);

        // Erase: the profile is gone and its token with it.
        let (s, _) = a
            .call(
                Method::DELETE,
                &format!("/api/v1/shoppers/{id}"),
                &token,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = a
            .call(Method::GET, &format!("/api/v1/shoppers/{id}"), &a.hq, None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = a
            .call(Method::GET, &format!("/api/v1/shoppers/{id}"), &token, None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // The counters are on /metrics, without ids.
        let res = a
            .router
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(
            axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        for line in [
            "dwell_cloud_app_sightings_total{outcome=\"impossible_travel\"} 1",
            "dwell_cloud_app_sightings_total{outcome=\"unknown_beacon\"} 3",
            "dwell_cloud_coupon_redemptions_total{outcome=\"redeemed\"} 1",
            "dwell_cloud_coupon_redemptions_total{outcome=\"already_redeemed\"} 1",
            "dwell_cloud_campaign_decisions_total{outcome=\"sent\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from /metrics");
        }
        assert!(!text.contains(&id), "no shopper id on /metrics");
        drop(a.state);
    }
}

#[tokio::test]
async fn campaigns_segments_and_crm_import_over_http() {
    for db in support::every_backend().await {
        let a = api(&db).await;
        let (s, e) = a
            .call(Method::POST, "/api/v1/campaigns", &a.hq, Some(json!({"id": "x", "name": "x",
                "trigger": {"kind": "dwell", "seconds": 60}, "offer": {"title": "t", "expires_after_s": 60},
                "audience": {"segment": "a & ("}})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("audience.segment"),
            "{e}"
        );
        let (s, _) = a
            .call(Method::POST, "/api/v1/campaigns", &a.app, Some(json!({"id": "x", "name": "x",
                "trigger": {"kind": "dwell", "seconds": 60}, "offer": {"title": "t", "expires_after_s": 60}})))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, c) = a
            .call(Method::POST, "/api/v1/campaigns", &a.hq, Some(json!({"id": "x", "name": "x",
                "trigger": {"kind": "dwell", "seconds": 60}, "offer": {"title": "t", "expires_after_s": 60},
                "budget": 5})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["spec"]["budget"], 5);
        let (s, _) = a
            .call(
                Method::POST,
                "/api/v1/segments",
                &a.hq,
                Some(json!({"id": "beauty", "expression": "Cosmetics-Lover and not staff"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "tags are lowercase");
        let (s, seg) = a
            .call(
                Method::POST,
                "/api/v1/segments",
                &a.hq,
                Some(json!({"id": "beauty", "expression": "cosmetics-lover and not staff"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(
            seg["expression"], "cosmetics-lover & !staff",
            "stored canonical"
        );

        let csv = "member_id,phone,tags,lat,lon\nM1,+8613800138000,vip;snacker,31.2,121.4\n,123,vip,,\nM2,not a phone,,,\nM3,,,,\nM1,,beauty-fan,,\n";
        let res = a
            .router
            .clone()
            .oneshot(
                Request::post("/api/v1/shoppers/import")
                    .header(header::AUTHORIZATION, format!("Bearer {}", a.hq))
                    .header(header::CONTENT_TYPE, "text/csv")
                    .body(Body::from(csv))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let report: Value = serde_json::from_slice(
            &axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(report["rows"], 5, "{report}");
        assert_eq!(report["created"], 2, "M1 and M3");
        assert_eq!(report["updated"], 1, "M1 again adds a tag");
        assert_eq!(report["rejected"], 2);
        let lines: Vec<i64> = report["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_i64().unwrap())
            .collect();
        assert_eq!(lines, [3, 4]);
        // Registering with M1's phone takes over the imported profile.
        let (s, reg) = a
            .call(
                Method::POST,
                "/api/v1/shoppers",
                &a.app,
                Some(json!({"identities": [{"kind": "phone", "value": "+86 138-0013-8000"}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{reg}");
        assert_eq!(reg["existing_profile"], true);
        let (_, p) = a
            .call(
                Method::GET,
                &format!("/api/v1/shoppers/{}", reg["shopper"].as_str().unwrap()),
                &a.hq,
                None,
            )
            .await;
        let tags: Vec<&str> = p["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tag"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["beauty-fan", "snacker", "vip"]);
    }
}

//! The HTTP API as clients meet it: the router driven in-process (`oneshot`) on SQLite and, where
//! installed, PostgreSQL; tokens issued by the library and by `dwell-cloud token`; the OpenAPI
//! document against what the router serves; `/metrics`; the dashboard's files; `serve` on a real
//! socket with shutdown.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dwell_cloud::api::auth::create_token;
use dwell_cloud::api::{self, ApiState, Role};
use dwell_cloud::ingest::Ingestor;
use dwell_cloud::on_pool;
use dwell_cloud::store::{AnyStore, StatusUpdate, Store, WriteSet};
use serde_json::Value;
use tower::ServiceExt;

/// Two stores with floor plans, a gateway each (one with a status), and three tokens.
struct Fixture {
    router: axum::Router,
    state: Arc<ApiState>,
    hq: String,
    lyon: String,
    pos: String,
    /// Keeps a SQLite database's directory alive.
    _db: Option<support::TestDb>,
}

const LAYOUT: &str = r#"{"v":1,"store":"store-lyon","timezone":"Europe/Paris",
  "receivers":[{"id":"r1","x":1.0,"y":1.0}],
  "zones":[{"id":"entrance","name":"Entrance","polygon":[[0,0],[4,0],[4,3],[0,3]]}],
  "entrance":"entrance"}"#;

async fn seed(store: &AnyStore) {
    for (id, name, tz, lat, lon, region) in [
        (
            "store-lyon",
            "Lyon Part-Dieu",
            "Europe/Paris",
            45.76,
            4.86,
            "FR-ARA",
        ),
        (
            "store-shanghai",
            "Shanghai Jing'an",
            "Asia/Shanghai",
            31.23,
            121.45,
            "310000",
        ),
    ] {
        on_pool!(store, pool => sqlx::query(
            "INSERT INTO stores (id, name, tz, lat, lon, region, opened, layout) \
             VALUES ($1, $2, $3, $4, $5, $6, '2024-03-01', $7)")
            .bind(id).bind(name).bind(tz).bind(lat).bind(lon).bind(region)
            .bind((id == "store-lyon").then_some(LAYOUT))
            .execute(pool).await.map(|_| ()))
        .unwrap();
    }
    store
        .register_gateway("store-lyon", "gw-lyon-1")
        .await
        .unwrap();
    store
        .register_gateway("store-shanghai", "gw-sh-1")
        .await
        .unwrap();
    store
        .write(&WriteSet {
            statuses: vec![StatusUpdate {
                gateway: "gw-lyon-1".into(),
                online: true,
                ts_ms: 1_760_000_000_000,
                backlog: Some(12),
                version: Some("0.1.0".into()),
                seen_ms: 1_760_000_000_500,
            }],
            ..WriteSet::default()
        })
        .await
        .unwrap();
}

async fn fixture(db: support::TestDb) -> Fixture {
    let store = db.store.clone();
    seed(&store).await;
    let hq = create_token(&store, Role::Hq, None, None, "hq")
        .await
        .unwrap();
    let lyon = create_token(&store, Role::Manager, Some("store-lyon"), None, "lyon")
        .await
        .unwrap();
    let pos = create_token(&store, Role::Pos, Some("store-lyon"), None, "till 1")
        .await
        .unwrap();
    let ingestor = Ingestor::new(store.clone(), false);
    let state = Arc::new(ApiState::new(store, Some(ingestor.stats().clone())));
    Fixture {
        router: api::router(state.clone()),
        state,
        hq,
        lyon,
        pos,
        _db: Some(db),
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The error body's code, checking the shape `{"error": {"code", "message"}}`.
    fn error_code(&self) -> String {
        let v = self.json();
        let e = v["error"].as_object().expect("an `error` object");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(e.len(), 2, "{v}");
        e["code"].as_str().unwrap().to_owned()
    }
}

async fn call(router: &axum::Router, method: Method, path: &str, token: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(f: &Fixture, path: &str, token: Option<&str>) -> Reply {
    call(&f.router, Method::GET, path, token).await
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn without_a_usable_token_it_is_401_with_a_json_error() {
    let f = fixture(support::sqlite_db().await).await;
    let r = get(&f, "/api/v1/stores", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"dwell\""
    );

    let r = get(&f, "/api/v1/stores", Some("0".repeat(64).as_str())).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );

    let req = Request::get("/api/v1/stores")
        .header(header::AUTHORIZATION, format!("Basic {}", f.hq))
        .body(Body::empty())
        .unwrap();
    let r = f.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The issue's rule: a store manager's token cannot read another store. Checked on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_reads_only_its_own_store_and_hq_reads_all() {
    for db in support::every_backend().await {
        let name = db.name;
        let f = fixture(db).await;

        // Another store's detail: 403, whether or not it exists.
        for other in ["store-shanghai", "store-nowhere"] {
            let r = get(&f, &format!("/api/v1/stores/{other}"), Some(&f.lyon)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} {other}");
            assert_eq!(r.error_code(), "forbidden");
        }
        let r = get(&f, "/api/v1/gateways?store=store-shanghai", Some(&f.lyon)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}");

        // Its own: the list holds only it, the detail has the floor plan.
        let r = get(&f, "/api/v1/stores", Some(&f.lyon)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(ids(&r.json(), "id"), ["store-lyon"], "{name}");
        let r = get(&f, "/api/v1/stores/store-lyon", Some(&f.lyon)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let v = r.json();
        assert_eq!(v["tz"], "Europe/Paris");
        assert_eq!(v["layout"]["zones"][0]["id"], "entrance", "{name}");
        let r = get(&f, "/api/v1/gateways", Some(&f.lyon)).await;
        let v = r.json();
        assert_eq!(ids(&v, "gateway"), ["gw-lyon-1"], "{name}");
        assert_eq!(v[0]["online"], true);
        assert_eq!(v[0]["backlog"], 12);
        assert_eq!(v[0]["version"], "0.1.0");
        assert_eq!(v[0]["last_seen_ms"], 1_760_000_000_500_i64);

        // HQ: everything.
        let r = get(&f, "/api/v1/stores", Some(&f.hq)).await;
        let v = r.json();
        assert_eq!(ids(&v, "id"), ["store-lyon", "store-shanghai"], "{name}");
        assert_eq!(v[1]["lat"], 31.23);
        assert_eq!(v[1]["has_layout"], false);
        assert_eq!(v[0]["has_layout"], true);
        let r = get(&f, "/api/v1/stores/store-shanghai", Some(&f.hq)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["layout"], Value::Null);
        let r = get(&f, "/api/v1/gateways", Some(&f.hq)).await;
        assert_eq!(
            ids(&r.json(), "gateway"),
            ["gw-lyon-1", "gw-sh-1"],
            "{name}"
        );
        let r = get(&f, "/api/v1/gateways?store=store-shanghai", Some(&f.hq)).await;
        assert_eq!(ids(&r.json(), "gateway"), ["gw-sh-1"], "{name}");
        let r = get(&f, "/api/v1/dead-letters/summary", Some(&f.hq)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.json()["total"], 0);

        // Other roles read no store data; only HQ reads dead letters.
        let r = get(&f, "/api/v1/stores", Some(&f.pos)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}");
        let r = get(&f, "/api/v1/dead-letters/summary", Some(&f.lyon)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}");

        let r = get(&f, "/api/v1/me", Some(&f.lyon)).await;
        assert_eq!(
            r.json(),
            serde_json::json!({"role": "manager", "store": "store-lyon", "shopper": null})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_summary_counts_by_reason() {
    for db in support::every_backend().await {
        let name = db.name;
        let f = fixture(db).await;
        let dead = |reason: &'static str, ms| dwell_cloud::store::DeadLetterRow {
            received_ms: ms,
            topic: "dwell/v1/store-x/gw-9/events".into(),
            reason,
            detail: "gateway gw-9 is not registered".into(),
            payload: b"{}".to_vec(),
            key: None,
        };
        f.state
            .store
            .write(&WriteSet {
                dead_letters: vec![
                    dead("unknown_gateway", 10),
                    dead("unknown_gateway", 30),
                    dead("malformed_json", 20),
                ],
                ..WriteSet::default()
            })
            .await
            .unwrap();
        let v = get(&f, "/api/v1/dead-letters/summary", Some(&f.hq))
            .await
            .json();
        assert_eq!(v["total"], 3, "{name}");
        assert_eq!(
            v["by_reason"],
            serde_json::json!([
                {"reason": "malformed_json", "count": 1, "last_ms": 20},
                {"reason": "unknown_gateway", "count": 2, "last_ms": 30},
            ])
        );
        assert_eq!(v["recent"].as_array().unwrap().len(), 3);
        assert_eq!(v["recent"][0]["received_ms"], 30, "newest first");
        assert!(v["recent"][0].get("payload").is_none());
    }
}

#[tokio::test]
async fn errors_have_one_json_shape_and_meaningful_statuses() {
    let f = fixture(support::sqlite_db().await).await;
    let r = get(&f, "/api/v1/stores/store-nowhere", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert!(r.text().contains("store-nowhere"));

    let r = get(&f, "/api/v1/no-such-thing", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "no_route")
    );

    let r = call(&f.router, Method::DELETE, "/api/v1/stores", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    let r = get(&f, "/api/v1/gateways?store=a&store=b", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    // A closed database: 503, not a crash and not the driver's message.
    f.state.store.close().await;
    let r = get(&f, "/api/v1/stores", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    );
    let r = get(&f, "/api/v1/health", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// Every `path = "/…"` in the API's sources: what the router was told to serve.
fn declared_paths() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (marker, skip) in [("path = \"", 8), (".route(\"", 8)] {
                    for (i, _) in text.match_indices(marker) {
                        let rest = &text[i + skip..];
                        let path = &rest[..rest.find('"').unwrap()];
                        if path.starts_with('/') {
                            out.insert(path.to_owned());
                        }
                    }
                }
            }
        }
    }
    let mut out = Default::default();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api"),
        &mut out,
    );
    out
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_what_the_router_serves() {
    let f = fixture(support::sqlite_db().await).await;
    let r = get(&f, "/api/v1/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "Dwell cloud API");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let documented: std::collections::BTreeSet<String> = paths.keys().cloned().collect();

    // Every route declared in the API's sources is in the document…
    let declared = declared_paths();
    assert_eq!(
        declared, documented,
        "routes declared in cloud/src/api vs the OpenAPI document"
    );
    for p in [
        "/api/v1/stores",
        "/api/v1/stores/{id}",
        "/api/v1/gateways",
        "/api/v1/dead-letters/summary",
        "/api/v1/me",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        assert!(documented.contains(p), "{p} missing");
    }

    // …and every documented operation is served (matched by the router: neither no_route nor
    // method_not_allowed), and refuses a request without a token if it declares security.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let concrete = concrete_path(path);
            let r = call(&f.router, method.clone(), &concrete, Some(&f.hq)).await;
            let code = r.json_code();
            assert!(
                r.status != StatusCode::METHOD_NOT_ALLOWED && code.as_deref() != Some("no_route"),
                "{method} {path}: {} {}",
                r.status,
                r.text()
            );
            if op.get("security").is_some() {
                let r = call(&f.router, method.clone(), &concrete, None).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        }
    }
    assert_eq!(api::openapi().paths.paths.len(), documented.len());
}

/// A documented path with its parameters filled in: `{id}` with a store that exists, others
/// with a placeholder.
fn concrete_path(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(
            if &rest[open..=close] == "{id}" && template.starts_with("/api/v1/stores/") {
                "store-lyon"
            } else {
                "x"
            },
        );
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

impl Reply {
    fn json_code(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
    }
}

#[tokio::test]
async fn metrics_count_requests_rejections_and_ingest_without_personal_data() {
    let f = fixture(support::sqlite_db().await).await;
    get(&f, "/api/v1/stores", Some(&f.hq)).await;
    get(&f, "/api/v1/stores", Some(&f.hq)).await;
    get(&f, "/api/v1/stores/store-lyon", Some(&f.hq)).await;
    get(&f, "/api/v1/stores", None).await;
    get(&f, "/api/v1/stores", Some("nope")).await;
    get(&f, "/api/v1/stores/store-shanghai", Some(&f.lyon)).await;
    get(&f, "/api/v1/stores", Some(&f.pos)).await;
    get(&f, "/no/such/path/store-shanghai", None).await;

    let r = get(&f, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    for line in [
        "dwell_cloud_http_requests_total{route=\"/api/v1/stores\",method=\"GET\",status=\"200\"} 2",
        "dwell_cloud_http_requests_total{route=\"/api/v1/stores\",method=\"GET\",status=\"401\"} 2",
        "dwell_cloud_http_requests_total{route=\"/api/v1/stores/{id}\",method=\"GET\",status=\"200\"} 1",
        "dwell_cloud_http_requests_total{route=\"/api/v1/stores/{id}\",method=\"GET\",status=\"403\"} 1",
        "dwell_cloud_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "dwell_cloud_auth_rejections_total{reason=\"missing_token\"} 1",
        "dwell_cloud_auth_rejections_total{reason=\"unknown_token\"} 1",
        "dwell_cloud_auth_rejections_total{reason=\"wrong_scope\"} 1",
        "dwell_cloud_auth_rejections_total{reason=\"wrong_role\"} 1",
        "dwell_cloud_auth_rejections_total{reason=\"malformed_token\"} 0",
        "dwell_cloud_database_backend{backend=\"sqlite\"} 1",
        "dwell_cloud_ingest_events_total 0",
        "dwell_cloud_ingest_dead_letters_total{reason=\"unknown_gateway\"} 0",
        "dwell_cloud_http_request_duration_seconds_count{route=\"/api/v1/stores\"} 5",
        "# TYPE dwell_cloud_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Route templates only: no store ids, no tokens.
    for secret in [
        "store-shanghai",
        "store-lyon",
        f.hq.as_str(),
        f.lyon.as_str(),
    ] {
        assert!(!text.contains(secret), "/metrics shows {secret}");
    }
    assert_eq!(f.state.http.requests_for("/api/v1/stores"), 5);

    // Without ingest in the process, no ingest families.
    let bare = api::router(Arc::new(ApiState::new(f.state.store.clone(), None)));
    let r = call(&bare, Method::GET, "/metrics", None).await;
    assert!(!r.text().contains("dwell_cloud_ingest_"));
}

#[tokio::test]
async fn tokens_are_random_hex_stored_only_as_hashes() {
    let db = support::sqlite_db().await;
    let store = db.store.clone();
    let a = create_token(&store, Role::Hq, None, None, "a")
        .await
        .unwrap();
    let b = create_token(&store, Role::Hq, None, None, "b")
        .await
        .unwrap();
    assert_ne!(a, b);
    assert!(a.len() == 64 && a.bytes().all(|c| c.is_ascii_hexdigit()));
    let stored: Vec<String> = on_pool!(&store, pool =>
        sqlx::query_scalar("SELECT token_sha256 FROM api_tokens ORDER BY label")
            .fetch_all(pool).await)
    .unwrap();
    assert_eq!(
        stored,
        [api::auth::token_hash(&a), api::auth::token_hash(&b)]
    );
    assert!(!stored.contains(&a));

    for (role, store_id, shopper) in [
        (Role::Manager, None, None),
        (Role::Hq, Some("store-lyon"), None),
        (Role::Shopper, None, None),
        (Role::Pos, None, Some("p1")),
    ] {
        let e = create_token(&store, role, store_id, shopper, "x")
            .await
            .unwrap_err();
        assert!(matches!(e, api::auth::TokenError::Invalid(_)), "{role} {e}");
    }
}

#[test]
fn the_token_command_prints_a_token_that_the_api_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dwell.db");
    let config = dir.path().join("dwell-cloud.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[[gateways]]\nstore = \"store-lyon\"\nid = \"gw-1\"\n",
            db.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dwell-cloud"))
            .arg("token")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--role",
        "manager",
        "--store",
        "store-lyon",
        "--label",
        "Lyon",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);

    let out = run(&["--role", "manager"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store"));
    let out = run(&["--role", "root"]);
    assert!(!out.status.success());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = AnyStore::Sqlite(dwell_cloud::store::SqliteStore::open(&db).await.unwrap());
        let router = api::router(Arc::new(ApiState::new(store, None)));
        let r = call(&router, Method::GET, "/api/v1/me", Some(&token)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["role"], "manager");
        assert_eq!(r.json()["store"], "store-lyon");
    });
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary() {
    let f = fixture(support::sqlite_db().await).await;
    let r = get(&f, "/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
    assert!(r.text().contains("/assets/js/main.js"));

    let r = get(&f, "/assets/js/main.js", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let etag = r.headers[header::ETAG].clone();
    let req = Request::get("/assets/js/main.js")
        .header(header::IF_NONE_MATCH, etag)
        .body(Body::empty())
        .unwrap();
    let r = f.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    let r = get(&f, "/assets/../Cargo.toml", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn serve_answers_on_a_socket_and_stops_on_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = support::sqlite_db().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(api::serve(
        listener,
        Arc::new(ApiState::new(db.store.clone(), None)),
        shutdown.clone(),
    ));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expansion_map_is_hq_only_geojson_that_never_lowers_k() {
    for db in support::every_backend().await {
        expansion_on(db).await;
    }
}

async fn expansion_on(db: support::TestDb) {
    let f = fixture(db).await;
    // Shoppers' homes (as a CRM import leaves them): 40 in Chengdu, far from both stores, 3 in Lyon.
    for (i, (lat, lon)) in std::iter::repeat_n((30.66, 104.06), 40)
        .chain(std::iter::repeat_n((45.76, 4.86), 3))
        .enumerate()
    {
        let d = i as f64 * 0.001;
        on_pool!(&f.state.store, pool => sqlx::query(
            "INSERT INTO shoppers (id, identity_key, exponent, profiling, created_ms, updated_ms, \
             home_lat, home_lon) VALUES ($1, $2, 10, true, 0, 0, $3, $4)")
            .bind(format!("p{i}")).bind(format!("{i:032x}")).bind(lat + d).bind(lon - d)
            .execute(pool).await.map(|_| ()))
        .unwrap();
    }
    let r = get(
        &f,
        "/api/v1/expansion?regions=world-countries&k=1",
        Some(&f.hq),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/geo+json");
    let fc = r.json();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["options"]["k"], 10, "a request can't lower k");
    assert_eq!(fc["totals"]["customers"], 43);
    let kinds = |k: &str| {
        fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["properties"]["kind"] == k)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(kinds("region").len() > 100, "world countries");
    assert_eq!(kinds("store").len(), 2);
    let candidates = kinds("candidate");
    assert!(!candidates.is_empty());
    assert_eq!(candidates[0]["properties"]["rank"], 1);
    assert_eq!(candidates[0]["properties"]["country"], "CN");
    // France has 3 customers: fewer than k, so it is suppressed.
    let france = kinds("region")
        .into_iter()
        .find(|x| x["properties"]["id"] == "250")
        .expect("France");
    assert_eq!(france["properties"]["suppressed"], true);
    assert_eq!(france["properties"]["customers"], Value::Null);

    let r = get(
        &f,
        "/api/v1/expansion?regions=world-countries&format=csv",
        Some(&f.hq),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().starts_with("id,name,suppressed,customers"),
        "{}",
        r.text()
    );

    let r = get(&f, "/api/v1/expansion?regions=mars", Some(&f.hq)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(r.text().contains("china-provinces"), "{}", r.text());
    let r = get(&f, "/api/v1/expansion", Some(&f.lyon)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_expansion_map_analyses_a_loaded_dataset() {
    let db = support::sqlite_db().await;
    let demo = dwell_cloud::expansion::demo::generate(&dwell_cloud::expansion::demo::DemoOptions {
        seed: 7,
        stores: 20,
        customers: 3_000,
    });
    let mut state = ApiState::new(db.store.clone(), None);
    state.expansion = Some(Arc::new(demo.dataset()));
    let router = api::router(Arc::new(state));
    let hq = create_token(&db.store, Role::Hq, None, None, "hq")
        .await
        .unwrap();
    let r = call(&router, Method::GET, "/api/v1/expansion", Some(&hq)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fc = r.json();
    assert_eq!(
        fc["boundaries"], "china-provinces",
        "chosen from the customers"
    );
    assert_eq!(fc["totals"]["customers"], 3_000);
    assert_eq!(fc["totals"]["stores"], 20);
}

/// Footfall, zones, paths and campaign results through the API: a manager gets its own store and
/// nothing else; HQ gets what the analytics module computes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_routes_keep_a_manager_to_its_store() {
    use dwell_cloud::analytics::generate::{HistorySpec, history};
    for db in support::every_backend().await {
        let name = db.name;
        let f = fixture(db).await;
        let spec = HistorySpec {
            stores: vec![
                ("store-lyon".into(), "Europe/Paris".into()),
                ("store-shanghai".into(), "Asia/Shanghai".into()),
            ],
            first_day: jiff::civil::date(2026, 3, 1),
            days: 3,
            visits_per_day: 20,
            zones: vec!["entrance".into(), "cosmetics".into()],
            ..HistorySpec::default()
        };
        f.state
            .store
            .write(&WriteSet {
                events: history(&spec),
                ..WriteSet::default()
            })
            .await
            .unwrap();
        let period = "from=2026-03-01&to=2026-03-03";

        let r = get(&f, &format!("/api/v1/footfall?{period}"), Some(&f.hq)).await;
        assert_eq!(r.status, StatusCode::OK, "{name} {}", r.text());
        let chain = r.json();
        assert_eq!(chain["scope"]["kind"], "chain");
        assert_eq!(chain["buckets"].as_array().unwrap().len(), 3);
        assert!(chain["total"]["visitors"].as_i64().unwrap() > 0);

        // A manager without `store` gets its own; another store, a region or a chain-wide
        // ranking is refused.
        let r = get(&f, &format!("/api/v1/footfall?{period}"), Some(&f.lyon)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(
            r.json()["scope"],
            serde_json::json!({"kind": "store", "id": "store-lyon"})
        );
        for path in [
            format!("/api/v1/footfall?store=store-shanghai&{period}"),
            format!("/api/v1/footfall?region=310000&{period}"),
            format!("/api/v1/stores/store-shanghai/zones?{period}"),
            format!("/api/v1/stores/store-shanghai/paths?{period}"),
        ] {
            let r = get(&f, &path, Some(&f.lyon)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} {path}");
        }
        let r = get(
            &f,
            &format!("/api/v1/footfall/stores?{period}"),
            Some(&f.lyon),
        )
        .await;
        let v = r.json();
        assert_eq!(ids(&v["stores"], "store"), ["store-lyon"], "{name}");

        // HQ's ranking: every store, most visitors first, each equal to its own footfall.
        let v = get(
            &f,
            &format!("/api/v1/footfall/stores?{period}"),
            Some(&f.hq),
        )
        .await
        .json();
        let stores = v["stores"].as_array().unwrap();
        assert_eq!(stores.len(), 2, "{name}");
        for s in stores {
            let one = get(
                &f,
                &format!(
                    "/api/v1/footfall?store={}&{period}",
                    s["store"].as_str().unwrap()
                ),
                Some(&f.hq),
            )
            .await
            .json();
            assert_eq!(s["total"]["visitors"], one["total"]["visitors"], "{name}");
        }
        assert!(stores[0]["total"]["visitors"].as_i64() >= stores[1]["total"]["visitors"].as_i64());

        let r = get(
            &f,
            &format!("/api/v1/stores/store-lyon/zones?{period}"),
            Some(&f.lyon),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name} {}", r.text());
        assert!(r.json()["zones"].as_array().is_some_and(|z| !z.is_empty()));
        let r = get(
            &f,
            &format!("/api/v1/stores/store-lyon/paths?{period}&top=3"),
            Some(&f.hq),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert!(r.json()["paths"].as_array().unwrap().len() <= 3);

        // Bad input: 4xx with the API's error shape, never a 500.
        let r = get(&f, "/api/v1/footfall?from=yesterday", Some(&f.hq)).await;
        assert!(r.status.is_client_error(), "{name} {}", r.status);
        r.error_code();
        let r = get(&f, "/api/v1/campaigns/none/results", Some(&f.hq)).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{name}"
        );
    }
}

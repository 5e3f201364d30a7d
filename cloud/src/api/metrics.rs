//! `GET /metrics`: the cloud's counters in the Prometheus text format, and the layer that counts
//! HTTP requests.
//!
//! Unauthenticated, like every Prometheus target, so it carries nothing personal: labels are route
//! *templates* (`/api/v1/stores/{id}`, never the raw path), methods, status codes, rejection and
//! dead-letter reasons, the database backend and the tables data retention deletes from — never
//! store ids, shopper ids, tokens or devices. Requests that match no route are counted under
//! `route="unmatched"`, so random paths can't grow the label set.
//!
//! The text renderer is the gateway's (`edge/src/metrics.rs`), copied: a shared home for it
//! (`dwell-shared` behind `std`) would serve both.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::AuthRejection;
use crate::store::Store;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const DURATION_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// HTTP request counters, shared by every request of a process.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// (route template, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route template → histogram.
    durations: Mutex<BTreeMap<String, Histogram>>,
    auth_rejections: [AtomicU64; AuthRejection::ALL.len()],
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl HttpMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let mut durations = lock(&self.durations);
        let h = durations.entry(route.to_owned()).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.buckets[i] += 1;
            }
        }
    }

    /// Counts one refused request.
    pub fn auth_rejected(&self, reason: AuthRejection) {
        let i = AuthRejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        self.auth_rejections[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Rejections so far, by reason.
    pub fn auth_rejections(&self) -> Vec<(AuthRejection, u64)> {
        AuthRejection::ALL
            .iter()
            .zip(&self.auth_rejections)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Requests so far for one route template (all methods and statuses).
    pub fn requests_for(&self, route: &str) -> u64 {
        lock(&self.requests)
            .iter()
            .filter(|((r, _, _), _)| r == route)
            .map(|(_, n)| n)
            .sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay consistent whatever panicked while holding the lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Middleware: counts every request by route template, method and status, times it, and counts
/// auth rejections (marked on the response by [`super::error::ApiError`]).
pub async fn track(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .http
        .record(&route, &method, response.status().as_u16(), seconds);
    if let Some(reason) = response.extensions().get::<AuthRejection>() {
        state.http.auth_rejected(*reason);
    }
    response
}

/// Prometheus scrape: HTTP, auth, database backend and (when this process ingests) the ingest
/// counters. No authentication, and nothing personal in it.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let mut response = render(&state).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub use dwell_edge::metrics::{Family, Sample};

/// Everything `/metrics` shows.
pub fn render(state: &ApiState) -> String {
    let http = &state.http;
    let requests = lock(&http.requests).clone();
    let durations = lock(&http.durations).clone();
    let mut families = vec![
        Family::single(
            "dwell_cloud_up",
            "1 while this process serves.",
            "gauge",
            1.0,
        ),
        Family {
            name: "dwell_cloud_database_backend",
            help: "The database this process uses (1 for the one in use).",
            kind: "gauge",
            samples: vec![(
                "",
                vec![("backend", state.store.backend().to_string())],
                1.0,
            )],
        },
        Family {
            name: "dwell_cloud_http_requests_total",
            help: "HTTP requests by route template, method and status.",
            kind: "counter",
            samples: requests
                .into_iter()
                .map(|((route, method, status), n)| {
                    (
                        "",
                        vec![
                            ("route", route),
                            ("method", method),
                            ("status", status.to_string()),
                        ],
                        n as f64,
                    )
                })
                .collect(),
        },
        Family {
            name: "dwell_cloud_http_request_duration_seconds",
            help: "Time to answer HTTP requests, by route template.",
            kind: "histogram",
            samples: durations
                .into_iter()
                .flat_map(|(route, h)| {
                    let mut s: Vec<_> = DURATION_BUCKETS
                        .iter()
                        .zip(h.buckets)
                        .map(|(le, n)| {
                            (
                                "_bucket",
                                vec![("route", route.clone()), ("le", le.to_string())],
                                n as f64,
                            )
                        })
                        .collect();
                    s.push((
                        "_bucket",
                        vec![("route", route.clone()), ("le", "+Inf".into())],
                        h.count as f64,
                    ));
                    s.push(("_sum", vec![("route", route.clone())], h.sum));
                    s.push(("_count", vec![("route", route)], h.count as f64));
                    s
                })
                .collect(),
        },
        Family {
            name: "dwell_cloud_auth_rejections_total",
            help: "Requests refused by authentication (401) or authorisation (403), by reason.",
            kind: "counter",
            samples: http
                .auth_rejections()
                .into_iter()
                .map(|(r, n)| ("", vec![("reason", r.label().to_owned())], n as f64))
                .collect(),
        },
    ];
    if let Some(ingest) = &state.ingest {
        let c = ingest.snapshot();
        let counter = |name, help, v: u64| Family::single(name, help, "counter", v as f64);
        let gauge = |name, help, v: u64| Family::single(name, help, "gauge", v as f64);
        families.extend([
            counter(
                "dwell_cloud_ingest_messages_total",
                "MQTT messages whose outcome was committed (accepted or dead-lettered).",
                c.messages,
            ),
            counter(
                "dwell_cloud_ingest_event_batches_total",
                "Event batches accepted.",
                c.event_batches,
            ),
            counter(
                "dwell_cloud_ingest_events_total",
                "Events stored (new rows).",
                c.events_ingested,
            ),
            counter(
                "dwell_cloud_ingest_duplicates_total",
                "Events already stored (redelivered, reordered or raced), not stored again.",
                c.duplicates,
            ),
            counter(
                "dwell_cloud_ingest_statuses_total",
                "Gateway status messages accepted.",
                c.statuses,
            ),
            counter(
                "dwell_cloud_ingest_commits_total",
                "Ingest transactions committed.",
                c.commits,
            ),
            counter(
                "dwell_cloud_ingest_commit_failures_total",
                "Ingest transactions that failed (retried, or split to find a refused message).",
                c.commit_failures,
            ),
            counter(
                "dwell_cloud_ingest_acks_total",
                "PubAcks sent after commit.",
                c.acks,
            ),
            counter(
                "dwell_cloud_ingest_stale_acks_skipped_total",
                "Acks not sent because the message's connection is gone (it will be redelivered).",
                c.stale_acks_skipped,
            ),
            gauge(
                "dwell_cloud_ingest_queued",
                "Messages received and waiting for the database.",
                c.queued,
            ),
            gauge(
                "dwell_cloud_ingest_queue_high_water",
                "The most messages ever waiting for the database.",
                c.queue_high_water,
            ),
            Family {
                name: "dwell_cloud_ingest_dead_letters_total",
                help: "Messages or events refused and kept in dead_letters, by reason.",
                kind: "counter",
                samples: c
                    .dead_letters
                    .iter()
                    .map(|(r, n)| ("", vec![("reason", r.label().to_owned())], *n as f64))
                    .collect(),
            },
        ]);
    }
    if let Some(engine) = &state.engine {
        families.extend(engine_families(engine));
    }
    if let Some(retention) = &state.retention {
        families.extend(retention_families(retention));
    }
    dwell_edge::metrics::render(&families)
}

/// Identity, campaigns, coupons and app sightings: counts only, never an id.
fn engine_families(engine: &crate::engine::Engine) -> Vec<Family<'static>> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = engine.stats();
    let r = engine.resolver().stats();
    let counter = |name, help, v: u64| Family::single(name, help, "counter", v as f64);
    let gauge = |name, help, v: f64| Family::single(name, help, "gauge", v);
    let decisions = [
        ("sent", &s.coupons_sent),
        ("holdout", &s.decisions_holdout),
        ("capped", &s.decisions_capped),
        ("budget", &s.decisions_budget),
        ("no_consent", &s.decisions_no_consent),
        ("duplicate", &s.decisions_duplicate),
        ("redelivered", &s.coupons_redelivered),
    ];
    let sightings = engine.sighting_stats();
    let sighting_outcomes = [
        ("accepted", &sightings.accepted),
        ("unknown_beacon", &sightings.unknown_beacon),
        ("stale", &sightings.stale),
        ("impossible_travel", &sightings.impossible_travel),
        ("implausible_rssi", &sightings.implausible_rssi),
    ];
    vec![
        gauge(
            "dwell_cloud_shoppers_resolvable",
            "Opted-in shoppers whose EIDs this process resolves.",
            r.registered as f64,
        ),
        gauge(
            "dwell_cloud_eid_table_entries",
            "EIDs in the live resolution table.",
            r.table_entries as f64,
        ),
        counter(
            "dwell_cloud_eid_historic_tables_total",
            "Resolution tables built for the hour of old (catch-up) events.",
            r.historic_builds,
        ),
        Family {
            name: "dwell_cloud_eids_total",
            help: "EIDs in events, by whether they resolved to an opted-in shopper.",
            kind: "counter",
            samples: vec![
                (
                    "",
                    vec![("resolved", "true".into())],
                    s.eids_resolved.load(Relaxed) as f64,
                ),
                (
                    "",
                    vec![("resolved", "false".into())],
                    s.eids_unresolved.load(Relaxed) as f64,
                ),
            ],
        },
        counter(
            "dwell_cloud_visits_stitched_total",
            "Visit parts of resolved shoppers applied to stitched visits.",
            s.visits_stitched.load(Relaxed),
        ),
        counter(
            "dwell_cloud_tags_set_by_rules_total",
            "Behavioural tags set by tag rules.",
            s.tags_set.load(Relaxed),
        ),
        Family {
            name: "dwell_cloud_campaign_decisions_total",
            help: "Campaign triggers decided, by outcome.",
            kind: "counter",
            samples: decisions
                .iter()
                .map(|(o, c)| {
                    (
                        "",
                        vec![("outcome", (*o).to_owned())],
                        c.load(Relaxed) as f64,
                    )
                })
                .collect(),
        },
        counter(
            "dwell_cloud_coupon_delivery_failures_total",
            "Coupons whose MQTT publish failed (they stay in the wallet and are republished).",
            s.delivery_failures.load(Relaxed),
        ),
        gauge(
            "dwell_cloud_trigger_to_publish_max_seconds",
            "Longest time from a trigger's ts_ms to its coupon's publish.",
            s.trigger_to_publish_ms_max.load(Relaxed) as f64 / 1000.0,
        ),
        Family {
            name: "dwell_cloud_coupon_redemptions_total",
            help: "Till redemptions, by outcome.",
            kind: "counter",
            samples: crate::engine::REDEMPTION_OUTCOMES
                .iter()
                .zip(&s.redemptions)
                .map(|(o, c)| {
                    (
                        "",
                        vec![("outcome", (*o).to_owned())],
                        c.load(Relaxed) as f64,
                    )
                })
                .collect(),
        },
        Family {
            name: "dwell_cloud_app_sightings_total",
            help: "App-reported store-beacon sightings, by outcome.",
            kind: "counter",
            samples: sighting_outcomes
                .iter()
                .map(|(o, c)| {
                    (
                        "",
                        vec![("outcome", (*o).to_owned())],
                        c.load(Relaxed) as f64,
                    )
                })
                .collect(),
        },
        counter(
            "dwell_cloud_engine_failures_total",
            "Groups of events the engine could not process for a reason retrying can't fix.",
            s.failures.load(Relaxed),
        ),
    ]
}

/// Data retention: rows deleted per table (table names only), runs and failures.
fn retention_families(stats: &crate::retention::RetentionStats) -> Vec<Family<'static>> {
    vec![
        Family {
            name: "dwell_cloud_retention_deleted_total",
            help: "Rows deleted by data retention ([retention]), by table.",
            kind: "counter",
            samples: stats
                .deleted()
                .into_iter()
                .map(|(table, n)| ("", vec![("table", table.to_owned())], n as f64))
                .collect(),
        },
        Family::single(
            "dwell_cloud_retention_runs_total",
            "Data retention enforcements completed.",
            "counter",
            stats.runs() as f64,
        ),
        Family::single(
            "dwell_cloud_retention_failures_total",
            "Data retention enforcements that failed (retried at the next interval).",
            "counter",
            stats.failures() as f64,
        ),
        Family::single(
            "dwell_cloud_retention_last_success_timestamp_seconds",
            "Unix time the last completed data retention enforcement ended (0: none yet).",
            "gauge",
            stats.last_success_ms().unwrap_or(0) as f64 / 1000.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = HttpMetrics::new();
        m.record("/r", "GET", 200, 0.003);
        m.record("/r", "GET", 200, 0.2);
        m.record("/r", "GET", 404, 9.0);
        let h = lock(&m.durations)["/r"].clone();
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[5], 2);
        assert_eq!(h.buckets[9], 2);
        assert_eq!(m.requests_for("/r"), 3);
    }
}

//! Footfall query latency over a year of a thousand stores, and the cost of maintaining the
//! roll-ups at ingest, on SQLite and on PostgreSQL.
//!
//! ```text
//! cargo run --release -p dwell-cloud --example footfall_bench -- [queries|ingest|all] [STORES] [DAYS] [QUERIES]
//! ```
//! Defaults: `all`, 1,000 stores, 365 days, 200 queries of each kind.
//!
//! **queries** — loads `STORES × DAYS × 24` hourly roll-up rows directly in bulk (plus the day and
//! week rows they sum to; stores in 30 regions, Asia/Shanghai), computes the regions' and the
//! chain's sums from them ([`analytics::refresh_scopes`], what ingest maintains), runs `ANALYZE`,
//! then times
//! [`analytics::footfall`] exactly as the API calls it (loyalty included, which reads the empty
//! `visits` table), `QUERIES` times for each kind of query with random stores, regions and dates,
//! and prints p50 / p95 / max per kind. Target: p95 < 100 ms.
//!
//! **ingest** — a generated history (10 busy stores × 7 days: 400 visits a day each, traffic and
//! presence every minute: the edge's own rate) written through `Store::write` in sets of 5,000
//! events, as ingest groups them; once with the events as they are (roll-ups maintained in the
//! transaction), once with the same rows relabelled as a type the roll-ups ignore (what the write
//! path cost before roll-ups). Events per second for each.
//!
//! Backends: SQLite in a temporary directory (WAL, `synchronous = FULL`, as shipped); PostgreSQL
//! at `DWELL_BENCH_PG_URL` (an empty database; migrations are applied) or else a scratch server
//! started from the installed PostgreSQL (`tests/support`, with PostgreSQL's durable defaults);
//! skipped when neither is available.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use dwell_cloud::analytics::footfall::{FootfallQuery, Granularity, Scope};
use dwell_cloud::analytics::generate::{HistorySpec, history};
use dwell_cloud::analytics::local::{add_days, day_start_ms, local_hour, time_zone, week_of};
use dwell_cloud::analytics::rollup::{COLUMNS, N};
use dwell_cloud::analytics::{self};
use dwell_cloud::store::{AnyStore, PgStore, SqliteStore, Store, WriteSet};
use jiff::civil::{Date, date};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::{Postgres, QueryBuilder, Sqlite};

const REGIONS: usize = 30;
const TZ: &str = "Asia/Shanghai";
const FIRST_DAY: Date = date(2025, 1, 1);

struct Params {
    stores: usize,
    days: i64,
    queries: usize,
}

fn store_id(i: usize) -> String {
    format!("store-{i:04}")
}

fn region_id(i: usize) -> String {
    format!("region-{:02}", i % REGIONS)
}

/// One roll-up row: key columns as text / integers, then the counters.
struct Row {
    store: String,
    day: String,
    week: String,
    hour_ms: i64,
    hour: i64,
    c: [i64; N],
}

/// A plausible hour: busy from 08:00 to 21:00 local, empty at night.
fn counters(rng: &mut ChaCha8Rng, hour: i64) -> [i64; N] {
    let mut c = [0; N];
    if !(8..21).contains(&hour) {
        return c;
    }
    let visitors = rng.random_range(5..60);
    let passersby = rng.random_range(10..120);
    c[0] = visitors + passersby;
    c[1] = visitors;
    c[2] = passersby;
    c[3] = visitors / 3;
    c[4] = visitors * rng.random_range(300_000..1_200_000);
    c[5] = visitors / 4;
    c[6] = visitors / 2;
    c[7] = visitors - visitors / 4 - visitors / 2 - visitors / 20;
    c[8] = visitors / 20;
    c[10] = visitors / 10;
    c[12] = rng.random_range(0..300);
    c[13] = rng.random_range(0..30_000);
    c[14] = 3600;
    c[16] = rng.random_range(0..200);
    c[17] = rng.random_range(0..200);
    c
}

fn add(a: &mut [i64; N], b: &[i64; N]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Hour, day and week rows of one store.
fn store_rows(p: &Params, s: usize) -> (Vec<Row>, Vec<Row>, Vec<Row>) {
    let tz = time_zone(TZ);
    let mut rng = ChaCha8Rng::seed_from_u64(s as u64);
    let (mut hours, mut days, mut weeks) = (Vec::new(), Vec::new(), Vec::<Row>::new());
    let store = store_id(s);
    for d in 0..p.days {
        let day = add_days(FIRST_DAY, d);
        let start = day_start_ms(day, &tz).unwrap();
        let end = day_start_ms(add_days(day, 1), &tz).unwrap();
        let mut total = [0; N];
        let mut t = start;
        while t < end {
            let h = local_hour(t, &tz).unwrap();
            let c = counters(&mut rng, i64::from(h.hour));
            add(&mut total, &c);
            hours.push(Row {
                store: store.clone(),
                day: day.to_string(),
                week: String::new(),
                hour_ms: h.hour_ms,
                hour: i64::from(h.hour),
                c,
            });
            t += 3_600_000;
        }
        let week = week_of(day).to_string();
        days.push(Row {
            store: store.clone(),
            day: day.to_string(),
            week: week.clone(),
            hour_ms: 0,
            hour: 0,
            c: total,
        });
        match weeks.last_mut() {
            Some(w) if w.week == week => add(&mut w.c, &total),
            _ => weeks.push(Row {
                store: store.clone(),
                day: String::new(),
                week,
                hour_ms: 0,
                hour: 0,
                c: total,
            }),
        }
    }
    (hours, days, weeks)
}

#[derive(Clone, Copy)]
enum Table {
    Hour,
    Day,
    Week,
}

impl Table {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Table::Hour => &["store", "day", "hour_ms", "hour"],
            Table::Day => &["store", "day", "week"],
            Table::Week => &["store", "week"],
        }
    }
    fn name(self) -> &'static str {
        match self {
            Table::Hour => "footfall_hour",
            Table::Day => "footfall_day",
            Table::Week => "footfall_week",
        }
    }
    fn insert(self) -> String {
        let cols: Vec<&str> = self.keys().iter().chain(COLUMNS.iter()).copied().collect();
        format!("INSERT INTO {} ({}) ", self.name(), cols.join(", "))
    }
}

async fn insert_sqlite(conn: &mut sqlx::SqliteConnection, t: Table, rows: &[Row]) {
    let width = t.keys().len() + N;
    for chunk in rows.chunks(32_000 / width) {
        let mut q = QueryBuilder::<Sqlite>::new(t.insert());
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.store.clone());
            match t {
                Table::Hour => {
                    b.push_bind(r.day.clone())
                        .push_bind(r.hour_ms)
                        .push_bind(r.hour);
                }
                Table::Day => {
                    b.push_bind(r.day.clone()).push_bind(r.week.clone());
                }
                Table::Week => {
                    b.push_bind(r.week.clone());
                }
            }
            for v in r.c {
                b.push_bind(v);
            }
        });
        q.build().execute(&mut *conn).await.unwrap();
    }
}

async fn insert_postgres(conn: &mut sqlx::PgConnection, t: Table, rows: &[Row]) {
    // One array per column and UNNEST: the fast bulk path short of COPY.
    for chunk in rows.chunks(50_000) {
        let keys = t.keys();
        let mut q = QueryBuilder::<Postgres>::new(t.insert());
        q.push("SELECT * FROM UNNEST(");
        let mut sep = q.separated(", ");
        sep.push_bind(chunk.iter().map(|r| r.store.clone()).collect::<Vec<_>>());
        sep.push_unseparated("::text[]");
        for k in &keys[1..] {
            match *k {
                "day" => {
                    sep.push_bind(chunk.iter().map(|r| r.day.clone()).collect::<Vec<_>>());
                    sep.push_unseparated("::text[]");
                }
                "week" => {
                    sep.push_bind(chunk.iter().map(|r| r.week.clone()).collect::<Vec<_>>());
                    sep.push_unseparated("::text[]");
                }
                "hour_ms" => {
                    sep.push_bind(chunk.iter().map(|r| r.hour_ms).collect::<Vec<_>>());
                    sep.push_unseparated("::int8[]");
                }
                _ => {
                    sep.push_bind(chunk.iter().map(|r| r.hour).collect::<Vec<_>>());
                    sep.push_unseparated("::int8[]");
                }
            }
        }
        for i in 0..N {
            sep.push_bind(chunk.iter().map(|r| r.c[i]).collect::<Vec<_>>());
            sep.push_unseparated("::int8[]");
        }
        q.push(")");
        q.build().execute(&mut *conn).await.unwrap();
    }
}

async fn load(store: &AnyStore, p: &Params) {
    let start = Instant::now();
    for s in 0..p.stores {
        let (id, region) = (store_id(s), region_id(s));
        dwell_cloud::on_pool!(store, pool => sqlx::query(
            "INSERT INTO stores (id, name, tz, region) VALUES ($1, $1, $2, $3)")
            .bind(&id).bind(TZ).bind(&region).execute(pool).await.map(|_| ()))
        .unwrap();
    }
    let mut rows = 0usize;
    match store {
        AnyStore::Sqlite(s) => {
            let mut tx = s.pool().begin().await.unwrap();
            for i in 0..p.stores {
                let (h, d, w) = store_rows(p, i);
                rows += h.len() + d.len() + w.len();
                insert_sqlite(&mut tx, Table::Hour, &h).await;
                insert_sqlite(&mut tx, Table::Day, &d).await;
                insert_sqlite(&mut tx, Table::Week, &w).await;
                progress(i, p.stores, rows, start);
            }
            tx.commit().await.unwrap();
            analytics::refresh_scopes(store).await.unwrap();
            sqlx::query("ANALYZE").execute(s.pool()).await.unwrap();
        }
        AnyStore::Postgres(s) => {
            let mut tx = s.pool().begin().await.unwrap();
            let mut batch = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..p.stores {
                let (h, d, w) = store_rows(p, i);
                rows += h.len() + d.len() + w.len();
                batch.0.extend(h);
                batch.1.extend(d);
                batch.2.extend(w);
                if batch.0.len() >= 200_000 || i + 1 == p.stores {
                    insert_postgres(&mut tx, Table::Hour, &batch.0).await;
                    insert_postgres(&mut tx, Table::Day, &batch.1).await;
                    insert_postgres(&mut tx, Table::Week, &batch.2).await;
                    batch = (Vec::new(), Vec::new(), Vec::new());
                }
                progress(i, p.stores, rows, start);
            }
            tx.commit().await.unwrap();
            analytics::refresh_scopes(store).await.unwrap();
            sqlx::query("VACUUM ANALYZE")
                .execute(s.pool())
                .await
                .unwrap();
        }
    }
    eprintln!();
    println!(
        "  loaded {rows} roll-up rows ({} stores × {} days × 24 h, + day and week rows, + region and chain sums) in {:.0} s",
        p.stores,
        p.days,
        start.elapsed().as_secs_f64()
    );
}

fn progress(i: usize, n: usize, rows: usize, start: Instant) {
    if (i + 1).is_multiple_of(50) || i + 1 == n {
        eprint!(
            "\r  … {} / {n} stores, {rows} rows, {:.0} s",
            i + 1,
            start.elapsed().as_secs_f64()
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Makes one query of a kind, with random store, region or dates.
type MakeQuery<'a> = Box<dyn Fn(&mut ChaCha8Rng) -> FootfallQuery + 'a>;

async fn time_queries(store: &AnyStore, p: &Params, label: &str) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let last = add_days(FIRST_DAY, p.days - 1);
    let kinds: [(&str, MakeQuery<'_>); 6] = [
        (
            "one store, the year by day",
            Box::new(|r| {
                q(
                    Scope::Store(store_id(r.random_range(0..p.stores))),
                    FIRST_DAY,
                    last,
                    Granularity::Day,
                )
            }),
        ),
        (
            "one store, a week by hour",
            Box::new(|r| {
                let from = add_days(FIRST_DAY, r.random_range(0..p.days - 7));
                q(
                    Scope::Store(store_id(r.random_range(0..p.stores))),
                    from,
                    add_days(from, 6),
                    Granularity::Hour,
                )
            }),
        ),
        (
            "a region, the year by day",
            Box::new(|r| {
                q(
                    Scope::Region(region_id(r.random_range(0..REGIONS))),
                    FIRST_DAY,
                    last,
                    Granularity::Day,
                )
            }),
        ),
        (
            "the chain, the year by week",
            Box::new(|_| q(Scope::Chain, FIRST_DAY, last, Granularity::Week)),
        ),
        (
            "the chain, a month by day",
            Box::new(|r| {
                let from = add_days(FIRST_DAY, r.random_range(0..p.days - 30));
                q(Scope::Chain, from, add_days(from, 29), Granularity::Day)
            }),
        ),
        (
            "the chain, the year by day",
            Box::new(|_| q(Scope::Chain, FIRST_DAY, last, Granularity::Day)),
        ),
    ];
    println!("  {label}: {} queries of each kind, ms", p.queries);
    println!(
        "    {:<30} {:>8} {:>8} {:>8} {:>8}",
        "query", "p50", "p95", "max", "buckets"
    );
    for (name, make) in &kinds {
        let mut ms = Vec::with_capacity(p.queries);
        let mut buckets = 0;
        for _ in 0..p.queries {
            let query = make(&mut rng);
            let t = Instant::now();
            let f = analytics::footfall(store, &query).await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            buckets = f.buckets.len();
            assert!(f.total.visits > 0, "{name}: the loaded rows are read");
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "    {name:<30} {:>8.1} {:>8.1} {:>8.1} {buckets:>8}",
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms[ms.len() - 1]
        );
    }
}

fn q(scope: Scope, from: Date, to: Date, granularity: Granularity) -> FootfallQuery {
    FootfallQuery {
        scope,
        from,
        to,
        granularity,
        loyalty: true,
    }
}

/// Empties what a run writes (so a database given by URL can be used again).
async fn reset(store: &AnyStore) {
    for t in [
        "events",
        "stores",
        "footfall_hour",
        "footfall_day",
        "footfall_week",
        "zone_day",
        "zone_transition_day",
        "zone_reach_day",
        "path_day",
    ] {
        let sql = format!("DELETE FROM {t}");
        dwell_cloud::on_pool!(store, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool).await.map(|_| ()))
        .unwrap();
    }
    let vacuum = match store {
        AnyStore::Sqlite(_) => "VACUUM",
        AnyStore::Postgres(_) => "VACUUM ANALYZE",
    };
    dwell_cloud::on_pool!(store, pool => sqlx::query(vacuum).execute(pool).await.map(|_| ()))
        .unwrap();
}

/// Events per second through `Store::write`, with and without roll-ups.
async fn time_ingest(store: &AnyStore, label: &str) {
    let spec = HistorySpec {
        stores: (0..10).map(|i| (store_id(i), TZ.to_owned())).collect(),
        first_day: FIRST_DAY,
        days: 7,
        visits_per_day: 400,
        counts_every_s: 60,
        seed: 3,
        ..HistorySpec::default()
    };
    let events = history(&spec);
    let rolled = events
        .iter()
        .filter(|e| analytics::rollup::rolls_up(e.kind))
        .count();
    println!(
        "  {label}: {} events ({:.0} % of a type the roll-ups read), sets of 5,000; two runs each",
        events.len(),
        100.0 * rolled as f64 / events.len() as f64
    );
    for with_rollups in [false, true, false, true] {
        reset(store).await;
        for (id, tz) in &spec.stores {
            dwell_cloud::on_pool!(store, pool => sqlx::query(
                "INSERT INTO stores (id, name, tz) VALUES ($1, $1, $2)")
                .bind(id).bind(tz).execute(pool).await.map(|_| ()))
            .unwrap();
        }
        let sets: Vec<WriteSet> = events
            .chunks(5_000)
            .map(|c| WriteSet {
                events: c
                    .iter()
                    .cloned()
                    .map(|mut e| {
                        if !with_rollups {
                            e.kind = "zone_enter";
                        }
                        e
                    })
                    .collect(),
                ..WriteSet::default()
            })
            .collect();
        let t = Instant::now();
        for s in &sets {
            store.write(s).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let rows: usize = analytics::snapshot(store, None)
            .await
            .unwrap()
            .values()
            .map(Vec::len)
            .sum();
        println!(
            "    {:<44} {:>9.0} events/s ({rows} roll-up rows)",
            if with_rollups {
                "with roll-ups (as shipped)"
            } else {
                "without (same rows, a type not rolled up)"
            },
            events.len() as f64 / secs
        );
    }
    reset(store).await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_else(|| "all".into());
    let num = |i: usize, d: usize| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    let p = Params {
        stores: num(1, 1000),
        days: num(2, 365) as i64,
        queries: num(3, 200),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // PostgreSQL: the given database, or a fresh one on a scratch server.
        let pg_server = match std::env::var("DWELL_BENCH_PG_URL") {
            Ok(_) => None,
            Err(_) => support::PgServer::start(true),
        };
        let pg_url = match (std::env::var("DWELL_BENCH_PG_URL"), &pg_server) {
            (Ok(url), _) => Some(url),
            (Err(_), Some(server)) => Some(server.create_database().await),
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut backends = vec![(
            "SQLite (WAL, synchronous=FULL)",
            AnyStore::Sqlite(SqliteStore::open_dir(dir.path()).await.unwrap()),
        )];
        match pg_url {
            Some(url) => backends.push((
                "PostgreSQL",
                AnyStore::Postgres(PgStore::connect(&url, 4).await.unwrap()),
            )),
            None => println!("PostgreSQL: SKIP (not installed, and DWELL_BENCH_PG_URL not set)"),
        }
        for (label, store) in &backends {
            if mode == "queries" || mode == "all" {
                println!(
                    "footfall_bench queries, {label}: {} stores × {} days of hourly roll-ups",
                    p.stores, p.days
                );
                reset(store).await;
                load(store, &p).await;
                time_queries(store, &p, label).await;
            }
            if mode == "ingest" || mode == "all" {
                println!("footfall_bench ingest, {label}: Store::write with and without roll-ups");
                time_ingest(store, label).await;
            }
            store.close().await;
        }
    });
}

//! Writing a [`Rollup`] into the roll-up tables, inside the caller's transaction, on either
//! backend: one multi-row `INSERT … ON CONFLICT (key) DO UPDATE SET n = t.n + excluded.n` per table
//! (chunked under SQLite's bound-parameter limit), rows in key order and tables in a fixed order so
//! two PostgreSQL workers adding to the same rows lock them in the same order and never deadlock.
//!
//! Also the ingest side of exactly-once: [`sqlite`] and [`postgres`] take the rows the events
//! insert just reported as new (`RETURNING`), look up their stores' time zones in the same
//! transaction, and add their deltas. A rolled-back transaction takes its deltas with it, and a
//! redelivered event is not new, so it adds nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::tz::TimeZone;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::local::{time_zone, week_of};
use super::rollup::{COLUMNS, Rollup};
use crate::store::EventRow;

/// Bound parameters per statement, under both backends' limits (SQLite 32,766; PostgreSQL 65,535).
const MAX_PARAMS: usize = 32_000;

/// One value of a row to upsert.
enum Val {
    S(String),
    I(i64),
}

/// A roll-up table: its key columns (the conflict target) and its additive columns.
struct Table {
    name: &'static str,
    keys: &'static [&'static str],
    /// Extra columns set on insert and never changed (derived from the key).
    fixed: &'static [&'static str],
    adds: &'static [&'static str],
}

const HOUR: Table = Table {
    name: "footfall_hour",
    keys: &["store", "day", "hour_ms"],
    fixed: &["hour"],
    adds: &COLUMNS,
};
const DAY: Table = Table {
    name: "footfall_day",
    keys: &["store", "day"],
    fixed: &["week"],
    adds: &COLUMNS,
};
const WEEK: Table = Table {
    name: "footfall_week",
    keys: &["store", "week"],
    fixed: &[],
    adds: &COLUMNS,
};
/// The same footfall sums per scope (`chain`, `region:<id>`): see migration 0006.
const SCOPE_HOUR: Table = Table {
    name: "footfall_scope_hour",
    // `hour` is a key here: stores in different zones share a UTC hour but not a local one.
    keys: &["scope", "day", "hour_ms", "hour"],
    fixed: &[],
    adds: &COLUMNS,
};
const SCOPE_DAY: Table = Table {
    name: "footfall_scope_day",
    keys: &["scope", "day"],
    fixed: &["week"],
    adds: &COLUMNS,
};
const SCOPE_WEEK: Table = Table {
    name: "footfall_scope_week",
    keys: &["scope", "week"],
    fixed: &[],
    adds: &COLUMNS,
};
const ZONE: Table = Table {
    name: "zone_day",
    keys: &["store", "day", "zone"],
    fixed: &[],
    adds: &["stays", "dwell_ms", "visits", "presence_dev_s"],
};
const TRANSITION: Table = Table {
    name: "zone_transition_day",
    keys: &["store", "day", "source", "target"],
    fixed: &[],
    adds: &["n"],
};
const REACH: Table = Table {
    name: "zone_reach_day",
    keys: &["store", "day", "first_zone", "zone"],
    fixed: &[],
    adds: &["visits", "to_reach_ms"],
};
const PATH: Table = Table {
    name: "path_day",
    keys: &["store", "day", "path"],
    fixed: &[],
    adds: &["visits"],
};

/// Every per-store roll-up table, in the order they are written (and cleared by a rebuild).
pub(crate) const TABLES: [&str; 7] = [
    HOUR.name,
    DAY.name,
    WEEK.name,
    ZONE.name,
    TRANSITION.name,
    REACH.name,
    PATH.name,
];

/// The scope of the whole chain in the `footfall_scope_*` tables.
pub(crate) const CHAIN_SCOPE: &str = "chain";

/// The scope of a region in the `footfall_scope_*` tables.
pub(crate) fn region_scope(region: &str) -> String {
    format!("region:{region}")
}

/// What ingest knows of a store while rolling up its events.
#[derive(Clone, Debug)]
pub(crate) struct StoreInfo {
    pub tz: TimeZone,
    pub region: Option<String>,
}

/// Every roll-up table with all its columns (keys first), in write order: the per-store tables,
/// then the per-scope ones (whose first key is `scope`, not `store`).
pub(crate) fn table_columns() -> Vec<(&'static str, Vec<&'static str>)> {
    [
        &HOUR,
        &DAY,
        &WEEK,
        &ZONE,
        &TRANSITION,
        &REACH,
        &PATH,
        &SCOPE_HOUR,
        &SCOPE_DAY,
        &SCOPE_WEEK,
    ]
    .into_iter()
    .map(|t| {
        let cols = t
            .keys
            .iter()
            .chain(t.fixed)
            .chain(t.adds)
            .copied()
            .collect();
        (t.name, cols)
    })
    .collect()
}

impl Table {
    fn width(&self) -> usize {
        self.keys.len() + self.fixed.len() + self.adds.len()
    }

    fn insert_prefix(&self) -> String {
        let cols: Vec<&str> = self
            .keys
            .iter()
            .chain(self.fixed)
            .chain(self.adds)
            .copied()
            .collect();
        format!("INSERT INTO {} ({}) ", self.name, cols.join(", "))
    }

    fn conflict_suffix(&self) -> String {
        let set: Vec<String> = self
            .adds
            .iter()
            .map(|c| format!("{c} = {t}.{c} + excluded.{c}", t = self.name))
            .collect();
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            self.keys.join(", "),
            set.join(", ")
        )
    }
}

/// Statements that recompute every `footfall_scope_*` row from the per-store tables and
/// `stores.region` (what a rebuild does after the store rows, and what migration 0006 did first).
pub(crate) fn refresh_scopes_sql() -> Vec<String> {
    let sums = COLUMNS
        .iter()
        .map(|c| format!("SUM(f.{c})"))
        .collect::<Vec<_>>()
        .join(", ");
    let cols = COLUMNS.join(", ");
    let mut out = Vec::new();
    for (scope, store) in [
        (&SCOPE_HOUR, &HOUR),
        (&SCOPE_DAY, &DAY),
        (&SCOPE_WEEK, &WEEK),
    ] {
        out.push(format!("DELETE FROM {}", scope.name));
        // Key columns but `scope`, then the fixed columns (one value per key: MIN picks it).
        let keys = &scope.keys[1..];
        let key_cols: Vec<&str> = keys.iter().chain(scope.fixed).copied().collect();
        let select: Vec<String> = keys
            .iter()
            .map(|k| format!("f.{k}"))
            .chain(scope.fixed.iter().map(|c| format!("MIN(f.{c})")))
            .collect();
        let group: Vec<String> = keys.iter().map(|k| format!("f.{k}")).collect();
        let (into, select, group) = (key_cols.join(", "), select.join(", "), group.join(", "));
        out.push(format!(
            "INSERT INTO {s} (scope, {into}, {cols}) SELECT '{CHAIN_SCOPE}', {select}, {sums} \
             FROM {t} f GROUP BY {group}",
            s = scope.name,
            t = store.name
        ));
        out.push(format!(
            "INSERT INTO {s} (scope, {into}, {cols}) SELECT 'region:' || st.region, {select}, {sums} \
             FROM {t} f JOIN stores st ON st.id = f.store WHERE st.region IS NOT NULL \
             GROUP BY st.region, {group}",
            s = scope.name,
            t = store.name
        ));
    }
    out
}

/// The scope rows of `r`: every store's hours, days and weeks added to the chain's and to its
/// region's (stores without a region count in the chain only).
fn scope_rows(r: &Rollup, stores: &HashMap<String, StoreInfo>) -> [Vec<Vec<Val>>; 3] {
    use super::rollup::Counts;
    use Val::{I, S};
    let scopes_of = |store: &str| {
        let region = stores.get(store).and_then(|i| i.region.as_deref());
        std::iter::once(CHAIN_SCOPE.to_owned()).chain(region.map(region_scope))
    };
    let mut hours: BTreeMap<(String, String, i64, i64), Counts> = BTreeMap::new();
    for (store, s) in &r.stores {
        for (hour_ms, cell) in &s.hours {
            let Some(day) = cell.day else { continue };
            for scope in scopes_of(store) {
                let key = (scope, day.to_string(), *hour_ms, i64::from(cell.hour));
                hours.entry(key).or_default().add(&cell.counts);
            }
        }
    }
    let mut days: BTreeMap<(String, String), (String, Counts)> = BTreeMap::new();
    for ((store, day), c) in r.days() {
        for scope in scopes_of(store) {
            let e = days.entry((scope, day.to_string())).or_default();
            e.0 = week_of(day).to_string();
            e.1.add(&c);
        }
    }
    let mut weeks: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for ((store, week), c) in r.weeks() {
        for scope in scopes_of(store) {
            weeks.entry((scope, week.to_string())).or_default().add(&c);
        }
    }
    let counts = |c: &Counts| c.0.iter().map(|v| I(*v)).collect::<Vec<_>>();
    [
        hours
            .into_iter()
            .map(|((scope, day, ms, hour), c)| {
                let mut v = vec![S(scope), S(day), I(ms), I(hour)];
                v.extend(counts(&c));
                v
            })
            .collect(),
        days.into_iter()
            .map(|((scope, day), (week, c))| {
                let mut v = vec![S(scope), S(day), S(week)];
                v.extend(counts(&c));
                v
            })
            .collect(),
        weeks
            .into_iter()
            .map(|((scope, week), c)| {
                let mut v = vec![S(scope), S(week)];
                v.extend(counts(&c));
                v
            })
            .collect(),
    ]
}

/// The rows of every table, in write order (each table's rows in key order); the scope tables'
/// only when `stores` is given (ingest; a rebuild recomputes those from the store tables).
fn rows(
    r: &Rollup,
    stores: Option<&HashMap<String, StoreInfo>>,
) -> Vec<(&'static Table, Vec<Vec<Val>>)> {
    use Val::{I, S};
    let counts = |c: &super::rollup::Counts| c.0.iter().map(|v| I(*v)).collect::<Vec<_>>();
    let (mut hours, mut zones, mut transitions, mut reach, mut paths) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (store, s) in &r.stores {
        for (hour_ms, cell) in &s.hours {
            let Some(day) = cell.day else { continue };
            let mut v = vec![
                S(store.clone()),
                S(day.to_string()),
                I(*hour_ms),
                I(i64::from(cell.hour)),
            ];
            v.extend(counts(&cell.counts));
            hours.push(v);
        }
        for (day, cells) in &s.zones {
            for (zone, z) in cells {
                zones.push(vec![
                    S(store.clone()),
                    S(day.to_string()),
                    S(zone.clone()),
                    I(z.stays),
                    I(z.dwell_ms),
                    I(z.visits),
                    I(z.presence_dev_s),
                ]);
            }
        }
        for ((day, a, b), n) in &s.transitions {
            transitions.push(vec![
                S(store.clone()),
                S(day.to_string()),
                S(a.clone()),
                S(b.clone()),
                I(*n),
            ]);
        }
        for ((day, first, zone), (n, ms)) in &s.reach {
            reach.push(vec![
                S(store.clone()),
                S(day.to_string()),
                S(first.clone()),
                S(zone.clone()),
                I(*n),
                I(*ms),
            ]);
        }
        for ((day, path), n) in &s.paths {
            paths.push(vec![
                S(store.clone()),
                S(day.to_string()),
                S(path.clone()),
                I(*n),
            ]);
        }
    }
    let days = r
        .days()
        .iter()
        .map(|((store, day), c)| {
            let mut v = vec![
                S((*store).to_owned()),
                S(day.to_string()),
                S(week_of(*day).to_string()),
            ];
            v.extend(counts(c));
            v
        })
        .collect();
    let weeks = r
        .weeks()
        .iter()
        .map(|((store, week), c)| {
            let mut v = vec![S((*store).to_owned()), S(week.to_string())];
            v.extend(counts(c));
            v
        })
        .collect();
    let mut out = vec![
        (&HOUR, hours),
        (&DAY, days),
        (&WEEK, weeks),
        (&ZONE, zones),
        (&TRANSITION, transitions),
        (&REACH, reach),
        (&PATH, paths),
    ];
    // Last: every transaction adds to the chain's row of the day, so it is locked (PostgreSQL)
    // for the shortest time, just before the commit.
    if let Some(stores) = stores {
        let [h, d, w] = scope_rows(r, stores);
        out.extend([(&SCOPE_HOUR, h), (&SCOPE_DAY, d), (&SCOPE_WEEK, w)]);
    }
    out
}

/// The distinct stores of `events`.
fn stores_of<'a>(events: &[&'a EventRow]) -> Vec<&'a str> {
    events
        .iter()
        .map(|e| e.store.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The same code for both backends (sqlx's `QueryBuilder` writes each one's placeholders).
macro_rules! backend {
    ($db:ty, $conn:ty, $write:ident, $zones:ident, $apply:ident) => {
        /// Upserts every row of `rollup`, in the caller's transaction (the scope rows too when
        /// `stores` is given).
        pub(crate) async fn $write(
            conn: &mut $conn,
            rollup: &Rollup,
            stores: Option<&HashMap<String, StoreInfo>>,
        ) -> Result<(), sqlx::Error> {
            for (table, rows) in rows(rollup, stores) {
                if rows.is_empty() {
                    continue;
                }
                let (prefix, suffix) = (table.insert_prefix(), table.conflict_suffix());
                for chunk in rows.chunks(MAX_PARAMS / table.width()) {
                    let mut q = QueryBuilder::<$db>::new(&prefix);
                    q.push_values(chunk, |mut b, row| {
                        for v in row {
                            match v {
                                Val::S(s) => b.push_bind(s.clone()),
                                Val::I(i) => b.push_bind(*i),
                            };
                        }
                    });
                    q.push(&suffix);
                    q.build().execute(&mut *conn).await?;
                }
            }
            Ok(())
        }

        /// The time zones and regions of `stores` from the `stores` table (UTC and no region
        /// for a store not listed).
        pub(crate) async fn $zones(
            conn: &mut $conn,
            stores: &[&str],
        ) -> Result<HashMap<String, StoreInfo>, sqlx::Error> {
            let mut out: HashMap<String, StoreInfo> = stores
                .iter()
                .map(|s| {
                    let info = StoreInfo {
                        tz: TimeZone::UTC,
                        region: None,
                    };
                    ((*s).to_owned(), info)
                })
                .collect();
            for chunk in stores.chunks(MAX_PARAMS) {
                let mut q =
                    QueryBuilder::<$db>::new("SELECT id, tz, region FROM stores WHERE id IN (");
                let mut list = q.separated(", ");
                for s in chunk {
                    list.push_bind((*s).to_owned());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let id: String = row.try_get(0)?;
                    let tz: String = row.try_get(1)?;
                    let region: Option<String> = row.try_get(2)?;
                    let tz = time_zone(&tz);
                    out.insert(id, StoreInfo { tz, region });
                }
            }
            Ok(out)
        }

        /// Adds the roll-up deltas of `fresh` (event rows this transaction inserted).
        pub(crate) async fn $apply(
            conn: &mut $conn,
            fresh: &[&EventRow],
        ) -> Result<(), sqlx::Error> {
            if fresh.is_empty() {
                return Ok(());
            }
            let stores = $zones(conn, &stores_of(fresh)).await?;
            let mut rollup = Rollup::default();
            let utc = TimeZone::UTC;
            for e in fresh {
                let tz = stores.get(&e.store).map_or(&utc, |i| &i.tz);
                rollup.add_json(&e.store, tz, &e.payload);
            }
            if rollup.skipped > 0 {
                tracing::warn!(
                    skipped = rollup.skipped,
                    "events not rolled up (unreadable payload or time out of range)"
                );
            }
            $write(conn, &rollup, Some(&stores)).await
        }
    };
}

backend!(Sqlite, SqliteConnection, write_sqlite, zones_sqlite, sqlite);
backend!(
    Postgres,
    PgConnection,
    write_postgres,
    zones_postgres,
    postgres
);

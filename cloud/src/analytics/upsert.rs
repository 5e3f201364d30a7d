//! Writing a [`Rollup`] into the roll-up tables, inside the caller's transaction, on either
//! backend: one multi-row `INSERT … ON CONFLICT (key) DO UPDATE SET n = t.n + excluded.n` per table
//! (chunked under SQLite's bound-parameter limit), rows in key order and tables in a fixed order so
//! two PostgreSQL workers adding to the same rows lock them in the same order and never deadlock.
//!
//! Also the ingest side of exactly-once: [`sqlite`] and [`postgres`] take the rows the events
//! insert just reported as new (`RETURNING`), look up their stores' time zones in the same
//! transaction, and add their deltas. A rolled-back transaction takes its deltas with it, and a
//! redelivered event is not new, so it adds nothing.

use std::collections::{BTreeSet, HashMap};

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

/// Every roll-up table, in the order they are written (and cleared by a rebuild).
pub(crate) const TABLES: [&str; 7] = [
    HOUR.name,
    DAY.name,
    WEEK.name,
    ZONE.name,
    TRANSITION.name,
    REACH.name,
    PATH.name,
];

/// Every roll-up table with all its columns (keys first), in write order.
pub(crate) fn table_columns() -> Vec<(&'static str, Vec<&'static str>)> {
    [&HOUR, &DAY, &WEEK, &ZONE, &TRANSITION, &REACH, &PATH]
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

/// The rows of every table, in write order (each table's rows in key order).
fn rows(r: &Rollup) -> Vec<(&'static Table, Vec<Vec<Val>>)> {
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
    vec![
        (&HOUR, hours),
        (&DAY, days),
        (&WEEK, weeks),
        (&ZONE, zones),
        (&TRANSITION, transitions),
        (&REACH, reach),
        (&PATH, paths),
    ]
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
        /// Upserts every row of `rollup`, in the caller's transaction.
        pub(crate) async fn $write(conn: &mut $conn, rollup: &Rollup) -> Result<(), sqlx::Error> {
            for (table, rows) in rows(rollup) {
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

        /// The time zones of `stores` from the `stores` table (UTC for a store not listed).
        pub(crate) async fn $zones(
            conn: &mut $conn,
            stores: &[&str],
        ) -> Result<HashMap<String, TimeZone>, sqlx::Error> {
            let mut out: HashMap<String, TimeZone> = stores
                .iter()
                .map(|s| ((*s).to_owned(), TimeZone::UTC))
                .collect();
            for chunk in stores.chunks(MAX_PARAMS) {
                let mut q = QueryBuilder::<$db>::new("SELECT id, tz FROM stores WHERE id IN (");
                let mut list = q.separated(", ");
                for s in chunk {
                    list.push_bind((*s).to_owned());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let id: String = row.try_get(0)?;
                    let tz: String = row.try_get(1)?;
                    out.insert(id, time_zone(&tz));
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
            let zones = $zones(conn, &stores_of(fresh)).await?;
            let mut rollup = Rollup::default();
            let utc = TimeZone::UTC;
            for e in fresh {
                let tz = zones.get(&e.store).unwrap_or(&utc);
                rollup.add_json(&e.store, tz, &e.payload);
            }
            if rollup.skipped > 0 {
                tracing::warn!(
                    skipped = rollup.skipped,
                    "events not rolled up (unreadable payload or time out of range)"
                );
            }
            $write(conn, &rollup).await
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

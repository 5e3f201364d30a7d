//! Roll-up deltas: what one stored event adds to the analytics tables, computed without the
//! database so ingest (incrementally, for the rows it just inserted) and [`rebuild`] (from every
//! stored event) run the very same code and cannot disagree.
//!
//! Every figure is a sum of per-event contributions (counts, milliseconds, device-seconds), so a
//! [`Rollup`] of many events is the sum of their rollups in any order, and applying it is an
//! upsert that adds (`n = n + excluded.n`). Events are immutable and ingest applies only rows that
//! were new in its transaction, so each event is counted exactly once.
//!
//! [`rebuild`]: super::rebuild()

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use dwell_shared::definitions::{DwellBucket, VisitClass, VisitDefinitions, dwell_bucket};
use dwell_shared::wire::{DeviceTier, Event, EventKind};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::local::{LocalHour, local_hour, week_of};

/// Event types that contribute to roll-ups; the rest (`visit_start`, `zone_enter`, `zone_dwell`,
/// `zone_exit`) are covered by the `visit_end` that follows them.
pub const ROLLED_UP: [&str; 5] = ["visit_end", "traffic", "presence", "door", "app_presence"];

/// Whether events of wire type `kind` contribute to roll-ups.
pub fn rolls_up(kind: &str) -> bool {
    ROLLED_UP.contains(&kind)
}

/// Longest path (zones, after collapsing repeats) kept as its own sequence in `path_day`; longer
/// paths are counted under their first [`MAX_PATH_ZONES`] zones, marked truncated.
pub const MAX_PATH_ZONES: usize = 12;

/// The footfall counters, in column order (`footfall_hour`, `footfall_day`, `footfall_week`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum C {
    /// Visits of people (not randomized, not static): visitors + passers-by.
    Visits,
    Visitors,
    Passersby,
    /// Visitor visits lasting at least `engaged_s` (10 min).
    Engaged,
    /// Sum of visitor visits' durations.
    DwellMs,
    DwellLt5m,
    Dwell5To20m,
    Dwell20To60m,
    Dwell1To6h,
    Dwell6hPlus,
    /// Of `Visits`, those of consented (EID) devices: each EID part counts (see the module docs).
    ConsentedVisits,
    /// Visits of static ids (staff badges, trolley tags): not people, kept out of `Visits`.
    StaticVisits,
    /// Visits of randomized addresses: traffic, not visitors.
    RandomizedVisits,
    /// Σ `traffic.count × window_s`: randomized device-seconds.
    TrafficDevS,
    /// Σ `traffic.window_s`: how long traffic was counted (by every gateway of the store).
    TrafficS,
    /// Σ `app_presence.count × window_s`.
    AppDevS,
    DoorIn,
    DoorOut,
}

/// How many footfall counters there are.
pub const N: usize = 18;

/// Column names, in [`C`] order.
pub const COLUMNS: [&str; N] = [
    "visits",
    "visitors",
    "passersby",
    "engaged",
    "dwell_ms",
    "dwell_lt_5m",
    "dwell_5_20m",
    "dwell_20_60m",
    "dwell_1_6h",
    "dwell_6h_plus",
    "consented_visits",
    "static_visits",
    "randomized_visits",
    "traffic_dev_s",
    "traffic_s",
    "app_dev_s",
    "door_in",
    "door_out",
];

/// One set of footfall counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts(pub(crate) [i64; N]);

impl Counts {
    pub(crate) fn get(&self, c: C) -> i64 {
        self.0[c as usize]
    }

    fn bump(&mut self, c: C, by: i64) {
        self.0[c as usize] += by;
    }

    pub(crate) fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// One local hour of one store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HourCell {
    pub day: Option<Date>,
    pub hour: i8,
    pub counts: Counts,
}

/// What a zone gets from visits and presence on one local day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ZoneCell {
    /// Stays in the zone (path entries).
    pub stays: i64,
    /// Σ stay durations.
    pub dwell_ms: i64,
    /// Visits whose path includes the zone (once per visit).
    pub visits: i64,
    /// Σ `presence` count × `window_s`: device-seconds placed in the zone.
    pub presence_dev_s: i64,
}

/// The deltas of one store. Keys are nested (day, then zone) so that the hot path — a presence
/// event adding to every zone — looks cells up by `&str` without allocating.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoreRollup {
    /// hour_ms → the hour.
    pub hours: BTreeMap<i64, HourCell>,
    /// day → zone → cell.
    pub zones: BTreeMap<Date, BTreeMap<String, ZoneCell>>,
    /// (day, source zone, target zone) → transitions.
    pub transitions: BTreeMap<(Date, String, String), i64>,
    /// (day, first zone of the path, zone) → (visits reaching it, Σ ms from the first stay's
    /// start to the zone's first entry).
    pub reach: BTreeMap<(Date, String, String), (i64, i64)>,
    /// (day, path as a JSON array) → visits.
    pub paths: BTreeMap<(Date, String), i64>,
}

impl StoreRollup {
    fn hour(&mut self, h: LocalHour) -> &mut Counts {
        let cell = self.hours.entry(h.hour_ms).or_default();
        cell.day = Some(h.day);
        cell.hour = h.hour;
        &mut cell.counts
    }

    fn zone(&mut self, day: Date, zone: &str) -> &mut ZoneCell {
        let zones = self.zones.entry(day).or_default();
        if !zones.contains_key(zone) {
            zones.insert(zone.to_owned(), ZoneCell::default());
        }
        // Inserted just above if it was missing.
        zones.get_mut(zone).expect("the zone cell exists")
    }
}

/// Roll-up deltas of a set of events, keyed and sorted by store, then time, then zone (so
/// concurrent writers on PostgreSQL lock rows in one order and cannot deadlock each other).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub(crate) stores: BTreeMap<String, StoreRollup>,
    /// Events that contributed.
    pub(crate) applied: u64,
    /// Events of a rolled-up type that could not be placed (unparseable, time out of range).
    pub(crate) skipped: u64,
}

/// The fields of a stored event that roll-ups read, borrowed from its JSON: a flat struct parses
/// several times faster than [`Event`] (whose flattened, internally tagged enum makes serde buffer
/// every field). Ingest parsed the payload as an [`Event`] before storing it, so every stored
/// payload has the fields its type requires; [`Rollup::add`] reads an [`Event`] through the same
/// code below.
#[derive(Deserialize)]
struct Fields<'a> {
    ts_ms: i64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    tier: Option<DeviceTier>,
    #[serde(default)]
    randomized: Option<bool>,
    #[serde(default)]
    class: Option<VisitClass>,
    #[serde(default)]
    start_ms: Option<i64>,
    #[serde(default)]
    end_ms: Option<i64>,
    #[serde(default, borrow)]
    path: Vec<Stay<'a>>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    window_s: Option<u32>,
    #[serde(default, rename = "in")]
    entered: Option<u32>,
    #[serde(default, rename = "out")]
    exited: Option<u32>,
    #[serde(default, borrow)]
    zones: BTreeMap<Cow<'a, str>, u32>,
}

/// A zone stay, borrowed.
#[derive(Deserialize)]
struct Stay<'a> {
    #[serde(borrow)]
    zone: Cow<'a, str>,
    enter_ms: i64,
    exit_ms: i64,
}

impl Rollup {
    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// Events that contributed, and events skipped (a rolled-up type that could not be placed).
    pub fn events(&self) -> (u64, u64) {
        (self.applied, self.skipped)
    }

    fn count(&mut self, ok: bool) {
        if ok {
            self.applied += 1;
        } else {
            self.skipped += 1;
        }
    }

    fn store(&mut self, store: &str) -> &mut StoreRollup {
        if !self.stores.contains_key(store) {
            self.stores.insert(store.to_owned(), StoreRollup::default());
        }
        // Inserted just above if it was missing.
        self.stores
            .get_mut(store)
            .expect("the store's deltas exist")
    }

    /// Adds one stored event given as its JSON (the `events.payload`), for `store` in `tz`.
    /// Events of types that aren't rolled up are ignored; a payload that can't be read is counted
    /// as skipped.
    pub fn add_json(&mut self, store: &str, tz: &TimeZone, payload: &str) {
        let Ok(f) = serde_json::from_str::<Fields<'_>>(payload) else {
            self.skipped += 1;
            return;
        };
        let ok = match f.kind.as_ref() {
            "visit_end" => match (f.class, f.start_ms, f.end_ms) {
                (Some(class), Some(start), Some(end)) => {
                    let path: Vec<(&str, i64, i64)> = f
                        .path
                        .iter()
                        .map(|s| (s.zone.as_ref(), s.enter_ms, s.exit_ms))
                        .collect();
                    let device = (f.tier, f.randomized == Some(true));
                    self.visit(store, tz, device, class, (start, end), &path)
                }
                _ => false,
            },
            "traffic" => match (f.count, f.window_s) {
                (Some(n), Some(w)) => self.window(store, tz, f.ts_ms, w, Window::Traffic(n)),
                _ => false,
            },
            "app_presence" => match (f.count, f.window_s) {
                (Some(n), Some(w)) => self.window(store, tz, f.ts_ms, w, Window::App(n)),
                _ => false,
            },
            "door" => match (f.entered, f.exited, f.window_s) {
                (Some(i), Some(o), Some(w)) => {
                    self.window(store, tz, f.ts_ms, w, Window::Door(i, o))
                }
                _ => false,
            },
            "presence" => match f.window_s {
                Some(w) => {
                    let zones = f.zones.iter().map(|(z, n)| (z.as_ref(), *n));
                    self.presence(store, tz, f.ts_ms, w, zones)
                }
                None => false,
            },
            _ => return,
        };
        self.count(ok);
    }

    /// Adds one event of `store` (whose time zone is `tz`). Events of other types are ignored.
    pub fn add(&mut self, store: &str, tz: &TimeZone, event: &Event) {
        let ts = event.ts_ms;
        let ok = match &event.kind {
            EventKind::VisitEnd {
                device,
                class,
                start_ms,
                end_ms,
                path,
            } => {
                let path: Vec<(&str, i64, i64)> = path
                    .iter()
                    .map(|s| (s.zone.as_str(), s.enter_ms, s.exit_ms))
                    .collect();
                let dev = (device.tier, device.randomized == Some(true));
                self.visit(store, tz, dev, *class, (*start_ms, *end_ms), &path)
            }
            EventKind::Traffic { count, window_s } => {
                self.window(store, tz, ts, *window_s, Window::Traffic(*count))
            }
            EventKind::AppPresence { count, window_s } => {
                self.window(store, tz, ts, *window_s, Window::App(*count))
            }
            EventKind::Door {
                entered,
                exited,
                window_s,
                ..
            } => self.window(store, tz, ts, *window_s, Window::Door(*entered, *exited)),
            EventKind::Presence { zones, window_s } => {
                let zones = zones.iter().map(|(z, n)| (z.as_str(), *n));
                self.presence(store, tz, ts, *window_s, zones)
            }
            _ => return,
        };
        self.count(ok);
    }

    /// A windowed count (`traffic`, `door`, `app_presence`): stamped at the window's end, it
    /// belongs to the hour the window started in.
    fn window(&mut self, store: &str, tz: &TimeZone, ts_ms: i64, window_s: u32, w: Window) -> bool {
        let Some(h) = window_start(ts_ms, window_s).and_then(|t| local_hour(t, tz)) else {
            return false;
        };
        let c = self.store(store).hour(h);
        let secs = i64::from(window_s);
        match w {
            Window::Traffic(n) => {
                c.bump(C::TrafficDevS, i64::from(n) * secs);
                c.bump(C::TrafficS, secs);
            }
            Window::App(n) => c.bump(C::AppDevS, i64::from(n) * secs),
            Window::Door(i, o) => {
                c.bump(C::DoorIn, i64::from(i));
                c.bump(C::DoorOut, i64::from(o));
            }
        }
        true
    }

    /// Devices placed in each zone over a window: device-seconds per zone, by the window's start.
    fn presence<'z>(
        &mut self,
        store: &str,
        tz: &TimeZone,
        ts_ms: i64,
        window_s: u32,
        zones: impl Iterator<Item = (&'z str, u32)>,
    ) -> bool {
        let Some(h) = window_start(ts_ms, window_s).and_then(|t| local_hour(t, tz)) else {
            return false;
        };
        let s = self.store(store);
        for (zone, n) in zones.filter(|(_, n)| *n > 0) {
            s.zone(h.day, zone).presence_dev_s += i64::from(n) * i64::from(window_s);
        }
        true
    }

    /// One `visit_end`: `device` is (tier, randomized), `span` (start_ms, end_ms), `path`
    /// (zone, enter_ms, exit_ms) stays.
    fn visit(
        &mut self,
        store: &str,
        tz: &TimeZone,
        device: (Option<DeviceTier>, bool),
        class: VisitClass,
        (start_ms, end_ms): (i64, i64),
        path: &[(&str, i64, i64)],
    ) -> bool {
        // A visit belongs to the local hour (and day) it started in.
        let Some(h) = local_hour(start_ms, tz) else {
            return false;
        };
        let s = self.store(store);
        let c = s.hour(h);
        match device {
            (_, true) => c.bump(C::RandomizedVisits, 1),
            (Some(DeviceTier::Static), false) => {
                c.bump(C::StaticVisits, 1);
                // Badges and trolleys would dominate zone dwell: no zone figures either.
                return true;
            }
            (tier, false) => {
                c.bump(C::Visits, 1);
                if tier == Some(DeviceTier::Consented) {
                    c.bump(C::ConsentedVisits, 1);
                }
                match class {
                    VisitClass::Passerby => c.bump(C::Passersby, 1),
                    VisitClass::Visitor => {
                        let ms = (end_ms - start_ms).max(0);
                        let secs = (ms / 1000) as u64;
                        c.bump(C::Visitors, 1);
                        c.bump(C::DwellMs, ms);
                        c.bump(bucket_counter(dwell_bucket(secs)), 1);
                        if VisitDefinitions::DEFAULT.is_engaged(secs) {
                            c.bump(C::Engaged, 1);
                        }
                    }
                }
            }
        }
        s.path(h.day, path);
        true
    }

    /// The per-day counters: the hours summed by (store, local day).
    pub(crate) fn days(&self) -> BTreeMap<(&str, Date), Counts> {
        let mut out: BTreeMap<(&str, Date), Counts> = BTreeMap::new();
        for (store, s) in &self.stores {
            for cell in s.hours.values() {
                if let Some(day) = cell.day {
                    out.entry((store, day)).or_default().add(&cell.counts);
                }
            }
        }
        out
    }

    /// The per-week counters: the hours summed by (store, Monday of the local day's week).
    pub(crate) fn weeks(&self) -> BTreeMap<(&str, Date), Counts> {
        let mut out: BTreeMap<(&str, Date), Counts> = BTreeMap::new();
        for (store, s) in &self.stores {
            for cell in s.hours.values() {
                if let Some(day) = cell.day {
                    out.entry((store, week_of(day)))
                        .or_default()
                        .add(&cell.counts);
                }
            }
        }
        out
    }

    /// Rows this rollup will upsert, over all tables.
    pub fn rows(&self) -> usize {
        self.days().len()
            + self.weeks().len()
            + self
                .stores
                .values()
                .map(|s| {
                    s.hours.len()
                        + s.zones.values().map(BTreeMap::len).sum::<usize>()
                        + s.transitions.len()
                        + s.reach.len()
                        + s.paths.len()
                })
                .sum::<usize>()
    }
}

/// What a windowed count adds.
#[derive(Clone, Copy)]
enum Window {
    Traffic(u32),
    App(u32),
    Door(u32, u32),
}

/// The counter of a dwell bucket.
fn bucket_counter(b: DwellBucket) -> C {
    match b {
        DwellBucket::UnderFiveMinutes => C::DwellLt5m,
        DwellBucket::FiveToTwentyMinutes => C::Dwell5To20m,
        DwellBucket::TwentyToSixtyMinutes => C::Dwell20To60m,
        DwellBucket::OneToSixHours => C::Dwell1To6h,
        DwellBucket::SixHoursPlus => C::Dwell6hPlus,
    }
}

impl StoreRollup {
    /// Zone stays, transitions, reach from the first zone, and the path itself, of one visit (of
    /// anyone but static ids, randomized addresses included: an address change can cut a path in
    /// two but never adds time or invents a transition).
    fn path(&mut self, day: Date, path: &[(&str, i64, i64)]) {
        let mut zones_seen = BTreeSet::new();
        for &(zone, enter, exit) in path {
            let cell = self.zone(day, zone);
            cell.stays += 1;
            cell.dwell_ms += (exit - enter).max(0);
            if zones_seen.insert(zone) {
                cell.visits += 1;
            }
        }
        // The sequence of zones with repeats collapsed (a stay, a gap in no zone, the same zone).
        let mut seq: Vec<(&str, i64)> = Vec::with_capacity(path.len());
        for &(zone, enter, _) in path {
            if seq.last().is_none_or(|l| l.0 != zone) {
                seq.push((zone, enter));
            }
        }
        for w in seq.windows(2) {
            *self
                .transitions
                .entry((day, w[0].0.to_owned(), w[1].0.to_owned()))
                .or_default() += 1;
        }
        if let Some(&(first, first_enter)) = seq.first() {
            let mut reached = BTreeSet::new();
            for &(zone, enter) in &seq {
                if reached.insert(zone) {
                    let e = self
                        .reach
                        .entry((day, first.to_owned(), zone.to_owned()))
                        .or_default();
                    e.0 += 1;
                    e.1 += (enter - first_enter).max(0);
                }
            }
        }
        let zones: Vec<&str> = seq.iter().map(|s| s.0).collect();
        *self.paths.entry((day, path_key(&zones))).or_default() += 1;
    }
}

/// When a window that ended at `ts_ms` and lasted `window_s` started.
fn window_start(ts_ms: i64, window_s: u32) -> Option<i64> {
    ts_ms.checked_sub(i64::from(window_s) * 1000)
}

/// A path's key in `path_day`: its zones as a JSON array (any zone id is safe in it), cut to
/// [`MAX_PATH_ZONES`] with a trailing `null` marking the cut; `[]` for a visit placed in no zone.
pub(crate) fn path_key(zones: &[&str]) -> String {
    let mut v: Vec<serde_json::Value> = zones
        .iter()
        .take(MAX_PATH_ZONES)
        .map(|z| serde_json::Value::from(*z))
        .collect();
    if zones.len() > MAX_PATH_ZONES {
        v.push(serde_json::Value::Null);
    }
    serde_json::Value::Array(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::wire::{DeviceRef, PathStay};

    fn stay(zone: &str, enter_s: i64, exit_s: i64) -> PathStay {
        PathStay {
            zone: zone.into(),
            enter_ms: enter_s * 1000,
            exit_ms: exit_s * 1000,
        }
    }

    fn visit_end(device: DeviceRef, secs: i64, path: Vec<PathStay>) -> Event {
        Event {
            seq: 1,
            ts_ms: secs * 1000 + 900_000,
            kind: EventKind::VisitEnd {
                device,
                class: VisitDefinitions::DEFAULT.classify(secs as u64),
                start_ms: 0,
                end_ms: secs * 1000,
                path,
            },
        }
    }

    #[test]
    fn a_visit_counts_once_in_its_start_hour_with_its_path() {
        let mut r = Rollup::default();
        let path = vec![
            stay("entrance", 0, 60),
            stay("cosmetics", 70, 400),
            stay("cosmetics", 420, 500),
            stay("checkout", 510, 600),
        ];
        r.add(
            "s",
            &TimeZone::UTC,
            &visit_end(DeviceRef::new("h:1"), 600, path),
        );
        let s = &r.stores["s"];
        let (hour_ms, cell) = s.hours.iter().next().unwrap();
        assert_eq!(*hour_ms, 0);
        let c = cell.counts;
        assert_eq!(
            [c.get(C::Visits), c.get(C::Visitors), c.get(C::Engaged)],
            [1, 1, 1]
        );
        assert_eq!(c.get(C::Dwell5To20m), 1);
        let day = jiff::civil::date(1970, 1, 1);
        let cos = s.zones[&day]["cosmetics"];
        assert_eq!((cos.stays, cos.dwell_ms, cos.visits), (2, 410_000, 1));
        assert_eq!(s.transitions.len(), 2);
        assert_eq!(
            s.paths.keys().next().unwrap().1,
            r#"["entrance","cosmetics","checkout"]"#
        );
        assert_eq!(
            s.reach[&(day, "entrance".into(), "checkout".into())],
            (1, 510_000)
        );
    }

    #[test]
    fn randomized_and_static_devices_are_not_visits() {
        let mut r = Rollup::default();
        let random = DeviceRef {
            device: "h:2".into(),
            tier: Some(DeviceTier::Anonymous),
            randomized: Some(true),
        };
        let badge = DeviceRef {
            device: "ibeacon:x:1:2".into(),
            tier: Some(DeviceTier::Static),
            randomized: Some(false),
        };
        r.add(
            "s",
            &TimeZone::UTC,
            &visit_end(random, 900, vec![stay("a", 0, 900)]),
        );
        r.add(
            "s",
            &TimeZone::UTC,
            &visit_end(badge, 900, vec![stay("a", 0, 900)]),
        );
        let s = &r.stores["s"];
        let c = s.hours.values().next().unwrap().counts;
        assert_eq!(c.get(C::Visits), 0);
        assert_eq!(c.get(C::RandomizedVisits), 1);
        assert_eq!(c.get(C::StaticVisits), 1);
        // The randomized device's zone time counts; the badge's does not.
        assert_eq!(s.zones.values().next().unwrap()["a"].stays, 1);
    }

    #[test]
    fn long_paths_are_cut_and_marked() {
        let zones: Vec<String> = (0..20).map(|i| format!("z{}", i % 2)).collect();
        let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
        let key = path_key(&refs);
        assert!(key.ends_with(",null]"), "{key}");
        assert_eq!(
            serde_json::from_str::<Vec<Option<String>>>(&key)
                .unwrap()
                .len(),
            MAX_PATH_ZONES + 1
        );
        assert_eq!(path_key(&[]), "[]");
    }

    /// The stored-JSON reader and the typed [`Event`] reader agree on every kind of event a
    /// generated week holds (every tier, randomized, long paths, DST, counts).
    #[test]
    fn reading_the_json_equals_reading_the_event() {
        let spec = super::super::generate::HistorySpec {
            days: 10,
            first_day: jiff::civil::date(2025, 3, 25),
            ..Default::default()
        };
        let tz = super::super::local::time_zone("Europe/Berlin");
        let (mut a, mut b) = (Rollup::default(), Rollup::default());
        for e in super::super::generate::history(&spec) {
            a.add_json(&e.store, &tz, &e.payload);
            b.add(&e.store, &tz, &serde_json::from_str(&e.payload).unwrap());
        }
        assert!(a.applied > 1000 && a.skipped == 0);
        assert_eq!(a, b);
        let mut c = Rollup::default();
        c.add_json("s", &tz, "{not json");
        c.add_json(
            "s",
            &tz,
            r#"{"seq":1,"ts_ms":1,"type":"zone_enter","device":"h","zone":"a"}"#,
        );
        c.add_json(
            "s",
            &tz,
            r#"{"seq":1,"ts_ms":1,"type":"traffic","window_s":60}"#,
        );
        assert_eq!(c.events(), (0, 2));
    }
}

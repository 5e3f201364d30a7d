//! Store local time: which local hour, day and week an instant falls in, for a store's IANA time
//! zone, with the tz database bundled into the binary (`jiff`'s `tzdb-bundle-always`), so hours
//! and days follow daylight-saving changes the same way on every machine, offline.
//!
//! An hour is identified by the UTC instant of its local start (`hour_ms`): on the autumn
//! fall-back day the two local 02:00 hours are two different hours, and a spring-forward day has
//! 23. A day is the store's local calendar date, a week the Monday that starts it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The local hour an instant falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalHour {
    /// The local calendar date.
    pub day: Date,
    /// The local hour of day, 0..=23.
    pub hour: i8,
    /// UTC milliseconds of the local hour's start.
    pub hour_ms: i64,
}

/// The local hour of `ts_ms` in `tz`, or `None` for an instant outside what a calendar can name
/// (years beyond ±9999: a corrupt clock).
pub fn local_hour(ts_ms: i64, tz: &TimeZone) -> Option<LocalHour> {
    let ts = Timestamp::from_millisecond(ts_ms).ok()?;
    let z = ts.to_zoned(tz.clone());
    // The hour's start is the instant minus the local minutes, seconds and milliseconds: unlike
    // rounding a civil time and converting it back, this is never ambiguous (fall-back) and works
    // for zones whose offset is not whole hours (+05:30, +05:45).
    let into_hour_ms =
        i64::from(z.minute()) * 60_000 + i64::from(z.second()) * 1_000 + i64::from(z.millisecond());
    Some(LocalHour {
        day: z.date(),
        hour: z.hour(),
        hour_ms: ts_ms - into_hour_ms,
    })
}

/// The Monday that starts `day`'s week.
pub fn week_of(day: Date) -> Date {
    let back = i64::from(day.weekday().to_monday_zero_offset());
    day.checked_sub(back.days()).unwrap_or(day)
}

/// `day + n` days, clamped to the calendar's range.
pub fn add_days(day: Date, n: i64) -> Date {
    day.saturating_add(n.days())
}

/// UTC milliseconds of the local start of `day` in `tz` (the first instant of that date: 01:00
/// in a zone whose clocks skip midnight).
pub fn day_start_ms(day: Date, tz: &TimeZone) -> Option<i64> {
    let z = day.to_zoned(tz.clone()).ok()?.start_of_day().ok()?;
    Some(z.timestamp().as_millisecond())
}

/// `hour_ms` as a local ISO time with its offset, `2025-10-26T02:00+01:00`: the offset tells the
/// two 02:00 hours of a fall-back day apart.
pub fn hour_label(hour_ms: i64, tz: &TimeZone) -> String {
    let Ok(ts) = Timestamp::from_millisecond(hour_ms) else {
        return hour_ms.to_string();
    };
    let z = ts.to_zoned(tz.clone());
    let off = z.offset().seconds();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.unsigned_abs();
    format!(
        "{}T{:02}:{:02}{sign}{:02}:{:02}",
        z.date(),
        z.hour(),
        z.minute(),
        off / 3600,
        off % 3600 / 60
    )
}

/// The time zone called `name` from the bundled database, cached; an unknown or empty name is
/// UTC (logged once per name), so a typo in `stores.tz` shifts that store's hours instead of
/// stopping ingest. Incremental roll-ups and rebuilds both come through here, so they agree.
pub fn time_zone(name: &str) -> TimeZone {
    static CACHE: OnceLock<Mutex<HashMap<String, TimeZone>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tz) = map.get(name) {
        return tz.clone();
    }
    let tz = match TimeZone::get(name) {
        Ok(tz) => tz,
        Err(e) => {
            tracing::warn!(tz = name, error = %e, "unknown store time zone; using UTC");
            TimeZone::UTC
        }
    };
    if map.len() < 4096 {
        map.insert(name.to_owned(), tz.clone());
    }
    tz
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn berlin_fall_back_has_two_two_oclock_hours() {
        let tz = time_zone("Europe/Berlin");
        // 2025-10-26: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
        let a = local_hour(ms("2025-10-26T00:30:00Z"), &tz).unwrap();
        let b = local_hour(ms("2025-10-26T01:30:00Z"), &tz).unwrap();
        assert_eq!((a.hour, b.hour), (2, 2));
        assert_eq!(a.day, date(2025, 10, 26));
        assert_eq!(b.hour_ms - a.hour_ms, 3_600_000);
        assert_eq!(hour_label(a.hour_ms, &tz), "2025-10-26T02:00+02:00");
        assert_eq!(hour_label(b.hour_ms, &tz), "2025-10-26T02:00+01:00");
        let start = day_start_ms(date(2025, 10, 26), &tz).unwrap();
        let next = day_start_ms(date(2025, 10, 27), &tz).unwrap();
        assert_eq!(next - start, 25 * 3_600_000);
    }

    #[test]
    fn half_hour_zones_start_hours_on_the_local_hour() {
        let tz = time_zone("Asia/Kolkata");
        let h = local_hour(ms("2025-01-01T04:40:00Z"), &tz).unwrap(); // 10:10 IST
        assert_eq!(h.hour, 10);
        assert_eq!(h.hour_ms, ms("2025-01-01T04:30:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_unknown_zones_are_utc() {
        assert_eq!(week_of(date(2025, 3, 30)), date(2025, 3, 24)); // a Sunday
        assert_eq!(week_of(date(2025, 3, 24)), date(2025, 3, 24));
        assert_eq!(time_zone("Mars/Olympus"), TimeZone::UTC);
        assert!(local_hour(i64::MAX, &TimeZone::UTC).is_none());
    }
}

//! Footfall queries: visits, visitors, passers-by, capture rate, dwell, engagement, loyalty and the
//! traffic index, per store, region (`stores.region`) or the whole chain, by local hour, day or
//! week — read from the roll-up tables (and, for loyalty, the stitched `visits`).
//!
//! Every figure of a bucket is a sum over the stores of the scope, each in its own local time (a
//! chain's "Monday" is every store's own Monday). When the scope's stores share one time zone the
//! buckets also carry their UTC start and end, and hour buckets are physical hours (23 on a
//! spring-forward day, 25 on a fall-back day, labelled with their offset); when the scope spans
//! time zones the buckets are local labels only and an hour bucket is "each store's 10:00".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::local::{add_days, day_start_ms, hour_label, local_hour, time_zone, week_of};
use super::rollup::{C, COLUMNS, Counts, N};
use super::upsert::{CHAIN_SCOPE, region_scope};
use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::AnyStore;

/// Longest range, in days, of an hourly query (a quarter: ~2,200 buckets).
pub const MAX_HOUR_RANGE_DAYS: i64 = 92;
/// Longest range, in days, of a daily or weekly query (ten years).
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// What a query covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Scope {
    /// One store (`stores.id`, or any store that sent events).
    Store(String),
    /// The stores whose `stores.region` is this.
    Region(String),
    /// Every store.
    Chain,
}

/// Bucket size. Days and hours are the store's local ones; a week starts on Monday.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    #[default]
    Day,
    Week,
}

impl std::str::FromStr for Granularity {
    type Err = DomainError;
    fn from_str(s: &str) -> DomainResult<Granularity> {
        match s {
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            _ => Err(DomainError::Invalid(format!(
                "granularity {s:?} is not one of hour, day, week"
            ))),
        }
    }
}

/// A footfall query. `from` and `to` are local dates, both included; a weekly query covers the
/// whole weeks (Monday to Sunday) that contain them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FootfallQuery {
    pub scope: Scope,
    pub from: Date,
    pub to: Date,
    pub granularity: Granularity,
    /// Add loyalty classes (read from `visits` at query time; costs a scan of the scope's
    /// resolved visits in the range, plus four weeks before it).
    pub loyalty: bool,
}

/// The query string of `GET /api/v1/footfall`, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FootfallParams {
    /// A store id; or
    pub store: Option<String>,
    /// a region; neither: the whole chain.
    pub region: Option<String>,
    /// First local date, `YYYY-MM-DD`.
    pub from: String,
    /// Last local date (included), `YYYY-MM-DD`.
    pub to: String,
    /// `hour`, `day` (default) or `week`.
    pub granularity: Option<String>,
    /// Include loyalty classes (default true).
    pub loyalty: Option<bool>,
}

/// Parses a local date `YYYY-MM-DD`, naming the parameter when it isn't one.
pub fn parse_date(param: &str, value: &str) -> DomainResult<Date> {
    value.trim().parse::<Date>().map_err(|e| {
        DomainError::Invalid(format!(
            "{param} must be a date YYYY-MM-DD, got {value:?}: {e}"
        ))
    })
}

impl FootfallQuery {
    /// Validates the API's parameters.
    pub fn from_params(p: &FootfallParams) -> DomainResult<FootfallQuery> {
        let scope = match (&p.store, &p.region) {
            (Some(_), Some(_)) => {
                return Err(DomainError::Invalid(
                    "give store or region, not both (neither: the whole chain)".into(),
                ));
            }
            (Some(s), None) => Scope::Store(s.clone()),
            (None, Some(r)) => Scope::Region(r.clone()),
            (None, None) => Scope::Chain,
        };
        let q = FootfallQuery {
            scope,
            from: parse_date("from", &p.from)?,
            to: parse_date("to", &p.to)?,
            granularity: p.granularity.as_deref().unwrap_or("day").parse()?,
            loyalty: p.loyalty.unwrap_or(true),
        };
        q.validate()?;
        Ok(q)
    }

    /// Checks the range: `from` ≤ `to`, and not longer than the granularity allows.
    pub fn validate(&self) -> DomainResult<()> {
        if self.from > self.to {
            return Err(DomainError::Invalid(format!(
                "from ({}) is after to ({})",
                self.from, self.to
            )));
        }
        let days = i64::from((self.to - self.from).get_days()) + 1;
        let max = match self.granularity {
            Granularity::Hour => MAX_HOUR_RANGE_DAYS,
            _ => MAX_RANGE_DAYS,
        };
        if days > max {
            return Err(DomainError::Invalid(format!(
                "{days} days is too long a range for {:?} buckets (at most {max})",
                self.granularity
            )));
        }
        Ok(())
    }
}

/// Visits by dwell time (visitors only; they sum to `visitors`). Labels as
/// `dwell_shared::definitions::DwellBucket`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DwellBuckets {
    pub lt_5m: i64,
    #[serde(rename = "5_20m")]
    pub m5_20: i64,
    #[serde(rename = "20_60m")]
    pub m20_60: i64,
    #[serde(rename = "1_6h")]
    pub h1_6: i64,
    #[serde(rename = "6h_plus")]
    pub h6_plus: i64,
}

/// Randomized addresses, reported apart from visitors because they rotate (one phone looks like
/// several) and would inflate any unique count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// The traffic index: randomized device-minutes, Σ `traffic.count × window_s / 60` (a device
    /// seen in a one-minute window is one device-minute; address rotation adds at most one per
    /// rotation). Comparable across hours and days of one store; summed over the store's gateways.
    pub index: f64,
    /// Minutes of traffic counting that went into `index` (Σ `window_s / 60`, over gateways).
    pub counted_minutes: f64,
    /// Visits (`visit_end`) of randomized addresses: not in `visits`.
    pub randomized_visits: i64,
}

/// Break-beam door counts from zone nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Door {
    pub entered: i64,
    pub exited: i64,
}

/// Visitor visits of resolved (opted-in) shoppers by loyalty class; see the module docs of
/// [`crate::analytics`] for the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loyalty {
    pub first_time: i64,
    pub daily: i64,
    pub weekly: i64,
    pub occasional: i64,
}

impl Loyalty {
    fn add(&mut self, o: &Loyalty) {
        self.first_time += o.first_time;
        self.daily += o.daily;
        self.weekly += o.weekly;
        self.occasional += o.occasional;
    }

    fn bump(&mut self, class: LoyaltyClass) {
        match class {
            LoyaltyClass::FirstTime => self.first_time += 1,
            LoyaltyClass::Daily => self.daily += 1,
            LoyaltyClass::Weekly => self.weekly += 1,
            LoyaltyClass::Occasional => self.occasional += 1,
        }
    }
}

/// The loyalty class of one visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoyaltyClass {
    FirstTime,
    Daily,
    Weekly,
    Occasional,
}

/// The figures of one bucket (or of the whole range).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FootfallFigures {
    /// Visits of people: visitors + passers-by (randomized addresses and static ids excluded).
    pub visits: i64,
    /// Visits that lasted the minimum visit time (2 min by default).
    pub visitors: i64,
    /// Visits that did not.
    pub passersby: i64,
    /// visitors / (visitors + passers-by); null without visits.
    pub capture_rate: Option<f64>,
    /// Visitor visits of at least 10 minutes.
    pub engaged: i64,
    /// engaged / visitors; null without visitors.
    pub engaged_rate: Option<f64>,
    /// Mean visitor visit duration, seconds; null without visitors.
    pub mean_dwell_s: Option<f64>,
    pub dwell: DwellBuckets,
    /// Of `visits`, those of consented (EID) devices: each EID part counts as a visit here; the
    /// stitched visits are in `visits` of shoppers.
    pub consented_visits: i64,
    /// Visits of static ids (staff badges, trolley tags): not people, not in `visits`.
    pub static_visits: i64,
    pub traffic: Traffic,
    pub door: Door,
    /// Retailer app presence (iOS background advertisements), device-minutes.
    pub app_presence_minutes: f64,
    /// Null unless asked for.
    pub loyalty: Option<Loyalty>,
}

impl FootfallFigures {
    fn from_counts(c: &Counts, loyalty: Option<Loyalty>) -> FootfallFigures {
        let visitors = c.get(C::Visitors);
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        FootfallFigures {
            visits: c.get(C::Visits),
            visitors,
            passersby: c.get(C::Passersby),
            capture_rate: dwell_shared::definitions::capture_rate(
                visitors as u64,
                c.get(C::Passersby) as u64,
            ),
            engaged: c.get(C::Engaged),
            engaged_rate: ratio(c.get(C::Engaged), visitors),
            mean_dwell_s: ratio(c.get(C::DwellMs), visitors).map(|ms| ms / 1000.0),
            dwell: DwellBuckets {
                lt_5m: c.get(C::DwellLt5m),
                m5_20: c.get(C::Dwell5To20m),
                m20_60: c.get(C::Dwell20To60m),
                h1_6: c.get(C::Dwell1To6h),
                h6_plus: c.get(C::Dwell6hPlus),
            },
            consented_visits: c.get(C::ConsentedVisits),
            static_visits: c.get(C::StaticVisits),
            traffic: Traffic {
                index: c.get(C::TrafficDevS) as f64 / 60.0,
                counted_minutes: c.get(C::TrafficS) as f64 / 60.0,
                randomized_visits: c.get(C::RandomizedVisits),
            },
            door: Door {
                entered: c.get(C::DoorIn),
                exited: c.get(C::DoorOut),
            },
            app_presence_minutes: c.get(C::AppDevS) as f64 / 60.0,
            loyalty,
        }
    }
}

/// One time bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FootfallBucket {
    /// Local: `2025-03-30` (day), `2025-03-24` (week: its Monday), `2025-10-26T02:00+01:00`
    /// (hour, one time zone) or `2025-10-26T02:00` (hour, several time zones).
    pub local: String,
    /// UTC ms of the bucket's start and end (exclusive), when the scope has one time zone.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    #[serde(flatten)]
    pub figures: FootfallFigures,
}

/// A footfall report: `GET /api/v1/footfall`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Footfall {
    pub scope: Scope,
    /// Stores in the scope (listed in `stores`; a store known only from its events counts 1).
    pub stores: u64,
    /// The scope's time zone, when all its stores share one.
    pub time_zone: Option<String>,
    pub granularity: Granularity,
    /// The local dates covered (for weeks: widened to whole weeks).
    pub from: String,
    pub to: String,
    /// Every bucket of the range, in time order, empty ones included.
    pub buckets: Vec<FootfallBucket>,
    /// The whole range.
    pub total: FootfallFigures,
}

/// A bucket's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// A physical hour (one time zone): UTC ms of its start.
    Ms(i64),
    /// A local hour of day on a local date (several time zones).
    DayHour(Date, i8),
    /// A local date, or the Monday of a week.
    Day(Date),
}

/// Where a scope's stores are.
struct ScopeInfo {
    stores: u64,
    /// The one time zone of every store of the scope, if they share one.
    tz: Option<(String, TimeZone)>,
    /// Each store's time zone (those listed in `stores`).
    zones: HashMap<String, TimeZone>,
}

/// The SQL condition restricting `col` (a store id column) to the scope, with `$n` placeholders
/// starting at `next`; and whether it takes a parameter.
pub(crate) fn scope_sql(scope: &Scope, col: &str, next: usize) -> (String, bool) {
    match scope {
        Scope::Store(_) => (format!("{col} = ${next}"), true),
        Scope::Region(_) => (
            format!("{col} IN (SELECT id FROM stores WHERE region = ${next})"),
            true,
        ),
        Scope::Chain => ("1 = 1".into(), false),
    }
}

/// The scope's parameter, if it has one.
pub(crate) fn scope_param(scope: &Scope) -> Option<String> {
    match scope {
        Scope::Store(s) | Scope::Region(s) => Some(s.clone()),
        Scope::Chain => None,
    }
}

async fn scope_info(store: &AnyStore, scope: &Scope) -> DomainResult<ScopeInfo> {
    let (cond, has_param) = scope_sql(scope, "id", 1);
    let sql = format!("SELECT id, tz FROM stores WHERE {cond}");
    let rows: Vec<(String, String)> = on_pool!(store, pool => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        if has_param {
            q = q.bind(scope_param(scope));
        }
        q.fetch_all(pool).await
    })?;
    let zones: HashMap<String, TimeZone> = rows
        .iter()
        .map(|(id, tz)| (id.clone(), time_zone(tz)))
        .collect();
    let names: BTreeSet<&str> = rows.iter().map(|(_, tz)| tz.as_str()).collect();
    let mut stores = rows.len() as u64;
    let mut tz_name = match names.len() {
        1 => names.first().map(|n| (*n).to_owned()),
        _ => None,
    };
    match scope {
        Scope::Store(id) if rows.is_empty() => {
            // Not listed: known only if it has roll-ups (then its hours are UTC ones).
            let known: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
                "SELECT store FROM footfall_day WHERE store = $1 LIMIT 1")
                .bind(id).fetch_optional(pool).await)?;
            if known.is_none() {
                return Err(DomainError::NotFound(format!("store {id:?}")));
            }
            stores = 1;
            tz_name = Some("UTC".into());
        }
        Scope::Region(r) if rows.is_empty() => {
            return Err(DomainError::NotFound(format!("region {r:?}")));
        }
        Scope::Chain if rows.is_empty() => tz_name = Some("UTC".into()),
        _ => {}
    }
    Ok(ScopeInfo {
        stores,
        tz: tz_name.map(|n| {
            let tz = time_zone(&n);
            (n, tz)
        }),
        zones,
    })
}

/// `CAST(SUM(c) AS BIGINT)` for every counter (PostgreSQL's SUM of BIGINT is NUMERIC).
fn sums() -> String {
    COLUMNS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The footfall report for a query.
pub async fn footfall(store: &AnyStore, q: &FootfallQuery) -> DomainResult<Footfall> {
    q.validate()?;
    let info = scope_info(store, &q.scope).await?;
    let one_tz = info.tz.as_ref().map(|(_, tz)| tz.clone());
    let (from, to) = match q.granularity {
        Granularity::Week => (week_of(q.from), add_days(week_of(q.to), 6)),
        _ => (q.from, q.to),
    };
    // A store's own rows; a region's or the chain's sums from the scope tables (migration 0006),
    // which ingest maintains beside them: a year of the chain by day is 365 rows, not 365 a store.
    let (prefix, key, scope) = match &q.scope {
        Scope::Store(s) => ("footfall", "store", s.clone()),
        Scope::Region(r) => ("footfall_scope", "scope", region_scope(r)),
        Scope::Chain => ("footfall_scope", "scope", CHAIN_SCOPE.to_owned()),
    };
    let (table, key_cols, range_col, range) = match (q.granularity, one_tz.is_some()) {
        (Granularity::Hour, true) => ("hour", "hour_ms", "day", (from, to)),
        (Granularity::Hour, false) => ("hour", "day, hour", "day", (from, to)),
        (Granularity::Day, _) => ("day", "day", "day", (from, to)),
        (Granularity::Week, _) => ("week", "week", "week", (from, week_of(to))),
    };
    let sql = format!(
        "SELECT {key_cols}, {sums} FROM {prefix}_{table} WHERE {key} = $1 AND {range_col} >= $2 \
         AND {range_col} <= $3 GROUP BY {key_cols}",
        sums = sums(),
    );
    let keys = key_cols.split(", ").count();
    let rows = on_pool!(store, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&scope)
            .bind(range.0.to_string())
            .bind(range.1.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let key = match (q.granularity, one_tz.is_some()) {
                    (Granularity::Hour, true) => Key::Ms(r.try_get(0)?),
                    (Granularity::Hour, false) => {
                        let day: String = r.try_get(0)?;
                        let hour: i64 = r.try_get(1)?;
                        Key::DayHour(day_key(&day)?, hour as i8)
                    }
                    _ => Key::Day(day_key(&r.try_get::<String, _>(0)?)?),
                };
                let mut c = Counts::default();
                for i in 0..N {
                    c.0[i] = r.try_get::<Option<i64>, _>(keys + i)?.unwrap_or(0);
                }
                Ok::<_, sqlx::Error>((key, c))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;

    // Every bucket of the range, then the rows into them.
    let mut buckets: BTreeMap<Key, (Counts, Loyalty)> = BTreeMap::new();
    for key in dense_keys(q.granularity, from, to, one_tz.as_ref()) {
        buckets.entry(key).or_default();
    }
    for (key, c) in rows {
        buckets.entry(key).or_default().0.add(&c);
    }
    if q.loyalty {
        for (key, class) in loyalty(store, q, &info, from, to).await? {
            buckets.entry(key).or_default().1.bump(class);
        }
    }

    let mut total = (Counts::default(), Loyalty::default());
    let buckets = buckets
        .into_iter()
        .map(|(key, (c, l))| {
            total.0.add(&c);
            total.1.add(&l);
            let (local, start_ms, end_ms) = describe(key, q.granularity, one_tz.as_ref());
            FootfallBucket {
                local,
                start_ms,
                end_ms,
                figures: FootfallFigures::from_counts(&c, q.loyalty.then_some(l)),
            }
        })
        .collect();
    Ok(Footfall {
        scope: q.scope.clone(),
        stores: info.stores,
        time_zone: info.tz.map(|(n, _)| n),
        granularity: q.granularity,
        from: from.to_string(),
        to: to.to_string(),
        buckets,
        total: FootfallFigures::from_counts(&total.0, q.loyalty.then_some(total.1)),
    })
}

fn day_key(s: &str) -> Result<Date, sqlx::Error> {
    s.parse::<Date>()
        .map_err(|e| sqlx::Error::Decode(format!("roll-up date {s:?}: {e}").into()))
}

/// Every bucket key from `from` to `to` (local dates, included).
fn dense_keys(g: Granularity, from: Date, to: Date, tz: Option<&TimeZone>) -> Vec<Key> {
    let days = || {
        let mut d = from;
        std::iter::from_fn(move || {
            (d <= to).then(|| {
                let day = d;
                d = add_days(d, 1);
                day
            })
        })
    };
    match (g, tz) {
        (Granularity::Day, _) => days().map(Key::Day).collect(),
        (Granularity::Week, _) => days().filter(|d| week_of(*d) == *d).map(Key::Day).collect(),
        (Granularity::Hour, Some(tz)) => {
            let (Some(start), Some(end)) =
                (day_start_ms(from, tz), day_start_ms(add_days(to, 1), tz))
            else {
                return Vec::new();
            };
            let mut out: Vec<Key> = (0..)
                .map(|i| start + i * 3_600_000)
                .take_while(|t| *t < end)
                .filter_map(|t| local_hour(t, tz).map(|h| Key::Ms(h.hour_ms)))
                .collect();
            out.dedup();
            out
        }
        (Granularity::Hour, None) => days()
            .flat_map(|d| (0..24).map(move |h| Key::DayHour(d, h)))
            .collect(),
    }
}

/// A bucket's local label and, with one time zone, its UTC start and end.
fn describe(key: Key, g: Granularity, tz: Option<&TimeZone>) -> (String, Option<i64>, Option<i64>) {
    match key {
        Key::Ms(ms) => {
            let tz = tz.cloned().unwrap_or(TimeZone::UTC);
            (hour_label(ms, &tz), Some(ms), Some(ms + 3_600_000))
        }
        Key::DayHour(d, h) => (format!("{d}T{h:02}:00"), None, None),
        Key::Day(d) => {
            let len = if g == Granularity::Week { 7 } else { 1 };
            let ms = |d| tz.and_then(|tz| day_start_ms(d, tz));
            (d.to_string(), ms(d), ms(add_days(d, len)))
        }
    }
}

/// Days of look-back loyalty needs before a visit's day: 4 weeks.
const LOYALTY_LOOKBACK_DAYS: i64 = 28;

/// The loyalty class of a visit on local day `day`, given the local days of the same shopper's
/// earlier visits to the same store (`earlier`, any order, repeats allowed) and whether they
/// visited before the look-back window at all (`before_window`).
///
/// - first time: no earlier visit at all;
/// - daily: visits on at least 5 of the last 7 days (`day` and the 6 before it);
/// - weekly: visits in at least 2 of the last 4 weeks (the 7-day spans ending on `day`, `day − 7`,
///   `day − 14`, `day − 21`);
/// - occasional: anyone else who came before.
pub fn loyalty_class(day: Date, earlier: &[Date], before_window: bool) -> LoyaltyClass {
    if earlier.is_empty() && !before_window {
        return LoyaltyClass::FirstTime;
    }
    let ago = |d: &Date| i64::from((day - *d).get_days());
    let days: BTreeSet<i64> = earlier
        .iter()
        .map(ago)
        .filter(|a| (0..7).contains(a))
        .chain([0])
        .collect();
    if days.len() >= 5 {
        return LoyaltyClass::Daily;
    }
    let weeks: BTreeSet<i64> = earlier
        .iter()
        .map(ago)
        .filter(|a| (0..LOYALTY_LOOKBACK_DAYS).contains(a))
        .map(|a| a / 7)
        .chain([0])
        .collect();
    if weeks.len() >= 2 {
        LoyaltyClass::Weekly
    } else {
        LoyaltyClass::Occasional
    }
}

/// (shopper, store, start_ms) of a stitched visit.
type ShopperVisit = (String, String, i64);
/// (shopper, store).
type ShopperStore = (String, String);

/// The bucket and loyalty class of every visitor visit of a resolved shopper in the range.
async fn loyalty(
    store: &AnyStore,
    q: &FootfallQuery,
    info: &ScopeInfo,
    from: Date,
    to: Date,
) -> DomainResult<Vec<(Key, LoyaltyClass)>> {
    // UTC bounds wide enough for any time zone (offsets are within ±14 h): the look-back before
    // `from`, and a day after `to`.
    let utc = TimeZone::UTC;
    let a = day_start_ms(add_days(from, -LOYALTY_LOOKBACK_DAYS - 1), &utc).unwrap_or(i64::MIN);
    let b = day_start_ms(add_days(to, 2), &utc).unwrap_or(i64::MAX);
    let (cond_v, has_param) = scope_sql(&q.scope, "v.store", 3);
    let visits_sql = format!(
        "SELECT v.shopper, v.store, v.start_ms FROM visits v WHERE v.shopper IS NOT NULL \
         AND v.class = 'visitor' AND v.start_ms >= $1 AND v.start_ms < $2 AND {cond_v}"
    );
    let before_sql = format!(
        "SELECT DISTINCT p.shopper, p.store FROM visits p WHERE p.class = 'visitor' \
         AND p.start_ms < $1 AND p.shopper IN (SELECT v.shopper FROM visits v \
         WHERE v.shopper IS NOT NULL AND v.class = 'visitor' AND v.start_ms >= $1 \
         AND v.start_ms < $2 AND {cond_v})"
    );
    let param = scope_param(&q.scope);
    let (visits, before): (Vec<ShopperVisit>, Vec<ShopperStore>) = on_pool!(store, pool => {
        let mut v = sqlx::query_as(sqlx::AssertSqlSafe(visits_sql)).bind(a).bind(b);
        let mut p = sqlx::query_as(sqlx::AssertSqlSafe(before_sql)).bind(a).bind(b);
        if has_param {
            v = v.bind(param.clone());
            p = p.bind(param.clone());
        }
        (v.fetch_all(pool).await?, p.fetch_all(pool).await?)
    });
    let before: BTreeSet<(String, String)> = before.into_iter().collect();

    // Per (shopper, store), the visits in time order with their local hour.
    let mut by_pair: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for (shopper, st, start) in visits {
        by_pair.entry((shopper, st)).or_default().push(start);
    }
    let one_tz = info.tz.as_ref().map(|(_, tz)| tz);
    let mut out = Vec::new();
    for ((shopper, st), mut starts) in by_pair {
        starts.sort_unstable();
        let tz = info.zones.get(&st).unwrap_or(&utc);
        let hours: Vec<_> = starts.iter().filter_map(|t| local_hour(*t, tz)).collect();
        let before_window = before.contains(&(shopper, st.clone()));
        for (i, h) in hours.iter().enumerate() {
            if h.day < from || h.day > to {
                continue;
            }
            let earlier: Vec<Date> = hours[..i].iter().map(|e| e.day).collect();
            let class = loyalty_class(h.day, &earlier, before_window);
            let key = match (q.granularity, one_tz) {
                (Granularity::Hour, Some(_)) => Key::Ms(h.hour_ms),
                (Granularity::Hour, None) => Key::DayHour(h.day, h.hour),
                (Granularity::Day, _) => Key::Day(h.day),
                (Granularity::Week, _) => Key::Day(week_of(h.day)),
            };
            out.push((key, class));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn loyalty_rules() {
        let d = date(2025, 6, 10);
        let back = |n: i64| add_days(d, -n);
        assert_eq!(loyalty_class(d, &[], false), LoyaltyClass::FirstTime);
        assert_eq!(loyalty_class(d, &[], true), LoyaltyClass::Occasional);
        // 5 of the last 7 days, today included.
        let four = [back(1), back(2), back(4), back(6)];
        assert_eq!(loyalty_class(d, &four, false), LoyaltyClass::Daily);
        // Day 7 ago is outside the 7 days: 4 of 7, but two weeks → weekly.
        let not_daily = [back(1), back(2), back(4), back(7)];
        assert_eq!(loyalty_class(d, &not_daily, false), LoyaltyClass::Weekly);
        // Only this week (twice today): occasional.
        assert_eq!(loyalty_class(d, &[d], false), LoyaltyClass::Occasional);
        // A visit 27 days ago is week 3; 28 days ago is outside the 4 weeks.
        assert_eq!(loyalty_class(d, &[back(27)], false), LoyaltyClass::Weekly);
        assert_eq!(
            loyalty_class(d, &[back(28)], false),
            LoyaltyClass::Occasional
        );
    }

    #[test]
    fn params_are_validated_with_names() {
        let p = |f: &str, t: &str, g: Option<&str>| FootfallParams {
            from: f.into(),
            to: t.into(),
            granularity: g.map(Into::into),
            ..FootfallParams::default()
        };
        let q = FootfallQuery::from_params(&p("2025-01-01", "2025-12-31", None)).unwrap();
        assert_eq!((q.scope, q.granularity), (Scope::Chain, Granularity::Day));
        let e = FootfallQuery::from_params(&p("2025-13-01", "2025-12-31", None)).unwrap_err();
        assert!(e.to_string().contains("from must be a date"), "{e}");
        let e = FootfallQuery::from_params(&p("2025-02-01", "2025-01-01", None)).unwrap_err();
        assert!(e.to_string().contains("after"), "{e}");
        let e =
            FootfallQuery::from_params(&p("2025-01-01", "2025-12-31", Some("hour"))).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        assert!(
            FootfallQuery::from_params(&p("2025-01-01", "2025-01-02", Some("minute"))).is_err()
        );
    }
}

//! Zones and paths of one store over a range of local days: dwell per zone (a heatmap on the floor
//! plan), entrance-to-zone funnels, zone-to-zone transitions (Sankey-ready) and the most common
//! paths — from the `zone_day`, `zone_reach_day`, `zone_transition_day` and `path_day` roll-ups.
//!
//! All of it comes from the paths of `visit_end` events (the tracker's zone stays, with enter and
//! exit times), attributed to the local day the visit started, for people and randomized
//! addresses alike (an address change can cut a path in two, but adds no time and invents no
//! transition) and never for static ids (badges, trolleys). `zone_exit` events carry the same
//! stays and are not counted again. Presence (devices placed in each zone, every minute) is a
//! second measure of the same time that still works in the strict privacy mode, where gateways send
//! counts only.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::footfall::parse_date;
use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::AnyStore;

/// Longest range of a zones or paths query, in days.
pub const MAX_ZONE_RANGE_DAYS: i64 = 3_660;
/// Most paths a paths query returns.
pub const MAX_TOP_PATHS: u32 = 1_000;

/// One store over local dates `from..=to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneQuery {
    pub store: String,
    pub from: Date,
    pub to: Date,
}

/// The query string of `GET /api/v1/stores/{id}/zones` and `/paths`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneParams {
    /// First local date, `YYYY-MM-DD`.
    pub from: String,
    /// Last local date (included).
    pub to: String,
    /// Paths: how many of the most common to list (default 10).
    pub top: Option<u32>,
}

impl ZoneQuery {
    pub fn from_params(store: &str, p: &ZoneParams) -> DomainResult<ZoneQuery> {
        let q = ZoneQuery {
            store: store.to_owned(),
            from: parse_date("from", &p.from)?,
            to: parse_date("to", &p.to)?,
        };
        q.validate()?;
        Ok(q)
    }

    pub fn validate(&self) -> DomainResult<()> {
        if self.from > self.to {
            return Err(DomainError::Invalid(format!(
                "from ({}) is after to ({})",
                self.from, self.to
            )));
        }
        if i64::from((self.to - self.from).get_days()) + 1 > MAX_ZONE_RANGE_DAYS {
            return Err(DomainError::Invalid(format!(
                "the range is longer than {MAX_ZONE_RANGE_DAYS} days"
            )));
        }
        Ok(())
    }
}

/// One zone's figures: the heatmap's cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneFigures {
    pub zone: String,
    /// From the store's layout, when it has one.
    pub name: Option<String>,
    /// Stays in the zone.
    pub stays: i64,
    /// Total time of all stays, seconds.
    pub dwell_s: f64,
    /// dwell_s / stays.
    pub mean_stay_s: Option<f64>,
    /// Visits that entered the zone at least once.
    pub visits: i64,
    /// visits / visits with any zone.
    pub visit_share: Option<f64>,
    /// Device-minutes placed in the zone, from presence counts.
    pub presence_minutes: f64,
}

/// Where the entrance of a funnel came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntranceSource {
    /// The store layout's `entrance`.
    Layout,
    /// No entrance in the layout: the zone most paths start in.
    MostCommonFirstZone,
}

/// One step of an entrance-to-zone funnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub zone: String,
    pub name: Option<String>,
    /// Visits that started at the entrance and later entered this zone.
    pub reached: i64,
    /// reached / entered.
    pub rate: Option<f64>,
    /// Mean seconds from the start of the entrance stay to the first entry of this zone.
    pub mean_time_to_reach_s: Option<f64>,
}

/// Visits whose path starts in the entrance zone, and where they went next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    pub entrance: String,
    pub entrance_source: EntranceSource,
    /// Visits whose path starts in the entrance.
    pub entered: i64,
    /// Every other zone they reached, most reached first.
    pub steps: Vec<FunnelStep>,
}

/// `GET /api/v1/stores/{id}/zones`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zones {
    pub store: String,
    pub from: String,
    pub to: String,
    /// Visits in the range (people and randomized addresses), with or without zones.
    pub visits: i64,
    /// Of them, visits placed in at least one zone.
    pub visits_with_zones: i64,
    /// Every zone with stays or presence (or in the layout), most dwell first.
    pub zones: Vec<ZoneFigures>,
    /// None when no path starts anywhere (and the layout names no entrance).
    pub funnel: Option<Funnel>,
}

/// A zone-to-zone move: a link of a Sankey diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub source: String,
    pub target: String,
    pub count: i64,
}

/// One of the most common paths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathFigures {
    /// Zones in order, repeats collapsed.
    pub zones: Vec<String>,
    /// The path went on past the zones listed (it had more than 12).
    pub truncated: bool,
    pub visits: i64,
    /// visits / visits with any zone.
    pub share: Option<f64>,
}

/// `GET /api/v1/stores/{id}/paths`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    pub store: String,
    pub from: String,
    pub to: String,
    pub visits_with_zones: i64,
    /// The most common paths, most visits first.
    pub paths: Vec<PathFigures>,
    /// Visits with zones whose path is not listed.
    pub other_visits: i64,
    /// Every zone-to-zone move (Sankey links), most common first. Moves go both ways, so the
    /// graph can have cycles; a diagram that needs a DAG can number the steps of `paths` instead.
    pub transitions: Vec<Transition>,
}

/// The store's layout, as far as funnels and names need it.
#[derive(Default)]
struct Layout {
    entrance: Option<String>,
    names: HashMap<String, String>,
    order: Vec<String>,
}

/// The store's layout (or an empty one); NotFound if the store is neither listed nor has roll-ups.
async fn layout(store: &AnyStore, id: &str) -> DomainResult<Layout> {
    let row: Option<(Option<String>,)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT layout FROM stores WHERE id = $1").bind(id).fetch_optional(pool).await)?;
    let Some((layout,)) = row else {
        let known: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT store FROM path_day WHERE store = $1 LIMIT 1")
            .bind(id).fetch_optional(pool).await)?;
        return match known {
            Some(_) => Ok(Layout::default()),
            None => Err(DomainError::NotFound(format!("store {id:?}"))),
        };
    };
    // Read loosely: a layout this code can't fully parse still names its zones.
    let v: serde_json::Value = layout
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let mut out = Layout {
        entrance: v["entrance"].as_str().map(str::to_owned),
        ..Layout::default()
    };
    for z in v["zones"].as_array().into_iter().flatten() {
        if let Some(id) = z["id"].as_str() {
            out.order.push(id.to_owned());
            if let Some(name) = z["name"].as_str() {
                out.names.insert(id.to_owned(), name.to_owned());
            }
        }
    }
    Ok(out)
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Visits in the range: all, and those placed in a zone.
async fn visit_totals(store: &AnyStore, q: &ZoneQuery) -> DomainResult<(i64, i64)> {
    let (all, empty): (Option<i64>, Option<i64>) = on_pool!(store, pool => sqlx::query_as(
        "SELECT CAST(SUM(visits) AS BIGINT), \
           CAST(SUM(CASE WHEN path = '[]' THEN visits ELSE 0 END) AS BIGINT) \
         FROM path_day WHERE store = $1 AND day >= $2 AND day <= $3")
        .bind(&q.store).bind(q.from.to_string()).bind(q.to.to_string())
        .fetch_one(pool).await)?;
    let all = all.unwrap_or(0);
    Ok((all, all - empty.unwrap_or(0)))
}

/// (zone, Σ stays, Σ dwell_ms, Σ visits, Σ presence_dev_s).
type ZoneSums = (String, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// Dwell per zone and the entrance funnel.
pub async fn zones(store: &AnyStore, q: &ZoneQuery) -> DomainResult<Zones> {
    q.validate()?;
    let layout = layout(store, &q.store).await?;
    let (from, to) = (q.from.to_string(), q.to.to_string());
    let (visits, with_zones) = visit_totals(store, q).await?;
    let rows: Vec<ZoneSums> = on_pool!(store, pool => sqlx::query_as(
            "SELECT zone, CAST(SUM(stays) AS BIGINT), CAST(SUM(dwell_ms) AS BIGINT), \
               CAST(SUM(visits) AS BIGINT), CAST(SUM(presence_dev_s) AS BIGINT) \
             FROM zone_day WHERE store = $1 AND day >= $2 AND day <= $3 GROUP BY zone")
            .bind(&q.store).bind(&from).bind(&to).fetch_all(pool).await)?;
    let mut by_zone: BTreeMap<String, [i64; 4]> =
        layout.order.iter().map(|z| (z.clone(), [0; 4])).collect();
    for (zone, a, b, c, d) in rows {
        by_zone.insert(zone, [a, b, c, d].map(|x| x.unwrap_or(0)));
    }
    let mut figures: Vec<ZoneFigures> = by_zone
        .into_iter()
        .map(|(zone, [stays, dwell_ms, zvisits, presence])| ZoneFigures {
            name: layout.names.get(&zone).cloned(),
            zone,
            stays,
            dwell_s: dwell_ms as f64 / 1000.0,
            mean_stay_s: ratio(dwell_ms, stays).map(|ms| ms / 1000.0),
            visits: zvisits,
            visit_share: ratio(zvisits, with_zones),
            presence_minutes: presence as f64 / 60.0,
        })
        .collect();
    figures.sort_by(|a, b| {
        b.dwell_s
            .total_cmp(&a.dwell_s)
            .then(b.presence_minutes.total_cmp(&a.presence_minutes))
            .then(a.zone.cmp(&b.zone))
    });

    let reach: Vec<(String, String, Option<i64>, Option<i64>)> = on_pool!(store, pool =>
        sqlx::query_as(
            "SELECT first_zone, zone, CAST(SUM(visits) AS BIGINT), CAST(SUM(to_reach_ms) AS BIGINT) \
             FROM zone_reach_day WHERE store = $1 AND day >= $2 AND day <= $3 \
             GROUP BY first_zone, zone")
            .bind(&q.store).bind(&from).bind(&to).fetch_all(pool).await)?;
    let funnel = funnel(&layout, &reach);
    Ok(Zones {
        store: q.store.clone(),
        from,
        to,
        visits,
        visits_with_zones: with_zones,
        zones: figures,
        funnel,
    })
}

/// The funnel from the layout's entrance, or else from the zone most paths start in.
fn funnel(layout: &Layout, reach: &[(String, String, Option<i64>, Option<i64>)]) -> Option<Funnel> {
    let starts = |zone: &str| {
        reach
            .iter()
            .find(|(f, z, ..)| f == zone && z == zone)
            .and_then(|r| r.2)
            .unwrap_or(0)
    };
    let (entrance, source) = match &layout.entrance {
        Some(e) => (e.clone(), EntranceSource::Layout),
        None => {
            let best = reach
                .iter()
                .filter(|(f, z, ..)| f == z)
                .max_by(|a, b| a.2.cmp(&b.2).then(b.0.cmp(&a.0)))?;
            (best.0.clone(), EntranceSource::MostCommonFirstZone)
        }
    };
    let entered = starts(&entrance);
    let mut steps: Vec<FunnelStep> = reach
        .iter()
        .filter(|(f, z, ..)| *f == entrance && *z != entrance)
        .map(|(_, zone, n, ms)| {
            let n = n.unwrap_or(0);
            FunnelStep {
                zone: zone.clone(),
                name: layout.names.get(zone).cloned(),
                reached: n,
                rate: ratio(n, entered),
                mean_time_to_reach_s: ratio(ms.unwrap_or(0), n).map(|ms| ms / 1000.0),
            }
        })
        .collect();
    steps.sort_by(|a, b| b.reached.cmp(&a.reached).then(a.zone.cmp(&b.zone)));
    Some(Funnel {
        entrance,
        entrance_source: source,
        entered,
        steps,
    })
}

/// The `top` most common paths and every transition.
pub async fn paths(store: &AnyStore, q: &ZoneQuery, top: u32) -> DomainResult<Paths> {
    q.validate()?;
    layout(store, &q.store).await?; // NotFound for an unknown store
    let (from, to) = (q.from.to_string(), q.to.to_string());
    let (_, with_zones) = visit_totals(store, q).await?;
    let top = i64::from(top.min(MAX_TOP_PATHS));
    let rows: Vec<(String, Option<i64>)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT path, CAST(SUM(visits) AS BIGINT) AS n FROM path_day \
         WHERE store = $1 AND day >= $2 AND day <= $3 AND path <> '[]' \
         GROUP BY path ORDER BY n DESC, path LIMIT $4")
        .bind(&q.store).bind(&from).bind(&to).bind(top).fetch_all(pool).await)?;
    let mut listed = 0;
    let paths = rows
        .into_iter()
        .map(|(key, n)| {
            let n = n.unwrap_or(0);
            listed += n;
            let zones: Vec<Option<String>> = serde_json::from_str(&key).unwrap_or_default();
            PathFigures {
                truncated: zones.last().is_some_and(Option::is_none),
                zones: zones.into_iter().flatten().collect(),
                visits: n,
                share: ratio(n, with_zones),
            }
        })
        .collect();
    let transitions: Vec<(String, String, Option<i64>)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT source, target, CAST(SUM(n) AS BIGINT) AS c FROM zone_transition_day \
         WHERE store = $1 AND day >= $2 AND day <= $3 GROUP BY source, target \
         ORDER BY c DESC, source, target")
        .bind(&q.store).bind(&from).bind(&to).fetch_all(pool).await)?;
    Ok(Paths {
        store: q.store.clone(),
        from,
        to,
        visits_with_zones: with_zones,
        paths,
        other_visits: with_zones - listed,
        transitions: transitions
            .into_iter()
            .map(|(source, target, c)| Transition {
                source,
                target,
                count: c.unwrap_or(0),
            })
            .collect(),
    })
}

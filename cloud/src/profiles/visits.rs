//! Visits of resolved shoppers, stitched back together across EID rotation.
//!
//! A phone's EID changes every 2^K seconds, so a gateway sees a long visit as several devices, each
//! with its own `visit_end` (the tracker can't know two EIDs are one phone). Once the cloud has
//! resolved both to the same shopper, the parts of one shopper in one store that overlap or lie less
//! than the session timeout apart are one visit ([`stitch`]): start = the earliest part's start,
//! end = the latest part's end, path = the parts' zone stays merged in time order, class = visitor
//! if the stitched visit lasted the minimum visit time (or any part was a visitor).
//!
//! Parts are keyed (`<gateway>:<seq>` of the visit_end event, or `app:<sighting id>`), and a part
//! already applied is skipped, so a redelivered event changes nothing. A part that bridges two
//! stored visits merges them into the earlier one.

use crate::error::DomainResult;
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite};
use dwell_shared::definitions::VisitDefinitions;
use serde::{Deserialize, Serialize};

/// One zone stay of a path, as on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stay {
    pub zone: String,
    pub enter_ms: i64,
    pub exit_ms: i64,
}

/// A piece of evidence that a shopper was in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// `<gateway>:<seq>` or `app:<id>`.
    pub key: String,
    pub store: String,
    pub shopper: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `visitor` or `passerby` as the gateway classified this part.
    pub class: String,
    pub path: Vec<Stay>,
}

/// A stitched visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Visit {
    pub id: String,
    pub store: String,
    pub shopper: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub class: String,
    pub path: Vec<Stay>,
    pub parts: i32,
}

/// Stays of the same zone that touch (less than `gap_ms` apart) become one; the rest is sorted.
pub fn merge_paths(mut stays: Vec<Stay>, gap_ms: i64) -> Vec<Stay> {
    stays.sort_by(|a, b| (a.enter_ms, a.exit_ms, &a.zone).cmp(&(b.enter_ms, b.exit_ms, &b.zone)));
    let mut out: Vec<Stay> = Vec::with_capacity(stays.len());
    for s in stays {
        match out.last_mut() {
            Some(last) if last.zone == s.zone && s.enter_ms <= last.exit_ms + gap_ms => {
                last.exit_ms = last.exit_ms.max(s.exit_ms);
            }
            _ => out.push(s),
        }
    }
    out
}

/// The class of a stitched visit.
pub fn classify(
    start_ms: i64,
    end_ms: i64,
    any_visitor: bool,
    defs: &VisitDefinitions,
) -> &'static str {
    if any_visitor || end_ms - start_ms >= i64::from(defs.min_visit_s) * 1000 {
        "visitor"
    } else {
        "passerby"
    }
}

/// Applies a part: creates a visit, extends one, or merges the visits it bridges. Returns the
/// visit it is now in, or None if the part was applied before.
pub async fn stitch(
    store: &AnyStore,
    part: &Part,
    defs: &VisitDefinitions,
) -> DomainResult<Option<Visit>> {
    let timeout_ms = i64::from(defs.session_timeout_s) * 1000;
    let gap_ms = i64::from(defs.zone_exit_s.max(1)) * 1000;
    on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        let applied: Option<String> =
            sqlx::query_scalar("SELECT visit FROM visit_parts WHERE part = $1")
                .bind(&part.key)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_some() {
            tx.rollback().await?;
            return Ok(None);
        }
        type Row = (String, i64, i64, String, String, i32);
        let near: Vec<Row> = sqlx::query_as(
            "SELECT id, start_ms, end_ms, class, path, parts FROM visits \
             WHERE shopper = $1 AND store = $2 AND end_ms >= $3 AND start_ms <= $4 \
             ORDER BY start_ms, id",
        )
        .bind(&part.shopper)
        .bind(&part.store)
        .bind(part.start_ms - timeout_ms)
        .bind(part.end_ms + timeout_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut start = part.start_ms;
        let mut end = part.end_ms;
        let mut any_visitor = part.class == "visitor";
        let mut stays = part.path.clone();
        let mut parts = 1;
        for (_, s, e, class, path, n) in &near {
            start = start.min(*s);
            end = end.max(*e);
            any_visitor |= class == "visitor";
            stays.extend(serde_json::from_str::<Vec<Stay>>(path).unwrap_or_default());
            parts += n;
        }
        let path = merge_paths(stays, gap_ms);
        let class = classify(start, end, any_visitor, defs);
        let path_json = serde_json::to_string(&path).map_err(crate::store::StoreError::from)?;
        let id = match near.first() {
            Some((first, ..)) => {
                sqlx::query(
                    "UPDATE visits SET start_ms = $2, end_ms = $3, class = $4, path = $5, parts = $6 \
                     WHERE id = $1",
                )
                .bind(first)
                .bind(start)
                .bind(end)
                .bind(class)
                .bind(&path_json)
                .bind(parts)
                .execute(&mut *tx)
                .await?;
                for (other, ..) in &near[1..] {
                    sqlx::query("UPDATE visit_parts SET visit = $1 WHERE visit = $2")
                        .bind(first)
                        .bind(other)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE coupons SET visit = $1 WHERE visit = $2")
                        .bind(first)
                        .bind(other)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM visits WHERE id = $1")
                        .bind(other)
                        .execute(&mut *tx)
                        .await?;
                }
                first.clone()
            }
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO visits (id, store, shopper, start_ms, end_ms, class, path, parts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&part.key)
                .bind(&part.store)
                .bind(&part.shopper)
                .bind(start)
                .bind(end)
                .bind(class)
                .bind(&path_json)
                .bind(parts)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    // Another worker is applying the same part: theirs stands.
                    tx.rollback().await?;
                    return Ok(None);
                }
                part.key.clone()
            }
        };
        let claimed = sqlx::query(
            "INSERT INTO visit_parts (part, visit) VALUES ($1, $2) ON CONFLICT (part) DO NOTHING",
        )
        .bind(&part.key)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            // Another worker applied the same part concurrently: theirs stands.
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(Visit {
            id,
            store: part.store.clone(),
            shopper: Some(part.shopper.clone()),
            start_ms: start,
            end_ms: end,
            class: class.to_owned(),
            path,
            parts,
        }))
    })
}

/// A shopper's visits, newest first.
pub async fn of_shopper(store: &AnyStore, shopper: &str, limit: i64) -> DomainResult<Vec<Visit>> {
    type Row = (
        String,
        String,
        Option<String>,
        i64,
        i64,
        String,
        String,
        i32,
    );
    let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, store, shopper, start_ms, end_ms, class, path, parts FROM visits \
         WHERE shopper = $1 ORDER BY start_ms DESC LIMIT $2",
    )
    .bind(shopper)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, store, shopper, start_ms, end_ms, class, path, parts)| Visit {
                id,
                store,
                shopper,
                start_ms,
                end_ms,
                class,
                path: serde_json::from_str(&path).unwrap_or_default(),
                parts,
            },
        )
        .collect())
}

/// The visit of `shopper` in `store` that contains `ts_ms` (within the session timeout), if any:
/// what a coupon triggered at that moment is attributed to.
pub async fn at(
    store: &AnyStore,
    shopper: &str,
    store_id: &str,
    ts_ms: i64,
    defs: &VisitDefinitions,
) -> DomainResult<Option<String>> {
    let timeout_ms = i64::from(defs.session_timeout_s) * 1000;
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM visits WHERE shopper = $1 AND store = $2 AND start_ms <= $3 AND end_ms >= $4 \
         ORDER BY start_ms LIMIT 1",
    )
    .bind(shopper)
    .bind(store_id)
    .bind(ts_ms + timeout_ms)
    .bind(ts_ms - timeout_ms)
    .fetch_optional(pool)
    .await)?)
}

/// Zone affinity: total seconds per zone over the shopper's visits since `since_ms`, most first.
pub async fn zone_affinity(
    store: &AnyStore,
    shopper: &str,
    since_ms: i64,
) -> DomainResult<Vec<(String, i64)>> {
    let paths: Vec<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT path FROM visits WHERE shopper = $1 AND start_ms >= $2",
    )
    .bind(shopper)
    .bind(since_ms)
    .fetch_all(pool)
    .await)?;
    let mut by_zone: std::collections::BTreeMap<String, i64> = Default::default();
    for p in paths {
        for s in serde_json::from_str::<Vec<Stay>>(&p).unwrap_or_default() {
            *by_zone.entry(s.zone).or_default() += (s.exit_ms - s.enter_ms).max(0) / 1000;
        }
    }
    let mut v: Vec<_> = by_zone.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(v)
}

/// The loyalty class (PRODUCT.md) of a shopper at `now_ms`, from their stitched visits:
/// `daily` (visits on ≥ 5 of the last 7 days), `weekly` (≥ 2 of the last 4 weeks), `first_time`
/// (no earlier visit), else `occasional`. Days and weeks here are UTC days and 7-day spans back
/// from now (the footfall reports use store local time).
pub async fn loyalty(store: &AnyStore, shopper: &str, now_ms: i64) -> DomainResult<&'static str> {
    let starts: Vec<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT start_ms FROM visits WHERE shopper = $1 AND start_ms < $2 ORDER BY start_ms DESC LIMIT 400",
    )
    .bind(shopper)
    .bind(now_ms)
    .fetch_all(pool)
    .await)?;
    Ok(loyalty_class(&starts, now_ms))
}

/// [`loyalty`] on visit start times.
pub fn loyalty_class(starts: &[i64], now_ms: i64) -> &'static str {
    const DAY: i64 = 86_400_000;
    let days: std::collections::BTreeSet<i64> = starts
        .iter()
        .filter(|t| **t > now_ms - 7 * DAY && **t <= now_ms)
        .map(|t| t.div_euclid(DAY))
        .collect();
    if days.len() >= 5 {
        return "daily";
    }
    let weeks: std::collections::BTreeSet<i64> = starts
        .iter()
        .filter(|t| **t > now_ms - 28 * DAY && **t <= now_ms)
        .map(|t| (now_ms - *t) / (7 * DAY))
        .collect();
    if weeks.len() >= 2 {
        "weekly"
    } else if starts.is_empty() {
        "first_time"
    } else {
        "occasional"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(zone: &str, a: i64, b: i64) -> Stay {
        Stay {
            zone: zone.into(),
            enter_ms: a,
            exit_ms: b,
        }
    }

    #[test]
    fn touching_stays_of_one_zone_merge_and_the_rest_sort() {
        let merged = merge_paths(
            vec![
                s("b", 50, 60),
                s("a", 0, 10),
                s("a", 12, 20),
                s("a", 100, 110),
            ],
            5,
        );
        assert_eq!(
            merged,
            vec![s("a", 0, 20), s("b", 50, 60), s("a", 100, 110)]
        );
    }

    #[test]
    fn loyalty_classes() {
        const DAY: i64 = 86_400_000;
        let now = 100 * DAY + 12 * 3_600_000;
        assert_eq!(loyalty_class(&[], now), "first_time");
        let five: Vec<i64> = (0..5).map(|d| now - d * DAY).collect();
        assert_eq!(loyalty_class(&five, now), "daily");
        assert_eq!(
            loyalty_class(&five[..4], now),
            "occasional",
            "4 days in one week"
        );
        assert_eq!(loyalty_class(&[now - DAY, now - 8 * DAY], now), "weekly");
        assert_eq!(loyalty_class(&[now - 40 * DAY], now), "occasional");
    }

    #[test]
    fn a_stitched_visit_long_enough_is_a_visitor() {
        let d = VisitDefinitions::DEFAULT;
        assert_eq!(classify(0, 119_999, false, &d), "passerby");
        assert_eq!(classify(0, 120_000, false, &d), "visitor");
        assert_eq!(classify(0, 1, true, &d), "visitor");
    }
}

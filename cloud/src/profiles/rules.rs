//! Behavioural tags derived by rules, e.g. "≥ 2 min in cosmetics on 3 visits in 30 days →
//! `cosmetics-lover`".
//!
//! Rules are configured (`[[tag_rules]]` in `dwell-cloud.toml`) and evaluated for a shopper each
//! time one of their visits is stitched, over their stitched visits of the last `days` days — only
//! for shoppers who consented to profiling. A rule only ever adds its tag (source `rule`); refusing
//! profiling removes rule tags.

use super::visits::Stay;
use crate::error::DomainResult;
use crate::on_pool;
use crate::store::AnyStore;
use serde::{Deserialize, Serialize};

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    pub tag: String,
    pub zone: String,
    /// Seconds in the zone that make a visit count.
    pub min_dwell_s: u32,
    /// Counting visits needed…
    pub visits: u32,
    /// …within this many days.
    pub days: u32,
}

impl TagRule {
    /// Whether a visit's path counts for this rule.
    pub fn counts(&self, path: &[Stay]) -> bool {
        let s: i64 = path
            .iter()
            .filter(|s| s.zone == self.zone)
            .map(|s| (s.exit_ms - s.enter_ms).max(0))
            .sum();
        s >= i64::from(self.min_dwell_s) * 1000
    }
}

/// Evaluates `rules` for one shopper at `now_ms`; returns the tags newly set.
pub async fn apply(
    store: &AnyStore,
    rules: &[TagRule],
    shopper: &str,
    now_ms: i64,
) -> DomainResult<Vec<String>> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let longest = rules.iter().map(|r| r.days).max().unwrap_or(0);
    let since = now_ms - i64::from(longest) * 86_400_000;
    let visits: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT start_ms, path FROM visits WHERE shopper = $1 AND start_ms >= $2",
    )
    .bind(shopper)
    .bind(since)
    .fetch_all(pool)
    .await)?;
    let visits: Vec<(i64, Vec<Stay>)> = visits
        .into_iter()
        .map(|(t, p)| (t, serde_json::from_str(&p).unwrap_or_default()))
        .collect();
    let mut set = Vec::new();
    for r in rules {
        let from = now_ms - i64::from(r.days) * 86_400_000;
        let n = visits
            .iter()
            .filter(|(t, p)| *t >= from && r.counts(p))
            .count();
        if n >= r.visits as usize {
            let new = on_pool!(store, pool => sqlx::query(
                "INSERT INTO shopper_tags (shopper, tag, source, set_ms) VALUES ($1, $2, 'rule', $3) \
                 ON CONFLICT (shopper, tag) DO NOTHING",
            )
            .bind(shopper)
            .bind(&r.tag)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
            if new > 0 {
                set.push(r.tag.clone());
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_counts_when_its_stays_in_the_zone_add_up() {
        let r = TagRule {
            tag: "cosmetics-lover".into(),
            zone: "cosmetics".into(),
            min_dwell_s: 120,
            visits: 3,
            days: 30,
        };
        let s = |z: &str, a: i64, b: i64| Stay {
            zone: z.into(),
            enter_ms: a,
            exit_ms: b,
        };
        assert!(r.counts(&[
            s("cosmetics", 0, 60_000),
            s("toys", 60_000, 90_000),
            s("cosmetics", 90_000, 150_000)
        ]));
        assert!(!r.counts(&[s("cosmetics", 0, 119_999)]));
        assert!(!r.counts(&[s("toys", 0, 1_000_000)]));
    }
}

//! Campaign results: what a campaign sent, what came of the coupons, and whether it changed what
//! shoppers did — **lift against the holdout** with a 95 % confidence interval — in total and per
//! store and per segment, from `campaign_decisions`, `coupons` and the stitched `visits`.
//!
//! A segment's figures are those of the shoppers in it by their tags **now** (`segments`, tag
//! expressions of [`crate::profiles::segment`]), not when the decision was taken: "how did the
//! campaign do with today's cosmetics lovers". A shopper is in as many segments as match; coupons
//! of erased shoppers (no profile left) count in their store and the total only.
//!
//! # Lift
//! The campaign engine holds out a deterministic random share of the shoppers who qualify
//! (`campaigns::holdout`: the arm is a function of campaign and shopper, so a shopper stays in one
//! arm). The unit is therefore the **shopper**: each shopper is counted once, in the arm and store
//! of their first `sent` or `holdout` decision of the campaign (`capped` and `budget` decisions are
//! not random and are left out). A shopper **converted** if they started a visitor visit at any
//! store of the chain within the conversion window (7 days) after that decision. Only decisions
//! whose window has closed by `as_of_ms` count, so a campaign launched yesterday doesn't show its
//! held-out shoppers as not having come back yet.
//!
//! lift = conversion(treated) − conversion(holdout), in absolute terms (percentage points / 100),
//! with Newcombe's hybrid score interval (method 10 of Newcombe 1998, "Interval estimation for the
//! difference between independent proportions", Stat. Med. 17:873): a Wilson score interval for
//! each arm, combined. Unlike the Wald interval it stays inside [−1, 1], is not degenerate at 0 or
//! 100 % conversion, and keeps close to its nominal coverage with the small holdouts campaigns
//! have (a 5 % holdout of 400 shoppers is 20).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::profiles::segment::Expr;
use crate::store::AnyStore;

/// The conversion window of the product's definition.
pub const DEFAULT_WINDOW_DAYS: u32 = 7;
/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Which results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignQuery {
    pub campaign: String,
    /// A shopper converted if they visited within this many days after the decision.
    pub window_days: u32,
    /// Decisions whose window ends after this (unix ms, usually now) are not in the lift yet.
    pub as_of_ms: i64,
    /// Only this store's decisions, coupons and shoppers (a store manager's view): its row is
    /// then the total, and the segments count its shoppers only.
    pub store: Option<String>,
}

impl CampaignQuery {
    /// The product's definition (7 days), as of `now_ms`.
    pub fn new(campaign: &str, now_ms: i64) -> CampaignQuery {
        CampaignQuery {
            campaign: campaign.to_owned(),
            window_days: DEFAULT_WINDOW_DAYS,
            as_of_ms: now_ms,
            store: None,
        }
    }
}

/// Campaign decisions by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    pub sent: i64,
    pub holdout: i64,
    /// Not sent: the shopper's frequency cap.
    pub capped: i64,
    /// Not sent: the campaign's budget was spent.
    pub budget: i64,
}

/// What came of the coupons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coupons {
    pub issued: i64,
    /// Confirmed delivered to the shopper's app.
    pub delivered: i64,
    pub redeemed: i64,
    /// redeemed / issued.
    pub redemption_rate: Option<f64>,
    /// Σ purchase amounts the tills reported with redemptions, cents.
    pub revenue_cents: i64,
}

/// One arm of the experiment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// Shoppers (each once, at their first decision).
    pub shoppers: i64,
    /// Of them, those who visited again within the window.
    pub converted: i64,
    /// converted / shoppers.
    pub conversion: Option<f64>,
}

/// Treated against held out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    pub treated: Arm,
    pub holdout: Arm,
    /// conversion(treated) − conversion(holdout); null unless both arms have shoppers.
    pub lift: Option<f64>,
    /// 95 % interval of `lift` (Newcombe hybrid score), [low, high].
    pub ci95: Option<[f64; 2]>,
    /// lift / conversion(holdout).
    pub relative_lift: Option<f64>,
    /// Whether the interval excludes 0.
    pub significant: Option<bool>,
}

impl Lift {
    /// The lift of two arms given as (shoppers, converted).
    pub fn of(treated: (i64, i64), holdout: (i64, i64)) -> Lift {
        let arm = |(n, x): (i64, i64)| Arm {
            shoppers: n,
            converted: x,
            conversion: (n > 0).then(|| x as f64 / n as f64),
        };
        let (t, h) = (arm(treated), arm(holdout));
        let (lift, ci95) = match (t.conversion, h.conversion) {
            (Some(p1), Some(p2)) => (
                Some(p1 - p2),
                Some(newcombe(treated.1, treated.0, holdout.1, holdout.0, Z95)),
            ),
            _ => (None, None),
        };
        Lift {
            treated: t,
            holdout: h,
            lift,
            ci95,
            relative_lift: lift
                .zip(h.conversion)
                .and_then(|(l, p2)| (p2 > 0.0).then(|| l / p2)),
            significant: ci95.map(|[lo, hi]| lo > 0.0 || hi < 0.0),
        }
    }
}

/// The Wilson score interval of `x` successes in `n` trials (`n` > 0).
pub fn wilson(x: i64, n: i64, z: f64) -> [f64; 2] {
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Newcombe's hybrid score interval for p1 − p2 (x1/n1 − x2/n2), both n > 0.
pub fn newcombe(x1: i64, n1: i64, x2: i64, n2: i64, z: f64) -> [f64; 2] {
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let [l1, u1] = wilson(x1, n1, z);
    let [l2, u2] = wilson(x2, n2, z);
    let d = p1 - p2;
    [
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ]
}

/// A campaign's figures (for the whole campaign, or one store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignFigures {
    pub decisions: Decisions,
    pub coupons: Coupons,
    pub lift: Lift,
}

/// One store's figures: the decisions taken there, coupons issued there, and shoppers whose first
/// decision was there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreCampaignFigures {
    pub store: String,
    #[serde(flatten)]
    pub figures: CampaignFigures,
}

/// One segment's figures: the shoppers whose tags match its expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentCampaignFigures {
    pub segment: String,
    pub expression: String,
    #[serde(flatten)]
    pub figures: CampaignFigures,
}

/// `GET /api/v1/campaigns/{id}/results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignResults {
    pub campaign: String,
    pub name: Option<String>,
    pub conversion_window_days: u32,
    pub as_of_ms: i64,
    pub total: CampaignFigures,
    /// Per store, by store id.
    pub stores: Vec<StoreCampaignFigures>,
    /// Per segment, by segment id (every defined segment, matched or not).
    pub segments: Vec<SegmentCampaignFigures>,
}

/// Per store: decisions, coupons, (treated shoppers, converted), (held out, converted).
#[derive(Default)]
struct Acc {
    decisions: Decisions,
    coupons: (i64, i64, i64, i64),
    treated: (i64, i64),
    holdout: (i64, i64),
}

impl Acc {
    fn figures(&self) -> CampaignFigures {
        let (issued, delivered, redeemed, revenue) = self.coupons;
        CampaignFigures {
            decisions: self.decisions,
            coupons: Coupons {
                issued,
                delivered,
                redeemed,
                redemption_rate: (issued > 0).then(|| redeemed as f64 / issued as f64),
                revenue_cents: revenue,
            },
            lift: Lift::of(self.treated, self.holdout),
        }
    }
}

/// Results of one campaign.
pub async fn campaign_results(
    store: &AnyStore,
    q: &CampaignQuery,
) -> DomainResult<CampaignResults> {
    if q.window_days == 0 || q.window_days > 366 {
        return Err(DomainError::Invalid(format!(
            "the conversion window must be 1 to 366 days, not {}",
            q.window_days
        )));
    }
    let window_ms = i64::from(q.window_days) * 86_400_000;
    let name: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT name FROM campaigns WHERE id = $1").bind(&q.campaign).fetch_optional(pool).await)?;
    // Per shopper, so the same rows add up by store, by segment and in total.
    let decisions: Vec<(String, String, String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT store, shopper, outcome, COUNT(*) FROM campaign_decisions WHERE campaign = $1 \
         GROUP BY store, shopper, outcome")
        .bind(&q.campaign).fetch_all(pool).await)?;
    if name.is_none() && decisions.is_empty() {
        return Err(DomainError::NotFound(format!("campaign {:?}", q.campaign)));
    }
    type CouponRow = (String, Option<String>, i64, i64, i64, Option<i64>);
    let coupons: Vec<CouponRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT store, shopper, COUNT(*), COUNT(delivered_ms), COUNT(redeemed_ms), \
           CAST(SUM(CASE WHEN redeemed_ms IS NOT NULL THEN COALESCE(amount_cents, 0) ELSE 0 END) \
             AS BIGINT) \
         FROM coupons WHERE campaign = $1 GROUP BY store, shopper")
        .bind(&q.campaign).fetch_all(pool).await)?;
    // Each shopper once: their first sent-or-holdout decision (ties broken by trigger key), if
    // its window has closed; converted if a visitor visit started within the window after it.
    let arms: Vec<(String, String, String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "WITH first AS ( \
           SELECT shopper, store, outcome, ts_ms, ROW_NUMBER() OVER \
             (PARTITION BY shopper ORDER BY ts_ms, trigger_key) AS rn \
           FROM campaign_decisions WHERE campaign = $1 AND outcome IN ('sent', 'holdout')) \
         SELECT f.store, f.shopper, f.outcome, CAST(CASE WHEN EXISTS ( \
             SELECT 1 FROM visits v WHERE v.shopper = f.shopper AND v.class = 'visitor' \
               AND v.start_ms > f.ts_ms AND v.start_ms <= f.ts_ms + $2) \
           THEN 1 ELSE 0 END AS BIGINT) \
         FROM first f WHERE f.rn = 1 AND f.ts_ms + $2 <= $3")
        .bind(&q.campaign).bind(window_ms).bind(q.as_of_ms).fetch_all(pool).await)?;
    let segments: Vec<(String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, expression FROM segments ORDER BY id").fetch_all(pool).await)?;
    let tags: Vec<(String, String)> = if segments.is_empty() {
        Vec::new()
    } else {
        on_pool!(store, pool => sqlx::query_as(
            "SELECT shopper, tag FROM shopper_tags WHERE shopper IN \
               (SELECT shopper FROM campaign_decisions WHERE campaign = $1)")
            .bind(&q.campaign).fetch_all(pool).await)?
    };
    let segments: Vec<(String, String, Option<Expr>)> = segments
        .into_iter()
        .map(|(id, text)| {
            // Stored through the API, which parses first; one that no longer parses matches no one.
            let expr = Expr::parse(&text).ok();
            (id, text, expr)
        })
        .collect();
    let mut shopper_tags: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (shopper, tag) in &tags {
        shopper_tags.entry(shopper).or_default().insert(tag);
    }
    let mut membership: HashMap<String, Vec<usize>> = HashMap::new();
    let mut segments_of = |shopper: &str| -> Vec<usize> {
        membership
            .entry(shopper.to_owned())
            .or_insert_with(|| {
                let own = shopper_tags.get(shopper);
                let has = |t: &str| own.is_some_and(|set| set.contains(t));
                segments
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, _, e))| e.as_ref().is_some_and(|e| e.matches(has)))
                    .map(|(i, _)| i)
                    .collect()
            })
            .clone()
    };

    let mut by_store: BTreeMap<String, Acc> = BTreeMap::new();
    let mut by_segment: Vec<Acc> = segments.iter().map(|_| Acc::default()).collect();
    let mut total = Acc::default();
    // The accumulators one row adds to: its store's, the total, and its shopper's segments'.
    let in_view = |st: &str| q.store.as_deref().is_none_or(|own| own == st);
    macro_rules! each_acc {
        ($st:expr, $shopper:expr, |$acc:ident| $body:block) => {{
            if !in_view(&$st) {
                continue;
            }
            let in_segments = $shopper.map(|s: &str| segments_of(s)).unwrap_or_default();
            {
                let $acc = by_store.entry($st).or_default();
                $body
            }
            {
                let $acc = &mut total;
                $body
            }
            for i in in_segments {
                let $acc = &mut by_segment[i];
                $body
            }
        }};
    }
    for (st, shopper, outcome, n) in decisions {
        each_acc!(st, Some(shopper.as_str()), |acc| {
            let d = &mut acc.decisions;
            match outcome.as_str() {
                "sent" => d.sent += n,
                "holdout" => d.holdout += n,
                "capped" => d.capped += n,
                "budget" => d.budget += n,
                _ => {}
            }
        });
    }
    for (st, shopper, issued, delivered, redeemed, revenue) in coupons {
        each_acc!(st, shopper.as_deref(), |acc| {
            let c = &mut acc.coupons;
            c.0 += issued;
            c.1 += delivered;
            c.2 += redeemed;
            c.3 += revenue.unwrap_or(0);
        });
    }
    for (st, shopper, outcome, converted) in arms {
        each_acc!(st, Some(shopper.as_str()), |acc| {
            let arm = if outcome == "sent" {
                &mut acc.treated
            } else {
                &mut acc.holdout
            };
            arm.0 += 1;
            arm.1 += converted;
        });
    }
    Ok(CampaignResults {
        campaign: q.campaign.clone(),
        name,
        conversion_window_days: q.window_days,
        as_of_ms: q.as_of_ms,
        total: total.figures(),
        stores: by_store
            .into_iter()
            .map(|(store, acc)| StoreCampaignFigures {
                store,
                figures: acc.figures(),
            })
            .collect(),
        segments: segments
            .into_iter()
            .zip(by_segment)
            .map(|((segment, expression, _), acc)| SegmentCampaignFigures {
                segment,
                expression,
                figures: acc.figures(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Table II, example (a): 56/70 − 48/80, method 10: +0.0524 to +0.3339.
        let [lo, hi] = newcombe(56, 70, 48, 80, Z95);
        assert!(
            close(lo, 0.0524, 5e-5) && close(hi, 0.3339, 5e-5),
            "{lo} {hi}"
        );
        // (b) 9/10 − 3/10: +0.1705 to +0.8090.
        let [lo, hi] = newcombe(9, 10, 3, 10, Z95);
        assert!(
            close(lo, 0.1705, 5e-5) && close(hi, 0.8090, 5e-5),
            "{lo} {hi}"
        );
        // (d) 0/10 − 0/20: −0.1611 to +0.2775 (Wald would say [0, 0]).
        let [lo, hi] = newcombe(0, 10, 0, 20, Z95);
        assert!(
            close(lo, -0.1611, 5e-5) && close(hi, 0.2775, 5e-5),
            "{lo} {hi}"
        );
    }

    #[test]
    fn lift_needs_both_arms() {
        let l = Lift::of((10, 5), (0, 0));
        assert_eq!((l.lift, l.ci95, l.significant), (None, None, None));
        let l = Lift::of((100, 30), (100, 10));
        assert!(close(l.lift.unwrap(), 0.2, 1e-12));
        assert_eq!(l.significant, Some(true));
        assert!(close(l.relative_lift.unwrap(), 2.0, 1e-12));
    }
}

//! Candidate cities for a new store, ranked by the unserved demand they would serve.
//!
//! Unserved customers are those farther than the radius from every existing store. A city's
//! catchment is every unserved customer within the radius of it (great-circle). Candidates are
//! picked greedily: the city whose catchment holds the most demand (customers, or revenue) wins,
//! its customers are claimed, and the next pick counts only unclaimed customers — so two
//! candidates never both count the same people, and a second city in the same metropolis ranks
//! only for the demand the first leaves over. A pick must claim at least k customers
//! (k-anonymity), so no candidate is "3 customers in a village". Scores only fall as customers
//! are claimed, so the greedy loop re-scores lazily: a city is re-counted only when it reaches
//! the top of the queue with a score from before the latest pick.

use super::input::Customer;
use super::places::City;
use super::sphere::SphereIndex;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What a candidate's score counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreBy {
    /// Unserved customers in the catchment.
    #[default]
    Customers,
    /// Revenue of the unserved customers in the catchment.
    Revenue,
}

/// A city proposed for a new store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// 1 = best.
    pub rank: u32,
    pub geonameid: u32,
    pub name: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub population: u64,
    /// The region (of the analysis' boundaries) the city lies in, if any.
    pub region_id: Option<String>,
    pub region_name: Option<String>,
    /// Customers (or revenue, per [`ScoreBy`]) this candidate claims.
    pub score: f64,
    /// Unserved customers within the radius not claimed by a better-ranked candidate (≥ k).
    pub customers: u64,
    pub orders: u64,
    pub revenue: f64,
    /// Median distance of those customers to their nearest existing store (`None`: no stores).
    pub median_nearest_store_km: Option<f64>,
    /// The reasoning, in one sentence.
    pub reason: String,
}

/// A city that may be proposed, with the region it lies in.
#[derive(Debug, Clone, Copy)]
pub struct CityChoice<'a> {
    pub city: &'a City,
    pub region: Option<(&'a str, &'a str)>,
}

/// Parameters of a ranking.
#[derive(Debug, Clone)]
pub struct Ranking<'a> {
    pub radius_km: f64,
    pub k: u64,
    pub count: usize,
    pub score_by: ScoreBy,
    /// Prefix for money in reasons, e.g. "¥" (may be empty).
    pub currency: &'a str,
    /// Whether the chain has any store (changes the reasoning).
    pub have_stores: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Tally {
    customers: u64,
    revenue: f64,
}

impl Tally {
    fn score(&self, by: ScoreBy) -> f64 {
        match by {
            ScoreBy::Customers => self.customers as f64,
            ScoreBy::Revenue => self.revenue,
        }
    }
}

#[derive(Debug)]
struct Entry {
    score: f64,
    population: u64,
    geonameid: u32,
    city: usize,
    /// Number of picks made when the score was counted.
    epoch: usize,
    tally: Tally,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Higher score first; ties: larger population, then smaller geonameid (deterministic).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.population.cmp(&other.population))
            .then(other.geonameid.cmp(&self.geonameid))
    }
}

/// Ranks `cities` by the unserved demand near them.
///
/// `nearest_km[i]` is customer i's distance to the nearest store (`f64::INFINITY` when there are
/// no stores); customer i is unserved when it exceeds the radius.
pub fn rank(
    cities: &[CityChoice<'_>],
    customers: &[Customer],
    nearest_km: &[f64],
    params: &Ranking<'_>,
) -> Vec<Candidate> {
    let unserved: Vec<usize> = (0..customers.len())
        .filter(|&i| nearest_km[i] > params.radius_km)
        .collect();
    if unserved.is_empty() || params.count == 0 {
        return Vec::new();
    }
    let index = SphereIndex::new(
        unserved
            .iter()
            .map(|&i| (customers[i].lat, customers[i].lon))
            .collect(),
    );
    let mut claimed = vec![false; unserved.len()];
    let tally = |city: &City, claimed: &[bool]| {
        let mut t = Tally {
            customers: 0,
            revenue: 0.0,
        };
        for j in index.within_ids(city.lat, city.lon, params.radius_km) {
            if !claimed[j] {
                t.customers += 1;
                t.revenue += customers[unserved[j]].revenue;
            }
        }
        t
    };
    let k = params.k.max(1);
    let initial = super::par_map(cities, |c| tally(c.city, &claimed));
    let mut heap: BinaryHeap<Entry> = initial
        .into_iter()
        .enumerate()
        .filter(|(_, t)| t.customers >= k)
        .map(|(i, t)| Entry {
            score: t.score(params.score_by),
            population: cities[i].city.population,
            geonameid: cities[i].city.geonameid,
            city: i,
            epoch: 0,
            tally: t,
        })
        .collect();

    let mut picked = Vec::new();
    while picked.len() < params.count {
        let Some(mut top) = heap.pop() else { break };
        if top.epoch != picked.len() {
            // Claimed customers may have left this catchment since it was counted.
            let t = tally(cities[top.city].city, &claimed);
            if t.customers >= k {
                top.tally = t;
                top.score = t.score(params.score_by);
                top.epoch = picked.len();
                heap.push(top);
            }
            continue;
        }
        let choice = cities[top.city];
        let city = choice.city;
        let mut members = Vec::new();
        for j in index.within_ids(city.lat, city.lon, params.radius_km) {
            if !claimed[j] {
                claimed[j] = true;
                members.push(unserved[j]);
            }
        }
        let orders = members
            .iter()
            .map(|&i| u64::from(customers[i].orders))
            .sum();
        let mut distances: Vec<f64> = members
            .iter()
            .map(|&i| nearest_km[i])
            .filter(|d| d.is_finite())
            .collect();
        let median_nearest_store_km = super::median(&mut distances);
        let mut candidate = Candidate {
            rank: picked.len() as u32 + 1,
            geonameid: city.geonameid,
            name: city.name.clone(),
            country: city.country.clone(),
            lat: city.lat,
            lon: city.lon,
            population: city.population,
            region_id: choice.region.map(|r| r.0.to_owned()),
            region_name: choice.region.map(|r| r.1.to_owned()),
            score: top.score,
            customers: top.tally.customers,
            orders,
            revenue: top.tally.revenue,
            median_nearest_store_km,
            reason: String::new(),
        };
        candidate.reason = reason(&candidate, params);
        picked.push(candidate);
    }
    picked
}

fn reason(c: &Candidate, p: &Ranking<'_>) -> String {
    let radius = trim_float(p.radius_km);
    let distance = match (p.have_stores, c.median_nearest_store_km) {
        (true, Some(d)) => format!(
            " and are {} km from the nearest store (median)",
            thousands(d.round() as u64)
        ),
        _ => "; the chain has no store yet".to_owned(),
    };
    let region = c
        .region_name
        .as_deref()
        .map_or(String::new(), |r| format!(", in {r}"));
    format!(
        "{} customers ({}{}) live within {radius} km{distance}; city population {}{region}",
        thousands(c.customers),
        p.currency,
        compact(c.revenue),
        compact(c.population as f64),
    )
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `950` → `950`, `12_345` → `12.3k`, `310_000` → `310k`, `2_100_000` → `2.1M`.
pub fn compact(x: f64) -> String {
    let (value, unit) = if x >= 1e9 {
        (x / 1e9, "B")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        return format!("{}", x.round());
    };
    if value >= 100.0 {
        format!("{}{unit}", value.round())
    } else {
        format!("{}{unit}", trim_float((value * 10.0).round() / 10.0))
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expansion::sphere::distance_km;

    /// Every city as a choice, in no region.
    fn outside_regions(cities: &[City]) -> Vec<CityChoice<'_>> {
        cities
            .iter()
            .map(|c| CityChoice {
                city: c,
                region: None,
            })
            .collect()
    }

    fn city(id: u32, name: &str, lat: f64, lon: f64, population: u64) -> City {
        City {
            geonameid: id,
            name: name.into(),
            lat,
            lon,
            country: "CN".into(),
            population,
        }
    }

    /// `n` customers spread within about 5 km of (lat, lon), each with `revenue`.
    fn cluster(lat: f64, lon: f64, n: usize, revenue: f64) -> Vec<Customer> {
        (0..n)
            .map(|i| {
                let a = i as f64 * 2.399_963; // golden angle: an even spread
                let r = 0.04 * ((i as f64 + 0.5) / n as f64).sqrt();
                Customer {
                    lat: lat + r * a.sin(),
                    lon: lon + r * a.cos(),
                    orders: 1,
                    revenue,
                }
            })
            .collect()
    }

    fn params(count: usize, k: u64, score_by: ScoreBy) -> Ranking<'static> {
        Ranking {
            radius_km: 30.0,
            k,
            count,
            score_by,
            currency: "¥",
            have_stores: true,
        }
    }

    /// Distances of customers to the nearest of `stores`, computed independently.
    fn nearest(customers: &[Customer], stores: &[(f64, f64)]) -> Vec<f64> {
        customers
            .iter()
            .map(|c| {
                stores
                    .iter()
                    .map(|&s| distance_km((c.lat, c.lon), s))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn biggest_unserved_cluster_ranks_first_and_served_never_ranks() {
        // Three clusters 2°+ apart (> 200 km): A 300 customers, B 120, C 500 — but C has a store.
        let a = (30.0, 104.0);
        let b = (34.0, 108.0);
        let c = (23.0, 113.0);
        let mut customers = cluster(a.0, a.1, 300, 10.0);
        customers.extend(cluster(b.0, b.1, 120, 10.0));
        customers.extend(cluster(c.0, c.1, 500, 10.0));
        let stores = [c];
        let nearest_km = nearest(&customers, &stores);
        let cities = [
            city(1, "A", a.0, a.1, 1_000),
            city(2, "B", b.0, b.1, 9_000_000),
            city(3, "C", c.0, c.1, 5_000_000),
        ];
        let choices = outside_regions(&cities);
        let got = rank(
            &choices,
            &customers,
            &nearest_km,
            &params(10, 10, ScoreBy::Customers),
        );
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["A", "B"],
            "C's customers are all within 30 km of its store"
        );
        assert_eq!(
            (got[0].rank, got[0].customers, got[0].score),
            (1, 300, 300.0)
        );
        assert_eq!((got[1].rank, got[1].customers), (2, 120));
        assert!((got[0].revenue - 3000.0).abs() < 1e-6);
        // A is ~1,100 km from the store at C: the reason says so, with the numbers.
        let d = distance_km(a, c);
        let median = got[0].median_nearest_store_km.unwrap();
        assert!((median - d).abs() < 10.0, "{median} vs {d}");
        assert!(
            got[0]
                .reason
                .starts_with("300 customers (¥3k) live within 30 km and are "),
            "{}",
            got[0].reason
        );
        assert!(
            got[0].reason.ends_with("; city population 1k"),
            "{}",
            got[0].reason
        );
    }

    #[test]
    fn greedy_never_counts_the_same_customers_twice() {
        // One cluster of 200 with two cities 3 km apart over it, and a cluster of 150 elsewhere.
        // Both cities over the big cluster see all 200; once the first claims them the second
        // has nothing left, so the small cluster's city ranks second.
        let mut customers = cluster(40.0, 100.0, 200, 1.0);
        customers.extend(cluster(45.0, 90.0, 150, 1.0));
        let nearest_km = vec![f64::INFINITY; customers.len()];
        let cities = [
            city(10, "Big-1", 40.0, 100.0, 10),
            city(11, "Big-2", 40.02, 100.02, 20),
            city(12, "Small", 45.0, 90.0, 10),
        ];
        let choices = outside_regions(&cities);
        let mut p = params(3, 10, ScoreBy::Customers);
        p.have_stores = false;
        let got = rank(&choices, &customers, &nearest_km, &p);
        let picked: Vec<(&str, u64)> = got.iter().map(|c| (c.name.as_str(), c.customers)).collect();
        // ties at 200: the larger population (Big-2) wins
        assert_eq!(picked, [("Big-2", 200), ("Small", 150)]);
        let claimed: u64 = got.iter().map(|c| c.customers).sum();
        assert_eq!(claimed, 350, "every customer claimed exactly once");
        assert!(got[0].reason.contains("no store yet"), "{}", got[0].reason);
        assert_eq!(got[0].median_nearest_store_km, None);
    }

    #[test]
    fn overlapping_catchments_rank_by_what_is_left() {
        // Cities X and Y 40 km apart, customers in three groups along the line between them:
        // 100 near X only, 80 in the overlap (within 30 km of both), 90 near Y only.
        // X sees 180, Y sees 170 → X first; Y then keeps only its own 90.
        let x = (30.0, 110.0);
        let y = (
            30.0,
            110.0 + 40.0 / distance_km((30.0, 110.0), (30.0, 111.0)),
        );
        let mid = (30.0, (x.1 + y.1) / 2.0);
        let group = |at: (f64, f64), n: usize| -> Vec<Customer> {
            (0..n)
                .map(|_| Customer {
                    lat: at.0,
                    lon: at.1,
                    orders: 2,
                    revenue: 5.0,
                })
                .collect()
        };
        let mut customers = group((30.0, x.1 - 0.05), 100);
        customers.extend(group(mid, 80));
        customers.extend(group((30.0, y.1 + 0.05), 90));
        assert!(distance_km(mid, x) < 30.0 && distance_km(mid, y) < 30.0);
        let nearest_km = vec![500.0; customers.len()];
        let cities = [city(1, "X", x.0, x.1, 1), city(2, "Y", y.0, y.1, 1)];
        let choices = outside_regions(&cities);
        let got = rank(
            &choices,
            &customers,
            &nearest_km,
            &params(5, 10, ScoreBy::Customers),
        );
        let picked: Vec<(&str, u64, u64)> = got
            .iter()
            .map(|c| (c.name.as_str(), c.customers, c.orders))
            .collect();
        assert_eq!(picked, [("X", 180, 360), ("Y", 90, 180)]);
        assert!(
            got[1].reason.contains("are 500 km from the nearest store"),
            "{}",
            got[1].reason
        );
    }

    #[test]
    fn clusters_under_k_never_rank_and_revenue_can_decide() {
        // 9 rich customers (under k = 10) and 20 poor ones, in different places.
        let mut customers = cluster(10.0, 10.0, 9, 1_000.0);
        customers.extend(cluster(20.0, 20.0, 20, 1.0));
        customers.extend(cluster(30.0, 30.0, 12, 50.0));
        let nearest_km = vec![f64::INFINITY; customers.len()];
        let cities = [
            city(1, "Rich", 10.0, 10.0, 1),
            city(2, "Many", 20.0, 20.0, 1),
            city(3, "Mid", 30.0, 30.0, 1),
        ];
        let choices = outside_regions(&cities);
        let by_customers = rank(
            &choices,
            &customers,
            &nearest_km,
            &params(5, 10, ScoreBy::Customers),
        );
        let names: Vec<&str> = by_customers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Many", "Mid"]);
        let by_revenue = rank(
            &choices,
            &customers,
            &nearest_km,
            &params(5, 10, ScoreBy::Revenue),
        );
        let names: Vec<&str> = by_revenue.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["Mid", "Many"],
            "12 × 50 = 600 beats 20 × 1; Rich has only 9"
        );
        assert!((by_revenue[0].score - 600.0).abs() < 1e-9);
        // with k = 5, the 9 rich customers rank first by revenue
        let low_k = rank(
            &choices,
            &customers,
            &nearest_km,
            &params(5, 5, ScoreBy::Revenue),
        );
        assert_eq!(low_k[0].name, "Rich");
        // count limits the list
        assert_eq!(
            rank(
                &choices,
                &customers,
                &nearest_km,
                &params(1, 10, ScoreBy::Customers)
            )
            .len(),
            1
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_240), "1,240");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(310_000.0), "310k");
        assert_eq!(compact(2_100_000.0), "2.1M");
        assert_eq!(compact(3_000.0), "3k");
    }
}

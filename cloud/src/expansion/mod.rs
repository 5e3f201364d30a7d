//! Regional expansion: where the chain's customers live compared with where its stores are, and
//! which cities would serve the most customers that no store serves today.
//!
//! The founding case: a snack chain with 1,000+ stores looked at where its *online* customers
//! lived — far from any store — to pick the next provinces. Given stores, customers (or online
//! orders) and region boundaries, [`analyze`] computes:
//!
//! - **Distance to the nearest store**, per customer: the great-circle (haversine, `geo`) distance
//!   to the closest store, found through an R*-tree of unit vectors ([`sphere`]), so 1,000,000
//!   customers × 1,000 stores take well under a second. A region's `nearest_store_km` is the
//!   **median** over its customers (each customer weighs one): "half of this region's customers
//!   live farther than this from a store". The median, not the mean, so a few customers at the
//!   far end of a province don't make the whole province look remote.
//! - **Unserved share**: the share of a region's customers (not revenue) farther than the radius
//!   (default 30 km) from every store. With no stores at all, everyone is unserved.
//! - **Customers, orders, revenue and in-store visits per region** ([`regions`]: point-in-region
//!   with an index; the customer's first order places them). Visits come from per-store counts
//!   ([`Dataset::store_visits`]), summed into the region each store lies in.
//! - **H3 density** ([`hexes`], `h3o`, default resolution 5 ≈ 250 km² per hexagon).
//! - **Candidate cities** ([`candidates`]): cities with population ≥ 15,000 (GeoNames) in the
//!   countries the customers are in (for each region with customers, the country most of the
//!   region's cities belong to; all cities if no region has any), ranked greedily by the unserved
//!   demand within the radius that no better-ranked candidate already claimed, each with a
//!   one-sentence reason.
//!
//! **k-anonymity** (default k = 10): no output lets anyone count a handful of people.
//! - A region with 1..k−1 customers is *suppressed*: its customer-derived numbers (customers,
//!   orders, revenue, distance, unserved share) are not output, only `suppressed: true`.
//!   Regions with no customers show 0 (an empty region reveals no one). Store counts and store
//!   visits are the chain's own figures and always shown.
//! - Complementary suppression: because totals are published, a single suppressed region could be
//!   recovered by subtraction. So while the suppressed regions (and the customers outside every
//!   region, which count as one more cell) hold fewer than k customers together, the next
//!   smallest region is suppressed too.
//! - A hexagon with fewer than k customers is left out entirely (its presence alone would place
//!   someone); only the number of such hexagons and customers is reported.
//! - A candidate must claim at least k customers.
//!
//! Known limit: differencing across *different* geographies (a region against the hexagons
//! inside it) is not prevented; use a coarser hexagon resolution or a larger k where that matters.
//!
//! # Layout
//! - [`input`] — CSV import of stores and customers/orders, row-level rejections.
//! - [`places`] — the shipped world cities and Chinese adcodes (city/adcode → coordinates).
//! - [`regions`] — shipped and user boundaries, point-in-region index.
//! - [`sphere`] — nearest and within-radius searches on the sphere.
//! - [`hexes`] — H3 density with small hexagons left out.
//! - [`candidates`] — greedy ranking of candidate cities.
//! - [`export`] — the GeoJSON FeatureCollection and the regions CSV.
//! - [`demo`] — a deterministic chain with online customers, for the product demo and the bench.
//! - [`command`] — `dwell-cloud expansion`: files in, progress, summary, files out.

pub mod candidates;
pub mod command;
pub mod demo;
pub mod export;
pub mod hexes;
pub mod input;
pub mod places;
pub mod regions;
pub mod sphere;

pub use candidates::{Candidate, ScoreBy};
pub use hexes::Density;
pub use input::{Customers, CustomersBuilder, InputError, Rejections, Store};
pub use regions::{Boundaries, BoundaryError, BuiltinBoundaries};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

/// Settings of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// A customer farther than this from every store is unserved; also the candidates'
    /// catchment radius.
    pub radius_km: f64,
    /// Minimum customers a region, hexagon or candidate must have to be shown.
    pub k: u64,
    /// H3 resolution of the density hexagons (0..=15).
    pub h3_resolution: u8,
    /// How many candidate cities to propose.
    pub candidates: usize,
    pub score_by: ScoreBy,
    /// Shown before money in reasons and summaries, e.g. "¥".
    pub currency: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            radius_km: 30.0,
            k: 10,
            h3_resolution: 5,
            candidates: 10,
            score_by: ScoreBy::Customers,
            currency: String::new(),
        }
    }
}

/// The inputs of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub stores: Vec<Store>,
    pub customers: Customers,
    /// In-store visits per store id (e.g. from footfall roll-ups); stores without an entry
    /// count 0.
    pub store_visits: HashMap<String, u64>,
    /// Rows of the stores file that were not imported.
    pub store_rejections: Rejections,
    /// Rows of the customers file that were not imported.
    pub customer_rejections: Rejections,
}

impl Dataset {
    /// Imports a stores CSV (`id,name,lat,lon,opened[,visits]`) and a customers/orders CSV
    /// (`id,lat,lon,amount,date`, or `city` / `adcode` instead of `lat,lon`).
    pub fn from_csv(stores: impl Read, customers: impl Read) -> Result<Dataset, InputError> {
        let stores = input::read_stores(stores)?;
        let (customers, customer_rejections) = input::read_customers(customers)?;
        Ok(Dataset {
            stores: stores.stores,
            customers,
            store_visits: stores.visits,
            store_rejections: stores.rejections,
            customer_rejections,
        })
    }
}

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{0}")]
    Option(String),
    #[error("store '{id}': {reason}")]
    Store { id: String, reason: String },
}

/// The steps of an analysis, as reported to a progress observer and in [`Report::timings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    NearestStore,
    Regions,
    Hexes,
    Candidates,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::NearestStore => "nearest store",
            Phase::Regions => "regions",
            Phase::Hexes => "hexagons",
            Phase::Candidates => "candidates",
        }
    }
}

/// Wall time of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhaseTiming {
    pub phase: Phase,
    pub seconds: f64,
}

/// One region's row. Customer-derived fields are `None` when the region is suppressed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionStats {
    pub id: String,
    pub name: String,
    /// 1..k−1 customers (or complementary suppression): customer numbers withheld.
    pub suppressed: bool,
    pub customers: Option<u64>,
    pub orders: Option<u64>,
    pub revenue: Option<f64>,
    /// Median great-circle distance of the region's customers to their nearest store (`None`
    /// also when there are no customers or no stores).
    pub nearest_store_km: Option<f64>,
    pub unserved_customers: Option<u64>,
    /// Share of the region's customers farther than the radius from every store.
    pub unserved_share: Option<f64>,
    /// Stores in the region, and their in-store visits.
    pub stores: u64,
    pub visits: u64,
}

/// A store with the region it lies in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStats {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub opened: Option<String>,
    pub region_id: Option<String>,
    pub visits: u64,
}

/// Chain-wide figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub stores: u64,
    pub customers: u64,
    pub orders: u64,
    pub revenue: f64,
    pub visits: u64,
    pub unserved_customers: u64,
    pub unserved_share: Option<f64>,
    pub median_nearest_store_km: Option<f64>,
    pub regions: u64,
    pub regions_suppressed: u64,
    /// Customers in no region of the boundaries (`None` when 1..k−1: suppressed like a region).
    pub customers_outside_regions: Option<u64>,
    /// Visit counts given for store ids that are not in the stores list (ignored).
    pub visits_for_unknown_stores: u64,
}

/// Everything an analysis found. Serialises to JSON for the API; [`export`] turns it into
/// GeoJSON and CSV.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The boundary set (`china-provinces`, … or the user's file name).
    pub boundaries: String,
    /// Where the shipped boundaries come from (shown wherever they are).
    pub attribution: Option<String>,
    pub options: Options,
    pub totals: Totals,
    pub regions: Vec<RegionStats>,
    pub stores: Vec<StoreStats>,
    pub density: Density,
    pub candidates: Vec<Candidate>,
    pub store_rejections: Rejections,
    pub customer_rejections: Rejections,
    pub timings: Vec<PhaseTiming>,
    #[serde(skip)]
    regions_geometry: Arc<Boundaries>,
}

impl Report {
    /// The boundaries the report was computed on (their geometry goes into the GeoJSON export).
    pub fn boundaries_used(&self) -> &Boundaries {
        &self.regions_geometry
    }
}

/// Picks the shipped boundaries for a set of customers: China's provinces when most of them are
/// in China, else the world's countries. Looks at up to 5,000 customers spread over the list.
pub fn choose_builtin(customers: &Customers) -> Result<BuiltinBoundaries, BoundaryError> {
    let china = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces)?;
    let all = customers.as_slice();
    let step = (all.len() / 5_000).max(1);
    let share = regions::share_inside(&china, all.iter().step_by(step).map(|c| (c.lat, c.lon)));
    Ok(if share > 0.5 {
        BuiltinBoundaries::ChinaProvinces
    } else {
        BuiltinBoundaries::WorldCountries
    })
}

/// Runs the analysis.
pub fn analyze(
    data: &Dataset,
    boundaries: Arc<Boundaries>,
    options: &Options,
) -> Result<Report, AnalysisError> {
    analyze_observed(data, boundaries, options, &mut |_| {})
}

/// [`analyze`], calling `observe` as each phase starts (for progress display).
pub fn analyze_observed(
    data: &Dataset,
    boundaries: Arc<Boundaries>,
    options: &Options,
    observe: &mut dyn FnMut(Phase),
) -> Result<Report, AnalysisError> {
    validate(data, options)?;
    let resolution = h3o::Resolution::try_from(options.h3_resolution)
        .map_err(|_| AnalysisError::Option("h3 resolution must be 0..=15".into()))?;
    let customers = data.customers.as_slice();
    let k = options.k;
    let mut clock = PhaseClock::new(observe);

    // Nearest store per customer.
    clock.start(Phase::NearestStore);
    let store_index =
        sphere::SphereIndex::new(data.stores.iter().map(|s| (s.lat, s.lon)).collect());
    let nearest_km: Vec<f64> = par_map(customers, |c| {
        store_index
            .nearest(c.lat, c.lon)
            .map_or(f64::INFINITY, |(_, d)| d)
    });
    let unserved: Vec<bool> = nearest_km.iter().map(|&d| d > options.radius_km).collect();

    // Regions.
    clock.start(Phase::Regions);
    let outside = u32::MAX;
    let customer_region: Vec<u32> = par_map(customers, |c| {
        boundaries
            .locate(c.lat, c.lon)
            .map_or(outside, |r| r as u32)
    });
    let region_list = boundaries.regions();
    let n = region_list.len();
    // Index n is "outside every region".
    let mut acc = vec![Acc::default(); n + 1];
    for (i, c) in customers.iter().enumerate() {
        let r = (customer_region[i] as usize).min(n);
        let a = &mut acc[r];
        a.customers += 1;
        a.orders += u64::from(c.orders);
        a.revenue += c.revenue;
        a.unserved += u64::from(unserved[i]);
    }
    let medians = region_medians(&customer_region, &nearest_km, n);
    let mut stores_out = Vec::with_capacity(data.stores.len());
    let mut total_visits = 0;
    for s in &data.stores {
        let region = boundaries.locate(s.lat, s.lon);
        let visits = data.store_visits.get(&s.id).copied().unwrap_or(0);
        total_visits += visits;
        if let Some(r) = region {
            acc[r].stores += 1;
            acc[r].visits += visits;
        }
        stores_out.push(StoreStats {
            id: s.id.clone(),
            name: s.name.clone(),
            lat: s.lat,
            lon: s.lon,
            opened: s.opened.clone(),
            region_id: region.map(|r| region_list[r].id.clone()),
            visits,
        });
    }
    let counts: Vec<u64> = acc.iter().map(|a| a.customers).collect();
    let suppressed = suppress(&counts, k);
    let regions_out: Vec<RegionStats> = region_list
        .iter()
        .enumerate()
        .map(|(r, region)| {
            let a = &acc[r];
            let show = !suppressed[r];
            RegionStats {
                id: region.id.clone(),
                name: region.name.clone(),
                suppressed: !show,
                customers: show.then_some(a.customers),
                orders: show.then_some(a.orders),
                revenue: show.then_some(round2(a.revenue)),
                nearest_store_km: if show { medians[r].map(round3) } else { None },
                unserved_customers: show.then_some(a.unserved),
                unserved_share: if show && a.customers > 0 {
                    Some(round4(a.unserved as f64 / a.customers as f64))
                } else {
                    None
                },
                stores: a.stores,
                visits: a.visits,
            }
        })
        .collect();

    // Hexagons.
    clock.start(Phase::Hexes);
    let cells = par_map(customers, |c| hexes::cell_of(c, resolution));
    let density = hexes::density(customers, &cells, &unserved, resolution, k);
    drop(cells);

    // Candidates.
    clock.start(Phase::Candidates);
    let city_regions = city_regions(&boundaries);
    let countries: BTreeSet<&str> = region_countries(city_regions, n)
        .into_iter()
        .enumerate()
        .filter_map(|(r, country)| country.filter(|_| acc[r].customers > 0))
        .collect();
    let choices: Vec<candidates::CityChoice<'_>> = places::world_cities()
        .iter()
        .zip(city_regions.iter())
        .filter(|(c, _)| countries.is_empty() || countries.contains(c.country.as_str()))
        .map(|(city, r)| candidates::CityChoice {
            city,
            region: r.map(|r| {
                let region = &region_list[r as usize];
                (region.id.as_str(), region.name.as_str())
            }),
        })
        .collect();
    let ranked = candidates::rank(
        &choices,
        customers,
        &nearest_km,
        &candidates::Ranking {
            radius_km: options.radius_km,
            k,
            count: options.candidates,
            score_by: options.score_by,
            currency: &options.currency,
            have_stores: !data.stores.is_empty(),
        },
    );
    let timings = clock.finish();

    let unserved_total = unserved.iter().filter(|&&u| u).count() as u64;
    let mut finite: Vec<f64> = nearest_km
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .collect();
    let known: std::collections::HashSet<&str> =
        data.stores.iter().map(|s| s.id.as_str()).collect();
    let totals = Totals {
        stores: data.stores.len() as u64,
        customers: customers.len() as u64,
        orders: data.customers.orders(),
        revenue: round2(data.customers.revenue()),
        visits: total_visits,
        unserved_customers: unserved_total,
        unserved_share: (!customers.is_empty())
            .then(|| round4(unserved_total as f64 / customers.len() as f64)),
        median_nearest_store_km: median(&mut finite).map(round3),
        regions: n as u64,
        regions_suppressed: suppressed[..n].iter().filter(|&&s| s).count() as u64,
        customers_outside_regions: (!suppressed[n]).then_some(acc[n].customers),
        visits_for_unknown_stores: data
            .store_visits
            .iter()
            .filter(|(id, _)| !known.contains(id.as_str()))
            .map(|(_, v)| v)
            .sum(),
    };
    Ok(Report {
        boundaries: boundaries.name().to_owned(),
        attribution: boundaries.attribution().map(str::to_owned),
        options: options.clone(),
        totals,
        regions: regions_out,
        stores: stores_out,
        density,
        candidates: ranked,
        store_rejections: data.store_rejections.clone(),
        customer_rejections: data.customer_rejections.clone(),
        timings,
        regions_geometry: boundaries,
    })
}

/// Times the phases and tells the observer when each starts.
struct PhaseClock<'a> {
    observe: &'a mut dyn FnMut(Phase),
    current: Option<(Phase, Instant)>,
    timings: Vec<PhaseTiming>,
}

impl<'a> PhaseClock<'a> {
    fn new(observe: &'a mut dyn FnMut(Phase)) -> Self {
        PhaseClock {
            observe,
            current: None,
            timings: Vec::new(),
        }
    }

    fn stop(&mut self) {
        if let Some((phase, at)) = self.current.take() {
            self.timings.push(PhaseTiming {
                phase,
                seconds: at.elapsed().as_secs_f64(),
            });
        }
    }

    fn start(&mut self, phase: Phase) {
        self.stop();
        (self.observe)(phase);
        self.current = Some((phase, Instant::now()));
    }

    fn finish(mut self) -> Vec<PhaseTiming> {
        self.stop();
        self.timings
    }
}

fn validate(data: &Dataset, options: &Options) -> Result<(), AnalysisError> {
    if !(options.radius_km.is_finite() && options.radius_km > 0.0 && options.radius_km <= 20_000.0)
    {
        return Err(AnalysisError::Option(format!(
            "radius {} km must be more than 0 and at most 20,000 km",
            options.radius_km
        )));
    }
    if options.k == 0 {
        return Err(AnalysisError::Option(
            "k must be at least 1 (1 turns suppression off; the default is 10)".into(),
        ));
    }
    if options.h3_resolution > 15 {
        return Err(AnalysisError::Option(format!(
            "h3 resolution {} must be 0..=15 (5 ≈ 250 km² hexagons, 7 ≈ 5 km²)",
            options.h3_resolution
        )));
    }
    for s in &data.stores {
        if !(s.lat.is_finite()
            && (-90.0..=90.0).contains(&s.lat)
            && s.lon.is_finite()
            && (-180.0..=180.0).contains(&s.lon))
        {
            return Err(AnalysisError::Store {
                id: s.id.clone(),
                reason: format!(
                    "position ({}, {}) is not a latitude/longitude",
                    s.lat, s.lon
                ),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
struct Acc {
    customers: u64,
    orders: u64,
    revenue: f64,
    unserved: u64,
    stores: u64,
    visits: u64,
}

/// Median nearest-store distance per region (`None`: no customers, or no stores).
fn region_medians(customer_region: &[u32], nearest_km: &[f64], n: usize) -> Vec<Option<f64>> {
    // Counting sort of the finite distances by region, then a selection per region.
    let mut starts = vec![0usize; n + 2];
    for (&r, d) in customer_region.iter().zip(nearest_km) {
        if d.is_finite() {
            starts[(r as usize).min(n) + 1] += 1;
        }
    }
    for i in 0..=n {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut sorted = vec![0.0; starts[n + 1]];
    for (&r, &d) in customer_region.iter().zip(nearest_km) {
        if d.is_finite() {
            let r = (r as usize).min(n);
            sorted[fill[r]] = d;
            fill[r] += 1;
        }
    }
    (0..n)
        .map(|r| median(&mut sorted[starts[r]..starts[r + 1]]))
        .collect()
}

/// The median (mean of the two middle values for an even count); `None` for no values.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// Which cells to suppress, given each cell's customers. Primary: 1..k−1 customers.
/// Complementary: while the suppressed cells hold fewer than k customers together (so their
/// sum, recoverable from the totals, would itself be a small number), also suppress the smallest
/// remaining non-empty cell (ties: the first).
pub(crate) fn suppress(counts: &[u64], k: u64) -> Vec<bool> {
    let mut out: Vec<bool> = counts.iter().map(|&c| c > 0 && c < k).collect();
    let mut hidden: u64 = counts
        .iter()
        .zip(&out)
        .filter(|(_, s)| **s)
        .map(|(c, _)| c)
        .sum();
    if hidden == 0 {
        return out;
    }
    while hidden < k {
        let next = counts
            .iter()
            .enumerate()
            .filter(|&(i, &c)| c > 0 && !out[i])
            .min_by_key(|&(i, &c)| (c, i));
        match next {
            Some((i, &c)) => {
                out[i] = true;
                hidden += c;
            }
            None => break,
        }
    }
    out
}

/// The country most of each region's cities belong to (ties: the alphabetically first), so a
/// province's few cities across a disputed border don't add a whole neighbouring country.
fn region_countries(city_regions: &[Option<u32>], n: usize) -> Vec<Option<&'static str>> {
    let mut counts: Vec<HashMap<&'static str, u32>> = vec![HashMap::new(); n];
    for (city, region) in places::world_cities().iter().zip(city_regions) {
        if let Some(r) = region {
            *counts[*r as usize]
                .entry(city.country.as_str())
                .or_insert(0) += 1;
        }
    }
    counts
        .into_iter()
        .map(|c| {
            c.into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(country, _)| country)
        })
        .collect()
}

/// Region index of each world city under `boundaries` (cached on first use per boundary set).
fn city_regions(boundaries: &Boundaries) -> &[Option<u32>] {
    boundaries.city_regions(|| {
        par_map(places::world_cities(), |c| {
            boundaries.locate(c.lat, c.lon).map(|r| r as u32)
        })
    })
}

/// Maps `f` over `items` on all cores (at most 8 threads), keeping the order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || items.len() < 20_000 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests;

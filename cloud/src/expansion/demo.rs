//! A deterministic snack chain with online customers, for the product demo and the benchmark.
//!
//! The founding case in miniature: the chain's stores stand in ten central and eastern provinces
//! ([`HOME_PROVINCES`]), while its online customers live all over China in proportion to city
//! population — including the provinces without a store (Beijing, Shandong, Sichuan, the
//! north-east, the west). Those far-away online customers are what the expansion analysis should
//! find. Cities are real (GeoNames `cities15000`, CN); stores and customers are scattered around
//! them (customers within 2–30 km of the centre depending on the city's size, stores closer in).
//! The same seed gives the same chain, customers, orders, amounts and dates.

use super::input::{Customers, CustomersBuilder, Rejections, Store};
use super::places::{self, City};
use super::regions::{Boundaries, BuiltinBoundaries};
use super::{Dataset, sphere};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::io::Write;

/// Provinces (adcodes) where the demo chain has its stores: 湖北, 湖南, 江西, 安徽, 江苏, 浙江,
/// 上海, 广东, 福建, 河南.
pub const HOME_PROVINCES: [&str; 10] = [
    "420000", "430000", "360000", "340000", "320000", "330000", "310000", "440000", "350000",
    "410000",
];

/// Size and seed of a demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    pub seed: u64,
    pub stores: usize,
    pub customers: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 7,
            stores: 300,
            customers: 100_000,
        }
    }
}

/// One online order of a demo customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoOrder {
    /// Customer number; the CSV id is `C` + 7 digits.
    pub customer: u32,
    pub lat: f64,
    pub lon: f64,
    /// Yuan, with cents.
    pub amount: f64,
    /// Day of 2024 (0 = 1 January).
    pub day: u16,
}

/// A generated chain, its in-store visits and its online orders.
#[derive(Debug, Clone)]
pub struct Demo {
    pub stores: Vec<Store>,
    /// In-store visits per store id (a month's worth).
    pub store_visits: HashMap<String, u64>,
    /// Orders, grouped by customer (a customer's orders are adjacent and share a position).
    pub orders: Vec<DemoOrder>,
}

/// Generates a demo chain; the same options always give the same demo.
pub fn generate(options: &DemoOptions) -> Demo {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let cities: Vec<&City> = places::world_cities()
        .iter()
        .filter(|c| c.country == "CN")
        .collect();
    // Which cities are in a home province (the shipped provinces parse; a failure would leave
    // the chain without home cities, and the stores fall back to all cities below).
    let provinces = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces).ok();
    let is_home = |lat: f64, lon: f64| {
        provinces.as_ref().is_some_and(|b| {
            b.locate(lat, lon)
                .is_some_and(|r| HOME_PROVINCES.contains(&b.regions()[r].id.as_str()))
        })
    };
    let home: Vec<&City> = cities
        .iter()
        .copied()
        .filter(|c| is_home(c.lat, c.lon))
        .collect();
    let home = if home.is_empty() {
        cities.clone()
    } else {
        home
    };

    let mut stores = Vec::with_capacity(options.stores);
    let mut store_visits = HashMap::with_capacity(options.stores);
    let mut per_city: HashMap<u32, u32> = HashMap::new();
    let home_weights = cumulative(&home);
    for i in 0..options.stores {
        let city = home[pick(&home_weights, rng.random::<f64>())];
        let n = per_city.entry(city.geonameid).or_insert(0);
        *n += 1;
        // Scatter within the city, but keep the store on land in a home province (Shenzhen's
        // centre is a few km from Hong Kong): retry a few times, else use the city centre.
        let mut at = (city.lat, city.lon);
        for _ in 0..20 {
            let (lat, lon) = scatter(&mut rng, city, 0.4);
            if is_home(lat, lon) {
                at = (lat, lon);
                break;
            }
        }
        let (lat, lon) = at;
        let id = format!("S{:04}", i + 1);
        let year = rng.random_range(2012..2025);
        let day = rng.random_range(0..365u16);
        stores.push(Store {
            id: id.clone(),
            name: format!("{} #{}", city.name, n),
            lat,
            lon,
            opened: Some(date(year, day)),
        });
        store_visits.insert(id, rng.random_range(3_000..30_000));
    }

    let weights = cumulative(&cities);
    let mut orders = Vec::with_capacity(options.customers * 8 / 5);
    for customer in 0..options.customers {
        let city = cities[pick(&weights, rng.random::<f64>())];
        let (lat, lon) = scatter(&mut rng, city, 1.0);
        // 1 order for most, a few loyal customers with many (mean about 1.6)
        let mut n = 1;
        while n < 12 && rng.random_bool(0.38) {
            n += 1;
        }
        for _ in 0..n {
            // 15..300 yuan, log-uniform
            let amount = (15.0f64.ln() + rng.random::<f64>() * (300.0f64 / 15.0).ln()).exp();
            orders.push(DemoOrder {
                customer: customer as u32,
                lat,
                lon,
                amount: (amount * 100.0).round() / 100.0,
                day: rng.random_range(0..366),
            });
        }
    }
    Demo {
        stores,
        store_visits,
        orders,
    }
}

fn cumulative(cities: &[&City]) -> Vec<f64> {
    let mut total = 0.0;
    cities
        .iter()
        .map(|c| {
            total += c.population as f64;
            total
        })
        .collect()
}

/// Index of the city whose cumulative weight first exceeds `u` × total.
fn pick(cumulative: &[f64], u: f64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let target = u * total;
    cumulative
        .partition_point(|&w| w <= target)
        .min(cumulative.len().saturating_sub(1))
}

/// A point uniformly in a disk around the city: 2 km + 6 km × √(population in millions), at
/// most 30 km, times `scale`.
fn scatter(rng: &mut ChaCha8Rng, city: &City, scale: f64) -> (f64, f64) {
    let radius_km = (2.0 + 6.0 * (city.population as f64 / 1e6).sqrt()).min(30.0) * scale;
    let r = radius_km * rng.random::<f64>().sqrt();
    let theta = rng.random::<f64>() * std::f64::consts::TAU;
    let km_per_degree = sphere::earth_radius_km().to_radians();
    let lat = city.lat + r * theta.sin() / km_per_degree;
    let lon = city.lon + r * theta.cos() / (km_per_degree * city.lat.to_radians().cos());
    ((lat * 1e5).round() / 1e5, (lon * 1e5).round() / 1e5)
}

/// `YYYY-MM-DD` of day `day` (0-based) of `year`.
fn date(year: i32, day: u16) -> String {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut d = u32::from(day);
    for (m, &len) in months.iter().enumerate() {
        if d < len {
            return format!("{year:04}-{:02}-{:02}", m + 1, d + 1);
        }
        d -= len;
    }
    format!("{year:04}-12-31")
}

impl Demo {
    /// The orders as distinct customers.
    pub fn customers(&self) -> Customers {
        let mut builder = CustomersBuilder::new();
        let mut id = String::new();
        for o in &self.orders {
            id.clear();
            id.push_str(&customer_id(o.customer));
            // Cannot fail: generated positions and amounts are in range.
            let _ = builder.add_order(&id, o.lat, o.lon, o.amount);
        }
        builder.finish()
    }

    /// The demo as analysis input (no rejected rows).
    pub fn dataset(&self) -> Dataset {
        Dataset {
            stores: self.stores.clone(),
            customers: self.customers(),
            store_visits: self.store_visits.clone(),
            store_rejections: Rejections::default(),
            customer_rejections: Rejections::default(),
        }
    }

    /// The stores as CSV: `id,name,lat,lon,opened,visits`.
    pub fn write_stores_csv<W: Write>(&self, out: W) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["id", "name", "lat", "lon", "opened", "visits"])?;
        for s in &self.stores {
            let visits = self.store_visits.get(&s.id).copied().unwrap_or(0);
            w.write_record([
                s.id.as_str(),
                s.name.as_str(),
                &s.lat.to_string(),
                &s.lon.to_string(),
                s.opened.as_deref().unwrap_or(""),
                &visits.to_string(),
            ])?;
        }
        w.flush()?;
        Ok(())
    }

    /// The orders as CSV: `id,lat,lon,amount,date`.
    pub fn write_customers_csv<W: Write>(&self, out: W) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
        w.write_record(["id", "lat", "lon", "amount", "date"])?;
        for o in &self.orders {
            w.write_record([
                customer_id(o.customer).as_str(),
                &o.lat.to_string(),
                &o.lon.to_string(),
                &format!("{:.2}", o.amount),
                &date(2024, o.day),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

fn customer_id(n: u32) -> String {
    format!("C{n:07}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_demo_other_seed_other_demo() {
        let o = DemoOptions {
            seed: 3,
            stores: 20,
            customers: 500,
        };
        let (a, b) = (generate(&o), generate(&o));
        assert_eq!(a.stores, b.stores);
        assert_eq!(a.orders, b.orders);
        let c = generate(&DemoOptions { seed: 4, ..o });
        assert_ne!(a.orders, c.orders);
        assert_eq!(a.stores.len(), 20);
        assert_eq!(a.customers().len(), 500);
        assert!(a.orders.len() > 500, "some customers order more than once");
    }

    #[test]
    fn stores_stay_home_and_customers_go_everywhere() {
        let demo = generate(&DemoOptions {
            seed: 11,
            stores: 200,
            customers: 20_000,
        });
        let provinces = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces).unwrap();
        let province_of = |lat: f64, lon: f64| {
            provinces
                .locate(lat, lon)
                .map(|r| provinces.regions()[r].id.clone())
        };
        // Stores: every one in a home province (not scattered across a border or into the sea).
        let outside = demo
            .stores
            .iter()
            .filter(|s| {
                !province_of(s.lat, s.lon).is_some_and(|p| HOME_PROVINCES.contains(&p.as_str()))
            })
            .count();
        assert_eq!(outside, 0, "stores outside home provinces");
        // Customers: in many provinces, including ones with no store.
        let mut seen = std::collections::BTreeSet::new();
        for c in demo.customers().as_slice() {
            if let Some(p) = province_of(c.lat, c.lon) {
                seen.insert(p);
            }
        }
        let away = seen
            .iter()
            .filter(|p| !HOME_PROVINCES.contains(&p.as_str()))
            .count();
        assert!(
            seen.len() >= 25 && away >= 15,
            "{} provinces, {away} without stores",
            seen.len()
        );
        for s in &demo.stores {
            assert!(demo.store_visits[&s.id] >= 3_000);
        }
    }

    #[test]
    fn csv_round_trips_through_the_importer() {
        let demo = generate(&DemoOptions {
            seed: 5,
            stores: 30,
            customers: 2_000,
        });
        let (mut s, mut c) = (Vec::new(), Vec::new());
        demo.write_stores_csv(&mut s).unwrap();
        demo.write_customers_csv(&mut c).unwrap();
        let data = Dataset::from_csv(&s[..], &c[..]).unwrap();
        assert_eq!(data.store_rejections.total, 0);
        assert_eq!(
            data.customer_rejections.total, 0,
            "{:?}",
            data.customer_rejections
        );
        assert_eq!(data.stores, demo.stores);
        assert_eq!(data.store_visits, demo.store_visits);
        let direct = demo.customers();
        assert_eq!(data.customers.len(), direct.len());
        assert_eq!(data.customers.orders(), demo.orders.len() as u64);
        assert!((data.customers.revenue() - direct.revenue()).abs() < 0.01);
    }

    #[test]
    fn dates_are_calendar_days() {
        assert_eq!(date(2024, 0), "2024-01-01");
        assert_eq!(date(2024, 59), "2024-02-29");
        assert_eq!(date(2023, 59), "2023-03-01");
        assert_eq!(date(2024, 365), "2024-12-31");
    }
}

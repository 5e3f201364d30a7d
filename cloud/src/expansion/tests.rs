//! Whole-analysis tests on constructed data whose answers are worked out here.

use super::*;
use crate::expansion::demo::{DemoOptions, HOME_PROVINCES};

/// Great-circle distance written out independently of `sphere` (haversine, R = 6,371.0088 km).
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371.008_8;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// Squares 10° wide along the equator: A at lon 0..10, B 20..30, C 40..50, D 60..70 (empty),
/// E 80..90; ids of mixed JSON types.
fn squares() -> Arc<Boundaries> {
    let square = |id: serde_json::Value, name: &str, lon0: f64| {
        serde_json::json!({"type": "Feature", "id": id, "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [[[lon0, 0.0], [lon0 + 10.0, 0.0],
                [lon0 + 10.0, 10.0], [lon0, 10.0], [lon0, 0.0]]]}})
    };
    let fc = serde_json::json!({"type": "FeatureCollection", "features": [
        square(serde_json::json!("A"), "Alpha", 0.0),
        square(serde_json::json!(2), "Beta", 20.0),
        square(serde_json::json!("C"), "Gamma", 40.0),
        square(serde_json::json!("D"), "Delta", 60.0),
        square(serde_json::json!("E"), "Epsilon", 80.0),
    ]});
    Arc::new(Boundaries::from_geojson_str(&fc.to_string(), "squares.geojson").unwrap())
}

fn store(id: &str, lat: f64, lon: f64) -> Store {
    Store {
        id: id.into(),
        name: format!("Store {id}"),
        lat,
        lon,
        opened: None,
    }
}

/// A: 12 customers 0.1° north of store s1 and 8 customers 0.5° north; B: 15 customers, no store;
/// C: 3 customers; D: none; E: 12 customers; outside every region: none.
fn dataset() -> Dataset {
    let mut b = CustomersBuilder::new();
    let mut n = 0;
    let mut add = |lat: f64, lon: f64, count: usize, orders: usize, amount: f64| {
        for _ in 0..count {
            n += 1;
            for _ in 0..orders {
                b.add_order(&format!("c{n}"), lat, lon, amount).unwrap();
            }
        }
    };
    add(5.1, 5.0, 12, 2, 10.0);
    add(5.5, 5.0, 8, 1, 10.0);
    add(5.0, 25.0, 15, 1, 4.0);
    add(5.0, 45.0, 3, 1, 1.0);
    add(5.0, 85.0, 12, 3, 1.0);
    Dataset {
        stores: vec![
            store("s1", 5.0, 5.0),
            store("s2", 5.0, 5.2),
            store("s3", 80.0, 100.0),
        ],
        customers: b.finish(),
        store_visits: [("s1", 100), ("s2", 50), ("s3", 7), ("ghost", 99)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ..Dataset::default()
    }
}

#[test]
fn regions_get_counts_distances_unserved_share_and_visits() {
    let report = analyze(&dataset(), squares(), &Options::default()).unwrap();
    let r = |id: &str| report.regions.iter().find(|r| r.id == id).unwrap();

    let a = r("A");
    assert!(!a.suppressed);
    assert_eq!((a.customers, a.orders), (Some(20), Some(12 * 2 + 8)));
    assert_eq!(a.revenue, Some(12.0 * 2.0 * 10.0 + 8.0 * 10.0));
    // 12 customers at 0.1° (11.12 km) and 8 at 0.5° (55.6 km) from s1: the median of 20 values
    // is the mean of the 10th and 11th, both 11.12 km; 8 of 20 are beyond 30 km.
    let near = haversine_km((5.1, 5.0), (5.0, 5.0));
    assert!((near - 11.119).abs() < 0.01);
    assert!((a.nearest_store_km.unwrap() - near).abs() < 1e-3);
    assert_eq!(a.unserved_customers, Some(8));
    assert_eq!(a.unserved_share, Some(0.4));
    assert_eq!((a.stores, a.visits), (2, 150));

    // B has no store: its customers' nearest store is s2, 19.8° of longitude away at 5°N.
    let b = r("2");
    assert_eq!(b.name, "Beta");
    let far = haversine_km((5.0, 25.0), (5.0, 5.2));
    assert!(
        (b.nearest_store_km.unwrap() - far).abs() < 1e-3,
        "{:?} vs {far}",
        b.nearest_store_km
    );
    assert_eq!(
        (b.customers, b.unserved_share, b.stores, b.visits),
        (Some(15), Some(1.0), 0, 0)
    );

    // C (3 customers) is suppressed; that alone would be recoverable from the totals, so the
    // next smallest, E (12), is suppressed too. D has no customers: zeros, not suppressed.
    let c = r("C");
    assert!(c.suppressed);
    assert_eq!(
        (
            c.customers,
            c.orders,
            c.revenue,
            c.nearest_store_km,
            c.unserved_share
        ),
        (None, None, None, None, None)
    );
    let e = r("E");
    assert!(e.suppressed && e.customers.is_none());
    let d = r("D");
    assert!(!d.suppressed);
    assert_eq!(
        (d.customers, d.nearest_store_km, d.unserved_share),
        (Some(0), None, None)
    );

    let t = &report.totals;
    assert_eq!((t.stores, t.customers, t.orders), (3, 50, 32 + 15 + 3 + 36));
    assert_eq!(t.unserved_customers, 8 + 15 + 3 + 12);
    assert_eq!(t.unserved_share, Some(0.76));
    assert_eq!((t.regions, t.regions_suppressed), (5, 2));
    assert_eq!(t.customers_outside_regions, Some(0));
    assert_eq!(t.visits, 157);
    assert_eq!(t.visits_for_unknown_stores, 99);
    // the store outside every region has no region but keeps its visits
    let s3 = report.stores.iter().find(|s| s.id == "s3").unwrap();
    assert_eq!((s3.region_id.as_deref(), s3.visits), (None, 7));
    assert_eq!(report.stores[0].region_id.as_deref(), Some("A"));
    assert_eq!(report.timings.len(), 4);
}

#[test]
fn radius_decides_who_is_unserved() {
    // At 60 km the 8 customers 55.6 km from s1 are served.
    let options = Options {
        radius_km: 60.0,
        ..Options::default()
    };
    let report = analyze(&dataset(), squares(), &options).unwrap();
    let a = report.regions.iter().find(|r| r.id == "A").unwrap();
    assert_eq!(
        (a.unserved_customers, a.unserved_share),
        (Some(0), Some(0.0))
    );
    // k = 1: nothing suppressed, C shows its 3 customers
    let options = Options {
        k: 1,
        ..Options::default()
    };
    let report = analyze(&dataset(), squares(), &options).unwrap();
    assert_eq!(report.totals.regions_suppressed, 0);
    assert_eq!(
        report
            .regions
            .iter()
            .find(|r| r.id == "C")
            .unwrap()
            .customers,
        Some(3)
    );
}

#[test]
fn no_stores_means_everyone_is_unserved() {
    let mut data = dataset();
    data.stores.clear();
    let report = analyze(&data, squares(), &Options::default()).unwrap();
    assert_eq!(report.totals.unserved_share, Some(1.0));
    assert_eq!(report.totals.median_nearest_store_km, None);
    let a = report.regions.iter().find(|r| r.id == "A").unwrap();
    assert_eq!((a.nearest_store_km, a.unserved_share), (None, Some(1.0)));
}

#[test]
fn complementary_suppression() {
    // nothing small: nothing suppressed
    assert_eq!(suppress(&[0, 10, 50], 10), [false, false, false]);
    // one small cell drags the smallest other non-empty cell along
    assert_eq!(suppress(&[3, 40, 12, 0], 10), [true, false, true, false]);
    // two small cells that together reach k need no help
    assert_eq!(suppress(&[6, 4, 40, 30], 10), [true, true, false, false]);
    // small cells together under k: keep adding the smallest until the hidden sum reaches k
    assert_eq!(
        suppress(&[1, 2, 3, 11, 20], 10),
        [true, true, true, true, false]
    );
    // ties: the first
    assert_eq!(suppress(&[1, 15, 15], 10), [true, true, false]);
    // a lone small cell with nothing to hide it behind stays suppressed
    assert_eq!(suppress(&[5, 0], 10), [true, false]);
    // k = 1 suppresses nothing
    assert_eq!(suppress(&[1, 2], 1), [false, false]);
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0]), Some(3.0));
    assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
}

#[test]
fn options_are_validated_with_the_fix() {
    let data = dataset();
    let bad = |o: Options| analyze(&data, squares(), &o).unwrap_err().to_string();
    assert!(
        bad(Options {
            k: 0,
            ..Options::default()
        })
        .contains("at least 1")
    );
    assert!(
        bad(Options {
            radius_km: -1.0,
            ..Options::default()
        })
        .contains("more than 0")
    );
    assert!(
        bad(Options {
            h3_resolution: 16,
            ..Options::default()
        })
        .contains("0..=15")
    );
    let mut data = dataset();
    data.stores.push(store("bad", 91.0, 0.0));
    let e = analyze(&data, squares(), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("store 'bad'"), "{e}");
}

#[test]
fn geojson_export_has_every_kind_with_region_ids_and_nulls_for_suppressed() {
    let report = analyze(
        &dataset(),
        squares(),
        &Options {
            k: 10,
            ..Options::default()
        },
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_geojson_string(true)).unwrap();
    let features = json["features"].as_array().unwrap();
    let kinds = |k: &str| {
        features
            .iter()
            .filter(|f| f["properties"]["kind"] == k)
            .collect::<Vec<_>>()
    };
    let regions = kinds("region");
    assert_eq!(regions.len(), 5);
    // the region's own id, with its JSON type
    assert_eq!(regions[0]["id"], "A");
    assert_eq!(regions[1]["id"], 2);
    assert_eq!(regions[0]["properties"]["customers"], 20);
    assert_eq!(regions[0]["properties"]["unserved_share"], 0.4);
    assert_eq!(regions[0]["geometry"]["type"], "Polygon");
    let c = &regions[2]["properties"];
    assert_eq!(c["suppressed"], true);
    assert!(c["customers"].is_null() && c["revenue"].is_null() && c["unserved_share"].is_null());
    assert_eq!(kinds("store").len(), 3);
    assert_eq!(
        kinds("store")[0]["geometry"]["coordinates"],
        serde_json::json!([5.0, 5.0])
    );
    // hexagons: A's 12 and B's 15 and E's 12 customers each sit on one spot (≥ k); A's 8 and
    // C's 3 don't reach k and are left out
    let hexes = kinds("hex");
    let mut counts: Vec<u64> = hexes
        .iter()
        .map(|h| h["properties"]["customers"].as_u64().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [12, 12, 15]);
    assert_eq!(report.density.suppressed_customers, 8 + 3);
    for c in kinds("candidate") {
        assert!(c["properties"]["customers"].as_u64().unwrap() >= 10);
        assert!(c["properties"]["rank"].as_u64().unwrap() >= 1);
        assert!(
            c["properties"]["reason"]
                .as_str()
                .unwrap()
                .contains("customers")
        );
    }
    assert!(json["attribution"].as_str().unwrap().contains("GeoNames"));
    assert_eq!(json["totals"]["customers"], 50);
    // without hexes
    let plain: serde_json::Value = serde_json::from_str(&report.to_geojson_string(false)).unwrap();
    assert!(
        plain["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["properties"]["kind"] != "hex")
    );
}

#[test]
fn regions_csv_has_one_row_per_region_and_blanks_when_suppressed() {
    let report = analyze(&dataset(), squares(), &Options::default()).unwrap();
    let mut out = Vec::new();
    report.write_regions_csv(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,suppressed,customers,orders,revenue,nearest_store_km,unserved_customers,unserved_share,stores,visits"
    );
    assert_eq!(lines.len(), 6);
    let a: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(a[..6], ["A", "Alpha", "false", "20", "32", "320.0"]);
    assert!((a[6].parse::<f64>().unwrap() - haversine_km((5.1, 5.0), (5.0, 5.0))).abs() < 1e-3);
    assert_eq!(a[7..], ["8", "0.4", "2", "150"]);
    assert_eq!(lines[3], "C,Gamma,true,,,,,,,0,0");
}

#[test]
fn the_founding_case_candidates_are_where_no_store_is() {
    // The demo's chain has stores in ten home provinces and online customers everywhere: the best
    // candidates are in provinces without stores, each claims at least k unserved customers, and
    // none claims a customer twice.
    let demo = demo::generate(&DemoOptions {
        seed: 7,
        stores: 150,
        customers: 30_000,
    });
    let data = demo.dataset();
    let boundaries =
        Arc::new(Boundaries::builtin(choose_builtin(&data.customers).unwrap()).unwrap());
    assert_eq!(boundaries.name(), "china-provinces");
    let report = analyze(&data, boundaries, &Options::default()).unwrap();
    assert_eq!(report.candidates.len(), 10);
    let top = &report.candidates[0];
    let region = top.region_id.as_deref().unwrap();
    assert!(
        !HOME_PROVINCES.contains(&region),
        "top candidate {} is in home province {region}",
        top.name
    );
    assert!(
        report
            .candidates
            .iter()
            .all(|c| c.customers >= 10 && c.country == "CN")
    );
    let claimed: u64 = report.candidates.iter().map(|c| c.customers).sum();
    assert!(claimed <= report.totals.unserved_customers);
    // scores never increase down the list
    assert!(
        report
            .candidates
            .windows(2)
            .all(|w| w[0].score >= w[1].score)
    );
    // Provinces without stores are (almost) entirely unserved; home provinces are partly served.
    // Hong Kong and Macau are left out: they border Shenzhen and Zhuhai, where the chain is.
    let shares: Vec<(bool, f64)> = report
        .regions
        .iter()
        .filter(|r| {
            r.customers.unwrap_or(0) >= 100 && !["810000", "820000"].contains(&r.id.as_str())
        })
        .map(|r| {
            (
                HOME_PROVINCES.contains(&r.id.as_str()),
                r.unserved_share.unwrap(),
            )
        })
        .collect();
    let away_min = shares
        .iter()
        .filter(|s| !s.0)
        .map(|s| s.1)
        .fold(1.0, f64::min);
    let home_max = shares
        .iter()
        .filter(|s| s.0)
        .map(|s| s.1)
        .fold(0.0, f64::max);
    assert!(
        away_min > 0.9 && home_max < 0.9,
        "away ≥ {away_min}, home ≤ {home_max}"
    );
}

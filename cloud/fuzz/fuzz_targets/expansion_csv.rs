//! The expansion analysis' readers of analysts' files: customers/orders CSV, stores CSV and
//! boundary GeoJSON. Arbitrary bytes never panic; every row is accepted or rejected (never lost);
//! what is accepted is valid; a boundary file that parses gives unique ids and in-range lookups.
#![no_main]

use dwell_cloud::expansion::Boundaries;
use dwell_cloud::expansion::input::{
    MAX_LISTED_REJECTIONS, for_each_order, read_customers, read_stores,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Customers: rows seen by the callback plus rejected rows = every record the CSV reader saw.
    let mut accepted = 0u64;
    if let Ok(rejections) = for_each_order(data, |row| {
        assert!((-90.0..=90.0).contains(&row.lat) && (-180.0..=180.0).contains(&row.lon));
        assert!(row.amount.is_finite() && row.amount >= 0.0);
        assert!(!row.customer_id.is_empty());
        accepted += 1;
        Ok(())
    }) {
        assert!(rejections.listed.len() as u64 <= rejections.total);
        assert!(rejections.listed.len() <= MAX_LISTED_REJECTIONS);
        let (customers, again) = read_customers(data).expect("same bytes, same header verdict");
        assert_eq!(again, rejections);
        assert_eq!(customers.orders(), accepted);
        let orders: u64 = customers
            .as_slice()
            .iter()
            .map(|c| u64::from(c.orders))
            .sum();
        assert_eq!(orders, accepted);
        assert!(customers.len() as u64 <= accepted);
        assert!(
            customers
                .as_slice()
                .iter()
                .all(|c| c.revenue.is_finite() && c.revenue >= 0.0)
        );
    }

    // Stores: ids unique and non-empty, positions valid.
    if let Ok(stores) = read_stores(data) {
        let mut ids: Vec<&str> = stores.stores.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), stores.stores.len());
        assert!(stores.stores.iter().all(|s| !s.id.is_empty()
            && (-90.0..=90.0).contains(&s.lat)
            && (-180.0..=180.0).contains(&s.lon)));
    }

    // Boundaries: any GeoJSON; lookups of a few points land in range.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(b) = Boundaries::from_geojson_str(text, "fuzz")
    {
        let n = b.regions().len();
        let mut ids: Vec<&str> = b.regions().iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
        for (lat, lon) in [
            (0.0, 0.0),
            (0.5, 0.5),
            (30.0, 104.0),
            (-45.0, 170.0),
            (89.9, -179.9),
        ] {
            assert!(b.locate(lat, lon).is_none_or(|r| r < n));
        }
    }
});

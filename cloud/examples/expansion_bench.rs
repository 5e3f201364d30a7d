//! Expansion analysis over a large chain: wall time per phase (issue target: < 5 s in total for
//! 1,000,000 customers).
//!
//! ```text
//! cargo run --release -p dwell-cloud --example expansion_bench -- [CUSTOMERS] [STORES] [SEED]
//! ```
//! Defaults: 1,000,000 customers, 1,000 stores, seed 7, from `expansion::demo` (the demo chain:
//! stores in ten provinces, online customers all over China). The generated CSVs are written to
//! memory first (not timed); the clock then covers what `dwell-cloud expansion` does: import
//! (CSV parsing, validation, grouping orders into customers), choosing and loading the
//! boundaries, nearest store, regions, hexagons, candidates and the GeoJSON export.

use dwell_cloud::expansion::demo::{self, DemoOptions};
use dwell_cloud::expansion::{Boundaries, Dataset, Options, analyze, choose_builtin};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("numbers: CUSTOMERS STORES SEED"));
    let customers = args.next().unwrap_or(1_000_000) as usize;
    let stores = args.next().unwrap_or(1_000) as usize;
    let seed = args.next().unwrap_or(7);

    let t = Instant::now();
    let chain = demo::generate(&DemoOptions {
        seed,
        stores,
        customers,
    });
    let (mut stores_csv, mut customers_csv) = (Vec::new(), Vec::new());
    chain.write_stores_csv(&mut stores_csv).unwrap();
    chain.write_customers_csv(&mut customers_csv).unwrap();
    println!(
        "generated {} stores, {} customers, {} orders ({:.1} MB of CSV) in {:.2} s (not timed below)",
        chain.stores.len(),
        customers,
        chain.orders.len(),
        customers_csv.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(chain);
    println!(
        "threads available: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Parsing and validating alone (no grouping into customers), to show where import time goes.
    let t = Instant::now();
    let mut rows = 0u64;
    dwell_cloud::expansion::input::for_each_order(&customers_csv[..], |_| {
        rows += 1;
        Ok(())
    })
    .unwrap();
    println!(
        "parse + validate {} rows alone: {:.3} s (not timed below)",
        rows,
        t.elapsed().as_secs_f64()
    );

    let total = Instant::now();
    let t = Instant::now();
    let data = Dataset::from_csv(&stores_csv[..], &customers_csv[..]).unwrap();
    let import = t.elapsed().as_secs_f64();
    assert_eq!(data.customers.len(), customers);
    assert_eq!(data.customer_rejections.total, 0);

    let t = Instant::now();
    let boundaries =
        Arc::new(Boundaries::builtin(choose_builtin(&data.customers).unwrap()).unwrap());
    let load = t.elapsed().as_secs_f64();

    let report = analyze(&data, boundaries, &Options::default()).unwrap();

    let t = Instant::now();
    let geojson = report.to_geojson_string(true);
    let export = t.elapsed().as_secs_f64();
    let total = total.elapsed().as_secs_f64();

    println!("{:<16} {:>8.3} s", "import", import);
    println!("{:<16} {:>8.3} s", "boundaries", load);
    for p in &report.timings {
        println!("{:<16} {:>8.3} s", p.phase.label(), p.seconds);
    }
    println!(
        "{:<16} {:>8.3} s  ({:.1} MB)",
        "export",
        export,
        geojson.len() as f64 / 1e6
    );
    println!("{:<16} {:>8.3} s  (target < 5 s)", "total", total);
    println!(
        "{} customers, {} unserved ({:.1}%), {} hexagons, {} candidates; first: {}",
        report.totals.customers,
        report.totals.unserved_customers,
        report.totals.unserved_share.unwrap_or(0.0) * 100.0,
        report.density.hexes.len(),
        report.candidates.len(),
        report
            .candidates
            .first()
            .map_or("none", |c| c.reason.as_str())
    );
}

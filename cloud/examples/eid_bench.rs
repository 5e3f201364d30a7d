//! EID resolution with 1,000,000 registered shoppers: table build time, memory, and resolutions
//! per second on one core.
//!
//! `cargo run --release -p dwell-cloud --example eid_bench [-- SHOPPERS]`
//!
//! Method: SHOPPERS keys (default 1,000,000) with exponents 9–12 are loaded into the resolver at a
//! fixed time (the live table: now − 17 min … now + 3 min); then 4,000,000 lookups are timed, half
//! of them EIDs those keys advertise at that time (hits), half random 8-byte values (misses, what
//! anonymous or foreign EIDs cost). Reported: build seconds, table entries, RSS, lookups/s.

use dwell_cloud::identity::resolver::{RegisteredKey, Resolver, ResolverConfig};
use dwell_shared::eid;
use std::sync::Arc;
use std::time::Instant;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let now = 1_795_500_000i64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let keys: Vec<RegisteredKey> = (0..n)
        .map(|i| {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&next().to_le_bytes());
            key[8..].copy_from_slice(&next().to_le_bytes());
            RegisteredKey {
                shopper: Arc::from(format!("shp-{i:08}")),
                key,
                exponent: 9 + (i % 4) as u8,
                clock_offset_s: 0,
            }
        })
        .collect();
    let rss0 = rss_mib();
    let r = Resolver::new(ResolverConfig::default());
    let t = Instant::now();
    r.load(keys.clone(), now);
    let build = t.elapsed();
    let stats = r.stats();
    println!(
        "{n} shoppers: table built in {:.2} s, {} entries ({:.1} per shopper), {} collisions, +{:.0} MiB RSS",
        build.as_secs_f64(),
        stats.table_entries,
        stats.table_entries as f64 / f64::from(n),
        stats.collisions,
        rss_mib() - rss0
    );
    let queries: Vec<([u8; 8], bool)> = (0..4_000_000u32)
        .map(|i| {
            if i % 2 == 0 {
                let k = &keys[(next() % u64::from(n)) as usize];
                (eid::compute(&k.key, k.exponent, now as u32), true)
            } else {
                (next().to_le_bytes(), false)
            }
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0u64;
    for (q, _) in &queries {
        if r.resolve(q, now * 1000).is_some() {
            hits += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let expected = queries.iter().filter(|q| q.1).count() as u64;
    assert_eq!(
        hits, expected,
        "every advertised EID resolves, no random one does"
    );
    println!(
        "{} lookups in {:.3} s: {:.2} M resolutions/s ({} hits)",
        queries.len(),
        secs,
        queries.len() as f64 / secs / 1e6,
        hits
    );
}

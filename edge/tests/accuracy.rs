//! Accuracy regression: the default tracker (`positioning = "zone"`) against the
//! nearest-receiver baseline on a simulated store (the example store, 6 zones, one receiver at
//! each zone's centre, 6 dB of RSSI noise), scored by `simulate::accuracy` (see its docs for what
//! a stay, a false stay and zone accuracy are).
//!
//! 40 shoppers for 30 minutes, seed 7: small enough for a debug build to run in seconds.
//!
//! Floors. Measured on this run when the floors were last set (the zone filter with its
//! "outside" rings, `track/bayes.rs`): zone 96.8 % accuracy and 0.165 false stays per real stay
//! (19 of 115); nearest 89.1 % and 0.81. The run is deterministic, so the floors sit just under
//! the measurement and only leave room for deliberate small trade-offs: accuracy ≥ 96 %, false
//! stays per real < 0.18 and under half the baseline's. (Before the rings: 97.0 % and 0.261.
//! With the move cost at ln 3000 and zero-length stays left out of paths: 97.1 % and 0.130, 15 of
//! 115.) Issue 6 asks for ≥ 93 % and < 0.2 on the full-size run; [`sweep`] measures that (seeds
//! 1–5: 93.1–95.9 % and 0.154–0.190, both met on every seed, narrowly on seed 2's accuracy; see
//! the README).

use dwell_edge::config::Config;
use dwell_edge::simulate::SimParams;
use dwell_edge::simulate::accuracy::compare_methods;
use dwell_edge::track::Positioning;

#[test]
fn zone_filter_beats_the_nearest_receiver_baseline() {
    let config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    )))
    .unwrap();
    assert_eq!(
        config.tracking.positioning,
        Positioning::Zone,
        "the zone filter is the default"
    );
    let params = SimParams {
        shoppers: 40,
        minutes: 30,
        seed: 7,
        noise_db: 6.0,
        ..SimParams::default()
    };
    let r = compare_methods(&config, &params, &[Positioning::Nearest, Positioning::Zone]).unwrap();
    let (nearest, zone) = (&r[0].1, &r[1].1);
    eprintln!("nearest {nearest:?}\nzone {zone:?}");
    assert!(zone.true_stays >= 50, "enough stays to score: {zone:?}");
    assert!(
        zone.zone_accuracy > nearest.zone_accuracy,
        "zone {:.3} vs nearest {:.3}",
        zone.zone_accuracy,
        nearest.zone_accuracy
    );
    assert!(
        zone.zone_accuracy >= 0.96,
        "zone accuracy {:.3}",
        zone.zone_accuracy
    );
    assert!(zone.false_stays_per_real * 2.0 < nearest.false_stays_per_real);
    assert!(
        zone.false_stays_per_real < 0.18,
        "false stays per real {:.3}",
        zone.false_stays_per_real
    );
}

/// The tracker alone, in release: `cargo test --release -p dwell-edge --test accuracy --
/// --ignored --nocapture`. Sightings are identified beforehand so only `Tracker::observe` and
/// the once-a-second `tick` are timed.
#[test]
#[ignore]
fn tracker_throughput() {
    use dwell_edge::identify::{Identifier, Identity};
    use dwell_edge::source::Radio;
    use dwell_edge::track::{DeviceKey, Sighting, Tracker};
    let config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    )))
    .unwrap();
    let params = SimParams {
        shoppers: 200,
        minutes: 60,
        ..SimParams::default()
    };
    let sim = dwell_edge::simulate::run(config.store_layout(), &params).unwrap();
    let mut ident = Identifier::new(config.salt_schedule(), None);
    let mut input = Vec::new();
    for obs in sim.observations() {
        let obs = obs.unwrap();
        let id = match &obs.radio {
            Radio::Ble {
                addr,
                addr_type,
                ad,
            } => ident.ble(obs.ts_ms, *addr, *addr_type, ad),
            Radio::Wifi { sa } => ident.wifi(obs.ts_ms, *sa),
        };
        if let Identity::Device {
            device,
            tier,
            randomized,
            power_1m,
        } = id
        {
            input.push((
                obs.ts_ms,
                obs.receiver,
                device,
                tier,
                randomized,
                obs.rssi,
                power_1m,
            ));
        }
    }
    for mode in [
        Positioning::Nearest,
        Positioning::Centroid,
        Positioning::Zone,
    ] {
        let mut opts = config.tracking;
        opts.positioning = mode;
        let mut tracker = Tracker::new(config.store_layout(), opts);
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        let mut last_s = i64::MIN;
        for (ts, rx, id, tier, randomized, rssi, power) in &input {
            if ts / 1000 > last_s {
                last_s = ts / 1000;
                tracker.tick(*ts, &mut out);
            }
            let s = Sighting {
                ts_ms: *ts,
                receiver: rx,
                device: DeviceKey {
                    id,
                    tier: *tier,
                    randomized: *randomized,
                },
                rssi: *rssi,
                power_1m: *power,
            };
            tracker.observe(&s, &mut out);
            out.clear();
        }
        let dt = start.elapsed().as_secs_f64();
        eprintln!(
            "{mode:?}: {} sightings in {:.3} s = {:.2} M sightings/s",
            input.len(),
            dt,
            input.len() as f64 / dt / 1e6
        );
    }
}

fn diag_missed() -> bool {
    std::env::var("DIAG_MISSED").is_ok()
}

/// The full-size measurement of the README (100 shoppers, 60 minutes, every shopper with the app,
/// as `dwell-edge accuracy` runs it), the zone filter and the baseline side by side: `cargo test
/// --release -p dwell-edge --test accuracy -- --ignored sweep --nocapture`. Seeds from `SEEDS`
/// (default 1,2,3,4,5), noise from `NOISE_DB` (default 6), `MODES=zone` for the filter alone.
/// Diagnostics for the first seed: `DIAG=1` lists every false zone-filter stay with the person's
/// true stays and splits the missed seconds (late start, early end, middle, whole stays missed);
/// `DIAG_MISSED=1` also lists the stays behind them; `WHO=shopper-3,…` prints those people's
/// true and tracked stays and device ids.
#[test]
#[ignore]
fn sweep() {
    use dwell_edge::simulate::accuracy::evaluate;
    use dwell_shared::wire::{Event, EventKind};
    let config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    )))
    .unwrap();
    let seeds: Vec<u64> = std::env::var("SEEDS")
        .unwrap_or_else(|_| "1,2,3,4,5".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let noise: f32 = std::env::var("NOISE_DB").map_or(6.0, |s| s.parse().unwrap());
    let modes: Vec<Positioning> = match std::env::var("MODES").as_deref() {
        Ok("zone") => vec![Positioning::Zone],
        _ => vec![Positioning::Nearest, Positioning::Zone],
    };
    let diag = std::env::var("DIAG").is_ok();
    let (mut acc, mut fpr) = (0.0, 0.0);
    for (n, &seed) in seeds.iter().enumerate() {
        let params = SimParams {
            shoppers: 100,
            minutes: 60,
            seed,
            noise_db: noise,
            app_share: 1.0,
            ..SimParams::default()
        };
        let sim = dwell_edge::simulate::run(config.store_layout(), &params).unwrap();
        for &mode in &modes {
            let mut c = config.clone();
            c.tracking.positioning = mode;
            let mut buf = Vec::new();
            dwell_edge::replay::run(&c, sim.observations(), &mut buf, |_| {}).unwrap();
            let events: Vec<Event> = buf
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| serde_json::from_slice(l).ok())
                .collect();
            let r = evaluate(&sim.truth, &events, &config.store_layout().visit);
            println!(
                "seed {seed} σ {noise} {mode:?}: accuracy {:.1}% false/real {:.3} ({} of {}) visits ± {:.1}%",
                r.zone_accuracy * 100.0,
                r.false_stays_per_real,
                r.false_stays,
                r.true_stays,
                r.visit_count_error * 100.0
            );
            if mode == Positioning::Zone {
                acc += r.zone_accuracy / seeds.len() as f64;
                fpr += r.false_stays_per_real / seeds.len() as f64;
            }
            if !(diag && n == 0 && mode == Positioning::Zone) {
                continue;
            }
            let t0 = params.start_ms;
            // Where the missed seconds of the scored true stays are: before the first right
            // second (late), after the last (early end), between (wrong in the middle), or the
            // whole stay (missed), by stay length.
            let (mut late, mut early, mut middle, mut missed, mut scored) =
                (0i64, 0i64, 0i64, [0i64; 4], 0i64);
            let enter = i64::from(config.store_layout().visit.zone_enter_s) * 1000;
            for p in sim.truth.people.iter().filter(|p| p.device_kind == "app") {
                let ids: Vec<&str> = p.devices.iter().map(|d| d.id.as_str()).collect();
                let mut tracked = Vec::new();
                for e in &events {
                    if let EventKind::VisitEnd { device, path, .. } = &e.kind
                        && ids.contains(&device.device.as_str())
                    {
                        tracked.extend(path.iter().cloned());
                    }
                }
                if std::env::var("WHO").is_ok_and(|w| w.split(',').any(|w| w == p.id)) {
                    let truth: Vec<String> = p
                        .stays
                        .iter()
                        .map(|s| {
                            format!(
                                "{}@{:.0}-{:.0}",
                                s.zone,
                                (s.enter_ms - t0) as f64 / 1e3,
                                (s.exit_ms - t0) as f64 / 1e3
                            )
                        })
                        .collect();
                    let got: Vec<String> = tracked
                        .iter()
                        .map(|s| {
                            format!(
                                "{}@{:.0}-{:.0}",
                                s.zone,
                                (s.enter_ms - t0) as f64 / 1e3,
                                (s.exit_ms - t0) as f64 / 1e3
                            )
                        })
                        .collect();
                    for d in &p.devices {
                        println!(
                            "  DEV {} {:.0}-{:.0}",
                            d.id,
                            (d.from_ms - t0) as f64 / 1e3,
                            (d.to_ms - t0) as f64 / 1e3
                        );
                    }
                    println!(
                        "  WHO {}\n    truth   {}\n    tracker {}",
                        p.id,
                        truth.join(" "),
                        got.join(" ")
                    );
                }
                for s in p.stays.iter().filter(|s| s.exit_ms - s.enter_ms >= enter) {
                    let right: Vec<bool> = (s.enter_ms..s.exit_ms)
                        .step_by(1000)
                        .map(|t| {
                            tracked
                                .iter()
                                .any(|k| k.zone == s.zone && k.enter_ms <= t && t < k.exit_ms)
                        })
                        .collect();
                    let n = right.len() as i64;
                    scored += n;
                    match (
                        right.iter().position(|&r| r),
                        right.iter().rposition(|&r| r),
                    ) {
                        (Some(a), Some(b)) => {
                            late += a as i64;
                            if diag_missed() && (a >= 8 || n - 1 - b as i64 >= 8) {
                                println!(
                                    "  LATE {} {} {:.0}-{:.0} late {a} early {}",
                                    p.id,
                                    s.zone,
                                    (s.enter_ms - t0) as f64 / 1e3,
                                    (s.exit_ms - t0) as f64 / 1e3,
                                    n - 1 - b as i64
                                );
                            }
                            early += n - 1 - b as i64;
                            middle += right[a..=b].iter().filter(|r| !**r).count() as i64;
                        }
                        _ => {
                            let bucket = match n {
                                0..20 => 0,
                                20..40 => 1,
                                40..120 => 2,
                                _ => 3,
                            };
                            missed[bucket] += n;
                            if diag_missed() {
                                println!(
                                    "  MISSED {} {} {:.0}-{:.0}",
                                    p.id,
                                    s.zone,
                                    (s.enter_ms - t0) as f64 / 1e3,
                                    (s.exit_ms - t0) as f64 / 1e3
                                );
                            }
                        }
                    }
                }
            }
            println!(
                "  of {scored} s scored, wrong: late {late}, early end {early}, middle {middle}, whole stays missed by length <20/<40/<120/more {missed:?}"
            );
            for p in sim.truth.people.iter().filter(|p| p.device_kind == "app") {
                let ids: Vec<&str> = p.devices.iter().map(|d| d.id.as_str()).collect();
                for e in &events {
                    let EventKind::VisitEnd { device, path, .. } = &e.kind else {
                        continue;
                    };
                    if !ids.contains(&device.device.as_str()) {
                        continue;
                    }
                    for k in path {
                        let len = k.exit_ms - k.enter_ms;
                        let overlap: i64 = p
                            .stays
                            .iter()
                            .filter(|s| s.zone == k.zone)
                            .map(|s| (s.exit_ms.min(k.exit_ms) - s.enter_ms.max(k.enter_ms)).max(0))
                            .sum();
                        if overlap * 2 >= len.max(1) {
                            continue;
                        }
                        let truth: Vec<String> = p
                            .stays
                            .iter()
                            .map(|s| {
                                format!(
                                    "{}@{:.0}-{:.0}",
                                    s.zone,
                                    (s.enter_ms - t0) as f64 / 1e3,
                                    (s.exit_ms - t0) as f64 / 1e3
                                )
                            })
                            .collect();
                        println!(
                            "  FALSE {} {} {:.0}-{:.0} ({:.0} s) visit {:?} truth {}",
                            p.id,
                            k.zone,
                            (k.enter_ms - t0) as f64 / 1e3,
                            (k.exit_ms - t0) as f64 / 1e3,
                            len as f64 / 1e3,
                            p.visit.map(|(a, b)| ((a - t0) / 1000, (b - t0) / 1000)),
                            truth.join(" ")
                        );
                    }
                }
            }
        }
    }
    println!(
        "zone mean: accuracy {:.1}% false/real {:.3}",
        acc * 100.0,
        fpr
    );
}

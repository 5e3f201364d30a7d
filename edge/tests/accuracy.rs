//! Accuracy regression: the default tracker (`positioning = "zone"`) against the
//! nearest-receiver baseline on a simulated store (the example store, 6 zones, one receiver at
//! each zone's centre, 6 dB of RSSI noise), scored by `simulate::accuracy` (see its docs for what
//! a stay, a false stay and zone accuracy are).
//!
//! 40 shoppers for 30 minutes, seed 7: small enough for a debug build to run in seconds.
//!
//! Floors. Measured on this run when the floors were set: zone 97.0 % accuracy and 0.261 false
//! stays per real stay; nearest 89.1 % and 0.81. The run is deterministic, so the floors only
//! need room for deliberate small trade-offs, not for luck: accuracy ≥ 94 % (three points under
//! the measurement; across seeds 1–5 of the full-size run the filter's accuracy spreads over
//! 92.4–96.2 %), false stays per real < 0.30 and under half the baseline's. Issue 6 asks for
//! < 0.2; the filter measures 0.21–0.33 at full size, so that target is not met yet and the floor
//! says so rather than pretending (see `track/bayes.rs` for where the rest comes from).

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
        zone.zone_accuracy >= 0.94,
        "zone accuracy {:.3}",
        zone.zone_accuracy
    );
    assert!(zone.false_stays_per_real * 2.0 < nearest.false_stays_per_real);
    assert!(
        zone.false_stays_per_real < 0.30,
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
    let mut ident = Identifier::new(config.privacy.salt_rotation, 0, None);
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

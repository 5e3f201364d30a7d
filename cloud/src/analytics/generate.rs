//! A deterministic synthetic event history — visits with paths, traffic, presence, door and app
//! counts — for tests and benchmarks of the roll-ups: the same spec and seed give the same events,
//! byte for byte, on every machine.
//!
//! It is not a simulation of radio (the edge's simulator and replay do that): it writes the events
//! a gateway would publish, with the shapes that matter to analytics — visits across local
//! midnight, very long and very short visits, every privacy tier, randomized addresses, repeated
//! zones in a path, paths longer than the path cap — spread over each store's local opening hours.

use dwell_shared::definitions::VisitDefinitions;
use dwell_shared::wire::{DeviceRef, DeviceTier, Event, EventKind, PathStay};
use jiff::civil::Date;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::local::{add_days, day_start_ms, time_zone};
use crate::store::EventRow;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistorySpec {
    /// (store id, IANA time zone); each store gets one gateway, `gw-<store>`.
    pub stores: Vec<(String, String)>,
    /// The first local day.
    pub first_day: Date,
    pub days: u32,
    /// Mean visits (of every kind of device) per store and day.
    pub visits_per_day: u32,
    /// Period of the traffic / presence / app presence counts, seconds (the edge uses 60).
    pub counts_every_s: u32,
    /// Zone ids; the first is the entrance.
    pub zones: Vec<String>,
    pub seed: u64,
}

impl Default for HistorySpec {
    fn default() -> Self {
        HistorySpec {
            stores: vec![("store-1".into(), "Europe/Berlin".into())],
            first_day: jiff::civil::date(2025, 1, 1),
            days: 7,
            visits_per_day: 40,
            counts_every_s: 900,
            zones: [
                "entrance",
                "fresh",
                "bakery",
                "cosmetics",
                "drinks",
                "checkout",
            ]
            .map(String::from)
            .to_vec(),
            seed: 1,
        }
    }
}

/// Local opening hours of the generated stores: 08:00 to 21:00.
const OPEN_H: i64 = 8;
const CLOSE_H: i64 = 21;

/// The events, per store in gateway sequence order, as ingest would store them (`received_ms` =
/// the event time).
pub fn history(spec: &HistorySpec) -> Vec<EventRow> {
    let mut out = Vec::new();
    for (si, (store, tz_name)) in spec.stores.iter().enumerate() {
        let tz = time_zone(tz_name);
        let gateway = format!("gw-{store}");
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed.wrapping_mul(1_000_003) + si as u64);
        let mut seq = 0u64;
        let mut push = |out: &mut Vec<EventRow>, ts_ms: i64, kind: EventKind| {
            seq += 1;
            let zone = match &kind {
                EventKind::ZoneEnter { zone, .. } => Some(zone.clone()),
                _ => None,
            };
            let event = Event { seq, ts_ms, kind };
            out.push(EventRow {
                gateway: gateway.clone(),
                seq: seq as i64,
                store: store.clone(),
                ts_ms,
                kind: event.kind.type_name(),
                device: event.kind.device().map(|d| d.device.clone()),
                zone,
                // Serializing a wire type cannot fail.
                payload: serde_json::to_string(&event).expect("events serialize"),
                received_ms: ts_ms,
            });
        };
        for d in 0..spec.days {
            let day = add_days(spec.first_day, i64::from(d));
            let Some(midnight) = day_start_ms(day, &tz) else {
                continue;
            };
            // Wall-clock opening hours: 08:00 is midnight + 8 h except on a DST day, where the
            // generator doesn't care (it only needs plausible times).
            let open = midnight + OPEN_H * 3_600_000;
            let close = midnight + CLOSE_H * 3_600_000;
            let weekend = matches!(
                day.weekday(),
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            );
            let mean = f64::from(spec.visits_per_day) * if weekend { 1.4 } else { 1.0 };
            let n = (mean * rng.random_range(0.7..1.3)) as u32;
            for v in 0..n {
                // A few visits start late and run past local midnight.
                let start = if v % 41 == 7 {
                    midnight + 23 * 3_600_000 + rng.random_range(0..3_500_000)
                } else {
                    rng.random_range(open..close)
                };
                visit(&mut rng, spec, start, &mut |ts, k| push(&mut out, ts, k));
            }
            let every = i64::from(spec.counts_every_s.max(1)) * 1000;
            let mut t = open - open.rem_euclid(every) + every;
            while t <= close {
                let w = spec.counts_every_s;
                push(
                    &mut out,
                    t,
                    EventKind::Traffic {
                        count: rng.random_range(0..25),
                        window_s: w,
                    },
                );
                push(
                    &mut out,
                    t,
                    EventKind::Presence {
                        zones: spec
                            .zones
                            .iter()
                            .map(|z| (z.clone(), rng.random_range(0..6)))
                            .collect(),
                        window_s: w,
                    },
                );
                if rng.random_range(0..3) == 0 {
                    push(
                        &mut out,
                        t,
                        EventKind::AppPresence {
                            count: rng.random_range(0..4),
                            window_s: w,
                        },
                    );
                }
                if rng.random_range(0..2) == 0 {
                    push(
                        &mut out,
                        t,
                        EventKind::Door {
                            node: "door-1".into(),
                            entered: rng.random_range(0..15),
                            exited: rng.random_range(0..15),
                            window_s: w,
                        },
                    );
                }
                t += every;
            }
        }
    }
    out
}

/// One visit: `visit_start`, a `zone_enter` per stay, `visit_end` a session timeout later.
fn visit(
    rng: &mut ChaCha8Rng,
    spec: &HistorySpec,
    start: i64,
    emit: &mut dyn FnMut(i64, EventKind),
) {
    let defs = VisitDefinitions::DEFAULT;
    let roll = rng.random_range(0..1000);
    let secs: i64 = match roll {
        0..250 => rng.random_range(5..120),       // passers-by
        250..260 => 300,                          // bucket edges, exactly
        260..270 => 600,                          // engaged, exactly
        270..950 => rng.random_range(120..3_600), // most visits
        950..995 => rng.random_range(3_600..21_600),
        _ => rng.random_range(21_600..30_000), // staff-like, 6 h+
    };
    let tier_roll = rng.random_range(0..100);
    let (device, tier, randomized) = match tier_roll {
        0..60 => (
            format!("h:{:016x}", rng.random::<u64>()),
            DeviceTier::Anonymous,
            false,
        ),
        60..80 => (
            format!("h:{:016x}", rng.random::<u64>()),
            DeviceTier::Anonymous,
            true,
        ),
        80..95 => (
            format!("eid:{:016x}", rng.random::<u64>()),
            DeviceTier::Consented,
            false,
        ),
        _ => (
            format!(
                "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:{}",
                rng.random_range(0..50)
            ),
            DeviceTier::Static,
            false,
        ),
    };
    let device = DeviceRef {
        device,
        tier: (tier_roll % 7 != 0).then_some(tier), // some older gateways send no tier
        randomized: Some(randomized),
    };
    let end = start + secs * 1000;
    emit(
        start,
        EventKind::VisitStart {
            device: device.clone(),
            zone: None,
        },
    );
    // Stays: a random walk over the zones (repeats allowed), cutting the visit into pieces.
    let stays = if rng.random_range(0..10) == 0 {
        0
    } else if rng.random_range(0..50) == 0 {
        MAX_STAYS
    } else {
        rng.random_range(1..7)
    };
    let mut path = Vec::with_capacity(stays);
    let piece = (end - start) / (stays as i64 + 1).max(1);
    let mut t = start;
    for i in 0..stays {
        let zone = if i == 0 && rng.random_range(0..10) < 8 {
            spec.zones[0].clone()
        } else {
            spec.zones[rng.random_range(0..spec.zones.len())].clone()
        };
        let enter = t + rng.random_range(0..piece.max(1) / 4 + 1);
        let exit = (enter + piece).min(end);
        emit(
            enter,
            EventKind::ZoneEnter {
                device: device.clone(),
                zone: zone.clone(),
            },
        );
        path.push(PathStay {
            zone,
            enter_ms: enter,
            exit_ms: exit,
        });
        t = exit;
    }
    emit(
        end + i64::from(defs.session_timeout_s) * 1000,
        EventKind::VisitEnd {
            device,
            class: defs.classify(secs as u64),
            start_ms: start,
            end_ms: end,
            path,
        },
    );
}

/// Stays of the rare very long path (beyond the path cap).
const MAX_STAYS: usize = 20;

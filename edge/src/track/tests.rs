//! Tracker scenarios with explicit timestamps: the "paused time" of these tests is simply that
//! the tracker has no clock, so thresholds are checked to the millisecond and nothing sleeps.
//!
//! The floor plan: three 10 m × 10 m zones in a row, `a` | `b` | `c`, each with a receiver at its
//! centre. A device "in zone b" is heard at −50 dBm by `rb` and at −100 dBm (below the −90 dBm
//! passer-by floor, so ignored for position) by the others; smoothing is off, so each sighting
//! places the device exactly where the test says. Each expected list is worked out beside it.

use super::*;
use dwell_shared::wire::{Receiver, Version};

const S: i64 = 1000;

fn layout(defs: VisitDefinitions) -> StoreConfig {
    let square = |x0: f64| vec![[x0, 0.0], [x0 + 10.0, 0.0], [x0 + 10.0, 10.0], [x0, 10.0]];
    StoreConfig {
        v: Version,
        store: "store-001".into(),
        timezone: "UTC".into(),
        receivers: ["ra", "rb", "rc"]
            .iter()
            .enumerate()
            .map(|(i, id)| Receiver {
                id: (*id).into(),
                x: 5.0 + 10.0 * i as f64,
                y: 5.0,
            })
            .collect(),
        zones: ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, id)| Zone {
                id: (*id).into(),
                name: id.to_uppercase(),
                polygon: square(10.0 * i as f64),
            })
            .collect(),
        entrance: Some("a".into()),
        visit: defs,
    }
}

/// Every sighting places the device exactly: smoothing off, and the strongest receiver wins
/// (the zone filter's own decision rules are tested in `track/bayes.rs` and below).
fn options() -> TrackOptions {
    TrackOptions {
        smoothing: Smoothing::None,
        positioning: Positioning::Nearest,
        ..TrackOptions::DEFAULT
    }
}

struct Sim {
    tracker: Tracker,
    out: Vec<TrackEvent>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(VisitDefinitions::DEFAULT, options())
    }

    fn with(defs: VisitDefinitions, opts: TrackOptions) -> Sim {
        let layout = layout(defs);
        layout.validate().unwrap();
        Sim {
            tracker: Tracker::new(&layout, opts),
            out: Vec::new(),
        }
    }

    fn hear(&mut self, ts_ms: i64, device: &str, receiver: &str, rssi: i8) {
        let s = Sighting {
            ts_ms,
            receiver,
            device: DeviceKey {
                id: device,
                tier: DeviceTier::Anonymous,
                randomized: device.starts_with("rnd"),
            },
            rssi,
            power_1m: None,
        };
        self.tracker.observe(&s, &mut self.out);
    }

    /// One round of sightings placing `device` in `zone` at `ts_ms`.
    fn in_zone(&mut self, ts_ms: i64, device: &str, zone: &str) {
        for (rx, z) in [("ra", "a"), ("rb", "b"), ("rc", "c")] {
            self.hear(ts_ms, device, rx, if z == zone { -50 } else { -100 });
        }
    }

    /// In `zone` once a second, from `from_s` to `to_s` inclusive.
    fn stay(&mut self, device: &str, zone: &str, from_s: i64, to_s: i64) {
        for t in from_s..=to_s {
            self.in_zone(t * S, device, zone);
        }
    }

    /// Heard, but outside the store (−80 dBm: between the floor and the visitor threshold).
    fn outside(&mut self, ts_ms: i64, device: &str) {
        for rx in ["ra", "rb", "rc"] {
            self.hear(ts_ms, device, rx, -80);
        }
    }

    fn tick(&mut self, ts_ms: i64) {
        self.tracker.tick(ts_ms, &mut self.out);
    }

    /// The events about `device`, in a compact form, oldest first.
    fn log(&self, device: &str) -> Vec<String> {
        self.out
            .iter()
            .filter(|e| e.kind.device().is_some_and(|d| d.device == device))
            .map(brief)
            .collect()
    }

    /// Only the zone events about `device`.
    fn zone_log(&self, device: &str) -> Vec<String> {
        self.log(device)
            .into_iter()
            .filter(|l| l.contains(" zone_"))
            .collect()
    }
}

fn brief(e: &TrackEvent) -> String {
    let t = e.ts_ms;
    match &e.kind {
        EventKind::VisitStart { zone, .. } => format!("{t} visit_start {zone:?}"),
        EventKind::ZoneEnter { zone, .. } => format!("{t} zone_enter {zone}"),
        EventKind::ZoneDwell { zone, dwell_s, .. } => format!("{t} zone_dwell {zone} {dwell_s}"),
        EventKind::ZoneExit { zone, dwell_s, .. } => format!("{t} zone_exit {zone} {dwell_s}"),
        EventKind::VisitEnd {
            class,
            start_ms,
            end_ms,
            path,
            ..
        } => {
            let path: Vec<String> = path
                .iter()
                .map(|p| format!("{}:{}-{}", p.zone, p.enter_ms, p.exit_ms))
                .collect();
            format!(
                "{t} visit_end {class} {start_ms}-{end_ms} [{}]",
                path.join(" ")
            )
        }
        other => format!("{t} {}", other.type_name()),
    }
}

#[test]
fn brief_excursion_makes_no_stay_but_six_seconds_does() {
    let mut sim = Sim::new(); // zone_enter_s = 5, zone_exit_s = 10
    sim.stay("d", "a", 0, 20);
    sim.stay("d", "b", 21, 22); // 2 s in b: placed there at 21 and 22, back in a at 23
    sim.stay("d", "a", 23, 40);
    sim.stay("d", "b", 41, 46); // 6 s in b: 41..47
    sim.stay("d", "a", 47, 60);
    assert_eq!(
        sim.zone_log("d"),
        [
            // In a since 0: confirmed at 0 + 5 s.
            "5000 zone_enter a",
            // The 2 s excursion cancelled the departure, so a's dwell ran on: 30 s at 30 s.
            "30000 zone_dwell a 30",
            // In b since 41: confirmed at 41 + 5 = 46 s; a's stay ended when it left, 0..41.
            "46000 zone_exit a 41",
            "46000 zone_enter b",
            // Back in a at 47: confirmed at 52; b's stay was 41..47 = 6 s.
            "52000 zone_exit b 6",
            "52000 zone_enter a",
        ]
    );
}

#[test]
fn each_milestone_exactly_once_at_its_moment() {
    // One sighting a second: milestones at enter (0) + 30/60/120 s.
    let mut fine = Sim::new();
    fine.stay("d", "a", 0, 130);
    // Sightings every 7 s and ticks at odd moments in between: the same events, same stamps.
    let mut coarse = Sim::new();
    for t in (0..=133).step_by(7) {
        coarse.in_zone(t * S, "d", "a");
        coarse.tick(t * S + 3_500);
        coarse.tick(t * S + 3_500); // a repeated tick concludes nothing new
    }
    let want = [
        "5000 zone_enter a",
        "30000 zone_dwell a 30",
        "60000 zone_dwell a 60",
        "120000 zone_dwell a 120",
    ];
    assert_eq!(fine.zone_log("d"), want);
    assert_eq!(coarse.zone_log("d"), want);
    // Staying on to 299 s adds nothing (next milestone: 300 s).
    fine.stay("d", "a", 131, 299);
    assert_eq!(fine.zone_log("d").len(), 4);
    fine.stay("d", "a", 300, 300);
    assert_eq!(
        fine.zone_log("d").last().unwrap(),
        "300000 zone_dwell a 300"
    );
}

#[test]
fn session_timeout_ends_the_visit_exactly() {
    let mut sim = Sim::new(); // session_timeout_s = 900, reading_ttl_s = 15
    sim.stay("d", "a", 0, 100); // last inside at 100 s
    // Readings expire 15 s after the last sighting (115 s): from 100 s the device is in no zone,
    // so the exit is confirmed at 100 + 10 = 110 s; the stay ran 0..100.
    sim.tick(200 * S);
    assert_eq!(sim.zone_log("d").last().unwrap(), "110000 zone_exit a 100");
    // The visit ends at 100 + 900 = 1000 s: not a millisecond before.
    sim.tick(1000 * S - 1);
    assert!(!sim.log("d").iter().any(|l| l.contains("visit_end")));
    sim.tick(1000 * S);
    assert_eq!(
        sim.log("d").last().unwrap(),
        "1000000 visit_end passerby 0-100000 [a:0-100000]"
    );
    // Idle (no visit, unseen for the timeout since 100 s) in the same tick: forgotten.
    assert_eq!(sim.tracker.devices(), 0);
    assert_eq!(sim.tracker.stats().evicted_idle, 1);
}

#[test]
fn visitor_from_120_seconds_passerby_below() {
    let mut sim = Sim::new(); // min_visit_s = 120
    sim.stay("short", "a", 0, 119); // inside 0..119 s: 119 s
    sim.stay("long", "a", 0, 120); // 120 s
    sim.tick(2000 * S);
    let end = |d| {
        sim.log(d)
            .into_iter()
            .find(|l| l.contains("visit_end"))
            .unwrap()
    };
    // Ends at last inside + 900 s.
    assert_eq!(
        end("short"),
        "1019000 visit_end passerby 0-119000 [a:0-119000]"
    );
    assert_eq!(
        end("long"),
        "1020000 visit_end visitor 0-120000 [a:0-120000]"
    );
}

#[test]
fn path_lists_three_zones_in_order() {
    let mut sim = Sim::new();
    sim.stay("d", "a", 0, 30);
    sim.stay("d", "b", 31, 60);
    sim.stay("d", "c", 61, 90);
    sim.tracker.finish(&mut sim.out);
    assert_eq!(
        sim.log("d"),
        [
            // Placed in a at the first sighting.
            "0 visit_start Some(\"a\")",
            "5000 zone_enter a",
            "30000 zone_dwell a 30",
            // b from 31 s, confirmed at 36 s; a ran 0..31.
            "36000 zone_exit a 31",
            "36000 zone_enter b",
            // b's 30 s milestone at 31 + 30 = 61 s: the sighting at 61 s (already in c) first
            // concludes b's dwell up to then, so it is reached exactly.
            "61000 zone_dwell b 30",
            "66000 zone_exit b 30",
            "66000 zone_enter c",
            // Last sighting 90 s; exit confirmed at 90 + 10 s; c ran 61..90.
            "100000 zone_exit c 29",
            "990000 visit_end passerby 0-90000 [a:0-31000 b:31000-61000 c:61000-90000]",
        ]
    );
}

#[test]
fn passerby_twice_then_visitor() {
    let mut sim = Sim::new();
    // Visit 1: inside 0..30 s, then gone. No tick afterwards: the next sighting (2000 s, past
    // 30 + 900) first ends visit 1 at exactly 930 s.
    sim.stay("d", "a", 0, 30);
    // Visit 2: 2000..2060 s, heard outside the store afterwards (still seen, not inside).
    sim.stay("d", "a", 2000, 2060);
    for t in 2061..2100 {
        sim.outside(t * S, "d");
    }
    sim.tick(3000 * S); // ends visit 2 at 2060 + 900 = 2960 s
    // Visit 3: 5000..5300 s.
    sim.stay("d", "a", 5000, 5300);
    sim.tracker.finish(&mut sim.out);
    let ends: Vec<String> = sim
        .log("d")
        .into_iter()
        .filter(|l| l.contains("visit_end"))
        .collect();
    assert_eq!(
        ends,
        [
            "930000 visit_end passerby 0-30000 [a:0-30000]",
            // Outside from 2061 s: no zone from then, a ran 2000..2061.
            "2960000 visit_end passerby 2000000-2060000 [a:2000000-2061000]",
            "6200000 visit_end visitor 5000000-5300000 [a:5000000-5300000]",
        ]
    );
    let starts = sim
        .log("d")
        .iter()
        .filter(|l| l.contains("visit_start"))
        .count();
    assert_eq!(starts, 3);
}

#[test]
fn memory_stays_at_the_cap() {
    const CAP: u32 = 1000;
    const DEVICES: u32 = 100_000;
    let mut sim = Sim::with(
        VisitDefinitions::DEFAULT,
        TrackOptions {
            max_devices: CAP,
            ..options()
        },
    );
    for i in 0..DEVICES {
        sim.hear(i64::from(i), &format!("h:{i:08x}"), "ra", -60);
        assert!(sim.tracker.devices() <= CAP as usize);
    }
    let stats = sim.tracker.stats();
    assert_eq!(sim.tracker.devices(), CAP as usize);
    // Every device past the first CAP pushed one out, each with an open visit, which was ended
    // (not lost): 99,000 visit_end events, all passers-by (0 s visits).
    assert_eq!(stats.evicted_cap, u64::from(DEVICES - CAP));
    assert_eq!(stats.visits_ended_by_eviction, u64::from(DEVICES - CAP));
    let count = |out: &[TrackEvent], ty| out.iter().filter(|e| e.kind.type_name() == ty).count();
    assert_eq!(count(&sim.out, "visit_start"), DEVICES as usize);
    assert_eq!(count(&sim.out, "visit_end"), (DEVICES - CAP) as usize);
    // With no sightings for the session timeout the rest end and are forgotten.
    sim.tick(i64::from(DEVICES) + 900 * S);
    assert_eq!(sim.tracker.devices(), 0);
    assert_eq!(count(&sim.out, "visit_end"), DEVICES as usize);
}

#[test]
fn presence_and_traffic_per_window() {
    let mut sim = Sim::new(); // presence_interval_s = 60
    for t in (0..60).step_by(5) {
        let ts = t * S;
        for d in ["a1", "a2", "a3"] {
            sim.in_zone(ts, d, "a");
        }
        for d in ["b1", "b2"] {
            sim.in_zone(ts, d, "b");
        }
        sim.outside(ts, "passing"); // seen, never inside: in no zone
        sim.outside(ts, "rnd-1"); // randomized: counted as traffic
    }
    sim.outside(30 * S, "rnd-2");
    sim.tick(59_999);
    assert!(!sim.out.iter().any(|e| e.kind.type_name() == "presence"));
    sim.tick(60 * S);
    let counts: Vec<&TrackEvent> = sim
        .out
        .iter()
        .filter(|e| e.kind.device().is_none())
        .collect();
    // 3 devices confirmed in a, 2 in b, none in c; 2 distinct randomized devices in 0..60 s.
    let zones: BTreeMap<String, u32> = [("a", 3), ("b", 2), ("c", 0)]
        .map(|(z, n)| (z.to_string(), n))
        .into();
    assert_eq!(
        counts,
        [
            &TrackEvent {
                ts_ms: 60_000,
                kind: EventKind::Presence {
                    zones,
                    window_s: 60
                }
            },
            &TrackEvent {
                ts_ms: 60_000,
                kind: EventKind::Traffic {
                    count: 2,
                    window_s: 60
                }
            },
        ]
    );
    // Next window: nobody sighted, readings expired, stays exited: zeros.
    sim.tick(120 * S);
    let last: Vec<String> = sim.out.iter().rev().take(2).map(brief).collect();
    assert_eq!(last, ["120000 traffic", "120000 presence"]);
    assert!(matches!(
        &sim.out[sim.out.len() - 2].kind,
        EventKind::Presence { zones, .. } if zones.values().all(|&n| n == 0)
    ));
    assert!(matches!(
        sim.out.last().unwrap().kind,
        EventKind::Traffic { count: 0, .. }
    ));
}

#[test]
fn counts_only_emits_no_device_events() {
    let mut sim = Sim::with(
        VisitDefinitions::DEFAULT,
        TrackOptions {
            counts_only: true,
            ..options()
        },
    );
    sim.stay("d", "a", 0, 59);
    sim.tick(60 * S);
    sim.tracker.finish(&mut sim.out);
    assert!(sim.out.iter().all(|e| e.kind.device().is_none()));
    assert!(matches!(
        &sim.out[0].kind,
        EventKind::Presence { zones, .. } if zones["a"] == 1
    ));
}

#[test]
fn bad_and_late_sightings_are_counted() {
    let mut sim = Sim::new();
    sim.hear(0, "d", "nowhere", -50);
    sim.hear(0, "d", "ra", 127);
    sim.hear(10 * S, "d", "ra", -50);
    sim.hear(5 * S, "d", "ra", -50); // late: taken at 10 s
    let stats = sim.tracker.stats();
    assert_eq!(
        (
            stats.sightings,
            stats.unknown_receiver,
            stats.no_rssi,
            stats.late
        ),
        (4, 1, 1, 1)
    );
    assert_eq!(sim.log("d"), ["10000 visit_start Some(\"a\")"]);
}

#[test]
fn layout_replacement_keeps_visits_and_ends_removed_zones() {
    let mut sim = Sim::new();
    sim.stay("d", "b", 0, 20);
    let mut new = layout(VisitDefinitions::DEFAULT);
    new.zones.remove(1); // b is gone; a and c renumbered
    new.validate().unwrap();
    sim.tracker.replace_layout(&new, 21 * S, &mut sim.out);
    // The stay ends when its zone went away: 0..21 s.
    assert_eq!(sim.zone_log("d").last().unwrap(), "21000 zone_exit b 21");
    // Still the same visit; now placed in a.
    sim.stay("d", "a", 22, 30);
    assert_eq!(sim.zone_log("d").last().unwrap(), "27000 zone_enter a");
    assert_eq!(
        sim.log("d")
            .iter()
            .filter(|l| l.contains("visit_start"))
            .count(),
        1
    );
}

#[test]
fn smoothing_keeps_a_one_packet_spike_from_moving_the_device() {
    // In a (ra at −55, rb at −75 dBm: nearer ra) with one −40 dBm packet at rb. With the median
    // the spike never reaches the average, so the device is placed in a throughout.
    for (smoothing, flips) in [(Smoothing::MedianEwma, false), (Smoothing::None, true)] {
        let mut sim = Sim::with(
            VisitDefinitions {
                zone_enter_s: 0,
                ..VisitDefinitions::DEFAULT
            },
            TrackOptions {
                smoothing,
                positioning: Positioning::Nearest,
                ..options()
            },
        );
        for t in 0..20 {
            sim.hear(t * S, "d", "ra", -55);
            sim.hear(t * S, "d", "rb", if t == 10 { -40 } else { -75 });
        }
        let entered_b = sim
            .zone_log("d")
            .iter()
            .any(|l| l.ends_with("zone_enter b"));
        assert_eq!(entered_b, flips, "{smoothing:?}: {:?}", sim.zone_log("d"));
    }
}

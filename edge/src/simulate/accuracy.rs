//! How well a tracker's published events match a simulation's ground truth.
//!
//! # Who is scored
//! The headline figures are about **shoppers** (visitors and passers-by) whose device ids the
//! gateway can name: app users (EIDs). Anonymous phones are hashed with a salt the simulator
//! cannot know, which is the point of hashing them; so [`compare`] simulates every shopper with
//! the app (`app_share = 1`), which changes nothing about the radio or the walking and gives every
//! shopper a score. Staff badges and trolley tags are scored the same way but reported apart
//! ([`Report::staff_zone_accuracy`], [`Report::tag_zone_accuracy`]): a handful of badges and tags
//! present all hour would otherwise outweigh the shoppers, and three tags parked at three random
//! spots make a figure that is a lottery over those spots.
//!
//! # What a stay is
//! - A **true stay** is one stop of the simulated person, widened to their whole time inside the
//!   stop's zone around it (walking in to the shelf, standing, walking out; see
//!   `simulate::extend_stays`). Walking *through* a zone without stopping is no stay: a shopper
//!   who crosses the checkout on the way to the drinks did not visit the checkout, and a store
//!   manager reading the paths must not see that they did.
//! - A true stay shorter than `zone_enter_s` is a **glance**. PRODUCT.md's hysteresis says a zone
//!   is entered only after being there `zone_enter_s`, so even a tracker with perfect positions
//!   never reports it: glances are neither counted as real stays nor scored for accuracy, and a
//!   tracker stay that does match one is not false either. They are counted in
//!   [`Report::glances`] so it is visible how many there were.
//! - A **tracker stay** is one entry of a `visit_end` event's `path`: zone, `enter_ms`, `exit_ms`.
//!   These are the *stamped* times (the stay begins at the first placement in the zone, ends at
//!   the last), not the times of the `zone_enter`/`zone_exit` events, which are announced when the
//!   hysteresis confirms them (seconds later). Replay ends every visit at the end of its input, so
//!   every stay reaches a path. A person's stays under several device ids (EID rotation) are all
//!   theirs.
//!
//! # The figures
//! - **Zone accuracy** (time-weighted): for every second of every scored true stay, is the person
//!   in a tracker stay in that zone at that moment? correct seconds / scored seconds.
//! - **False stays per real stay**: a tracker stay is *true* when at least half of its length
//!   overlaps true stays (glances included) in the same zone; otherwise it is false — a stay in a
//!   zone the person only walked through, or flapped into, or never was near. Divided by the
//!   number of real (scored) true stays. A stay the tracker reports in two pieces because the
//!   device's EID rotated in the middle is two true tracker stays, not a false one.
//! - **Visit-count error**: the person's visits (`visit_end`), stitched across EID rotations when
//!   they touch or overlap within a minute (as the cloud does), at least `min_visit_s` long,
//!   counted against the true number of visitors: |tracker − true| / true.

use super::{SimParams, Simulation, TrueStay, Truth};
use crate::config::Config;
use crate::track::Positioning;
use dwell_shared::definitions::VisitDefinitions;
use dwell_shared::wire::{Event, EventKind};
use serde::Serialize;
use std::collections::HashMap;

/// Accuracy figures; see the module docs for definitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Seconds of true stays scored (shoppers).
    pub scored_s: u64,
    pub zone_accuracy: f64,
    /// Real (scored) true stays of shoppers.
    pub true_stays: u64,
    /// True stays shorter than `zone_enter_s`: not scored.
    pub glances: u64,
    pub tracker_stays: u64,
    pub false_stays: u64,
    pub false_stays_per_real: f64,
    pub true_visitors: u64,
    pub tracker_visitors: u64,
    /// |tracker − true| / true.
    pub visit_count_error: f64,
    /// Zone accuracy of staff badges (people walking between zones all day).
    pub staff_zone_accuracy: f64,
    /// Zone accuracy of trolley tags (parked in the entrance).
    pub tag_zone_accuracy: f64,
}

/// One tracker stay, from a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedStay {
    pub zone: String,
    pub enter_ms: i64,
    pub exit_ms: i64,
}

/// The score of one person's stays (or a group's, summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StayScore {
    /// Scored seconds, and of them those the tracker had right.
    pub scored_s: u64,
    pub correct_s: u64,
    pub real_stays: u64,
    pub glances: u64,
    pub tracker_stays: u64,
    pub false_stays: u64,
}

impl StayScore {
    fn add(&mut self, o: StayScore) {
        self.scored_s += o.scored_s;
        self.correct_s += o.correct_s;
        self.real_stays += o.real_stays;
        self.glances += o.glances;
        self.tracker_stays += o.tracker_stays;
        self.false_stays += o.false_stays;
    }

    fn accuracy(&self) -> f64 {
        ratio(self.correct_s, self.scored_s)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores one person's tracker stays against their true stays, by the rules in the module docs:
/// each second `[enter, exit)` of a true stay at least `enter_ms` long is sampled at whole
/// seconds from its start; a tracker stay is false unless at least half of it overlaps true stays
/// (of any length) in its zone.
pub fn score_stays(truth: &[TrueStay], tracked: &[TrackedStay], enter_ms: i64) -> StayScore {
    let mut r = StayScore::default();
    for s in truth {
        if s.exit_ms - s.enter_ms < enter_ms {
            r.glances += 1;
            continue;
        }
        r.real_stays += 1;
        let mut t = s.enter_ms;
        while t < s.exit_ms {
            r.scored_s += 1;
            if tracked
                .iter()
                .any(|k| k.zone == s.zone && k.enter_ms <= t && t < k.exit_ms)
            {
                r.correct_s += 1;
            }
            t += 1000;
        }
    }
    for k in tracked {
        r.tracker_stays += 1;
        let len = (k.exit_ms - k.enter_ms).max(1);
        let overlap: i64 = truth
            .iter()
            .filter(|s| s.zone == k.zone)
            .map(|s| (s.exit_ms.min(k.exit_ms) - s.enter_ms.max(k.enter_ms)).max(0))
            .sum();
        if overlap * 2 < len {
            r.false_stays += 1;
        }
    }
    r
}

/// Scores `events` (what the gateway published) against `truth` under the visit definitions
/// `defs` (`zone_enter_s` for glances, `min_visit_s` for visitors).
pub fn evaluate(truth: &Truth, events: &[Event], defs: &VisitDefinitions) -> Report {
    // device id → person index, for the people we can name.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, p) in truth.people.iter().enumerate() {
        if p.device_kind != "phone" {
            for d in &p.devices {
                owner.insert(d.id.as_str(), i);
            }
        }
    }
    // Tracker stays (from paths) and visits per person.
    let mut stays: Vec<Vec<TrackedStay>> = vec![Vec::new(); truth.people.len()];
    let mut visits: Vec<Vec<(i64, i64)>> = vec![Vec::new(); truth.people.len()];
    for e in events {
        let EventKind::VisitEnd {
            device,
            start_ms,
            end_ms,
            path,
            ..
        } = &e.kind
        else {
            continue;
        };
        let Some(&who) = owner.get(device.device.as_str()) else {
            continue;
        };
        visits[who].push((*start_ms, *end_ms));
        stays[who].extend(path.iter().map(|p| TrackedStay {
            zone: p.zone.clone(),
            enter_ms: p.enter_ms,
            exit_ms: p.exit_ms,
        }));
    }

    let enter_ms = i64::from(defs.zone_enter_s) * 1000;
    let min_ms = i64::from(defs.min_visit_s) * 1000;
    let (mut shoppers, mut staff, mut tags) = Default::default();
    let mut r = Report::default();
    for (i, person) in truth.people.iter().enumerate() {
        if person.device_kind == "phone" {
            continue;
        }
        let score = score_stays(&person.stays, &stays[i], enter_ms);
        match person.role.as_str() {
            "staff" => StayScore::add(&mut staff, score),
            "tag" => StayScore::add(&mut tags, score),
            _ => StayScore::add(&mut shoppers, score),
        }
        if person.device_kind == "app" {
            if person.role == "visitor" {
                r.true_visitors += 1;
            }
            // Stitch this person's visits (split by EID rotation) when they touch or overlap.
            let mut v = visits[i].clone();
            v.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::new();
            for (a, b) in v {
                match merged.last_mut() {
                    Some((_, end)) if a <= *end + 60_000 => *end = (*end).max(b),
                    _ => merged.push((a, b)),
                }
            }
            r.tracker_visitors += merged.iter().filter(|(a, b)| b - a >= min_ms).count() as u64;
        }
    }
    let s: StayScore = shoppers;
    r.scored_s = s.scored_s;
    r.zone_accuracy = s.accuracy();
    r.true_stays = s.real_stays;
    r.glances = s.glances;
    r.tracker_stays = s.tracker_stays;
    r.false_stays = s.false_stays;
    r.false_stays_per_real = ratio(s.false_stays, s.real_stays);
    r.visit_count_error = if r.true_visitors == 0 {
        0.0
    } else {
        (r.tracker_visitors as f64 - r.true_visitors as f64).abs() / r.true_visitors as f64
    };
    r.staff_zone_accuracy = StayScore::accuracy(&staff);
    r.tag_zone_accuracy = StayScore::accuracy(&tags);
    r
}

/// The methods [`compare`] measures: the nearest-receiver baseline first, then the others.
pub const METHODS: [Positioning; 4] = [
    Positioning::Nearest,
    Positioning::Centroid,
    Positioning::Wls,
    Positioning::Zone,
];

/// Runs one simulation of `config`'s store, every shopper with the app (see the module docs),
/// and scores the tracker with each of `methods`.
pub fn compare_methods(
    config: &Config,
    params: &SimParams,
    methods: &[Positioning],
) -> Result<Vec<(Positioning, Report)>, super::SimError> {
    let params = SimParams {
        app_share: 1.0,
        ..params.clone()
    };
    let sim: Simulation = super::run(config.store_layout(), &params)?;
    let defs = config.store_layout().visit;
    let mut out = Vec::new();
    for &mode in methods {
        let mut c = config.clone();
        c.tracking.positioning = mode;
        let mut events: Vec<Event> = Vec::new();
        let mut buf = Vec::new();
        // The replay driver is the one under test; its output is parsed back like a consumer would.
        crate::replay::run(&c, sim.observations(), &mut buf, |_| {})
            .map_err(|e| super::SimError::Replay(e.to_string()))?;
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(e) = serde_json::from_slice::<Event>(line) {
                events.push(e);
            }
        }
        out.push((mode, evaluate(&sim.truth, &events, &defs)));
    }
    Ok(out)
}

/// [`compare_methods`] with every method, the nearest-receiver baseline first.
pub fn compare(
    config: &Config,
    params: &SimParams,
) -> Result<Vec<(Positioning, Report)>, super::SimError> {
    compare_methods(config, params, &METHODS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn t(zone: &str, a: i64, b: i64) -> TrueStay {
        TrueStay {
            zone: zone.into(),
            enter_ms: a * S,
            exit_ms: b * S,
        }
    }

    fn k(zone: &str, a: i64, b: i64) -> TrackedStay {
        TrackedStay {
            zone: zone.into(),
            enter_ms: a * S,
            exit_ms: b * S,
        }
    }

    #[test]
    fn perfect_tracking_scores_everything_right() {
        let truth = [t("a", 0, 60), t("b", 70, 100)];
        let got = score_stays(&truth, &[k("a", 0, 60), k("b", 70, 100)], 5 * S);
        assert_eq!(
            got,
            StayScore {
                scored_s: 90,
                correct_s: 90,
                real_stays: 2,
                glances: 0,
                tracker_stays: 2,
                false_stays: 0,
            }
        );
    }

    #[test]
    fn late_start_and_a_flap_cost_seconds_and_one_false_stay() {
        // True: a 0..100 s. Tracker: a from 4 s (4 s late), flaps to b 40..50 s, a again
        // 50..100 s. Seconds right: 4..40 (36) + 50..100 (50) = 86 of 100. The b stay overlaps
        // no true b stay: false. Both a stays lie wholly in the true a stay: true.
        let truth = [t("a", 0, 100)];
        let tracked = [k("a", 4, 40), k("b", 40, 50), k("a", 50, 100)];
        let got = score_stays(&truth, &tracked, 5 * S);
        assert_eq!((got.scored_s, got.correct_s), (100, 86));
        assert_eq!(
            (got.real_stays, got.tracker_stays, got.false_stays),
            (1, 3, 1)
        );
    }

    #[test]
    fn transit_through_a_zone_is_a_false_stay() {
        // Stops in a (0..30 s) and c (45..90 s), walking through b in between (30..45 s): the
        // tracker's b stay 32..42 s overlaps no true b stay at all.
        let truth = [t("a", 0, 30), t("c", 45, 90)];
        let tracked = [k("a", 0, 31), k("b", 32, 42), k("c", 44, 90)];
        let got = score_stays(&truth, &tracked, 5 * S);
        assert_eq!(got.false_stays, 1);
        // a: 0..30 all right (30); c: 45..90 all right (45).
        assert_eq!((got.scored_s, got.correct_s), (75, 75));
    }

    #[test]
    fn half_overlap_is_the_line_between_true_and_false() {
        let truth = [t("a", 0, 20)];
        // 10..30 s: overlap 10 s of 20 s = exactly half: true.
        assert_eq!(score_stays(&truth, &[k("a", 10, 30)], 5 * S).false_stays, 0);
        // 11..31 s: overlap 9 s of 20 s: false.
        assert_eq!(score_stays(&truth, &[k("a", 11, 31)], 5 * S).false_stays, 1);
        // Same times in another zone: false, and no second of the true stay is right.
        let other = score_stays(&truth, &[k("b", 0, 20)], 5 * S);
        assert_eq!(
            (other.false_stays, other.correct_s, other.scored_s),
            (1, 0, 20)
        );
    }

    #[test]
    fn glances_are_neither_scored_nor_false() {
        // A 3 s true stay with zone_enter_s = 5: a glance. Not a real stay, no seconds scored;
        // a tracker stay 0..4 s on it overlaps 3 of 4 s, so it is true, not false.
        let truth = [t("a", 0, 3), t("b", 10, 40)];
        let got = score_stays(&truth, &[k("a", 0, 4), k("b", 12, 40)], 5 * S);
        assert_eq!(got.glances, 1);
        assert_eq!(got.real_stays, 1);
        assert_eq!((got.scored_s, got.correct_s), (30, 28));
        assert_eq!(got.false_stays, 0);
        // Missing the glance altogether costs nothing.
        let missed = score_stays(&truth, &[k("b", 12, 40)], 5 * S);
        assert_eq!((missed.scored_s, missed.correct_s), (30, 28));
    }

    #[test]
    fn a_stay_split_by_id_rotation_is_not_false() {
        // One true stay 0..100 s; the device id rotated at 50 s, so the tracker reports two
        // stays 2..50 and 51..100: both true, 2..50 (48) + 51..100 (49) = 97 s right.
        let truth = [t("a", 0, 100)];
        let got = score_stays(&truth, &[k("a", 2, 50), k("a", 51, 100)], 5 * S);
        assert_eq!((got.false_stays, got.tracker_stays), (0, 2));
        assert_eq!(got.correct_s, 97);
    }

    #[test]
    fn evaluate_reads_stamped_path_times_not_announcement_times() {
        use super::super::{DeviceSpan, TruePerson};
        use dwell_shared::definitions::VisitClass;
        use dwell_shared::wire::{DeviceRef, PathStay};
        let truth = Truth {
            params: None,
            people: vec![TruePerson {
                id: "shopper-0".into(),
                role: "visitor".into(),
                device_kind: "app".into(),
                devices: vec![DeviceSpan {
                    id: "eid:00".into(),
                    from_ms: 0,
                    to_ms: 200 * S,
                }],
                visit: Some((0, 200 * S)),
                stays: vec![t("a", 0, 200)],
            }],
        };
        let device = DeviceRef {
            device: "eid:00".into(),
            ..DeviceRef::default()
        };
        let ev = |ts_ms, kind| Event {
            seq: 0,
            ts_ms,
            kind,
        };
        // Announced at 5 s (zone_enter_s after the first placement) and 210 s (zone_exit_s
        // after the last); stamped 0..200 s in the path, which is what is scored: 200 of 200.
        let events = [
            ev(
                5 * S,
                EventKind::ZoneEnter {
                    device: device.clone(),
                    zone: "a".into(),
                },
            ),
            ev(
                210 * S,
                EventKind::ZoneExit {
                    device: device.clone(),
                    zone: "a".into(),
                    dwell_s: 200,
                },
            ),
            ev(
                1100 * S,
                EventKind::VisitEnd {
                    device: device.clone(),
                    class: VisitClass::Visitor,
                    start_ms: 0,
                    end_ms: 200 * S,
                    path: vec![PathStay {
                        zone: "a".into(),
                        enter_ms: 0,
                        exit_ms: 200 * S,
                    }],
                },
            ),
        ];
        let r = evaluate(&truth, &events, &VisitDefinitions::DEFAULT);
        assert_eq!(r.scored_s, 200);
        assert_eq!(r.zone_accuracy, 1.0);
        assert_eq!((r.true_stays, r.false_stays), (1, 0));
        assert_eq!((r.true_visitors, r.tracker_visitors), (1, 1));
    }
}

//! Zone hysteresis and dwell milestones for one device: placements in, zone stays out.
//!
//! The input is a stream of *placements*: at time t the device was placed in zone Z (or in no
//! zone: between zones, outside the store, or no longer heard). The rules (PRODUCT.md, "Zones";
//! times are the placements' own, never a clock):
//! - A device **enters** zone Z once it has been placed in Z continuously for `zone_enter_s`. The
//!   stay begins when it was first placed there (hysteresis delays the announcement, it doesn't
//!   shorten the dwell); the `zone_enter` event carries the moment of confirmation.
//! - It **leaves** its zone once it has been placed outside it for `zone_exit_s`, or as soon as it
//!   is confirmed in another zone (by the rule above), whichever comes first — a device is in one
//!   zone at a time. The stay ends when it was last placed in the zone.
//! - A placement back in the zone before either happens cancels the departure: the excursion
//!   counts as time in the zone, and no stay is created for wherever it briefly went.
//! - **Milestones** fire when the stay's dwell reaches each configured threshold, each exactly
//!   once ([`Milestones::crossed`]), stamped with the exact moment `enter + m` (never earlier than
//!   the confirmation). While a departure is pending the dwell is frozen at the moment the device
//!   left, so no milestone is ever emitted that the final stay does not reach.
//!
//! Time only advances through [`ZoneMachine::place`] and [`ZoneMachine::advance`]; events are
//! stamped with the exact computed moment however coarsely the machine is advanced.

use dwell_shared::definitions::Milestones;

/// The thresholds, in milliseconds, and the milestones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rules {
    pub enter_ms: i64,
    pub exit_ms: i64,
    pub milestones: Milestones,
}

/// What the machine concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZoneChange {
    Enter {
        zone: u32,
        ts: i64,
    },
    Dwell {
        zone: u32,
        dwell_s: u32,
        ts: i64,
    },
    Exit {
        zone: u32,
        enter_ms: i64,
        exit_ms: i64,
        ts: i64,
    },
}

/// A confirmed stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stay {
    pub zone: u32,
    pub enter_ms: i64,
    confirmed_ms: i64,
    /// When the device was first placed outside the zone since it was last inside it: a
    /// departure pending confirmation.
    left_ms: Option<i64>,
    /// The dwell, in whole seconds, up to which milestones have been emitted.
    dwell_done_s: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ZoneMachine {
    /// The zone of the latest placement.
    raw: Option<u32>,
    /// Since when `raw` has held.
    raw_since: i64,
    stay: Option<Stay>,
}

impl ZoneMachine {
    /// The zone of the latest placement.
    pub fn placed(&self) -> Option<u32> {
        self.raw
    }

    /// The confirmed stay, if any.
    pub fn stay(&self) -> Option<&Stay> {
        self.stay.as_ref()
    }

    /// Records that from `t` on the device is placed in `zone`. `t` must not be before earlier
    /// calls' times.
    pub fn place(&mut self, t: i64, zone: Option<u32>, rules: &Rules, out: &mut Vec<ZoneChange>) {
        // First conclude what the old placement implies up to t, then switch.
        self.advance(t, rules, out);
        if zone == self.raw {
            return;
        }
        self.raw = zone;
        self.raw_since = t;
        if let Some(stay) = &mut self.stay {
            if zone == Some(stay.zone) {
                stay.left_ms = None;
            } else if stay.left_ms.is_none() {
                stay.left_ms = Some(t);
            }
        }
        // With zone_enter_s = 0 the new zone is confirmed at once.
        self.advance(t, rules, out);
    }

    /// Like [`ZoneMachine::place`] at `now`, for a placement known only now to have begun
    /// earlier, at `since` (the zone filter decides once the device has stood still, and knows
    /// when it walked in). The change is taken to happen at `since`, but never before the latest
    /// placement change nor before the latest milestone already emitted for the current stay
    /// (events already sent are not contradicted); confirmations that would fall before `now`
    /// are announced at `now`, stamped as the rules say.
    pub fn place_since(
        &mut self,
        now: i64,
        zone: Option<u32>,
        since: i64,
        rules: &Rules,
        out: &mut Vec<ZoneChange>,
    ) {
        self.advance(now, rules, out);
        if zone == self.raw {
            return;
        }
        let mut at = since.clamp(self.raw_since, now);
        if let Some(stay) = &self.stay
            && let Some(m) = rules.milestones.crossed(0, stay.dwell_done_s).last()
        {
            at = at.max(stay.enter_ms + i64::from(m) * 1000);
        }
        let at = at.min(now);
        self.raw = zone;
        self.raw_since = at;
        if let Some(stay) = &mut self.stay {
            if zone == Some(stay.zone) {
                stay.left_ms = None;
            } else if stay.left_ms.is_none() {
                stay.left_ms = Some(at);
            }
        }
        self.advance_announcing_at(now, rules, out);
    }

    /// [`ZoneMachine::advance`] to `now`, where changes due before `now` are announced at `now`.
    fn advance_announcing_at(&mut self, now: i64, rules: &Rules, out: &mut Vec<ZoneChange>) {
        let from = out.len();
        self.advance(now, rules, out);
        for c in &mut out[from..] {
            match c {
                ZoneChange::Enter { ts, .. } | ZoneChange::Exit { ts, .. } => *ts = (*ts).max(now),
                ZoneChange::Dwell { ts, .. } => *ts = (*ts).max(now),
            }
        }
        if let Some(stay) = &mut self.stay {
            stay.confirmed_ms = stay.confirmed_ms.max(now);
        }
    }

    /// Concludes everything the current placement implies up to `now`.
    pub fn advance(&mut self, now: i64, rules: &Rules, out: &mut Vec<ZoneChange>) {
        loop {
            let Some(stay) = &mut self.stay else {
                // No stay: enter the placed zone once it has held long enough.
                let Some(zone) = self.raw else { return };
                let at = self.raw_since + rules.enter_ms;
                if at > now {
                    return;
                }
                self.enter(zone, at, rules, out);
                continue;
            };
            milestones(stay, stay.left_ms.unwrap_or(now), rules, out);
            let Some(left) = stay.left_ms else { return };
            // A departure is pending: into another zone (confirmed like any entry), or out of
            // every zone.
            let exit_at = left + rules.exit_ms;
            let (at, switch_to) = match self.raw {
                Some(z) if self.raw_since + rules.enter_ms <= exit_at => {
                    (self.raw_since + rules.enter_ms, Some(z))
                }
                _ => (exit_at, None),
            };
            if at > now {
                return;
            }
            out.push(ZoneChange::Exit {
                zone: stay.zone,
                enter_ms: stay.enter_ms,
                exit_ms: left,
                ts: at,
            });
            self.stay = None;
            if let Some(zone) = switch_to {
                self.enter(zone, at, rules, out);
            }
        }
    }

    /// Ends any stay at `t` (the visit ended, or the device is evicted): the stay ends when the
    /// device left the zone, or at `last_placed_ms` (its last placement) if it never did. The
    /// machine is reset.
    pub fn close(&mut self, t: i64, last_placed_ms: i64, rules: &Rules, out: &mut Vec<ZoneChange>) {
        if let Some(stay) = &mut self.stay {
            let exit_ms = stay.left_ms.unwrap_or(last_placed_ms).max(stay.enter_ms);
            milestones(stay, exit_ms, rules, out);
            out.push(ZoneChange::Exit {
                zone: stay.zone,
                enter_ms: stay.enter_ms,
                exit_ms,
                ts: t.max(stay.confirmed_ms),
            });
        }
        *self = ZoneMachine::default();
    }

    /// Renumbers zones after a layout change: `map[old] = Some(new)`, or `None` for a zone that
    /// is gone. A stay in a removed zone ends at `t`; a placement there becomes "no zone".
    pub fn remap(&mut self, map: &[Option<u32>], t: i64, out: &mut Vec<ZoneChange>) {
        let new = |z: u32| map.get(z as usize).copied().flatten();
        if let Some(stay) = &mut self.stay {
            match new(stay.zone) {
                Some(z) => stay.zone = z,
                None => {
                    out.push(ZoneChange::Exit {
                        zone: stay.zone,
                        enter_ms: stay.enter_ms,
                        exit_ms: stay.left_ms.unwrap_or(t).max(stay.enter_ms),
                        ts: t.max(stay.confirmed_ms),
                    });
                    self.stay = None;
                }
            }
        }
        if let Some(z) = self.raw {
            let mapped = new(z);
            if mapped.is_none() {
                self.raw_since = t;
            }
            self.raw = mapped;
        }
        if let Some(stay) = &mut self.stay
            && self.raw != Some(stay.zone)
            && stay.left_ms.is_none()
        {
            stay.left_ms = Some(t);
        }
    }

    fn enter(&mut self, zone: u32, at: i64, rules: &Rules, out: &mut Vec<ZoneChange>) {
        out.push(ZoneChange::Enter { zone, ts: at });
        let mut stay = Stay {
            zone,
            enter_ms: self.raw_since,
            confirmed_ms: at,
            left_ms: None,
            dwell_done_s: 0,
        };
        // Milestones shorter than the enter hysteresis are already reached.
        milestones(&mut stay, at, rules, out);
        self.stay = Some(stay);
    }
}

/// Emits the milestones the stay reaches by `until`.
fn milestones(stay: &mut Stay, until: i64, rules: &Rules, out: &mut Vec<ZoneChange>) {
    let dwell_s = u32::try_from((until - stay.enter_ms).max(0) / 1000).unwrap_or(u32::MAX);
    if dwell_s <= stay.dwell_done_s {
        return;
    }
    for m in rules.milestones.crossed(stay.dwell_done_s, dwell_s) {
        out.push(ZoneChange::Dwell {
            zone: stay.zone,
            dwell_s: m,
            ts: (stay.enter_ms + i64::from(m) * 1000).max(stay.confirmed_ms),
        });
    }
    stay.dwell_done_s = dwell_s;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ZoneChange::*;

    const S: i64 = 1000;
    const A: Option<u32> = Some(0);
    const B: Option<u32> = Some(1);

    fn rules() -> Rules {
        Rules {
            enter_ms: 5 * S,
            exit_ms: 10 * S,
            milestones: Milestones::from_slice(&[30, 60]).unwrap(),
        }
    }

    /// Places the device once a second from `from` to `to` (inclusive), in `zone`.
    fn walk(m: &mut ZoneMachine, from: i64, to: i64, zone: Option<u32>, out: &mut Vec<ZoneChange>) {
        for s in from..=to {
            m.place(s * S, zone, &rules(), out);
        }
    }

    #[test]
    fn enter_after_hysteresis_with_stay_from_first_placement() {
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 4, A, &mut out);
        assert!(out.is_empty(), "4 s in A is not yet 5 s");
        walk(&mut m, 5, 5, A, &mut out);
        assert_eq!(out, [Enter { zone: 0, ts: 5 * S }]);
        assert_eq!(m.stay().unwrap().enter_ms, 0);
    }

    #[test]
    fn exit_to_no_zone_after_exit_hysteresis() {
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 20, A, &mut out);
        out.clear();
        // Placed nowhere from 21 s: the exit is confirmed at 21 + 10 = 31 s, the stay ran 0..21.
        walk(&mut m, 21, 30, None, &mut out);
        assert!(out.is_empty());
        walk(&mut m, 31, 31, None, &mut out);
        assert_eq!(
            out,
            [Exit {
                zone: 0,
                enter_ms: 0,
                exit_ms: 21 * S,
                ts: 31 * S
            }]
        );
    }

    #[test]
    fn pending_departure_freezes_milestones() {
        // In A from 0 to 25 s, then nowhere: dwell froze at 25 s, so the 30 s milestone is never
        // emitted even though the exit is only confirmed at 35 s.
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 24, A, &mut out);
        walk(&mut m, 25, 40, None, &mut out);
        assert!(!out.iter().any(|c| matches!(c, Dwell { .. })), "{out:?}");
        assert_eq!(
            out.last(),
            Some(&Exit {
                zone: 0,
                enter_ms: 0,
                exit_ms: 25 * S,
                ts: 35 * S
            })
        );
    }

    #[test]
    fn coarse_advance_stamps_exact_times() {
        // One placement, then a single advance far later: every event has its exact moment.
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        m.place(0, A, &rules(), &mut out);
        m.place(70 * S, A, &rules(), &mut out);
        assert_eq!(
            out,
            [
                Enter { zone: 0, ts: 5 * S },
                Dwell {
                    zone: 0,
                    dwell_s: 30,
                    ts: 30 * S
                },
                Dwell {
                    zone: 0,
                    dwell_s: 60,
                    ts: 60 * S
                },
            ]
        );
    }

    #[test]
    fn switch_to_another_zone_uses_enter_hysteresis() {
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 9, A, &mut out);
        out.clear();
        walk(&mut m, 10, 15, B, &mut out);
        assert_eq!(
            out,
            [
                Exit {
                    zone: 0,
                    enter_ms: 0,
                    exit_ms: 10 * S,
                    ts: 15 * S
                },
                Enter {
                    zone: 1,
                    ts: 15 * S
                },
            ]
        );
        assert_eq!(m.stay().unwrap().enter_ms, 10 * S);
    }

    #[test]
    fn place_since_dates_the_switch_back_and_announces_now() {
        // In A 0..40 s (30 s milestone at 30 s); at 50 s the filter says "B since 41 s": A's
        // stay ended at 41 s, B's began then and is confirmed at once (41 + 5 ≤ 50), both
        // announced at 50 s.
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 49, A, &mut out);
        out.clear();
        m.place_since(50 * S, B, 41 * S, &rules(), &mut out);
        assert_eq!(
            out,
            [
                Exit {
                    zone: 0,
                    enter_ms: 0,
                    exit_ms: 41 * S,
                    ts: 50 * S
                },
                Enter {
                    zone: 1,
                    ts: 50 * S
                },
            ]
        );
        assert_eq!(m.stay().unwrap().enter_ms, 41 * S);
        // Never before a milestone already sent: B's 30 s milestone went out at 71 s, so "A
        // since 60 s" at 81 s is taken as A since 71 s.
        walk(&mut m, 51, 80, B, &mut out);
        out.clear();
        m.place_since(81 * S, A, 60 * S, &rules(), &mut out);
        assert_eq!(
            out,
            [
                Exit {
                    zone: 1,
                    enter_ms: 41 * S,
                    exit_ms: 71 * S,
                    ts: 81 * S
                },
                Enter {
                    zone: 0,
                    ts: 81 * S
                },
            ]
        );
    }

    #[test]
    fn close_ends_the_stay_at_the_last_placement() {
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 40, A, &mut out);
        out.clear();
        m.close(100 * S, 40 * S, &rules(), &mut out);
        assert_eq!(
            out,
            [Exit {
                zone: 0,
                enter_ms: 0,
                exit_ms: 40 * S,
                ts: 100 * S
            }]
        );
        assert_eq!(m, ZoneMachine::default());
    }

    #[test]
    fn remap_keeps_renumbered_and_ends_removed() {
        let (mut m, mut out) = (ZoneMachine::default(), vec![]);
        walk(&mut m, 0, 9, B, &mut out);
        out.clear();
        m.remap(&[None, Some(0)], 10 * S, &mut out);
        assert!(out.is_empty());
        assert_eq!(m.stay().unwrap().zone, 0);
        m.remap(&[None], 11 * S, &mut out);
        assert_eq!(
            out,
            [Exit {
                zone: 0,
                enter_ms: 0,
                exit_ms: 11 * S,
                ts: 11 * S
            }]
        );
        assert_eq!(m.placed(), None);
    }
}

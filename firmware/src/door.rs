//! The door people-counter: two infrared break-beams, A on the street side and B on the shop side.
//!
//! Each beam is debounced on its own: a level change counts once the raw level has held for
//! `debounce_ms`, and the change is dated to when the raw level last changed, so a coarse poll
//! still orders the two beams correctly. Direction comes from the order of breaks, tracked by a
//! small state machine over the debounced levels (X = the beam broken first, Y = the other):
//!
//! | state | X blocked | Y blocked | meaning |
//! |---|---|---|---|
//! | `Idle` | no | no | nobody in the door |
//! | `Entering(X)` | yes | no | someone stepped into X |
//! | `Middle(X)` | yes | yes | halfway through |
//! | `Exiting(X)` | no | yes | past X, still in Y |
//! | `Tailgate(X)` | yes | yes | someone in Y, and the next person already in X |
//!
//! A crossing counts when Y clears from `Exiting(X)` or `Tailgate(X)`: A first is **in**, B first
//! is **out**. Backing out (stopping anywhere before X has cleared, then retreating) returns to
//! `Idle` through `Entering(X)` and counts nothing, but is tallied in [`DoorCounts::aborted`]. Two
//! people in a row count twice even when the second breaks X before the first has left Y: from
//! `Tailgate(X)`, Y clearing counts the first and leaves the second in `Entering(X)`.
//!
//! One pattern is ambiguous with two beams and is resolved on purpose: someone who clears X, steps
//! back into X and then leaves Y the way they came produces exactly the beam signals of a
//! tailgater. We count it as a crossing, because at a shop door people following each other
//! closely is far more common than reversing after passing the first beam. Both beams breaking
//! in the same instant from `Idle` gives no direction; that passage is ignored (aborted).

/// Which beam.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beam {
    /// Street side.
    A,
    /// Shop side.
    B,
}

impl Beam {
    fn other(self) -> Beam {
        match self {
            Beam::A => Beam::B,
            Beam::B => Beam::A,
        }
    }
}

/// Counts for the current window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoorCounts {
    pub people_in: u32,
    pub people_out: u32,
    /// Passages that started but did not cross (backed out, or no direction).
    pub aborted: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Entering(Beam),
    Middle(Beam),
    Exiting(Beam),
    Tailgate(Beam),
    /// Both broke at once from idle: wait for both to clear.
    Ambiguous,
}

/// One debounced input.
#[derive(Clone, Copy, Debug)]
struct Debounced {
    stable: bool,
    raw: bool,
    raw_since: u64,
}

impl Debounced {
    /// Updates with a raw sample; returns the time of a confirmed change, if one happened.
    fn sample(&mut self, now_ms: u64, raw: bool, debounce_ms: u64) -> Option<u64> {
        if raw != self.raw {
            self.raw = raw;
            self.raw_since = now_ms;
        }
        if self.raw != self.stable && now_ms.saturating_sub(self.raw_since) >= debounce_ms {
            self.stable = self.raw;
            return Some(self.raw_since);
        }
        None
    }
}

/// The counter; feed it with [`Door::poll`].
#[derive(Clone, Debug)]
pub struct Door {
    debounce_ms: u64,
    a: Debounced,
    b: Debounced,
    phase: Phase,
    counts: DoorCounts,
}

impl Door {
    /// A counter with both beams clear. `debounce_ms` is how long a level must hold to count
    /// (10–50 ms suits break-beam receivers; a person's leg blocks a beam for 100 ms or more).
    pub fn new(debounce_ms: u32) -> Self {
        let clear = Debounced {
            stable: false,
            raw: false,
            raw_since: 0,
        };
        Door {
            debounce_ms: u64::from(debounce_ms),
            a: clear,
            b: clear,
            phase: Phase::Idle,
            counts: DoorCounts::default(),
        }
    }

    /// Samples both beams (`true` = blocked) at `now_ms` (any monotonic millisecond clock).
    /// Poll at least every `debounce_ms / 2` for the order of close breaks to be kept.
    pub fn poll(&mut self, now_ms: u64, a_blocked: bool, b_blocked: bool) {
        let ea = self.a.sample(now_ms, a_blocked, self.debounce_ms);
        let eb = self.b.sample(now_ms, b_blocked, self.debounce_ms);
        match (ea, eb) {
            (Some(_), None) => self.step(Beam::A, self.a.stable),
            (None, Some(_)) => self.step(Beam::B, self.b.stable),
            (Some(ta), Some(tb)) => {
                if ta == tb && self.phase == Phase::Idle && self.a.stable && self.b.stable {
                    self.phase = Phase::Ambiguous;
                } else if ta <= tb {
                    self.step(Beam::A, self.a.stable);
                    self.step(Beam::B, self.b.stable);
                } else {
                    self.step(Beam::B, self.b.stable);
                    self.step(Beam::A, self.a.stable);
                }
            }
            (None, None) => {}
        }
    }

    /// One debounced edge: `beam` became `blocked`.
    fn step(&mut self, beam: Beam, blocked: bool) {
        use Phase::*;
        self.phase = match (self.phase, blocked) {
            (Idle, true) => Entering(beam),
            (Entering(x), true) if beam != x => Middle(x),
            (Entering(x), false) if beam == x => {
                self.counts.aborted += 1;
                Idle
            }
            (Middle(x), false) if beam == x => Exiting(x),
            (Middle(x), false) => Entering(x), // stepped back off Y
            (Exiting(x), true) if beam == x => Tailgate(x),
            (Exiting(x), false) if beam == x.other() => {
                self.count(x);
                Idle
            }
            (Tailgate(x), false) if beam == x.other() => {
                self.count(x);
                Entering(x)
            }
            (Tailgate(x), false) => Exiting(x), // the one behind stepped back out of X
            (Ambiguous, false) if !self.a.stable && !self.b.stable => {
                self.counts.aborted += 1;
                Idle
            }
            // Anything else cannot follow from the table (a beam changing to the level it
            // already had); keep the phase.
            (p, _) => p,
        };
    }

    fn count(&mut self, first: Beam) {
        match first {
            Beam::A => self.counts.people_in = self.counts.people_in.saturating_add(1),
            Beam::B => self.counts.people_out = self.counts.people_out.saturating_add(1),
        }
    }

    /// Counts since the last [`Door::take_counts`].
    pub fn counts(&self) -> DoorCounts {
        self.counts
    }

    /// Returns the window's counts and starts a new window. A person halfway through stays
    /// tracked and counts in the window where they finish.
    pub fn take_counts(&mut self) -> DoorCounts {
        core::mem::take(&mut self.counts)
    }

    /// The debounced levels `(a, b)`.
    pub fn levels(&self) -> (bool, bool) {
        (self.a.stable, self.b.stable)
    }
}

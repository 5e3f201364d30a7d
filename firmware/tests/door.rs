//! Door counter: each behaviour with scripted timings, and a property test over random beams.

use dwell_node::door::{Door, DoorCounts};
use proptest::prelude::*;

const DEBOUNCE: u32 = 30;

/// Plays `(from_ms, a_blocked, b_blocked)` levels, polling every millisecond, until `end_ms`.
fn play(script: &[(u64, bool, bool)], end_ms: u64) -> DoorCounts {
    let mut door = Door::new(DEBOUNCE);
    let mut i = 0;
    let (mut a, mut b) = (false, false);
    for t in 0..end_ms {
        while i < script.len() && script[i].0 <= t {
            (a, b) = (script[i].1, script[i].2);
            i += 1;
        }
        door.poll(t, a, b);
    }
    door.counts()
}

fn counts(people_in: u32, people_out: u32, aborted: u32) -> DoorCounts {
    DoorCounts {
        people_in,
        people_out,
        aborted,
    }
}

#[test]
fn a_then_b_is_in() {
    let c = play(
        &[
            (100, true, false),
            (300, true, true),
            (500, false, true),
            (700, false, false),
        ],
        1000,
    );
    assert_eq!(c, counts(1, 0, 0));
}

#[test]
fn b_then_a_is_out() {
    let c = play(
        &[
            (100, false, true),
            (300, true, true),
            (500, true, false),
            (700, false, false),
        ],
        1000,
    );
    assert_eq!(c, counts(0, 1, 0));
}

#[test]
fn stopping_halfway_and_backing_out_counts_nothing() {
    // Into A, into B, stands, steps back off B, then off A.
    let c = play(
        &[
            (100, true, false),
            (300, true, true),
            (2000, true, false),
            (2300, false, false),
        ],
        3000,
    );
    assert_eq!(c, counts(0, 0, 1));
    // Only touching the first beam.
    let c = play(&[(100, false, true), (400, false, false)], 1000);
    assert_eq!(c, counts(0, 0, 1));
}

#[test]
fn two_people_in_a_row() {
    // With a gap between them.
    let c = play(
        &[
            (100, true, false),
            (300, true, true),
            (500, false, true),
            (700, false, false),
            (800, true, false),
            (1000, true, true),
            (1200, false, true),
            (1400, false, false),
        ],
        2000,
    );
    assert_eq!(c, counts(2, 0, 0));
    // Tailgating: the second breaks A while the first is still in B.
    let c = play(
        &[
            (100, true, false),
            (300, true, true),
            (500, false, true),
            (600, true, true),  // second person into A
            (700, true, false), // first person leaves B
            (900, true, true),
            (1100, false, true),
            (1300, false, false),
        ],
        2000,
    );
    assert_eq!(c, counts(2, 0, 0));
}

#[test]
fn bouncing_contacts_are_debounced() {
    // Each edge chatters for 20 ms in 5 ms steps before settling.
    let mut script = vec![];
    let edges = [
        (100, true, false),
        (300, true, true),
        (500, false, true),
        (700, false, false),
    ];
    let mut prev = (false, false);
    for (t, a, b) in edges {
        for k in 0..4u64 {
            let lvl = if k % 2 == 0 { (a, b) } else { prev };
            script.push((t + k * 5, lvl.0, lvl.1));
        }
        script.push((t + 20, a, b));
        prev = (a, b);
    }
    assert_eq!(play(&script, 1000), counts(1, 0, 0));
}

#[test]
fn glitches_shorter_than_the_debounce_are_ignored() {
    let c = play(
        &[
            (100, true, false),
            (129, false, false),
            (500, false, true),
            (520, false, false),
        ],
        1000,
    );
    assert_eq!(c, counts(0, 0, 0));
}

#[test]
fn both_beams_at_once_give_no_direction() {
    let c = play(&[(100, true, true), (400, false, false)], 1000);
    assert_eq!(c, counts(0, 0, 1));
}

#[test]
fn coarse_polling_keeps_the_order_of_breaks() {
    // A breaks at 100, B at 112; both are confirmed in the same poll at 150, and are ordered by
    // when their raw levels changed, so A still comes first.
    let mut door = Door::new(DEBOUNCE);
    let level = |t: u64| ((100..400).contains(&t), (112..450).contains(&t));
    for t in [0, 100, 112, 150, 300, 400, 420, 450, 500] {
        let (a, b) = level(t);
        door.poll(t, a, b);
    }
    assert_eq!(door.counts(), counts(1, 0, 0));
}

#[test]
fn take_counts_starts_a_new_window_and_keeps_someone_halfway() {
    let mut door = Door::new(DEBOUNCE);
    for t in 0..400 {
        door.poll(t, t >= 100, t >= 300);
    }
    assert_eq!(door.take_counts(), DoorCounts::default());
    for t in 400..1000 {
        door.poll(t, t < 500, t < 700);
    }
    assert_eq!(door.take_counts(), counts(1, 0, 0));
    assert_eq!(door.counts(), DoorCounts::default());
}

/// One generated passage.
#[derive(Clone, Debug)]
enum Passage {
    /// A full crossing; `a_first` = in.
    Cross { a_first: bool, gaps: [u64; 3] },
    /// In to both beams, then back out the way they came.
    BackOut { a_first: bool, gaps: [u64; 3] },
    /// Two people, the second breaking the first beam before the first leaves the second.
    Tailgate { a_first: bool, gaps: [u64; 7] },
}

/// Bounce noise lasts at most 4 × (DEBOUNCE − 1) ms after an edge, so edges this far apart stay
/// in order.
const MIN_GAP: u64 = 4 * (DEBOUNCE as u64) + 40;

fn gap() -> impl Strategy<Value = u64> {
    MIN_GAP..600
}

fn passage() -> impl Strategy<Value = Passage> {
    prop_oneof![
        3 => (any::<bool>(), [gap(), gap(), gap()])
            .prop_map(|(a_first, gaps)| Passage::Cross { a_first, gaps }),
        1 => (any::<bool>(), [gap(), gap(), gap()])
            .prop_map(|(a_first, gaps)| Passage::BackOut { a_first, gaps }),
        1 => (any::<bool>(), [gap(), gap(), gap(), gap(), gap(), gap(), gap()])
            .prop_map(|(a_first, gaps)| Passage::Tailgate { a_first, gaps }),
    ]
}

/// Raw edges of one beam: (time, blocked), sorted.
type Edges = Vec<(u64, bool)>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn counts_equal_the_generated_truth(
        passages in proptest::collection::vec((passage(), MIN_GAP..3000u64), 1..12),
        bounce in proptest::collection::vec(proptest::collection::vec(1..DEBOUNCE as u64, 0..4), 64),
        poll_steps in proptest::collection::vec(1u64..6, 64),
    ) {
        let mut edges: [Edges; 2] = [vec![], vec![]]; // [A, B]
        let (mut truth_in, mut truth_out) = (0u32, 0u32);
        let mut t = 100u64;
        // Beam index of the beam broken first: 0 = A.
        for (p, pause) in &passages {
            let (first, seq, g): (bool, &[(usize, bool)], &[u64]) = match p {
                Passage::Cross { a_first, gaps } => {
                    if *a_first { truth_in += 1 } else { truth_out += 1 }
                    (*a_first, &[(0, true), (1, true), (0, false), (1, false)], gaps)
                }
                Passage::BackOut { a_first, gaps } => {
                    (*a_first, &[(0, true), (1, true), (1, false), (0, false)], gaps)
                }
                Passage::Tailgate { a_first, gaps } => {
                    if *a_first { truth_in += 2 } else { truth_out += 2 }
                    (*a_first, &[(0, true), (1, true), (0, false), (0, true), (1, false),
                                 (1, true), (0, false), (1, false)], gaps)
                }
            };
            for (k, &(which, blocked)) in seq.iter().enumerate() {
                // `which` is relative to the first beam broken.
                let beam = if first { which } else { 1 - which };
                edges[beam].push((t, blocked));
                if let Some(d) = g.get(k) { t += d; }
            }
            t += pause;
        }
        let end = t + 1000;

        // Add bounce: after an edge, the level flips back and forth in pieces shorter than the
        // debounce, ending at the edge's level.
        let mut raw: [Edges; 2] = [vec![], vec![]];
        let mut n = 0;
        for beam in 0..2 {
            for &(at, blocked) in &edges[beam] {
                raw[beam].push((at, blocked));
                let mut tt = at;
                let mut lvl = blocked;
                let chatter = &bounce[n % bounce.len()];
                n += 1;
                // An even number of flips keeps the final level.
                for d in chatter.iter().take(chatter.len() / 2 * 2) {
                    tt += d;
                    lvl = !lvl;
                    raw[beam].push((tt, lvl));
                }
            }
        }

        let level = |e: &Edges, t: u64| e.iter().take_while(|(at, _)| *at <= t).last().is_some_and(|x| x.1);
        let mut door = Door::new(DEBOUNCE);
        let mut t = 0;
        let mut k = 0;
        while t < end {
            door.poll(t, level(&raw[0], t), level(&raw[1], t));
            t += poll_steps[k % poll_steps.len()];
            k += 1;
        }
        let c = door.counts();
        prop_assert_eq!((c.people_in, c.people_out), (truth_in, truth_out));
        prop_assert_eq!(door.levels(), (false, false));
    }
}

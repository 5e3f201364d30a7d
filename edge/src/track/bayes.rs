//! `positioning = "zone"` (the default): a discrete Bayes filter over points of the zones,
//! deciding the zone directly instead of estimating a position and testing it against polygons.
//!
//! # Model
//! - **State**: where the device is, among sample points spread over every zone (about one per
//!   square metre, at most [`MAX_POINTS_PER_ZONE`] per zone) and over two rings **outside** the
//!   floor ([`OUTSIDE_RINGS_M`] beyond the zones' bounding box, [`OUTSIDE_SPACING_M`] apart):
//!   a device on the pavement in front of the shop, or walking in and out of the door, is heard
//!   inside (strongly enough to open a visit) but is in no zone, and without these points the
//!   filter could only explain it by the zone nearest to it. Precomputed with their path loss to
//!   every receiver when the layout is loaded, [`ZoneModel::new`].
//! - **Observation**: every raw RSSI reading, from any receiver, as it arrives: the log-distance
//!   model with Gaussian error of [`SIGMA_DB`], the squared error capped at
//!   [`OUTLIER_SIGMAS`]² so one reflected packet cannot outvote a minute of others. Receivers that
//!   do not hear the device add nothing (BLE loses packets; silence is weak evidence).
//! - **Motion**: a shopper mostly stands still and now and then walks somewhere else. Each
//!   second a device either stays at its point or moves to any point at a cost of
//!   `ln(`[`MOVE_PER_S`]` · Δt)` (about 8 nats). While it stands, its point's path collects the
//!   evidence; a rival point (across a border, say) can take over only when the evidence since
//!   it last "moved" there beats the standing point's by that cost, so the lead one zone can have
//!   over another is bounded by the move cost: a device standing within a few decimetres of a
//!   border, or near a corner between sample points, can still be placed on the wrong side —
//!   the largest remaining source of error on the simulated store.
//! - **Inference**: the forward pass in max-product form (each point's score is the log-likelihood
//!   of the best path ending there), which needs no `exp`/`ln` per point: per reading, in 16-bit
//!   fixed point (8 points to a 128-bit vector), a clamp, a square, a scale and a saturating
//!   subtract per point; per second one `max` per point.
//! - **Decision**, once a second: the zone of the best point, when (1) the best point of every
//!   other zone (and of the outside) trails it by at least [`MARGIN`] (a likelihood ratio of
//!   e^MARGIN) and (2) the best path has stood at that point for [`STILL_S`] — a walking device's
//!   path keeps jumping along its way, so crossing a zone on the way to another does not place
//!   the device there; only stopping does. **Outside** is decided without the stop, when its best
//!   point leads every zone by [`OUTSIDE_MARGIN`]: walking out of the door ends the stay, and
//!   walking past the shop front never starts one. Otherwise the device stays placed where it was.
//! - **Stamping**: a decision is made seconds after the device walked in (it has to stop, and the
//!   evidence has to add up), but the filter knows when the best path entered the zone (or left
//!   the floor): the placement is dated back to then, at most [`BACKDATE_S`]
//!   (`ZoneMachine::place_since`) — the same rule as the hysteresis, which announces late and
//!   stamps the stay from its first placement. The placement then goes through the zone
//!   hysteresis (`track/zone.rs`) like any other positioning method's.
//!
//! Memory: per sample point per device in a visit, an `i16` score and two `u8` ages (seconds,
//! saturating: only ages up to [`BACKDATE_S`] matter) — 4 bytes, about 1.4 KiB for the 340
//! points of a 240 m² shop with its rings — allocated at its first reading inside, freed when
//! the visit ends. No allocation per reading.

use dwell_shared::wire::Zone;

/// The RSSI error of one reading the likelihood assumes, dB. The simulator's packets have 6 dB
/// of independent noise; real ones also share multipath fades over a second or two, so each is
/// weighted as somewhat less evidence than independent 6 dB noise would give.
pub const SIGMA_DB: f32 = 8.0;
/// Squared errors are capped at this many sigmas (a robust, bounded-influence likelihood).
pub const OUTLIER_SIGMAS: f32 = 2.5;
/// Rate of moving from one's point, per second, for the motion model: once in 50 minutes. A
/// teleport then costs ln(3000) ≈ 8.0 nats, so a standing device's evidence adds up over longer
/// before noise can move its path (fewer border flips); the switch to a new zone is decided a
/// few seconds later but dated back to when the path moved, so little of the stay is lost.
/// (1/300, 5.7 nats, measured 92.6 % on the sweep's seed 2; 1/3000, 93.1 %.)
pub const MOVE_PER_S: f32 = 1.0 / 3000.0;
/// Log-likelihood lead the best zone needs over every other (outside included) to place the
/// device there.
pub const MARGIN: f32 = 1.75;
/// Log-likelihood lead "outside" needs over every zone to place the device outside.
pub const OUTSIDE_MARGIN: f32 = 1.0;
/// Seconds a device's best path must have stood at one point before its zone is decided.
pub const STILL_S: u8 = 8;
/// How far back a decision may date the device's arrival in the zone, seconds: the time it
/// takes to walk into a zone and stand still long enough to be decided.
pub const BACKDATE_S: u8 = 60;
/// Time between two decisions (and motion steps) of one device, ms.
pub const STEP_MS: i64 = 1000;
/// Sample points per zone, at most (bigger zones get a coarser grid).
pub const MAX_POINTS_PER_ZONE: usize = 64;
/// The rings of "outside" points around the floor: their distances from the zones' bounding
/// box, m (generic: every side, not where the simulator's pavement is).
pub const OUTSIDE_RINGS_M: [f64; 2] = [1.5, 4.0];
/// Spacing of the points along each outside ring, m.
pub const OUTSIDE_SPACING_M: f64 = 2.0;
/// Distances below this are taken as this: the model means nothing at arm's length.
const MIN_DISTANCE_M: f64 = 0.5;
/// Scores are fixed-point: this many units per nat (an `i16` spans ±1000 nats).
const UNITS_PER_NAT: f32 = 32.0;
/// RSSI errors are fixed-point: this many units per dB.
const DB_UNITS: f32 = 8.0;

/// The layout, precomputed for the filter.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZoneModel {
    points: usize,
    /// Per zone: first sample point and count (points are grouped by zone); then one more
    /// group, the outside ring.
    zones: Vec<(u32, u32)>,
    /// `10·n·log10(d)` from each sample point to each receiver, in [`DB_UNITS`] of a dB:
    /// `[receiver * points + point]`, so one reading touches one contiguous row.
    loss: Vec<i16>,
    /// Largest |error| counted, in units of the loss (the outlier cap).
    cap: i16,
    /// Score units per squared error unit, × 2¹⁶.
    per_e2: i32,
}

/// One device's filter state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ZoneFilter {
    /// Per point: score (log-likelihood of the best path ending there, best = 0 after each
    /// step), fixed-point; empty until the first reading.
    score: Vec<i16>,
    /// Per point, along the best path ending there, whole seconds (saturating): since it
    /// arrived at the point, and since it entered the point's zone.
    still: Vec<u8>,
    inzone: Vec<u8>,
    /// The time the ages count from, ms (the first reading), and the whole second of the last step.
    base_ms: i64,
    step_s: i64,
    /// When the decided zone began: the moment its best path entered it.
    since_ms: i64,
    /// When the last step ran.
    step_ms: i64,
    /// The zone decided on last (`None`: none yet, or outside the floor).
    decided: Option<u32>,
}

/// Sample points around the zones' bounding box, `offset` outside it, `spacing` apart.
fn ring(bbox: [f64; 4], offset: f64, spacing: f64, out: &mut Vec<[f64; 2]>) {
    let [x0, y0, x1, y1] = [
        bbox[0] - offset,
        bbox[1] - offset,
        bbox[2] + offset,
        bbox[3] + offset,
    ];
    let corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]];
    for w in corners.windows(2) {
        let ([ax, ay], [bx, by]) = (w[0], w[1]);
        let n = ((ax - bx).hypot(ay - by) / spacing.max(0.5))
            .round()
            .max(1.0) as usize;
        for i in 0..n {
            let f = i as f64 / n as f64;
            out.push([ax + (bx - ax) * f, ay + (by - ay) * f]);
        }
    }
}

impl ZoneModel {
    /// Sample points on a grid of about 1 m over each zone's bounding box, kept where the polygon
    /// contains them (a zone too thin for its grid gets its vertex average); then rings of
    /// points outside the floor (the zones' bounding box), so a device walking past the shop
    /// front, or in and out of the door, is explained as outside rather than in the nearest zone.
    pub fn new(receivers: &[[f64; 2]], zones: &[Zone], exponent: f32) -> ZoneModel {
        let mut points: Vec<[f64; 2]> = Vec::new();
        let mut ranges = Vec::with_capacity(zones.len() + 1);
        let mut floor = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for z in zones {
            let start = points.len();
            let (mut x0, mut y0, mut x1, mut y1) = (
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            );
            for &[x, y] in &z.polygon {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
            floor = [
                floor[0].min(x0),
                floor[1].min(y0),
                floor[2].max(x1),
                floor[3].max(y1),
            ];
            let (w, h) = ((x1 - x0).max(1e-3), (y1 - y0).max(1e-3));
            let step = (w * h / MAX_POINTS_PER_ZONE as f64).sqrt().max(1.0);
            let cols = ((w / step).round() as usize).max(1);
            let rows = ((h / step).round() as usize).max(1);
            // Bounded: a polygon at most MAX_POINTS_PER_ZONE·(1 + rounding) cells in its box.
            for i in 0..cols {
                for j in 0..rows {
                    let x = x0 + w * (i as f64 + 0.5) / cols as f64;
                    let y = y0 + h * (j as f64 + 0.5) / rows as f64;
                    if z.contains(x, y) {
                        points.push([x, y]);
                    }
                }
            }
            if points.len() == start {
                let n = z.polygon.len().max(1) as f64;
                let (sx, sy) = z
                    .polygon
                    .iter()
                    .fold((0.0, 0.0), |(a, b), [x, y]| (a + x, b + y));
                points.push([sx / n, sy / n]);
            }
            ranges.push((start as u32, (points.len() - start) as u32));
        }
        if !zones.is_empty() {
            let start = points.len();
            for offset in OUTSIDE_RINGS_M {
                ring(floor, offset, OUTSIDE_SPACING_M, &mut points);
            }
            ranges.push((start as u32, (points.len() - start) as u32));
        }
        let loss = receivers
            .iter()
            .flat_map(|&[rx, ry]| {
                points.iter().map(move |&[px, py]| {
                    let d = (px - rx).hypot(py - ry).max(MIN_DISTANCE_M);
                    (10.0 * exponent * d.log10() as f32 * DB_UNITS).round() as i16
                })
            })
            .collect();
        // |e| ≤ cap keeps e² within an i16 (the cap is at most 22 dB at DB_UNITS = 8).
        let cap = (OUTLIER_SIGMAS * SIGMA_DB * DB_UNITS)
            .round()
            .clamp(1.0, 181.0) as i16;
        let per_e2 = (65536.0 * UNITS_PER_NAT / (2.0 * SIGMA_DB * SIGMA_DB * DB_UNITS * DB_UNITS))
            .round() as i32;
        ZoneModel {
            points: points.len(),
            zones: ranges,
            loss,
            cap,
            per_e2,
        }
    }

    /// Folds one reading into `f`: `rssi` heard by receiver `receiver` at `ts`, from a device
    /// with `power_1m` at 1 m. Runs the once-a-second step (motion, decision) first when due.
    /// Returns the zone decided on.
    pub fn observe(
        &self,
        f: &mut ZoneFilter,
        receiver: u16,
        rssi: f32,
        power_1m: f32,
        ts: i64,
    ) -> Option<u32> {
        if self.points == 0 {
            return None;
        }
        if f.score.len() != self.points {
            f.score.clear();
            f.score.resize(self.points, 0);
            f.still.clear();
            f.still.resize(self.points, 0);
            f.inzone.clear();
            f.inzone.resize(self.points, 0);
            f.base_ms = ts;
            f.step_s = 0;
            f.step_ms = ts;
            f.decided = None;
        } else if ts - f.step_ms >= STEP_MS {
            self.step(f, ts, (ts - f.step_ms) as f32 / 1000.0);
            f.step_ms = ts;
        }
        let start = usize::from(receiver) * self.points;
        let Some(row) = self.loss.get(start..start + self.points) else {
            return f.decided;
        };
        // rssi − (power − loss) = (rssi − power) + loss; all in i16 lanes (8 to a 128-bit
        // vector): clamp the error, square it, scale, subtract.
        let a = ((rssi - power_1m) * DB_UNITS)
            .round()
            .clamp(-4000.0, 4000.0) as i16;
        let (cap, per_e2) = (self.cap, self.per_e2);
        for (s, &l) in f.score.iter_mut().zip(row) {
            let e = (a + l).clamp(-cap, cap);
            let e2 = i32::from(e * e);
            *s = s.saturating_sub(((e2 * per_e2) >> 16) as i16);
        }
        f.decided
    }

    /// The once-a-second step: decide from the evidence so far, then apply the motion model for
    /// `dt_s` seconds (normalising the best score to 0).
    fn step(&self, f: &mut ZoneFilter, now: i64, dt_s: f32) {
        // The ages grow by the whole seconds since the last step.
        let now_s = (now - f.base_ms) / 1000;
        let grow = (now_s - f.step_s).clamp(0, 255) as u8;
        f.step_s = now_s;
        // Best score per zone (vectorised per zone); the best zone leads when every other
        // trails by the margin.
        let (mut best, mut best_zone, mut second) = (i16::MIN, 0, i16::MIN);
        for (z, &(start, len)) in self.zones.iter().enumerate() {
            let r = start as usize..(start + len) as usize;
            let m = f.score[r].iter().copied().max().unwrap_or(i16::MIN);
            if m > best {
                (second, best, best_zone) = (best, m, z);
            } else {
                second = second.max(m);
            }
        }
        let (start, len) = self.zones[best_zone];
        let best_at = start as usize
            + f.score[start as usize..(start + len) as usize]
                .iter()
                .position(|&v| v == best)
                .unwrap_or(0);
        let (best_still, best_inzone) = (
            f.still[best_at].saturating_add(grow),
            f.inzone[best_at].saturating_add(grow),
        );
        let outside = best_zone + 1 == self.zones.len();
        let decision = (!outside).then_some(best_zone as u32);
        let (margin, still) = if outside {
            (OUTSIDE_MARGIN, 0)
        } else {
            (MARGIN, STILL_S)
        };
        // A device that walks has no point it stays at: only once it has stood still for
        // STILL_S is a zone decided, and then from when its path entered the zone. Outside
        // needs no stop: a device walking past the shop front, or out of the door, is outside.
        let lead = (i32::from(best) - i32::from(second)) as f32 / UNITS_PER_NAT;
        if lead >= margin && best_still >= still && f.decided != decision {
            f.decided = decision;
            // Never further back than BACKDATE_S: a path that sat at a point just across a
            // border for minutes (a device standing by the border) is not a walk-in.
            let back = best_inzone.min(BACKDATE_S);
            f.since_ms = now - i64::from(back) * 1000;
        }
        // Stay at one's point (the ages grow), or come from the best point at a cost of
        // ln(rate·Δt): arrived now; in this zone since the best point's path entered it, if it
        // is the same zone. Branch-free, so it vectorises.
        let floor = ((MOVE_PER_S * dt_s).min(1.0).ln() * UNITS_PER_NAT) as i16;
        for (z, &(start, len)) in self.zones.iter().enumerate() {
            let r = start as usize..(start + len) as usize;
            let entered = if z == best_zone { best_inzone } else { 0 };
            for ((s, a), e) in f.score[r.clone()]
                .iter_mut()
                .zip(&mut f.still[r.clone()])
                .zip(&mut f.inzone[r])
            {
                let stay = s.saturating_sub(best);
                let moved = stay < floor;
                *s = stay.max(floor);
                *a = if moved { 0 } else { a.saturating_add(grow) };
                *e = if moved {
                    entered
                } else {
                    e.saturating_add(grow)
                };
            }
        }
    }

    /// Sample points in all.
    #[cfg(test)]
    pub fn points(&self) -> usize {
        self.points
    }
}

impl ZoneFilter {
    /// The zone decided on last.
    pub fn decided(&self) -> Option<u32> {
        self.decided
    }

    /// When the device entered the zone decided on last, as the filter sees it now.
    pub fn since_ms(&self) -> i64 {
        self.since_ms
    }

    /// Forgets everything (the layout changed), keeping the decision renumbered by `map`.
    pub fn reset(&mut self, map: &[Option<u32>]) {
        self.score = Vec::new();
        self.still = Vec::new();
        self.inzone = Vec::new();
        self.decided = self
            .decided
            .and_then(|z| map.get(z as usize).copied().flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::distance::rssi_at;

    fn square(id: &str, x0: f64) -> Zone {
        Zone {
            id: id.into(),
            name: id.into(),
            polygon: vec![[x0, 0.0], [x0 + 10.0, 0.0], [x0 + 10.0, 10.0], [x0, 10.0]],
        }
    }

    const RX: [[f64; 2]; 2] = [[5.0, 5.0], [15.0, 5.0]];

    fn model() -> ZoneModel {
        ZoneModel::new(&RX, &[square("a", 0.0), square("b", 10.0)], 2.5)
    }

    /// One second of readings from both receivers of a device at (x, 5), with `bias` dB added
    /// to receiver 0 and taken from receiver 1.
    fn second(m: &ZoneModel, f: &mut ZoneFilter, t: i64, x: f64, bias: f32) -> Option<u32> {
        let mut out = None;
        for (i, [rx, _]) in RX.iter().enumerate() {
            let rssi =
                rssi_at(((x - rx).abs()) as f32, -59, 2.5) + if i == 0 { bias } else { -bias };
            out = m.observe(f, i as u16, rssi, -59.0, t * 1000);
        }
        out
    }

    #[test]
    fn points_cover_each_zone_on_a_metre_grid_and_rings_outside() {
        // 10 m × 10 m = 100 m² > 64 points: a 1.25 m grid, 8 × 8. The floor is 20 m × 10 m;
        // the rings 1.5 m out (23 m × 13 m: 12 + 7 points a side, twice) and 4 m out
        // (28 m × 18 m: 14 + 9, twice), 2 m apart.
        let m = model();
        assert_eq!(m.zones, [(0, 64), (64, 64), (128, 38 + 46)]);
        assert_eq!(m.points(), 212);
        assert_eq!(m.loss.len(), 2 * 212);
    }

    #[test]
    fn decides_once_the_evidence_leads_and_holds_against_a_spike() {
        let m = model();
        let mut f = ZoneFilter::default();
        // Nothing is decided before the device has stood still for STILL_S = 8 s (the step at
        // 8 s, with the readings of 0..7 s in), and then it is placed from its first reading.
        for t in 0..8 {
            assert_eq!(second(&m, &mut f, t, 3.0, 0.0), None, "{t}");
        }
        assert_eq!(second(&m, &mut f, 8, 3.0, 0.0), Some(0));
        assert_eq!(f.since_ms(), 0);
        for t in 9..60 {
            assert_eq!(second(&m, &mut f, t, 3.0, 0.0), Some(0));
        }
        // A second of readings 12 dB off towards b (both receivers) does not move it: its
        // evidence is capped at 2.5 σ per reading and a minute of the other points behind it.
        assert_eq!(second(&m, &mut f, 60, 3.0, -12.0), Some(0));
        assert_eq!(second(&m, &mut f, 61, 3.0, 0.0), Some(0));
        assert_eq!(second(&m, &mut f, 62, 3.0, 0.0), Some(0));
        // Standing in b from 63 s moves it once it has stood there STILL_S, dated back to
        // when the filter's path arrived in b (a second or two after 63 s: the old point has to
        // lose its lead first).
        let moved = (63..90).find(|&t| second(&m, &mut f, t, 16.0, 0.0) == Some(1));
        assert!(moved.is_some_and(|t| t <= 73), "{moved:?}");
        assert!(
            (63_000..=66_000).contains(&f.since_ms()),
            "{}",
            f.since_ms()
        );
    }

    /// One second of readings from both receivers of a device at (x, y), with no noise.
    fn at(m: &ZoneModel, f: &mut ZoneFilter, t: i64, x: f64, y: f64) -> Option<u32> {
        let mut out = None;
        for (i, [rx, ry]) in RX.iter().enumerate() {
            let rssi = rssi_at((x - rx).hypot(y - ry) as f32, -59, 2.5);
            out = m.observe(f, i as u16, rssi, -59.0, t * 1000);
        }
        out
    }

    #[test]
    fn outside_the_floor_is_no_zone_and_needs_no_stop() {
        let m = model();
        let mut f = ZoneFilter::default();
        // Walking along the front, 3 m below zone a, from x = 0 to 20: never placed in a zone.
        for t in 0..20 {
            assert_eq!(at(&m, &mut f, t, t as f64, -3.0), None, "{t}");
        }
        // In through the front of a, standing at (5, 3) from 23 s: placed in a, dated back to
        // when the path came in (a second or two after the walk-in began).
        let mut placed = None;
        for t in 20..40 {
            let y = (-3.0 + 2.0 * (t - 20) as f64).min(3.0);
            if at(&m, &mut f, t, 5.0, y) == Some(0) && placed.is_none() {
                placed = Some(t);
            }
        }
        assert!(placed.is_some_and(|t| t <= 33), "{placed:?}");
        assert!(
            (20_000..=25_000).contains(&f.since_ms()),
            "{}",
            f.since_ms()
        );
        // Walking back out (crossing the front at 41.5 s) and on along it: outside once the
        // evidence outweighs the stand in a — without standing still anywhere; with two
        // receivers that takes a few seconds (50 s here) — dated back to when the path left.
        let mut out = None;
        for t in 40..60 {
            let y = (3.0 - 2.0 * (t - 40) as f64).max(-3.0);
            let x = 5.0 + (t - 43).max(0) as f64;
            if at(&m, &mut f, t, x, y).is_none() && out.is_none() {
                out = Some(t);
            }
        }
        assert!(out.is_some_and(|t| t <= 52), "{out:?}");
        assert!(
            (41_000..=45_000).contains(&f.since_ms()),
            "{}",
            f.since_ms()
        );
    }

    #[test]
    fn layout_change_resets_and_renumbers() {
        let m = model();
        let mut f = ZoneFilter::default();
        for t in 0..10 {
            second(&m, &mut f, t, 16.0, 0.0);
        }
        assert_eq!(f.decided(), Some(1));
        f.reset(&[None, Some(0)]);
        assert_eq!(f.decided(), Some(0));
        assert!(f.score.is_empty());
    }
}

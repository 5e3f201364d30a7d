//! `positioning = "zone"` (the default): a discrete Bayes filter over points of the zones,
//! deciding the zone directly instead of estimating a position and testing it against polygons.
//!
//! # Model
//! - **State**: where on the floor the device is, among sample points spread over every zone
//!   (about one per square metre, at most [`MAX_POINTS_PER_ZONE`] per zone; precomputed with
//!   their path loss to every receiver when the layout is loaded, [`ZoneModel::new`]).
//! - **Observation**: every raw RSSI reading, from any receiver, as it arrives: the log-distance
//!   model with Gaussian error of [`SIGMA_DB`], the squared error capped at
//!   [`OUTLIER_SIGMAS`]² so one reflected packet cannot outvote a minute of others. Receivers that
//!   do not hear the device add nothing (BLE loses packets; silence is weak evidence).
//! - **Motion**: a shopper mostly stands still and now and then walks somewhere else. Each
//!   second a device either stays at its point or moves to any point at a cost of
//!   `ln(`[`MOVE_PER_S`]` · Δt)`. So while it stands, the evidence for its point keeps adding up
//!   (after a minute, 6 dB of noise per packet shrinks to a fraction of a dB, and even a device
//!   half a metre from a zone border is placed right), and when it walks off, a new point wins
//!   as soon as its evidence beats the old point's by that cost.
//! - **Inference**: the forward pass in max-product form (each point's score is the log-likelihood
//!   of the best path ending there), which needs no `exp`/`ln` per point: per reading one
//!   multiply-add and a `min` per point, per second one `max` per point.
//! - **Decision**, once a second: the zone of the best point, when (1) the best point of every
//!   other zone trails it by at least [`MARGIN`] (a likelihood ratio of e^MARGIN) and (2) the best
//!   path has stood at that point for [`STILL_S`] — a walking device's path keeps jumping along
//!   its way, so crossing a zone on the way to another does not place the device there; only
//!   stopping does. Otherwise the device stays placed where it was.
//! - **Stamping**: a decision is made seconds after the device walked in (it has to stop, and the
//!   evidence has to add up), but the filter knows when the best path entered the zone: the
//!   placement is dated back to then, at most [`BACKDATE_S`] (`ZoneMachine::place_since`) — the
//!   same rule as the hysteresis, which announces late and stamps the stay from its first
//!   placement. The placement then goes through the zone hysteresis (`track/zone.rs`) like any
//!   other positioning method's.
//!
//! Memory: an `f32` score and two `i32` times per sample point per device in a visit (about
//! 3 KiB in a 240 m² shop), allocated at its first reading inside, freed when the visit ends. No
//! allocation per reading.

use dwell_shared::wire::Zone;

/// The RSSI error of one reading the likelihood assumes, dB. The simulator's packets have 6 dB
/// of independent noise; real ones also share multipath fades over a second or two, so each is
/// weighted as somewhat less evidence than independent 6 dB noise would give.
pub const SIGMA_DB: f32 = 8.0;
/// Squared errors are capped at this many sigmas (a robust, bounded-influence likelihood).
pub const OUTLIER_SIGMAS: f32 = 2.5;
/// Rate of moving from one's point, per second, for the motion model: about once a minute.
pub const MOVE_PER_S: f32 = 1.0 / 60.0;
/// Log-likelihood lead the best zone needs over every other to place the device there.
pub const MARGIN: f32 = 2.0;
/// Seconds a device's best path must have stood at one point before its zone is decided.
pub const STILL_S: i32 = 6;
/// How far back a decision may date the device's arrival in the zone, seconds: the time it
/// takes to walk into a zone and stand still long enough to be decided.
pub const BACKDATE_S: i32 = 60;
/// Time between two decisions (and motion steps) of one device, ms.
pub const STEP_MS: i64 = 1000;
/// Sample points per zone, at most (bigger zones get a coarser grid).
pub const MAX_POINTS_PER_ZONE: usize = 64;
/// Distances below this are taken as this: the model means nothing at arm's length.
const MIN_DISTANCE_M: f64 = 0.5;

/// The layout, precomputed for the filter.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZoneModel {
    points: usize,
    /// Per zone: first sample point and count (points are grouped by zone).
    zones: Vec<(u32, u32)>,
    /// `10·n·log10(d)` from each sample point to each receiver: `[receiver * points + point]`, so
    /// one reading touches one contiguous row.
    loss: Vec<f32>,
}

/// One device's filter state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ZoneFilter {
    /// Per point: score (log-likelihood of the best path ending there, best = 0 after each
    /// step); empty until the first reading.
    score: Vec<f32>,
    /// Per point, along the best path ending there: when it arrived at the point, and when it
    /// entered the point's zone; seconds since `base_ms`.
    arrived: Vec<i32>,
    entered: Vec<i32>,
    base_ms: i64,
    /// When the decided zone began: the moment its best path entered it.
    since_ms: i64,
    /// When the last step ran.
    step_ms: i64,
    /// The zone decided on last.
    decided: Option<u32>,
}

impl ZoneModel {
    /// Sample points on a grid of about 1 m over each zone's bounding box, kept where the polygon
    /// contains them (a zone too thin for its grid gets its vertex average).
    pub fn new(receivers: &[[f64; 2]], zones: &[Zone], exponent: f32) -> ZoneModel {
        let mut points: Vec<[f64; 2]> = Vec::new();
        let mut ranges = Vec::with_capacity(zones.len());
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
        let loss = receivers
            .iter()
            .flat_map(|&[rx, ry]| {
                points.iter().map(move |&[px, py]| {
                    let d = (px - rx).hypot(py - ry).max(MIN_DISTANCE_M);
                    10.0 * exponent * d.log10() as f32
                })
            })
            .collect();
        ZoneModel {
            points: points.len(),
            zones: ranges,
            loss,
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
            f.score.resize(self.points, 0.0);
            f.arrived.clear();
            f.arrived.resize(self.points, 0);
            f.entered.clear();
            f.entered.resize(self.points, 0);
            f.base_ms = ts;
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
        // rssi − (power − loss) = (rssi − power) + loss
        let a = rssi - power_1m;
        let k = 0.5 / (SIGMA_DB * SIGMA_DB);
        let cap = (OUTLIER_SIGMAS * SIGMA_DB).powi(2);
        for (s, &l) in f.score.iter_mut().zip(row) {
            let e = a + l;
            *s -= k * (e * e).min(cap);
        }
        f.decided
    }

    /// The once-a-second step: decide from the evidence so far, then apply the motion model for
    /// `dt_s` seconds (normalising the best score to 0).
    fn step(&self, f: &mut ZoneFilter, now: i64, dt_s: f32) {
        // Best score per zone; the best zone leads when every other trails by MARGIN.
        let (mut best, mut best_at, mut best_zone, mut second) =
            (f32::NEG_INFINITY, 0, 0, f32::NEG_INFINITY);
        for (z, &(start, len)) in self.zones.iter().enumerate() {
            let s = start as usize;
            for (i, &v) in f.score[s..s + len as usize].iter().enumerate() {
                if v > best {
                    if best_zone != z {
                        second = second.max(best);
                    }
                    (best, best_at, best_zone) = (v, s + i, z);
                } else if z != best_zone && v > second {
                    second = v;
                }
            }
        }
        let now_s = ((now - f.base_ms) / 1000) as i32;
        // A device that walks has no point it stays at: only once it has stood still for
        // STILL_S is the zone decided, and then from when its path entered the zone.
        if best - second >= MARGIN
            && now_s - f.arrived[best_at] >= STILL_S
            && f.decided != Some(best_zone as u32)
        {
            f.decided = Some(best_zone as u32);
            // Never further back than BACKDATE_S: a path that sat at a point just across a
            // border for minutes (a device standing by the border) is not a walk-in.
            let backdate = i64::from(BACKDATE_S) * 1000;
            f.since_ms = (f.base_ms + i64::from(f.entered[best_at]) * 1000).max(now - backdate);
        }
        let best_entered = f.entered[best_at];
        // Stay at one's point, or come from the best point at a cost of ln(rate·Δt).
        let floor = (MOVE_PER_S * dt_s).min(1.0).ln();
        for (z, &(start, len)) in self.zones.iter().enumerate() {
            let r = start as usize..(start + len) as usize;
            for ((s, a), e) in f.score[r.clone()]
                .iter_mut()
                .zip(&mut f.arrived[r.clone()])
                .zip(&mut f.entered[r])
            {
                let stay = *s - best;
                if stay >= floor {
                    *s = stay;
                } else {
                    // Came from the best point: arrived now; in this zone since the best
                    // point's path entered it, if it is the same zone.
                    *s = floor;
                    *a = now_s;
                    *e = if z == best_zone { best_entered } else { now_s };
                }
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
        self.arrived = Vec::new();
        self.entered = Vec::new();
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
    fn points_cover_each_zone_on_a_metre_grid() {
        // 10 m × 10 m = 100 m² > 64 points: a 1.25 m grid, 8 × 8.
        let m = model();
        assert_eq!(m.zones, [(0, 64), (64, 64)]);
        assert_eq!(m.points(), 128);
        assert_eq!(m.loss.len(), 2 * 128);
    }

    #[test]
    fn decides_once_the_evidence_leads_and_holds_against_a_spike() {
        let m = model();
        let mut f = ZoneFilter::default();
        // Nothing is decided before the device has stood still for STILL_S = 6 s (the step at
        // 6 s, with the readings of 0..5 s in), and then it is placed from its first reading.
        for t in 0..6 {
            assert_eq!(second(&m, &mut f, t, 3.0, 0.0), None, "{t}");
        }
        assert_eq!(second(&m, &mut f, 6, 3.0, 0.0), Some(0));
        assert_eq!(f.since_ms(), 0);
        for t in 7..60 {
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

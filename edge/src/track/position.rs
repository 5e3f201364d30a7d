//! Where a device is on the floor plan, from the smoothed RSSI at every receiver that hears it.
//!
//! Three estimators, chosen by `[tracking] positioning` (the default, `zone`, decides the zone
//! without a position: `track/bayes.rs`):
//! - [`Positioning::Nearest`], the baseline the issue measures against: the position of the
//!   receiver with the strongest smoothed RSSI.
//! - [`Positioning::Centroid`]: the receivers' positions averaged with weights `1/d²`,
//!   `d` the log-distance estimate ([`dwell_shared::distance::log_distance`]). It can never land
//!   outside the receivers' hull, and a 6 dB error on one receiver (a factor 1.7 in distance)
//!   shifts the estimate smoothly instead of flipping it to another receiver as the baseline does.
//! - [`Positioning::Wls`]: weighted least-squares trilateration, the circle equations linearised
//!   against the strongest receiver and weighted `1/d²` (near readings are the reliable ones). It
//!   is unbiased where the centroid is pulled towards the middle, but needs three receivers not on one
//!   line and amplifies noise; so with fewer receivers, or an ill-conditioned geometry, it falls
//!   back to the centroid, and its result is clamped to the receivers' bounding box widened by the
//!   nearest distance (the device cannot be farther out than that).
//!
//! Which is better in a given store is an empirical question the simulator answers (issue 6,
//! "Accuracy"); all three are here so it can be measured, and switching is a config change.

use dwell_shared::distance::log_distance;
use serde::{Deserialize, Serialize};

/// The position estimator (`[tracking] positioning`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positioning {
    /// The strongest receiver's position (the baseline).
    Nearest,
    /// `1/d²`-weighted centroid of the receivers.
    Centroid,
    /// Weighted least-squares trilateration, falling back to the centroid.
    Wls,
    /// A Bayes filter over points of the zones that decides the zone directly
    /// (`track/bayes.rs`); the default.
    #[default]
    Zone,
}

/// One receiver hearing the device: its position and the smoothed RSSI there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Heard {
    pub x: f64,
    pub y: f64,
    pub rssi: f32,
}

/// Distances below this are treated as this: the model means nothing at arm's length, and a
/// zero distance would give an infinite weight.
const MIN_DISTANCE_M: f64 = 0.5;

/// The path-loss model's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PathLoss {
    pub power_1m: i8,
    pub exponent: f32,
}

impl PathLoss {
    fn distance(&self, rssi: f32) -> f64 {
        // log_distance takes whole dBm; half a dB of rounding is far below indoor noise. 127 is
        // "not available" in HCI, so the clamp stops below it.
        let rssi = rssi.round().clamp(-127.0, 126.0) as i8;
        log_distance(rssi, self.power_1m, self.exponent)
            .map_or(f64::INFINITY, f64::from)
            .max(MIN_DISTANCE_M)
    }
}

/// The estimated position, or `None` when nobody hears the device.
pub(crate) fn estimate(method: Positioning, heard: &[Heard], model: PathLoss) -> Option<[f64; 2]> {
    match method {
        Positioning::Nearest => nearest(heard),
        Positioning::Centroid => centroid(heard, model),
        Positioning::Wls => wls(heard, model).or_else(|| centroid(heard, model)),
        // The zone filter decides zones without a position; where one is asked for anyway, the
        // centroid is the robust estimate.
        Positioning::Zone => centroid(heard, model),
    }
}

fn nearest(heard: &[Heard]) -> Option<[f64; 2]> {
    heard
        .iter()
        .max_by(|a, b| a.rssi.total_cmp(&b.rssi))
        .map(|h| [h.x, h.y])
}

fn centroid(heard: &[Heard], model: PathLoss) -> Option<[f64; 2]> {
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    for h in heard {
        let d = model.distance(h.rssi);
        let w = 1.0 / (d * d);
        sx += w * h.x;
        sy += w * h.y;
        sw += w;
    }
    (sw > 0.0 && sw.is_finite()).then(|| [sx / sw, sy / sw])
}

/// Linearised trilateration: subtracting the reference receiver's circle
/// `(x−x_r)² + (y−y_r)² = d_r²` from receiver i's gives a line
/// `2(x_i−x_r)·x + 2(y_i−y_r)·y = d_r² − d_i² + x_i² − x_r² + y_i² − y_r²`;
/// the weighted normal equations of those lines are a 2×2 system.
fn wls(heard: &[Heard], model: PathLoss) -> Option<[f64; 2]> {
    if heard.len() < 3 {
        return None;
    }
    let reference = heard.iter().max_by(|a, b| a.rssi.total_cmp(&b.rssi))?;
    let d_r = model.distance(reference.rssi);
    let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut min_x, mut min_y, mut max_x, mut max_y) =
        (reference.x, reference.y, reference.x, reference.y);
    for h in heard {
        min_x = min_x.min(h.x);
        max_x = max_x.max(h.x);
        min_y = min_y.min(h.y);
        max_y = max_y.max(h.y);
        if std::ptr::eq(h, reference) {
            continue;
        }
        let d = model.distance(h.rssi);
        let w = 1.0 / (d * d);
        let (ax, ay) = (2.0 * (h.x - reference.x), 2.0 * (h.y - reference.y));
        let b = d_r * d_r - d * d + h.x * h.x - reference.x * reference.x + h.y * h.y
            - reference.y * reference.y;
        a11 += w * ax * ax;
        a12 += w * ax * ay;
        a22 += w * ay * ay;
        b1 += w * ax * b;
        b2 += w * ay * b;
    }
    let det = a11 * a22 - a12 * a12;
    // Relative to the matrix's scale: receivers on (or nearly on) one line leave the position
    // across that line undetermined.
    let scale = (a11 + a22) * (a11 + a22);
    if !(det.is_finite() && scale > 0.0 && det > 1e-6 * scale) {
        return None;
    }
    let x = (a22 * b1 - a12 * b2) / det;
    let y = (a11 * b2 - a12 * b1) / det;
    let pad = d_r;
    Some([
        x.clamp(min_x - pad, max_x + pad),
        y.clamp(min_y - pad, max_y + pad),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::distance::rssi_at;

    const MODEL: PathLoss = PathLoss {
        power_1m: -59,
        exponent: 2.0,
    };

    fn heard_from(receivers: &[[f64; 2]], at: [f64; 2]) -> Vec<Heard> {
        receivers
            .iter()
            .map(|&[x, y]| {
                let d = ((x - at[0]).powi(2) + (y - at[1]).powi(2)).sqrt();
                Heard {
                    x,
                    y,
                    rssi: rssi_at(d as f32, MODEL.power_1m, MODEL.exponent),
                }
            })
            .collect()
    }

    #[test]
    fn nearest_is_the_strongest_receiver() {
        let heard = heard_from(&[[0.0, 0.0], [10.0, 0.0]], [7.0, 0.0]);
        assert_eq!(
            estimate(Positioning::Nearest, &heard, MODEL),
            Some([10.0, 0.0])
        );
        assert_eq!(estimate(Positioning::Nearest, &[], MODEL), None);
    }

    #[test]
    fn centroid_weights_by_inverse_square_distance() {
        // Distances 3 m and 7 m (RSSI rounded to whole dB, so ≈): weights 1/9 and 1/49, so
        // x = 10·(1/49) / (1/9 + 1/49) = 10·9/58 = 1.55.
        let heard = heard_from(&[[0.0, 0.0], [10.0, 0.0]], [3.0, 0.0]);
        let [x, y] = estimate(Positioning::Centroid, &heard, MODEL).unwrap();
        assert!((x - 1.55).abs() < 0.2, "{x}");
        assert_eq!(y, 0.0);
        // One receiver: its position.
        let one = heard_from(&[[4.0, 2.0]], [5.0, 5.0]);
        assert_eq!(
            estimate(Positioning::Centroid, &one, MODEL),
            Some([4.0, 2.0])
        );
    }

    #[test]
    fn wls_recovers_the_point_with_exact_distances() {
        let receivers = [[0.0, 0.0], [12.0, 0.0], [0.0, 9.0], [12.0, 9.0]];
        for at in [[3.0, 2.0], [6.0, 4.5], [10.0, 7.0]] {
            let heard = heard_from(&receivers, at);
            let [x, y] = estimate(Positioning::Wls, &heard, MODEL).unwrap();
            // Only the whole-dB rounding of the RSSI stands between the estimate and the truth:
            // ±0.5 dB is ±6% of each distance at n = 2.
            assert!(
                (x - at[0]).abs() < 0.6 && (y - at[1]).abs() < 0.6,
                "{at:?} -> {x},{y}"
            );
        }
    }

    #[test]
    fn wls_falls_back_to_centroid_when_collinear_or_short() {
        let line = heard_from(&[[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]], [4.0, 3.0]);
        assert_eq!(
            estimate(Positioning::Wls, &line, MODEL),
            estimate(Positioning::Centroid, &line, MODEL)
        );
        let two = heard_from(&[[0.0, 0.0], [5.0, 0.0]], [4.0, 3.0]);
        assert_eq!(
            estimate(Positioning::Wls, &two, MODEL),
            estimate(Positioning::Centroid, &two, MODEL)
        );
    }
}

//! RSSI → distance.
//!
//! Two models:
//! - [`log_distance`], the log-distance path-loss model `d = 10^((P₁ − RSSI) / (10 n))` with the
//!   frame's measured power at 1 m `P₁` (iBeacon `tx_power`, AltBeacon `ref_rssi`; Eddystone
//!   advertises power at 0 m, so add −41 dB first, see [`eddystone_power_at_1m`]) and a path-loss
//!   exponent `n` (2 in free space, 2.5–4 indoors). [`rssi_at`] is its inverse, used by the
//!   simulator.
//! - [`fitted_distance`], the curve fit the Android Beacon Library and bluetooth-data-tools use,
//!   kept so Dwell's figures can be compared with theirs.

/// Free-space path loss over the first metre at 2.4 GHz, the offset between Eddystone's
/// "calibrated power at 0 m" and the usual 1 m reference.
pub const EDDYSTONE_0M_TO_1M_DB: i16 = 41;

/// Converts Eddystone's 0 m calibrated power to the 1 m measured power the models use.
pub fn eddystone_power_at_1m(tx_power_0m: i8) -> i8 {
    (i16::from(tx_power_0m) - EDDYSTONE_0M_TO_1M_DB).clamp(-128, 127) as i8
}

/// Distance in metres by the log-distance model; `None` when the inputs carry no information
/// (an exponent ≤ 0, or the "not available" RSSI 127).
pub fn log_distance(rssi: i8, measured_power_1m: i8, exponent: f32) -> Option<f32> {
    if exponent <= 0.0 || rssi == crate::hci::NOT_AVAILABLE {
        return None;
    }
    let db = f32::from(measured_power_1m) - f32::from(rssi);
    Some(pow10(db / (10.0 * exponent)))
}

/// The RSSI the log-distance model predicts at `distance_m` (≥ 0.1 m).
pub fn rssi_at(distance_m: f32, measured_power_1m: i8, exponent: f32) -> f32 {
    f32::from(measured_power_1m) - 10.0 * exponent * log10(distance_m.max(0.1))
}

/// Upper bound of [`fitted_distance`], as in the reference implementation.
pub const FITTED_MAX_M: f64 = 400.0;

/// The Android Beacon Library / bluetooth-data-tools curve fit: `ratio = rssi / power`;
/// `ratio¹⁰` below 1, else `0.89976·ratio^7.7095 + 0.111`; capped at 400 m. `None` for a zero power
/// or RSSI.
pub fn fitted_distance(power: i8, rssi: i8) -> Option<f64> {
    if power == 0 || rssi == 0 {
        return None;
    }
    let ratio = f64::from(rssi) / f64::from(power);
    let d = if ratio < 1.0 {
        powi(ratio, 10)
    } else {
        0.89976 * powf(ratio, 7.7095) + 0.111
    };
    Some(d.min(FITTED_MAX_M))
}

// `f32::powf` and friends live in std; the no_std core uses exp/ln built from first principles would
// be slower and less exact, so without std we use the identities over `core`'s intrinsics-free
// helpers below. With std these are the standard library's.
#[cfg(feature = "std")]
fn pow10(x: f32) -> f32 {
    10f32.powf(x)
}
#[cfg(feature = "std")]
fn log10(x: f32) -> f32 {
    x.log10()
}
#[cfg(feature = "std")]
fn powf(x: f64, y: f64) -> f64 {
    x.powf(y)
}

#[cfg(not(feature = "std"))]
fn pow10(x: f32) -> f32 {
    nostd::exp(x as f64 * core::f64::consts::LN_10) as f32
}
#[cfg(not(feature = "std"))]
fn log10(x: f32) -> f32 {
    (nostd::ln(x as f64) / core::f64::consts::LN_10) as f32
}
#[cfg(not(feature = "std"))]
fn powf(x: f64, y: f64) -> f64 {
    nostd::exp(y * nostd::ln(x))
}

fn powi(x: f64, n: u32) -> f64 {
    (0..n).fold(1.0, |acc, _| acc * x)
}

#[cfg(not(feature = "std"))]
mod nostd {
    //! Small exp/ln for targets without libm: range reduction plus series, accurate to ~1e-12
    //! relative over the inputs distance maths produces.
    use core::f64::consts::LN_2;

    pub fn exp(x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        let x = x.clamp(-700.0, 700.0);
        let k = (x / LN_2) as i64 - i64::from(x < 0.0);
        let r = x - k as f64 * LN_2;
        let mut term = 1.0;
        let mut sum = 1.0;
        for i in 1..30 {
            term *= r / f64::from(i);
            sum += term;
        }
        sum * f64::from_bits(((k + 1023) as u64) << 52)
    }

    pub fn ln(x: f64) -> f64 {
        if x <= 0.0 || x.is_nan() {
            return f64::NAN;
        }
        let bits = x.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let m = f64::from_bits((bits & !(0x7ff << 52)) | (1023 << 52)); // in [1, 2)
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let mut term = s;
        let mut sum = 0.0;
        for i in 0..40 {
            sum += term / f64::from(2 * i + 1);
            term *= s2;
        }
        2.0 * sum + e as f64 * LN_2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_distance_is_one_metre_at_measured_power() {
        assert!((log_distance(-59, -59, 2.0).unwrap() - 1.0).abs() < 1e-6);
        assert!((log_distance(-79, -59, 2.0).unwrap() - 10.0).abs() < 1e-4);
        assert_eq!(log_distance(127, -59, 2.0), None);
        assert_eq!(log_distance(-60, -59, 0.0), None);
    }

    #[test]
    fn rssi_at_inverts_log_distance() {
        for d in [0.5f32, 1.0, 3.0, 12.0, 40.0] {
            let r = rssi_at(d, -59, 2.7);
            let back = log_distance(r.round() as i8, -59, 2.7).unwrap();
            assert!((back - d).abs() / d < 0.1, "{d} -> {r} -> {back}");
        }
    }

    #[test]
    fn eddystone_power_moves_to_one_metre() {
        assert_eq!(eddystone_power_at_1m(-20), -61);
        assert_eq!(eddystone_power_at_1m(-100), -128);
    }
}

//! RSSI smoothing per (device, receiver): a median of the last three readings, then an
//! exponential moving average with a time constant.
//!
//! Why this shape: raw BLE RSSI jumps by 10 dB and more from one packet to the next (the three
//! advertising channels fade differently, bodies and shelves reflect), and a single strong packet
//! from the far side of the store must not move a device into another zone. The median of three
//! drops such one-packet spikes outright, at the cost of one reading of lag; the EWMA then averages
//! the remaining noise. The average is weighted by *time*, not by sample count
//! (`α = 1 − e^(−Δt/τ)`), so a phone advertising ten times a second and a Wi-Fi device probing
//! twice a minute are smoothed over the same span of time; `Δt` is taken as at least
//! [`MIN_DT_MS`] so a burst of readings with one timestamp still moves the average.
//!
//! The filter is 16 bytes of plain state and no allocation: it runs once per sighting.

use serde::{Deserialize, Serialize};

/// How readings are smoothed (`[tracking] smoothing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Smoothing {
    /// Median of the last three readings, then a time-constant EWMA (the default).
    #[default]
    MedianEwma,
    /// Time-constant EWMA only.
    Ewma,
    /// The latest reading as it is (tests, and measuring what smoothing buys).
    None,
}

/// The shortest spacing assumed between two readings of one receiver: BLE's minimum advertising
/// interval for non-connectable advertisements. Readings with equal timestamps (one packet heard
/// on several channels) would otherwise get α = 0 and be ignored.
pub const MIN_DT_MS: i64 = 100;

/// One receiver's view of one device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reading {
    /// Index of the receiver in the tracker's layout.
    pub receiver: u16,
    /// How many raw readings `recent` holds (0..=2).
    held: u8,
    /// The last two raw readings, newest first.
    recent: [i8; 2],
    /// The smoothed RSSI, dBm.
    pub smoothed: f32,
    /// When this receiver last heard the device.
    pub last_ms: i64,
}

impl Reading {
    /// A fresh reading: the first value is taken as it is.
    pub fn new(receiver: u16, rssi: i8, ts_ms: i64) -> Reading {
        Reading {
            receiver,
            held: 1,
            recent: [rssi, 0],
            smoothed: f32::from(rssi),
            last_ms: ts_ms,
        }
    }

    /// Folds in a reading taken at `ts_ms` (not before `last_ms`; the tracker clamps).
    pub fn update(&mut self, rssi: i8, ts_ms: i64, smoothing: Smoothing, tau_ms: f32) {
        let input = match smoothing {
            Smoothing::None => {
                self.smoothed = f32::from(rssi);
                self.last_ms = ts_ms;
                return;
            }
            Smoothing::Ewma => rssi,
            // With fewer than three readings there is no median to take yet.
            Smoothing::MedianEwma if self.held < 2 => rssi,
            Smoothing::MedianEwma => median3(rssi, self.recent[0], self.recent[1]),
        };
        let alpha = if tau_ms > 0.0 {
            let dt = (ts_ms - self.last_ms).max(MIN_DT_MS) as f32;
            1.0 - (-dt / tau_ms).exp()
        } else {
            1.0
        };
        self.smoothed += alpha * (f32::from(input) - self.smoothed);
        self.recent = [rssi, self.recent[0]];
        self.held = (self.held + 1).min(2);
        self.last_ms = ts_ms;
    }
}

fn median3(a: i8, b: i8, c: i8) -> i8 {
    a.max(b).min(a.min(b).max(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three() {
        for (a, b, c, m) in [
            (1, 2, 3, 2),
            (3, 1, 2, 2),
            (2, 3, 1, 2),
            (5, 5, 1, 5),
            (-90, -50, -60, -60),
        ] {
            assert_eq!(median3(a, b, c), m, "{a} {b} {c}");
        }
    }

    #[test]
    fn none_follows_the_last_reading() {
        let mut r = Reading::new(0, -60, 0);
        r.update(-80, 1000, Smoothing::None, 2000.0);
        assert_eq!(r.smoothed, -80.0);
    }

    #[test]
    fn median_drops_a_one_packet_spike() {
        // Steady -80 dBm with one -50 dBm packet: the median of (-50, -80, -80) is -80, so the
        // average does not move at all; plain EWMA jumps towards the spike.
        let mut med = Reading::new(0, -80, 0);
        let mut ewma = med;
        for (t, rssi) in [(1000, -80), (2000, -80), (3000, -50), (4000, -80)] {
            med.update(rssi, t, Smoothing::MedianEwma, 2000.0);
            ewma.update(rssi, t, Smoothing::Ewma, 2000.0);
            if t == 3000 {
                assert_eq!(med.smoothed, -80.0);
                // α = 1 − e^(−1000/2000) = 0.3935: −80 + 0.3935·30 = −68.2
                assert!((ewma.smoothed - -68.2).abs() < 0.1, "{}", ewma.smoothed);
            }
        }
        assert_eq!(med.smoothed, -80.0);
    }

    #[test]
    fn ewma_is_weighted_by_time() {
        // One step from -80 to -60 after Δt = τ moves the average by 1 − 1/e = 63.2%.
        let mut r = Reading::new(0, -80, 0);
        r.update(-60, 2000, Smoothing::Ewma, 2000.0);
        assert!(
            (r.smoothed - (-80.0 + 20.0 * 0.632_12)).abs() < 0.01,
            "{}",
            r.smoothed
        );
        // A reading with the same timestamp still counts as MIN_DT_MS apart:
        // α = 1 − e^(−100/2000) = 0.04877.
        let before = r.smoothed;
        r.update(-40, 2000, Smoothing::Ewma, 2000.0);
        let want = before + 0.048_77 * (-40.0 - before);
        assert!((r.smoothed - want).abs() < 0.01, "{} vs {want}", r.smoothed);
    }
}

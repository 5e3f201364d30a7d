//! The zone iBeacon, and the schedule that shares the radio between listening and advertising.
//!
//! A node advertises its zone as an iBeacon — the retailer's UUID, major = store number, minor =
//! zone — so a shopper's app, even in the background, wakes up in a zone-precise region. The
//! advertising payload is built by the same `dwell_shared` encoder the gateway uses
//! ([`Frame::encode`]), so what the node sends is what every Dwell decoder reads.
//!
//! Scanning is the node's main job, so advertising only gets the gaps: [`Schedule`] alternates a
//! scan window and an advertising window in a fixed period, and refuses (at construction) any
//! timing that would give scanning less than its guaranteed share. The phase is a pure function of
//! the clock, so the guarantee holds over every period whatever the polling jitter, and is tested
//! that way.

use dwell_shared::Uuid;
use dwell_shared::frame::{Frame, IBeacon};

use crate::controller::Command;

/// Non-connectable undirected advertising (ADV_NONCONN_IND): a beacon accepts no connections.
pub use dwell_shared::hci::ADV_NONCONN_IND;

/// The zone's beacon identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneBeacon {
    /// The retailer's proximity UUID (one per retailer, registered in its app).
    pub uuid: Uuid,
    /// Store number.
    pub store: u16,
    /// Zone number within the store.
    pub zone: u16,
    /// Calibrated RSSI at 1 m, dBm.
    pub measured_power: i8,
    /// Advertising interval in 0.625 ms units (160 = 100 ms, what iOS region monitoring expects).
    pub interval: u16,
}

impl ZoneBeacon {
    /// The iBeacon frame.
    pub fn frame(&self) -> Frame {
        Frame::IBeacon(IBeacon {
            uuid: self.uuid,
            major: self.store,
            minor: self.zone,
            tx_power: self.measured_power,
        })
    }

    /// `LE_Set_Advertising_Parameters`: non-connectable, public address, all three channels.
    pub fn set_parameters(&self) -> Command {
        Command::le_set_adv_parameters(self.interval, ADV_NONCONN_IND)
    }

    /// `LE_Set_Advertising_Data`: length byte, then the 31-byte payload zero-padded.
    pub fn set_data(&self) -> Command {
        let mut payload = [0u8; dwell_shared::hci::MAX_LEGACY_ADV_DATA];
        let built = self
            .frame()
            .encode(&mut payload)
            .ok()
            .and_then(|n| Command::le_set_adv_data(&payload[..n]));
        match built {
            Some(c) => c,
            // An iBeacon is 30 bytes with flags, always within the 31 a legacy payload holds.
            None => unreachable!(),
        }
    }
}

/// What the radio is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Scan,
    Advertise,
}

/// Why a schedule was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// The scan window is zero.
    NoScanning,
    /// Scanning would get less than the minimum share of each period.
    ScanShareTooLow { percent: u32, min_percent: u32 },
}

/// Alternating scan and advertising windows; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    scan_ms: u32,
    adv_ms: u32,
}

impl Schedule {
    /// The least share of time scanning may get, in percent, whatever the configuration.
    pub const MIN_SCAN_PERCENT: u32 = 75;

    /// A schedule of `scan_ms` listening then `adv_ms` advertising, repeated. `adv_ms = 0` means
    /// never advertise.
    pub fn new(scan_ms: u32, adv_ms: u32) -> Result<Self, ScheduleError> {
        if scan_ms == 0 {
            return Err(ScheduleError::NoScanning);
        }
        let period = u64::from(scan_ms) + u64::from(adv_ms);
        let percent = (u64::from(scan_ms) * 100 / period) as u32;
        if percent < Self::MIN_SCAN_PERCENT {
            return Err(ScheduleError::ScanShareTooLow {
                percent,
                min_percent: Self::MIN_SCAN_PERCENT,
            });
        }
        Ok(Schedule { scan_ms, adv_ms })
    }

    pub fn scan_ms(&self) -> u32 {
        self.scan_ms
    }

    pub fn adv_ms(&self) -> u32 {
        self.adv_ms
    }

    pub fn period_ms(&self) -> u64 {
        u64::from(self.scan_ms) + u64::from(self.adv_ms)
    }

    /// The phase at `ms` since the schedule started.
    pub fn phase_at(&self, ms: u64) -> Phase {
        if ms % self.period_ms() < u64::from(self.scan_ms) {
            Phase::Scan
        } else {
            Phase::Advertise
        }
    }
}

impl Default for Schedule {
    /// 4 s scanning, 1 s advertising: 80% listening, and the beacon on air once every 5 s (iOS
    /// region entry is detected within a few seconds of hearing it).
    fn default() -> Self {
        Schedule {
            scan_ms: 4000,
            adv_ms: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn beacon() -> ZoneBeacon {
        ZoneBeacon {
            uuid: Uuid::parse_str("41424344-4546-4748-4940-414243444546").unwrap(),
            store: 1,
            zone: 2,
            measured_power: -8,
            interval: 160,
        }
    }

    #[test]
    fn advertising_data_is_the_shared_ibeacon_encoding() {
        let cmd = beacon().set_data();
        let b = cmd.as_bytes();
        assert_eq!(&b[..4], &[0x01, 0x08, 0x20, 0x20]);
        assert_eq!(b[4], 30);
        let mut expect = [0u8; 30];
        dwell_shared::hex::decode_into(
            "0201061aff4c0002154142434445464748494041424344454600010002f8",
            &mut expect,
        )
        .unwrap();
        assert_eq!(&b[5..35], &expect);
        assert_eq!(b[35], 0, "padding");
        // And the shared decoder reads it back.
        let f = dwell_shared::frame::frames(&b[5..35]).next().unwrap();
        assert_eq!(f, beacon().frame());
    }

    #[test]
    fn advertising_parameters_bytes() {
        assert_eq!(
            beacon().set_parameters().as_bytes(),
            &[
                0x01, 0x06, 0x20, 0x0f, 0xa0, 0x00, 0xa0, 0x00, 0x03, 0x00, 0x00, 0, 0, 0, 0, 0, 0,
                0x07, 0x00
            ]
        );
    }

    #[test]
    fn schedules_that_starve_scanning_are_refused() {
        assert_eq!(Schedule::new(0, 100), Err(ScheduleError::NoScanning));
        assert_eq!(
            Schedule::new(1000, 1000),
            Err(ScheduleError::ScanShareTooLow {
                percent: 50,
                min_percent: 75
            })
        );
        assert!(Schedule::new(3000, 1000).is_ok());
        assert!(Schedule::new(1000, 0).is_ok());
    }

    proptest! {
        /// Over any whole number of periods starting anywhere, scanning gets at least its share.
        #[test]
        fn scanning_gets_its_guaranteed_share(
            scan in 1u32..5000, adv in 0u32..5000, start in 0u64..100_000, periods in 1u64..4,
        ) {
            let Ok(s) = Schedule::new(scan, adv) else {
                prop_assert!(u64::from(scan) * 100 < u64::from(Schedule::MIN_SCAN_PERCENT) * (u64::from(scan) + u64::from(adv)));
                return Ok(());
            };
            let span = s.period_ms() * periods;
            let scanned = (start..start + span).filter(|&t| s.phase_at(t) == Phase::Scan).count() as u64;
            prop_assert_eq!(scanned, u64::from(scan) * periods);
            prop_assert!(scanned * 100 >= u64::from(Schedule::MIN_SCAN_PERCENT) * span);
        }
    }
}

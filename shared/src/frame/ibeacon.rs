//! Apple iBeacon: manufacturer data of company 0x004C, Apple's TLV type 0x02 length 0x15, then
//! proximity UUID, major, minor (big-endian) and the measured power at 1 m.
//!
//! Dwell both reads iBeacons (static beacons, staff badges) and sends them: gateways and zone nodes
//! advertise the store's iBeacon so shoppers' apps wake up in the store.

use crate::Uuid;
use crate::ad::{AdWriter, EncodeError, ad_type};

/// Apple's Bluetooth SIG company identifier.
pub const APPLE: u16 = 0x004c;
const TYPE_IBEACON: u8 = 0x02;
const LEN_IBEACON: u8 = 0x15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IBeacon {
    pub uuid: Uuid,
    pub major: u16,
    pub minor: u16,
    /// Measured power: RSSI expected at 1 m, in dBm.
    pub tx_power: i8,
}

impl IBeacon {
    /// Decodes from manufacturer data (company id already split off). Apple's payload is a TLV
    /// list, so bytes after the iBeacon element are allowed and ignored. Tilt hydrometers are not
    /// location beacons and are not reported as such (see [`is_tilt_hydrometer`]).
    pub fn decode(company: u16, data: &[u8]) -> Option<Self> {
        match (company, data) {
            (APPLE, [TYPE_IBEACON, LEN_IBEACON, rest @ ..])
                if rest.len() >= 21 && !is_tilt_hydrometer(&rest[..16]) =>
            {
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&rest[..16]);
                Some(IBeacon {
                    uuid: Uuid::from_bytes(uuid),
                    major: u16::from_be_bytes([rest[16], rest[17]]),
                    minor: u16::from_be_bytes([rest[18], rest[19]]),
                    tx_power: rest[20] as i8,
                })
            }
            _ => None,
        }
    }

    /// Writes the manufacturer-data AD structure.
    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        w.push(
            ad_type::MANUFACTURER_DATA,
            &[
                &APPLE.to_le_bytes(),
                &[TYPE_IBEACON, LEN_IBEACON],
                self.uuid.as_bytes(),
                &self.major.to_be_bytes(),
                &self.minor.to_be_bytes(),
                &[self.tx_power as u8],
            ],
        )
    }
}

/// Tilt hydrometers (brewing sensors) borrow the iBeacon layout to carry readings: UUID
/// `a495bbX0-c5b1-4b44-b512-1370f02d74de` (X = colour 1..=8), major = °F, minor = specific gravity.
/// Their "major/minor" are measurements, not a place, so like ibeacon-ble we do not report them as
/// iBeacons.
pub fn is_tilt_hydrometer(uuid: &[u8]) -> bool {
    const TAIL: [u8; 12] = [
        0xc5, 0xb1, 0x4b, 0x44, 0xb5, 0x12, 0x13, 0x70, 0xf0, 0x2d, 0x74, 0xde,
    ];
    uuid.len() == 16
        && uuid[..3] == [0xa4, 0x95, 0xbb]
        && uuid[3] & 0x0f == 0
        && (1..=8).contains(&(uuid[3] >> 4))
        && uuid[4..] == TAIL
}

#[cfg(feature = "serde")]
impl serde::Serialize for IBeacon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("type", "ibeacon")?;
        m.serialize_entry("uuid", &self.uuid)?;
        m.serialize_entry("major", &self.major)?;
        m.serialize_entry("minor", &self.minor)?;
        m.serialize_entry("tx_power", &self.tx_power)?;
        m.end()
    }
}

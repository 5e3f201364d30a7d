//! AltBeacon (the open beacon format, altbeacon.org): manufacturer data of any company with beacon
//! code 0xBEAC, a 20-byte beacon id (id1 16 bytes, id2 and id3 2 bytes each, big-endian), the
//! reference RSSI at 1 m and one manufacturer-reserved byte.

use crate::Uuid;
use crate::ad::{AdWriter, EncodeError, ad_type};

const BEACON_CODE: [u8; 2] = [0xbe, 0xac];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AltBeacon {
    /// Bluetooth SIG company id of the beacon's maker.
    pub manufacturer: u16,
    pub id1: Uuid,
    pub id2: u16,
    pub id3: u16,
    /// Average RSSI at 1 m, dBm.
    pub ref_rssi: i8,
    pub mfg_reserved: u8,
}

impl AltBeacon {
    pub fn decode(company: u16, data: &[u8]) -> Option<Self> {
        match data {
            [0xbe, 0xac, rest @ ..] if rest.len() >= 22 => {
                let mut id1 = [0u8; 16];
                id1.copy_from_slice(&rest[..16]);
                Some(AltBeacon {
                    manufacturer: company,
                    id1: Uuid::from_bytes(id1),
                    id2: u16::from_be_bytes([rest[16], rest[17]]),
                    id3: u16::from_be_bytes([rest[18], rest[19]]),
                    ref_rssi: rest[20] as i8,
                    mfg_reserved: rest[21],
                })
            }
            _ => None,
        }
    }

    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        w.push(
            ad_type::MANUFACTURER_DATA,
            &[
                &self.manufacturer.to_le_bytes(),
                &BEACON_CODE,
                self.id1.as_bytes(),
                &self.id2.to_be_bytes(),
                &self.id3.to_be_bytes(),
                &[self.ref_rssi as u8, self.mfg_reserved],
            ],
        )
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AltBeacon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Company(u16);
        impl core::fmt::Display for Company {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:04x}", self.0)
            }
        }
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("type", "altbeacon")?;
        m.serialize_entry(
            "manufacturer",
            &format_args!("{}", Company(self.manufacturer)),
        )?;
        m.serialize_entry("id1", &self.id1)?;
        m.serialize_entry("id2", &self.id2)?;
        m.serialize_entry("id3", &self.id3)?;
        m.serialize_entry("ref_rssi", &self.ref_rssi)?;
        m.serialize_entry("mfg_reserved", &self.mfg_reserved)?;
        m.end()
    }
}

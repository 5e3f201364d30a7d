//! Beacon frames carried in advertisements: decode from AD structures, encode back.
//!
//! One AD structure carries at most one frame: manufacturer data may be an iBeacon (Apple) or an
//! AltBeacon (any company, code 0xBEAC); 0xFEAA service data is an Eddystone frame. Decoding is
//! allocation-free — a [`Frame`] is plain values — so the hot path of the gateway and the firmware
//! decode without touching the heap. Each format lives in its own module with its encoder.

pub mod altbeacon;
pub mod eddystone;
pub mod ibeacon;

pub use altbeacon::AltBeacon;
pub use eddystone::{
    EddystoneEid, EddystoneTlm, EddystoneUid, EddystoneUrl, TlmEncrypted, TlmPlain,
};
pub use ibeacon::IBeacon;

use crate::ad::{self, AdStructure, AdStructures, AdWriter, EncodeError, ad_type};

/// A recognised beacon frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Frame {
    IBeacon(IBeacon),
    AltBeacon(AltBeacon),
    EddystoneUid(EddystoneUid),
    EddystoneUrl(EddystoneUrl),
    EddystoneTlm(EddystoneTlm),
    EddystoneEid(EddystoneEid),
}

/// Flags every beacon encoder writes first: LE General Discoverable, BR/EDR not supported.
pub const BEACON_FLAGS: u8 = 0x06;

impl Frame {
    /// The frame one AD structure carries, if any.
    pub fn from_structure(st: &AdStructure<'_>) -> Option<Frame> {
        if let Some((company, data)) = st.manufacturer_data() {
            return IBeacon::decode(company, data)
                .map(Frame::IBeacon)
                .or_else(|| AltBeacon::decode(company, data).map(Frame::AltBeacon));
        }
        match st.service_data16() {
            Some((eddystone::SERVICE_UUID, data)) => eddystone::decode(data),
            _ => None,
        }
    }

    /// The `type` name used in JSON output.
    pub fn type_name(&self) -> &'static str {
        match self {
            Frame::IBeacon(_) => "ibeacon",
            Frame::AltBeacon(_) => "altbeacon",
            Frame::EddystoneUid(_) => "eddystone_uid",
            Frame::EddystoneUrl(_) => "eddystone_url",
            Frame::EddystoneTlm(_) => "eddystone_tlm",
            Frame::EddystoneEid(_) => "eddystone_eid",
        }
    }

    /// Writes a complete advertising payload for this frame (flags first) into `out`; returns its
    /// length. A legacy advertisement holds 31 bytes; every frame here fits.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = AdWriter::new(out);
        w.push(ad_type::FLAGS, &[&[BEACON_FLAGS]])?;
        match self {
            Frame::IBeacon(f) => f.write(&mut w)?,
            Frame::AltBeacon(f) => f.write(&mut w)?,
            Frame::EddystoneUid(f) => f.write(&mut w)?,
            Frame::EddystoneUrl(f) => f.write(&mut w)?,
            Frame::EddystoneTlm(f) => f.write(&mut w)?,
            Frame::EddystoneEid(f) => f.write(&mut w)?,
        }
        Ok(w.len())
    }
}

/// Iterator over the beacon frames of an advertising payload.
///
/// **Repair.** Some beacons (and some decoders' test data) declare an Eddystone service-data
/// structure shorter than its frame, with the rest of the frame in the bytes that follow. When a
/// 0xFEAA structure is too short for its frame type and the payload's following bytes complete it,
/// the frame is decoded from those bytes (never past the end of the payload) and counted in
/// [`Frames::repaired`], so callers can flag it. Other decoders (beacontools) read such frames the
/// same way; a correct payload is never affected.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    payload: &'a [u8],
    structures: AdStructures<'a>,
    repaired: u32,
}

/// The beacon frames in an advertising payload, in order, without allocating.
pub fn frames(payload: &[u8]) -> Frames<'_> {
    Frames {
        payload,
        structures: ad::structures(payload),
        repaired: 0,
    }
}

impl<'a> Frames<'a> {
    /// Frames decoded so far from a structure whose declared length was too short.
    pub fn repaired(&self) -> u32 {
        self.repaired
    }

    fn repair_eddystone(&self, st: &AdStructure<'a>) -> Option<Frame> {
        let (eddystone::SERVICE_UUID, data) = st.service_data16()? else {
            return None;
        };
        let need = eddystone::min_len(data)?;
        if data.len() >= need {
            return None;
        }
        // `data` is a sub-slice of `payload`: its offset is the difference of the addresses.
        let start = (data.as_ptr() as usize).checked_sub(self.payload.as_ptr() as usize)?;
        let extended = self.payload.get(start..start + need)?;
        eddystone::decode(extended)
    }
}

impl Iterator for Frames<'_> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        while let Some(st) = self.structures.next() {
            if let Some(f) = Frame::from_structure(&st) {
                return Some(f);
            }
            if let Some(f) = self.repair_eddystone(&st) {
                self.repaired += 1;
                return Some(f);
            }
        }
        None
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Frame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Frame::IBeacon(f) => f.serialize(s),
            Frame::AltBeacon(f) => f.serialize(s),
            Frame::EddystoneUid(f) => f.serialize(s),
            Frame::EddystoneUrl(f) => f.serialize(s),
            Frame::EddystoneTlm(f) => f.serialize(s),
            Frame::EddystoneEid(f) => f.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Uuid;

    fn one(hex: &str) -> Option<Frame> {
        let mut b = [0u8; 80];
        let n = crate::hex::decode_into(hex, &mut b).unwrap();
        let mut it = frames(&b[..n]);
        let f = it.next();
        assert!(it.next().is_none());
        f
    }

    #[test]
    fn golden_ibeacon() {
        let f = one("0201061aff4c0002154142434445464748494041424344454600010002f8").unwrap();
        let Frame::IBeacon(b) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            b.uuid,
            Uuid::parse_str("41424344-4546-4748-4940-414243444546").unwrap()
        );
        assert_eq!((b.major, b.minor, b.tx_power), (1, 2, -8));
    }

    #[test]
    fn golden_altbeacon() {
        // altbeacon.org reference frame: mfg 0x0118 (Radius Networks), ref RSSI -59.
        let f = one("1bff1801beac2f234454cf6d4a0fadf2f4911ba9ffa600010002c500").unwrap();
        let Frame::AltBeacon(b) = f else {
            panic!("{f:?}")
        };
        assert_eq!(b.manufacturer, 0x0118);
        assert_eq!(
            b.id1,
            Uuid::parse_str("2f234454-cf6d-4a0f-adf2-f4911ba9ffa6").unwrap()
        );
        assert_eq!((b.id2, b.id3, b.ref_rssi, b.mfg_reserved), (1, 2, -59, 0));
    }

    #[test]
    fn golden_eddystone_eid() {
        let f = one("0201060303aafe0d16aafe30e34549445f74657374").unwrap();
        assert_eq!(
            f,
            Frame::EddystoneEid(EddystoneEid {
                tx_power: -29,
                eid: *b"EID_test"
            })
        );
    }

    #[test]
    fn unknown_eddystone_frame_type_is_not_a_frame() {
        assert_eq!(
            one("0201060303aafe1716aafe01e3123456789012346789010000000000010000"),
            None
        );
    }

    #[test]
    fn short_eddystone_structure_completed_by_following_bytes_is_repaired_and_counted() {
        // Encrypted TLM whose structure declares 0x11 (17) bytes: salt and MIC follow it.
        let mut b = [0u8; 40];
        let n = crate::hex::decode_into(
            "0201060303aafe1116aafe2001414141414141414141414141deadbeff",
            &mut b,
        )
        .unwrap();
        let mut it = frames(&b[..n]);
        let f = it.next().unwrap();
        assert_eq!(it.repaired(), 1);
        let Frame::EddystoneTlm(EddystoneTlm::Encrypted(e)) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            (e.etlm, e.salt, e.mic),
            ([0x41; 12], [0xde, 0xad], [0xbe, 0xff])
        );
        // Not enough bytes after it: no frame, nothing read past the payload.
        let mut it = frames(&b[..n - 1]);
        assert_eq!(it.next(), None);
        assert_eq!(it.repaired(), 0);
    }

    #[test]
    fn encode_writes_flags_uuid_list_and_service_data() {
        let mut out = [0u8; 31];
        let f = Frame::EddystoneEid(EddystoneEid {
            tx_power: -29,
            eid: *b"EID_test",
        });
        let n = f.encode(&mut out).unwrap();
        let mut expect = [0u8; 21];
        crate::hex::decode_into("0201060303aafe0d16aafe30e34549445f74657374", &mut expect).unwrap();
        assert_eq!(&out[..n], &expect);
    }
}

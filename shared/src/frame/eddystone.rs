//! Eddystone (google/eddystone): service data of the 16-bit UUID 0xFEAA, first byte the frame type.
//!
//! - UID (0x00): TX power at 0 m, 10-byte namespace, 6-byte instance (2 reserved bytes may follow).
//! - URL (0x10): TX power, scheme prefix code, up to 17 bytes of URL with expansion codes.
//! - TLM (0x20): telemetry; version 0 plain (battery mV, temperature 8.8 fixed point, advertising
//!   count, time since boot in 0.1 s), version 1 encrypted (12 bytes EtLM, salt, MIC).
//! - EID (0x30): TX power and the 8-byte ephemeral identifier (see [`crate::eid`]); this is how
//!   consented shoppers' apps are seen.
//!
//! Encoders write the full set the spec asks for: the 16-bit UUID list with 0xFEAA, then the
//! service data.

use crate::ad::{AdWriter, EncodeError, ad_type};
use core::fmt;

/// Eddystone's 16-bit service UUID.
pub const SERVICE_UUID: u16 = 0xfeaa;

pub const FRAME_UID: u8 = 0x00;
pub const FRAME_URL: u8 = 0x10;
pub const FRAME_TLM: u8 = 0x20;
pub const FRAME_EID: u8 = 0x30;

fn write_service(w: &mut AdWriter<'_>, frame: &[&[u8]]) -> Result<(), EncodeError> {
    let uuid = SERVICE_UUID.to_le_bytes();
    w.push(ad_type::UUID16_COMPLETE, &[&uuid])?;
    let mut parts: [&[u8]; 8] = [&[]; 8];
    parts[0] = &uuid;
    for (slot, p) in parts[1..].iter_mut().zip(frame) {
        *slot = p;
    }
    w.push(ad_type::SERVICE_DATA16, &parts[..1 + frame.len().min(7)])
}

/// Eddystone-UID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EddystoneUid {
    /// Calibrated TX power at 0 m, dBm.
    pub tx_power: i8,
    pub namespace: [u8; 10],
    pub instance: [u8; 6],
}

impl EddystoneUid {
    fn decode(b: &[u8]) -> Option<Self> {
        // b starts after the frame type; the 2 reserved bytes are optional in practice.
        if b.len() < 17 {
            return None;
        }
        let mut namespace = [0u8; 10];
        namespace.copy_from_slice(&b[1..11]);
        let mut instance = [0u8; 6];
        instance.copy_from_slice(&b[11..17]);
        Some(EddystoneUid {
            tx_power: b[0] as i8,
            namespace,
            instance,
        })
    }

    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        write_service(
            w,
            &[
                &[FRAME_UID, self.tx_power as u8],
                &self.namespace,
                &self.instance,
                &[0, 0],
            ],
        )
    }
}

/// URL scheme prefixes, by code.
const SCHEMES: [&str; 4] = ["http://www.", "https://www.", "http://", "https://"];
/// URL expansion codes 0x00..=0x0d.
const EXPANSIONS: [&str; 14] = [
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/", ".com", ".org", ".edu", ".net",
    ".info", ".biz", ".gov",
];
/// Longest encoded URL after the scheme byte.
pub const URL_MAX_ENCODED: usize = 17;

/// Eddystone-URL, kept in its encoded form (so it needs no heap); `Display` expands it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EddystoneUrl {
    pub tx_power: i8,
    scheme: u8,
    encoded: [u8; URL_MAX_ENCODED],
    len: u8,
}

/// Why a URL cannot be an Eddystone-URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// The URL starts with none of the four scheme prefixes.
    UnsupportedScheme,
    /// A character outside printable ASCII (0x21..=0x7e).
    InvalidCharacter(char),
    /// Encoded, the URL is longer than 17 bytes.
    TooLong,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::UnsupportedScheme => {
                f.write_str("URL must start with http://www., https://www., http:// or https://")
            }
            UrlError::InvalidCharacter(c) => {
                write!(f, "character {c:?} cannot be sent in an Eddystone-URL")
            }
            UrlError::TooLong => f.write_str("URL longer than 17 bytes once encoded"),
        }
    }
}

impl core::error::Error for UrlError {}

impl EddystoneUrl {
    fn decode(b: &[u8]) -> Option<Self> {
        let [tx, scheme, url @ ..] = b else {
            return None;
        };
        if usize::from(*scheme) >= SCHEMES.len() || url.len() > URL_MAX_ENCODED {
            return None;
        }
        // Codes 0x0e..=0x20 and 0x7f..=0xff are reserved: such a frame is not valid Eddystone-URL.
        if url.iter().any(|&c| (0x0e..=0x20).contains(&c) || c >= 0x7f) {
            return None;
        }
        let mut encoded = [0u8; URL_MAX_ENCODED];
        encoded[..url.len()].copy_from_slice(url);
        Some(EddystoneUrl {
            tx_power: *tx as i8,
            scheme: *scheme,
            encoded,
            len: url.len() as u8,
        })
    }

    /// Encodes a URL, choosing the longest scheme prefix and, at each position, the longest
    /// expansion code, as the reference implementation does.
    pub fn new(url: &str, tx_power: i8) -> Result<Self, UrlError> {
        let (scheme, rest) = SCHEMES
            .iter()
            .enumerate()
            .filter(|(_, p)| url.starts_with(*p))
            .max_by_key(|(_, p)| p.len())
            .map(|(i, p)| (i as u8, &url[p.len()..]))
            .ok_or(UrlError::UnsupportedScheme)?;
        let mut encoded = [0u8; URL_MAX_ENCODED];
        let mut n = 0;
        let mut at = 0;
        while at < rest.len() {
            let tail = &rest[at..];
            let code = EXPANSIONS
                .iter()
                .enumerate()
                .filter(|(_, e)| tail.starts_with(*e))
                .max_by_key(|(_, e)| e.len());
            let (byte, used) = match code {
                Some((i, e)) => (i as u8, e.len()),
                None => {
                    // Not an expansion: one printable ASCII byte (a char boundary by construction:
                    // any non-ASCII first byte is rejected here).
                    let c = tail.as_bytes()[0];
                    if !(0x21..=0x7e).contains(&c) {
                        return Err(UrlError::InvalidCharacter(
                            tail.chars().next().unwrap_or('\u{fffd}'),
                        ));
                    }
                    (c, 1)
                }
            };
            *encoded.get_mut(n).ok_or(UrlError::TooLong)? = byte;
            n += 1;
            at += used;
        }
        Ok(EddystoneUrl {
            tx_power,
            scheme,
            encoded,
            len: n as u8,
        })
    }

    /// The encoded URL bytes after the scheme code.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded[..usize::from(self.len)]
    }

    pub fn scheme_code(&self) -> u8 {
        self.scheme
    }

    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        write_service(
            w,
            &[
                &[FRAME_URL, self.tx_power as u8, self.scheme],
                self.encoded(),
            ],
        )
    }
}

impl fmt::Display for EddystoneUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEMES[usize::from(self.scheme) % SCHEMES.len()])?;
        for &c in self.encoded() {
            match EXPANSIONS.get(usize::from(c)) {
                Some(e) => f.write_str(e)?,
                None => fmt::Write::write_char(f, char::from(c))?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EddystoneUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EddystoneUrl")
            .field("tx_power", &self.tx_power)
            .field("url", &format_args!("{self}"))
            .finish()
    }
}

/// Eddystone-TLM, plain or encrypted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EddystoneTlm {
    Plain(TlmPlain),
    Encrypted(TlmEncrypted),
}

/// Unencrypted telemetry (TLM version 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TlmPlain {
    /// Battery voltage in mV (0 when the beacon does not measure it).
    pub battery_mv: u16,
    /// Beacon temperature in °C (8.8 fixed point on air); None when not supported (0x8000).
    pub temperature_c: Option<f32>,
    /// Advertising PDUs sent since power-up.
    pub adv_count: u32,
    /// Time since power-up, in the spec's 0.1 s units.
    pub sec_count: u32,
}

impl TlmPlain {
    /// Time since power-up in seconds (the counter has 0.1 s resolution).
    pub fn uptime_s(&self) -> f64 {
        f64::from(self.sec_count) / 10.0
    }
}

/// Encrypted telemetry (TLM version 1): only the EID key holder can read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlmEncrypted {
    pub etlm: [u8; 12],
    pub salt: [u8; 2],
    pub mic: [u8; 2],
}

impl EddystoneTlm {
    fn decode(b: &[u8]) -> Option<Self> {
        match b {
            [0x00, rest @ ..] if rest.len() >= 12 => {
                let t = i16::from_be_bytes([rest[2], rest[3]]);
                Some(EddystoneTlm::Plain(TlmPlain {
                    battery_mv: u16::from_be_bytes([rest[0], rest[1]]),
                    temperature_c: (t != i16::MIN).then(|| f32::from(t) / 256.0),
                    adv_count: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
                    sec_count: u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]),
                }))
            }
            [0x01, rest @ ..] if rest.len() >= 16 => {
                let mut etlm = [0u8; 12];
                etlm.copy_from_slice(&rest[..12]);
                Some(EddystoneTlm::Encrypted(TlmEncrypted {
                    etlm,
                    salt: [rest[12], rest[13]],
                    mic: [rest[14], rest[15]],
                }))
            }
            _ => None,
        }
    }

    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        match self {
            EddystoneTlm::Plain(p) => {
                let temp = match p.temperature_c {
                    None => i16::MIN,
                    // Saturating conversion to 8.8 fixed point; the decoder reads it back exactly
                    // for every value that is a multiple of 1/256 within range.
                    Some(t) => {
                        // Round half away from zero without libm (no_std); `as` saturates.
                        let x = (t * 256.0).clamp(-32767.0, 32767.0);
                        (if x >= 0.0 { x + 0.5 } else { x - 0.5 }) as i16
                    }
                };
                write_service(
                    w,
                    &[
                        &[FRAME_TLM, 0x00],
                        &p.battery_mv.to_be_bytes(),
                        &temp.to_be_bytes(),
                        &p.adv_count.to_be_bytes(),
                        &p.sec_count.to_be_bytes(),
                    ],
                )
            }
            EddystoneTlm::Encrypted(e) => {
                write_service(w, &[&[FRAME_TLM, 0x01], &e.etlm, &e.salt, &e.mic])
            }
        }
    }
}

/// Eddystone-EID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EddystoneEid {
    pub tx_power: i8,
    pub eid: [u8; 8],
}

impl EddystoneEid {
    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < 9 {
            return None;
        }
        let mut eid = [0u8; 8];
        eid.copy_from_slice(&b[1..9]);
        Some(EddystoneEid {
            tx_power: b[0] as i8,
            eid,
        })
    }

    pub fn write(&self, w: &mut AdWriter<'_>) -> Result<(), EncodeError> {
        write_service(w, &[&[FRAME_EID, self.tx_power as u8], &self.eid])
    }
}

/// Bytes of service data (after the UUID) the frame starting with `data` needs, by its type (and,
/// for TLM, version); `None` for an unknown frame type.
pub(crate) fn min_len(data: &[u8]) -> Option<usize> {
    Some(match (data.first()?, data.get(1)) {
        (&FRAME_UID, _) => 18,
        (&FRAME_URL, _) => 3,
        (&FRAME_TLM, Some(0x01)) => 18,
        (&FRAME_TLM, _) => 14,
        (&FRAME_EID, _) => 10,
        _ => return None,
    })
}

/// Decodes the Eddystone frame in the data of a 0xFEAA service-data structure (after the UUID).
pub(crate) fn decode(data: &[u8]) -> Option<super::Frame> {
    use super::Frame;
    let (&frame_type, rest) = data.split_first()?;
    match frame_type {
        FRAME_UID => EddystoneUid::decode(rest).map(Frame::EddystoneUid),
        FRAME_URL => EddystoneUrl::decode(rest).map(Frame::EddystoneUrl),
        FRAME_TLM => EddystoneTlm::decode(rest).map(Frame::EddystoneTlm),
        FRAME_EID => EddystoneEid::decode(rest).map(Frame::EddystoneEid),
        _ => None,
    }
}

#[cfg(feature = "serde")]
mod ser {
    use super::*;
    use crate::hex::Hex;
    use serde::ser::{SerializeMap, Serializer};

    impl serde::Serialize for EddystoneUid {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(4))?;
            m.serialize_entry("type", "eddystone_uid")?;
            m.serialize_entry("namespace", &format_args!("{}", Hex(&self.namespace)))?;
            m.serialize_entry("instance", &format_args!("{}", Hex(&self.instance)))?;
            m.serialize_entry("tx_power", &self.tx_power)?;
            m.end()
        }
    }

    impl serde::Serialize for EddystoneUrl {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(3))?;
            m.serialize_entry("type", "eddystone_url")?;
            m.serialize_entry("url", &format_args!("{self}"))?;
            m.serialize_entry("tx_power", &self.tx_power)?;
            m.end()
        }
    }

    impl serde::Serialize for EddystoneTlm {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("type", "eddystone_tlm")?;
            match self {
                EddystoneTlm::Plain(p) => {
                    m.serialize_entry("version", &0u8)?;
                    m.serialize_entry("battery_mv", &p.battery_mv)?;
                    m.serialize_entry("temperature_c", &p.temperature_c)?;
                    m.serialize_entry("adv_count", &p.adv_count)?;
                    m.serialize_entry("uptime_s", &p.uptime_s())?;
                    m.serialize_entry("sec_count", &p.sec_count)?;
                }
                EddystoneTlm::Encrypted(e) => {
                    m.serialize_entry("version", &1u8)?;
                    m.serialize_entry("etlm", &format_args!("{}", Hex(&e.etlm)))?;
                    m.serialize_entry("salt", &format_args!("{}", Hex(&e.salt)))?;
                    m.serialize_entry("mic", &format_args!("{}", Hex(&e.mic)))?;
                }
            }
            m.end()
        }
    }

    impl serde::Serialize for EddystoneEid {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(3))?;
            m.serialize_entry("type", "eddystone_eid")?;
            m.serialize_entry("eid", &format_args!("{}", Hex(&self.eid)))?;
            m.serialize_entry("tx_power", &self.tx_power)?;
            m.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf([u8; 64], usize);
    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    fn show(u: &EddystoneUrl) -> Buf {
        let mut b = Buf([0; 64], 0);
        fmt::write(&mut b, format_args!("{u}")).unwrap();
        b
    }

    #[test]
    fn url_uses_longest_scheme_and_expansions() {
        let u = EddystoneUrl::new("https://www.example.com/shop", -20).unwrap();
        assert_eq!(u.scheme_code(), 1);
        assert_eq!(u.encoded(), b"example\x00shop");
        let s = show(&u);
        assert_eq!(&s.0[..s.1], b"https://www.example.com/shop");
        let u = EddystoneUrl::new("http://goo.gl/S6zT6P", 0).unwrap();
        assert_eq!(u.scheme_code(), 2);
        assert_eq!(u.encoded(), b"goo.gl/S6zT6P");
        let u = EddystoneUrl::new("https://a.info", 0).unwrap();
        assert_eq!(u.encoded(), b"a\x0b");
    }

    #[test]
    fn url_rejections_name_the_reason() {
        assert_eq!(
            EddystoneUrl::new("ftp://x", 0),
            Err(UrlError::UnsupportedScheme)
        );
        assert_eq!(
            EddystoneUrl::new("http://a b", 0),
            Err(UrlError::InvalidCharacter(' '))
        );
        assert_eq!(
            EddystoneUrl::new("http://é", 0),
            Err(UrlError::InvalidCharacter('é'))
        );
        assert_eq!(
            EddystoneUrl::new("http://abcdefghijklmnopqr", 0),
            Err(UrlError::TooLong)
        );
        // 17 encoded bytes is the limit and fits
        assert!(EddystoneUrl::new("http://abcdefghijklmnopq", 0).is_ok());
    }

    #[test]
    fn reserved_url_bytes_make_the_frame_invalid() {
        assert!(EddystoneUrl::decode(&[0, 2, b'a', 0x0e]).is_none());
        assert!(EddystoneUrl::decode(&[0, 4, b'a']).is_none());
        assert!(EddystoneUrl::decode(&[0, 3, b'a', 0x0d]).is_some());
    }

    #[test]
    fn tlm_temperature_is_signed_fixed_point() {
        let t =
            EddystoneTlm::decode(&[0, 0x0b, 0xb8, 0xff, 0x80, 0, 0, 0, 1, 0, 0, 0, 10]).unwrap();
        let EddystoneTlm::Plain(p) = t else {
            panic!("plain")
        };
        assert_eq!(p.battery_mv, 3000);
        assert_eq!(p.temperature_c, Some(-0.5));
        assert_eq!(p.uptime_s(), 1.0);
        let t = EddystoneTlm::decode(&[0, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(matches!(
            t,
            EddystoneTlm::Plain(TlmPlain {
                temperature_c: None,
                ..
            })
        ));
    }
}

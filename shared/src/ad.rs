//! BLE advertising data: the AD-structure walk, the generic AD fields, and an AD writer.
//!
//! Advertising and scan-response payloads are a run of AD structures `len type data…` where `len`
//! counts the type byte and the data. Real payloads are messy, so the walk is defined precisely and
//! matches what other decoders (bluetooth-data-tools, BlueZ) do with the same bytes:
//! - a zero length byte is padding (Android pads scan records to 62 bytes with zeros): it is skipped
//!   and the walk goes on;
//! - a structure whose declared length runs past the end of the buffer ends the walk; the structures
//!   before it stand, and the overrun is reported by [`AdStructures::error`], never read;
//! - structures of unknown or reserved type (including 0x00) are yielded and ignored by the fields.
//!
//! Nothing here allocates; [`AdFields`] (with `alloc`) is the owned summary `dwell-edge decode`
//! prints.

use crate::Uuid;
use core::fmt;

/// Assigned numbers for the AD types Dwell reads (Bluetooth Assigned Numbers, "Common Data Types").
pub mod ad_type {
    pub const FLAGS: u8 = 0x01;
    pub const UUID16_INCOMPLETE: u8 = 0x02;
    pub const UUID16_COMPLETE: u8 = 0x03;
    pub const UUID32_INCOMPLETE: u8 = 0x04;
    pub const UUID32_COMPLETE: u8 = 0x05;
    pub const UUID128_INCOMPLETE: u8 = 0x06;
    pub const UUID128_COMPLETE: u8 = 0x07;
    pub const SHORT_LOCAL_NAME: u8 = 0x08;
    pub const COMPLETE_LOCAL_NAME: u8 = 0x09;
    pub const TX_POWER_LEVEL: u8 = 0x0a;
    pub const SERVICE_DATA16: u8 = 0x16;
    pub const SERVICE_DATA32: u8 = 0x20;
    pub const SERVICE_DATA128: u8 = 0x21;
    pub const MANUFACTURER_DATA: u8 = 0xff;
}

/// The Bluetooth Base UUID, `00000000-0000-1000-8000-00805f9b34fb`, into which 16- and 32-bit UUIDs
/// are placed.
const BASE_UUID: [u8; 16] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0x80, 0x5f, 0x9b, 0x34, 0xfb,
];

/// A 16- or 32-bit Bluetooth UUID expanded on the Base UUID.
pub const fn uuid_from_u32(short: u32) -> Uuid {
    let mut b = BASE_UUID;
    let s = short.to_be_bytes();
    b[0] = s[0];
    b[1] = s[1];
    b[2] = s[2];
    b[3] = s[3];
    Uuid::from_bytes(b)
}

/// A 128-bit UUID as it appears on air (little-endian) turned into canonical order.
pub fn uuid_from_le(le: &[u8; 16]) -> Uuid {
    let mut b = *le;
    b.reverse();
    Uuid::from_bytes(b)
}

/// One AD structure, borrowed from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdStructure<'a> {
    pub ad_type: u8,
    pub data: &'a [u8],
}

/// Why the walk stopped before the end of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdError {
    /// The structure at `offset` declares `declared` bytes but only `available` follow its length
    /// byte.
    Overrun {
        offset: usize,
        declared: u8,
        available: usize,
    },
}

impl fmt::Display for AdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AdError::Overrun {
                offset,
                declared,
                available,
            } => write!(
                f,
                "AD structure at offset {offset} declares {declared} bytes but only {available} remain"
            ),
        }
    }
}

impl core::error::Error for AdError {}

/// Iterator over the AD structures of a payload; see the module docs for the rules.
#[derive(Clone, Debug)]
pub struct AdStructures<'a> {
    buf: &'a [u8],
    pos: usize,
    error: Option<AdError>,
}

/// Walks the AD structures of an advertising or scan-response payload.
pub fn structures(buf: &[u8]) -> AdStructures<'_> {
    AdStructures {
        buf,
        pos: 0,
        error: None,
    }
}

impl<'a> AdStructures<'a> {
    /// Why the walk stopped early, once it has stopped (None while bytes remain or if the payload
    /// ended cleanly).
    pub fn error(&self) -> Option<AdError> {
        self.error
    }
}

impl<'a> Iterator for AdStructures<'a> {
    type Item = AdStructure<'a>;

    fn next(&mut self) -> Option<AdStructure<'a>> {
        loop {
            let len = *self.buf.get(self.pos)?;
            if len == 0 {
                self.pos += 1;
                continue;
            }
            let start = self.pos + 1;
            let available = self.buf.len() - start;
            if usize::from(len) > available {
                self.error = Some(AdError::Overrun {
                    offset: self.pos,
                    declared: len,
                    available,
                });
                self.pos = self.buf.len();
                return None;
            }
            let end = start + usize::from(len);
            self.pos = end;
            return Some(AdStructure {
                ad_type: self.buf[start],
                data: &self.buf[start + 1..end],
            });
        }
    }
}

impl<'a> AdStructure<'a> {
    /// Service UUIDs listed by a 16/32/128-bit UUID list structure; a trailing partial UUID is
    /// ignored. Empty for other types.
    pub fn service_uuids(&self) -> impl Iterator<Item = Uuid> + 'a {
        let width = match self.ad_type {
            ad_type::UUID16_INCOMPLETE | ad_type::UUID16_COMPLETE => 2,
            ad_type::UUID32_INCOMPLETE | ad_type::UUID32_COMPLETE => 4,
            ad_type::UUID128_INCOMPLETE | ad_type::UUID128_COMPLETE => 16,
            _ => 0,
        };
        let data = if width == 0 { &[][..] } else { self.data };
        data.chunks_exact(width.max(1)).map(move |c| match c.len() {
            2 => uuid_from_u32(u32::from(u16::from_le_bytes([c[0], c[1]]))),
            4 => uuid_from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => {
                let mut le = [0u8; 16];
                le.copy_from_slice(c);
                uuid_from_le(&le)
            }
        })
    }

    /// `(uuid, data)` of a service-data structure (16, 32 or 128-bit UUID), if long enough.
    pub fn service_data(&self) -> Option<(Uuid, &'a [u8])> {
        let d = self.data;
        match self.ad_type {
            ad_type::SERVICE_DATA16 if d.len() >= 2 => Some((
                uuid_from_u32(u32::from(u16::from_le_bytes([d[0], d[1]]))),
                &d[2..],
            )),
            ad_type::SERVICE_DATA32 if d.len() >= 4 => Some((
                uuid_from_u32(u32::from_le_bytes([d[0], d[1], d[2], d[3]])),
                &d[4..],
            )),
            ad_type::SERVICE_DATA128 if d.len() >= 16 => {
                let mut le = [0u8; 16];
                le.copy_from_slice(&d[..16]);
                Some((uuid_from_le(&le), &d[16..]))
            }
            _ => None,
        }
    }

    /// The 16-bit service UUID and data of a 16-bit service-data structure (Eddystone's form).
    pub fn service_data16(&self) -> Option<(u16, &'a [u8])> {
        match (self.ad_type, self.data) {
            (ad_type::SERVICE_DATA16, [a, b, rest @ ..]) => {
                Some((u16::from_le_bytes([*a, *b]), rest))
            }
            _ => None,
        }
    }

    /// `(company id, data)` of a manufacturer-specific structure, if it has a company id.
    pub fn manufacturer_data(&self) -> Option<(u16, &'a [u8])> {
        match (self.ad_type, self.data) {
            (ad_type::MANUFACTURER_DATA, [a, b, rest @ ..]) => {
                Some((u16::from_le_bytes([*a, *b]), rest))
            }
            _ => None,
        }
    }
}

/// The generic fields of one advertisement, borrowed and allocation-free: the last word of each
/// field, with the complete local name preferred over the shortened one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdSummary<'a> {
    pub flags: Option<u8>,
    /// Raw name bytes (UTF-8 by the spec, not checked here); never empty.
    pub local_name: Option<&'a [u8]>,
    pub local_name_complete: bool,
    pub tx_power_level: Option<i8>,
}

impl<'a> AdSummary<'a> {
    /// Scans a payload for flags, name and TX power.
    pub fn parse(buf: &'a [u8]) -> Self {
        let mut s = AdSummary::default();
        for st in structures(buf) {
            s.absorb(&st);
        }
        s
    }

    fn absorb(&mut self, st: &AdStructure<'a>) {
        match (st.ad_type, st.data) {
            (ad_type::FLAGS, [f, ..]) => self.flags = Some(*f),
            // A TX power level is one signed byte; longer values are malformed and ignored.
            (ad_type::TX_POWER_LEVEL, [p]) => self.tx_power_level = Some(*p as i8),
            (ad_type::COMPLETE_LOCAL_NAME, name) if !name.is_empty() => {
                self.local_name = Some(name);
                self.local_name_complete = true;
            }
            (ad_type::SHORT_LOCAL_NAME, name) if !name.is_empty() && !self.local_name_complete => {
                self.local_name = Some(name);
            }
            _ => {}
        }
    }
}

#[cfg(feature = "alloc")]
pub use owned::AdFields;

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// Every generic field of one advertisement, owned: what `dwell-edge decode` prints.
    ///
    /// Lists keep the order of first appearance; a repeated manufacturer id or service-data UUID
    /// keeps its first position and its last value, a repeated service UUID appears once.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct AdFields {
        pub flags: Option<u8>,
        pub local_name: Option<String>,
        pub tx_power_level: Option<i8>,
        pub service_uuids: Vec<Uuid>,
        pub manufacturer_data: Vec<(u16, Vec<u8>)>,
        pub service_data: Vec<(Uuid, Vec<u8>)>,
        /// Why the walk stopped early, if it did.
        pub error: Option<AdError>,
    }

    fn upsert<K: PartialEq>(list: &mut Vec<(K, Vec<u8>)>, key: K, value: &[u8]) {
        match list.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.to_vec(),
            None => list.push((key, value.to_vec())),
        }
    }

    impl AdFields {
        pub fn parse(buf: &[u8]) -> Self {
            let mut out = AdFields::default();
            let mut summary = AdSummary::default();
            let mut walk = structures(buf);
            for st in walk.by_ref() {
                summary.absorb(&st);
                for u in st.service_uuids() {
                    if !out.service_uuids.contains(&u) {
                        out.service_uuids.push(u);
                    }
                }
                if let Some((uuid, data)) = st.service_data() {
                    upsert(&mut out.service_data, uuid, data);
                }
                if let Some((company, data)) = st.manufacturer_data() {
                    upsert(&mut out.manufacturer_data, company, data);
                }
            }
            out.error = walk.error();
            out.flags = summary.flags;
            out.tx_power_level = summary.tx_power_level;
            out.local_name = summary
                .local_name
                .map(|n| String::from_utf8_lossy(n).into_owned());
            out
        }
    }

    #[cfg(feature = "serde")]
    impl serde::Serialize for AdFields {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use crate::hex::Hex;
            use serde::ser::SerializeMap;

            struct HexMap<'a, K>(&'a [(K, Vec<u8>)], fn(&K) -> String);
            impl<K> serde::Serialize for HexMap<'_, K> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let mut m = s.serialize_map(Some(self.0.len()))?;
                    for (k, v) in self.0 {
                        m.serialize_entry(&(self.1)(k), &alloc::format!("{}", Hex(v)))?;
                    }
                    m.end()
                }
            }

            let mut m = s.serialize_map(None)?;
            m.serialize_entry("flags", &self.flags)?;
            m.serialize_entry("local_name", &self.local_name)?;
            m.serialize_entry("tx_power_level", &self.tx_power_level)?;
            m.serialize_entry("service_uuids", &self.service_uuids)?;
            m.serialize_entry(
                "manufacturer_data",
                &HexMap(&self.manufacturer_data, |c| alloc::format!("{c:04x}")),
            )?;
            m.serialize_entry(
                "service_data",
                &HexMap(&self.service_data, |u| alloc::format!("{u}")),
            )?;
            m.end()
        }
    }
}

/// Why an AD payload could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The structures do not fit in the output buffer.
    BufferFull,
    /// One structure's data is longer than the 254 bytes a length byte can declare.
    StructureTooLong,
    /// The value cannot be represented in the frame format (e.g. a URL with no valid encoding).
    Unrepresentable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferFull => "advertising payload does not fit the buffer",
            EncodeError::StructureTooLong => "AD structure longer than 254 bytes",
            EncodeError::Unrepresentable => "value cannot be encoded in this frame format",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Writes AD structures into a caller's buffer (no allocation), for beacon encoders and the
/// advertising side of gateways and zone nodes.
#[derive(Debug)]
pub struct AdWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> AdWriter<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        AdWriter { buf, len: 0 }
    }

    /// Appends one structure whose data is the concatenation of `parts`.
    pub fn push(&mut self, ad_type: u8, parts: &[&[u8]]) -> Result<(), EncodeError> {
        let data_len: usize = parts.iter().map(|p| p.len()).sum();
        if data_len > 254 {
            return Err(EncodeError::StructureTooLong);
        }
        let total = 2 + data_len;
        let out = self
            .buf
            .get_mut(self.len..self.len + total)
            .ok_or(EncodeError::BufferFull)?;
        out[0] = (data_len + 1) as u8;
        out[1] = ad_type;
        let mut at = 2;
        for p in parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.len += total;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(hex: &str) -> ([(u8, usize); 8], usize, Option<AdError>) {
        let mut buf = [0u8; 128];
        let n = crate::hex::decode_into(hex, &mut buf).unwrap();
        let mut out = [(0u8, 0usize); 8];
        let mut count = 0;
        let mut w = structures(&buf[..n]);
        for st in w.by_ref() {
            out[count] = (st.ad_type, st.data.len());
            count += 1;
        }
        (out, count, w.error())
    }

    #[test]
    fn zero_length_bytes_are_padding_and_the_walk_goes_on() {
        let (s, n, e) = walk("020106 0000 03ff4c00 00");
        assert_eq!(n, 2);
        assert_eq!(s[0], (0x01, 1));
        assert_eq!(s[1], (0xff, 2));
        assert_eq!(e, None);
    }

    #[test]
    fn overrun_stops_the_walk_and_is_reported() {
        let (_, n, e) = walk("020106 0509abcd");
        assert_eq!(n, 1);
        assert_eq!(
            e,
            Some(AdError::Overrun {
                offset: 3,
                declared: 5,
                available: 3
            })
        );
    }

    #[test]
    fn complete_name_wins_over_short_in_either_order() {
        let mut b = [0u8; 32];
        let n = crate::hex::decode_into("04084261720409466f6f", &mut b).unwrap();
        assert_eq!(AdSummary::parse(&b[..n]).local_name, Some(&b"Foo"[..]));
        let n = crate::hex::decode_into("0409466f6f0408426172", &mut b).unwrap();
        assert_eq!(AdSummary::parse(&b[..n]).local_name, Some(&b"Foo"[..]));
    }

    #[test]
    fn multibyte_tx_power_is_ignored() {
        assert_eq!(
            AdSummary::parse(&[0x02, 0x0a, 0xce]).tx_power_level,
            Some(-50)
        );
        assert_eq!(
            AdSummary::parse(&[0x03, 0x0a, 0x00, 0x80]).tx_power_level,
            None
        );
    }

    #[test]
    fn uuid_widths_expand_on_the_base_uuid() {
        let st = AdStructure {
            ad_type: ad_type::UUID16_COMPLETE,
            data: &[0xaa, 0xfe, 0x01],
        };
        let mut it = st.service_uuids();
        assert_eq!(
            it.next().unwrap().as_bytes(),
            uuid_from_u32(0xfeaa).as_bytes()
        );
        assert!(it.next().is_none());
        assert_eq!(
            uuid_from_u32(0xfeaa)
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
            "0000feaa-0000-1000-8000-00805f9b34fb"
        );
    }

    #[test]
    fn writer_frames_structures_and_refuses_overflow() {
        let mut buf = [0u8; 6];
        let mut w = AdWriter::new(&mut buf);
        w.push(ad_type::FLAGS, &[&[0x06]]).unwrap();
        assert_eq!(w.as_bytes(), &[0x02, 0x01, 0x06]);
        assert_eq!(
            w.push(ad_type::FLAGS, &[&[1, 2]]),
            Err(EncodeError::BufferFull)
        );
    }
}

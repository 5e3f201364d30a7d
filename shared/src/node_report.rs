//! Zone-node reports: the compact binary message a zone sensor node sends its gateway once per
//! reporting window (`dwell/v1/{store}/nodes/{node}/report`).
//!
//! The node encodes and the gateway decodes with this one module, so both sides agree on every
//! byte. It is `no_std` and allocation-free on both sides: [`ReportWriter`] writes into a caller's
//! buffer, [`Report::decode`] validates a whole message up front and then lends its sightings out
//! through an infallible iterator. A node's report carries no raw device address: devices without
//! a beacon identity appear only as a salted hash computed on the node ([`Identity::AddrHash`]),
//! the same privacy tier the gateway applies.
//!
//! # Wire format, version 1
//! All integers little-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | magic and version: `0xD1` (high nibble `0xD` = Dwell node report, low nibble = version 1) |
//! | 4 | node id (u32) |
//! | 2 | store number (u16, the zone iBeacon's major) |
//! | 2 | zone (u16, the zone iBeacon's minor) |
//! | 4 | window start, Unix seconds (u32) |
//! | 2 | window length, seconds (u16) |
//! | 2 | door: people in (u16) |
//! | 2 | door: people out (u16) |
//! | 2 | sightings dropped because the node's table was full or the report did not fit (u16) |
//! | 1 | number of sightings N (u8) |
//! | N × | sighting: identity kind (u8), identity bytes (length set by the kind), count (u16), RSSI min, max, mean (i8 each, dBm) |
//! | 4 | CRC-32 (ISO-HDLC, the zlib/Ethernet CRC) of every byte before it |
//!
//! Identity kinds: `0x01` Eddystone-EID (8 bytes), `0x02` iBeacon (uuid 16, major 2, minor 2,
//! big-endian as on air), `0x03` AltBeacon (id1 16, id2 2, id3 2, big-endian), `0x04` Eddystone-UID
//! (namespace 10, instance 6), `0x05` salted address hash (8 bytes).
//!
//! Counters saturate at their maximum rather than wrap. A decoder rejects a message with another
//! magic or version, a bad CRC, a truncated or over-long body, or an unknown identity kind, each
//! with its own [`DecodeError`] variant.

use core::fmt;

/// Magic nibble and version in the first byte of every version-1 report.
pub const MAGIC_V1: u8 = 0xD1;
/// The report format version this module writes.
pub const VERSION: u8 = 1;
/// Bytes before the first sighting.
pub const HEADER_LEN: usize = 22;
/// Bytes of the trailing CRC.
pub const CRC_LEN: usize = 4;
/// Bytes of the longest sighting (iBeacon or AltBeacon identity).
pub const MAX_SIGHTING_LEN: usize = 1 + 20 + 2 + 3;
/// Most sightings one report can carry (the count is one byte).
pub const MAX_SIGHTINGS: usize = 255;

/// The buffer size that always holds a report of up to `sightings` sightings.
pub const fn max_encoded_len(sightings: usize) -> usize {
    let n = if sightings > MAX_SIGHTINGS {
        MAX_SIGHTINGS
    } else {
        sightings
    };
    HEADER_LEN + n * MAX_SIGHTING_LEN + CRC_LEN
}

mod kind {
    pub const EID: u8 = 0x01;
    pub const IBEACON: u8 = 0x02;
    pub const ALTBEACON: u8 = 0x03;
    pub const EDDYSTONE_UID: u8 = 0x04;
    pub const ADDR_HASH: u8 = 0x05;
}

/// Who was seen: a beacon identity, or for anything else a salted hash of its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// Eddystone-EID: the 8-byte ephemeral id (consented tier; the cloud resolves it).
    Eid([u8; 8]),
    /// iBeacon proximity UUID, major, minor.
    IBeacon {
        uuid: [u8; 16],
        major: u16,
        minor: u16,
    },
    /// AltBeacon id1, id2, id3.
    AltBeacon { id1: [u8; 16], id2: u16, id3: u16 },
    /// Eddystone-UID namespace and instance.
    EddystoneUid {
        namespace: [u8; 10],
        instance: [u8; 6],
    },
    /// A keyed hash of the device address made on the node with a salt the node rotates; never
    /// the address itself.
    AddrHash([u8; 8]),
}

impl Identity {
    /// The kind byte on the wire.
    pub fn kind(&self) -> u8 {
        match self {
            Identity::Eid(_) => kind::EID,
            Identity::IBeacon { .. } => kind::IBEACON,
            Identity::AltBeacon { .. } => kind::ALTBEACON,
            Identity::EddystoneUid { .. } => kind::EDDYSTONE_UID,
            Identity::AddrHash(_) => kind::ADDR_HASH,
        }
    }

    /// A short name for logs and JSON (`eid`, `ibeacon`, `altbeacon`, `eddystone_uid`,
    /// `addr_hash`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Identity::Eid(_) => "eid",
            Identity::IBeacon { .. } => "ibeacon",
            Identity::AltBeacon { .. } => "altbeacon",
            Identity::EddystoneUid { .. } => "eddystone_uid",
            Identity::AddrHash(_) => "addr_hash",
        }
    }

    /// Identity bytes after the kind byte, for each kind.
    fn body_len(kind: u8) -> Option<usize> {
        Some(match kind {
            kind::EID | kind::ADDR_HASH => 8,
            kind::IBEACON | kind::ALTBEACON => 20,
            kind::EDDYSTONE_UID => 16,
            _ => return None,
        })
    }

    /// Writes kind and body into `out` (which the caller sized); returns bytes written.
    fn write(&self, out: &mut [u8]) -> usize {
        out[0] = self.kind();
        let body = &mut out[1..];
        match self {
            Identity::Eid(b) | Identity::AddrHash(b) => body[..8].copy_from_slice(b),
            Identity::IBeacon { uuid, major, minor } => {
                body[..16].copy_from_slice(uuid);
                body[16..18].copy_from_slice(&major.to_be_bytes());
                body[18..20].copy_from_slice(&minor.to_be_bytes());
            }
            Identity::AltBeacon { id1, id2, id3 } => {
                body[..16].copy_from_slice(id1);
                body[16..18].copy_from_slice(&id2.to_be_bytes());
                body[18..20].copy_from_slice(&id3.to_be_bytes());
            }
            Identity::EddystoneUid {
                namespace,
                instance,
            } => {
                body[..10].copy_from_slice(namespace);
                body[10..16].copy_from_slice(instance);
            }
        }
        1 + Identity::body_len(self.kind()).unwrap_or(0)
    }

    /// Reads an identity of a known kind from its body (already length-checked).
    fn read(kind: u8, b: &[u8]) -> Identity {
        let arr16 = |s: &[u8]| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&s[..16]);
            a
        };
        let be = |s: &[u8], at: usize| u16::from_be_bytes([s[at], s[at + 1]]);
        match kind {
            kind::EID | kind::ADDR_HASH => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[..8]);
                if kind == kind::EID {
                    Identity::Eid(a)
                } else {
                    Identity::AddrHash(a)
                }
            }
            kind::IBEACON => Identity::IBeacon {
                uuid: arr16(b),
                major: be(b, 16),
                minor: be(b, 18),
            },
            kind::ALTBEACON => Identity::AltBeacon {
                id1: arr16(b),
                id2: be(b, 16),
                id3: be(b, 18),
            },
            _ => {
                let mut namespace = [0u8; 10];
                let mut instance = [0u8; 6];
                namespace.copy_from_slice(&b[..10]);
                instance.copy_from_slice(&b[10..16]);
                Identity::EddystoneUid {
                    namespace,
                    instance,
                }
            }
        }
    }
}

/// One identity's sightings in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sighting {
    pub identity: Identity,
    /// Advertisements heard (saturating).
    pub count: u16,
    pub rssi_min: i8,
    pub rssi_max: i8,
    /// Mean RSSI over the advertisements that carried one, rounded toward negative infinity.
    pub rssi_mean: i8,
}

impl Sighting {
    fn encoded_len(&self) -> usize {
        1 + Identity::body_len(self.identity.kind()).unwrap_or(0) + 2 + 3
    }
}

/// Everything in a report except the sightings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    pub node: u32,
    /// Store number (the zone iBeacon's major).
    pub store: u16,
    /// Zone number (the zone iBeacon's minor).
    pub zone: u16,
    /// Start of the window, Unix seconds (or seconds since the node booted, if it has no clock).
    pub window_start_s: u32,
    pub window_len_s: u16,
    pub door_in: u16,
    pub door_out: u16,
    /// Sightings the node could not keep (table full) or not send (report full).
    pub dropped: u16,
}

/// Why a report could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer cannot hold the header, or one more sighting plus the CRC.
    BufferFull,
    /// The report already carries [`MAX_SIGHTINGS`].
    TooManySightings,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferFull => "node report does not fit the buffer",
            EncodeError::TooManySightings => "node report already holds 255 sightings",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes are not a valid report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the smallest report (header + CRC).
    TooShort { len: usize },
    /// The first byte's high nibble is not 0xD: not a Dwell node report.
    BadMagic(u8),
    /// A node report of a version this decoder does not read.
    UnsupportedVersion(u8),
    /// The sightings announced need more bytes than the message has.
    Truncated { needed: usize, len: usize },
    /// Bytes left between the last sighting and the CRC.
    TrailingBytes(usize),
    /// The CRC does not match: the message was damaged.
    BadCrc { expected: u32, actual: u32 },
    /// A sighting of an identity kind this decoder does not know (and the CRC was good).
    UnknownIdentityKind(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::TooShort { len } => write!(
                f,
                "node report of {len} bytes is shorter than the {} byte minimum",
                HEADER_LEN + CRC_LEN
            ),
            DecodeError::BadMagic(b) => write!(f, "first byte 0x{b:02x} is not a node report"),
            DecodeError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "node report version {v} is not supported (only {VERSION})"
                )
            }
            DecodeError::Truncated { needed, len } => {
                write!(f, "node report truncated: needs {needed} bytes, has {len}")
            }
            DecodeError::TrailingBytes(n) => {
                write!(f, "{n} unexpected bytes after the last sighting")
            }
            DecodeError::BadCrc { expected, actual } => write!(
                f,
                "node report CRC mismatch: carried {expected:08x}, computed {actual:08x}"
            ),
            DecodeError::UnknownIdentityKind(k) => write!(f, "unknown identity kind 0x{k:02x}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// CRC-32/ISO-HDLC (polynomial 0x04C11DB7 reflected, init and xor-out 0xFFFFFFFF), the CRC of
/// zlib, Ethernet and PNG; nibble-table form, small enough for any node.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 16] = {
        let mut t = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 4 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc = (crc >> 4) ^ TABLE[((crc ^ u32::from(b)) & 0x0f) as usize];
        crc = (crc >> 4) ^ TABLE[((crc ^ (u32::from(b) >> 4)) & 0x0f) as usize];
    }
    !crc
}

/// Writes one report into a caller's buffer: header first, then sightings one by one, then
/// [`finish`](ReportWriter::finish) patches the counts and appends the CRC.
#[derive(Debug)]
pub struct ReportWriter<'a> {
    out: &'a mut [u8],
    len: usize,
    count: u8,
    dropped: u16,
}

impl<'a> ReportWriter<'a> {
    /// Starts a report; fails if `out` cannot hold even an empty one.
    pub fn new(out: &'a mut [u8], header: &Header) -> Result<Self, EncodeError> {
        if out.len() < HEADER_LEN + CRC_LEN {
            return Err(EncodeError::BufferFull);
        }
        out[0] = MAGIC_V1;
        out[1..5].copy_from_slice(&header.node.to_le_bytes());
        out[5..7].copy_from_slice(&header.store.to_le_bytes());
        out[7..9].copy_from_slice(&header.zone.to_le_bytes());
        out[9..13].copy_from_slice(&header.window_start_s.to_le_bytes());
        out[13..15].copy_from_slice(&header.window_len_s.to_le_bytes());
        out[15..17].copy_from_slice(&header.door_in.to_le_bytes());
        out[17..19].copy_from_slice(&header.door_out.to_le_bytes());
        // dropped (19..21) and the count (21) are written by `finish`.
        Ok(ReportWriter {
            out,
            len: HEADER_LEN,
            count: 0,
            dropped: header.dropped,
        })
    }

    /// Appends a sighting. On error nothing is written and the report stays valid.
    pub fn push(&mut self, s: &Sighting) -> Result<(), EncodeError> {
        if usize::from(self.count) >= MAX_SIGHTINGS {
            return Err(EncodeError::TooManySightings);
        }
        let n = s.encoded_len();
        if self.len + n + CRC_LEN > self.out.len() {
            return Err(EncodeError::BufferFull);
        }
        let at = self.len;
        let id_len = s.identity.write(&mut self.out[at..]);
        let b = &mut self.out[at + id_len..at + n];
        b[..2].copy_from_slice(&s.count.to_le_bytes());
        b[2] = s.rssi_min as u8;
        b[3] = s.rssi_max as u8;
        b[4] = s.rssi_mean as u8;
        self.len += n;
        self.count += 1;
        Ok(())
    }

    /// Adds to the dropped count (saturating), e.g. for sightings that did not fit.
    pub fn add_dropped(&mut self, n: u32) {
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        self.dropped = self.dropped.saturating_add(n);
    }

    /// Sightings written so far.
    pub fn sightings(&self) -> usize {
        usize::from(self.count)
    }

    /// Completes the report; returns its length in the buffer.
    pub fn finish(self) -> usize {
        self.out[19..21].copy_from_slice(&self.dropped.to_le_bytes());
        self.out[21] = self.count;
        let crc = crc32(&self.out[..self.len]);
        self.out[self.len..self.len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
        self.len + CRC_LEN
    }
}

/// Encodes a whole report at once; fails if the sightings do not all fit.
pub fn encode(
    header: &Header,
    sightings: &[Sighting],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut w = ReportWriter::new(out, header)?;
    for s in sightings {
        w.push(s)?;
    }
    Ok(w.finish())
}

/// A validated report, borrowing the message bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report<'a> {
    pub header: Header,
    count: u8,
    body: &'a [u8],
}

impl<'a> Report<'a> {
    /// Validates magic, version, length, CRC and every identity kind; after that, reading the
    /// sightings cannot fail.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let len = bytes.len();
        if let Some(&first) = bytes.first() {
            if first >> 4 != MAGIC_V1 >> 4 {
                return Err(DecodeError::BadMagic(first));
            }
            if first & 0x0f != VERSION {
                return Err(DecodeError::UnsupportedVersion(first & 0x0f));
            }
        }
        if len < HEADER_LEN + CRC_LEN {
            return Err(DecodeError::TooShort { len });
        }
        let count = bytes[21];
        let end = len - CRC_LEN;
        // Walk the sightings to find where they end; an unknown kind is only reported once the
        // CRC has vouched for the bytes (otherwise it is just damage).
        let mut at = HEADER_LEN;
        let mut unknown = None;
        for _ in 0..count {
            let Some(&k) = bytes.get(at) else {
                return Err(DecodeError::Truncated {
                    needed: at + 1 + CRC_LEN,
                    len,
                });
            };
            let Some(body) = Identity::body_len(k) else {
                unknown = Some(k);
                break;
            };
            at += 1 + body + 5;
            if at > end {
                return Err(DecodeError::Truncated {
                    needed: at + CRC_LEN,
                    len,
                });
            }
        }
        let carried =
            u32::from_le_bytes([bytes[end], bytes[end + 1], bytes[end + 2], bytes[end + 3]]);
        let computed = crc32(&bytes[..end]);
        if carried != computed {
            return Err(DecodeError::BadCrc {
                expected: carried,
                actual: computed,
            });
        }
        if let Some(k) = unknown {
            return Err(DecodeError::UnknownIdentityKind(k));
        }
        if at != end {
            return Err(DecodeError::TrailingBytes(end - at));
        }
        let le = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        Ok(Report {
            header: Header {
                node: u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
                store: le(5),
                zone: le(7),
                window_start_s: u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]),
                window_len_s: le(13),
                door_in: le(15),
                door_out: le(17),
                dropped: le(19),
            },
            count,
            body: &bytes[HEADER_LEN..end],
        })
    }

    /// Number of sightings.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sightings, in the order the node wrote them.
    pub fn sightings(&self) -> Sightings<'a> {
        Sightings {
            rest: self.body,
            remaining: self.count,
        }
    }
}

/// Iterator over a decoded report's sightings.
#[derive(Clone, Debug)]
pub struct Sightings<'a> {
    rest: &'a [u8],
    remaining: u8,
}

impl Iterator for Sightings<'_> {
    type Item = Sighting;

    fn next(&mut self) -> Option<Sighting> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // `Report::decode` checked every kind and length, so these reads are in bounds.
        let k = *self.rest.first()?;
        let body = Identity::body_len(k)?;
        let b = self.rest.get(1..1 + body + 5)?;
        let identity = Identity::read(k, b);
        let t = &b[body..];
        self.rest = &self.rest[1 + body + 5..];
        Some(Sighting {
            identity,
            count: u16::from_le_bytes([t[0], t[1]]),
            rssi_min: t[2] as i8,
            rssi_max: t[3] as i8,
            rssi_mean: t[4] as i8,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            node: 7,
            store: 42,
            zone: 3,
            window_start_s: 1_700_000_000,
            window_len_s: 60,
            door_in: 5,
            door_out: 4,
            dropped: 2,
        }
    }

    fn sightings() -> [Sighting; 2] {
        [
            Sighting {
                identity: Identity::IBeacon {
                    uuid: [
                        0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x40, 0x41, 0x42,
                        0x43, 0x44, 0x45, 0x46,
                    ],
                    major: 1,
                    minor: 2,
                },
                count: 12,
                rssi_min: -80,
                rssi_max: -60,
                rssi_mean: -70,
            },
            Sighting {
                identity: Identity::AddrHash([1, 2, 3, 4, 5, 6, 7, 8]),
                count: 1,
                rssi_min: -91,
                rssi_max: -91,
                rssi_mean: -91,
            },
        ]
    }

    #[test]
    fn crc32_check_value() {
        // The catalogued check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn golden_bytes() {
        let mut out = [0u8; 128];
        let n = encode(&header(), &sightings(), &mut out).unwrap();
        // CRC cross-checked with Python's zlib.crc32 over the bytes before it.
        let expect = "d1 07000000 2a00 0300 00f15365 3c00 0500 0400 0200 02\
                      02 41424344454647484940414243444546 0001 0002 0c00 b0 c4 ba\
                      05 0102030405060708 0100 a5 a5 a5\
                      522182e5";
        let mut golden = [0u8; 128];
        let g = crate::hex::decode_into(expect, &mut golden).unwrap();
        assert_eq!(crate::hex::Hex(&out[..n]), crate::hex::Hex(&golden[..g]));
    }

    #[test]
    fn round_trip() {
        let mut out = [0u8; max_encoded_len(2)];
        let n = encode(&header(), &sightings(), &mut out).unwrap();
        let r = Report::decode(&out[..n]).unwrap();
        assert_eq!(r.header, header());
        assert_eq!(r.len(), 2);
        let mut it = r.sightings();
        assert_eq!(it.next(), Some(sightings()[0]));
        assert_eq!(it.next(), Some(sightings()[1]));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn every_identity_kind_round_trips() {
        let ids = [
            Identity::Eid(*b"EID_test"),
            Identity::IBeacon {
                uuid: [9; 16],
                major: 0xfffe,
                minor: 1,
            },
            Identity::AltBeacon {
                id1: [7; 16],
                id2: 3,
                id3: 0x1234,
            },
            Identity::EddystoneUid {
                namespace: [1; 10],
                instance: [2; 6],
            },
            Identity::AddrHash([0xaa; 8]),
        ];
        let mut out = [0u8; max_encoded_len(5)];
        let mut w = ReportWriter::new(&mut out, &Header::default()).unwrap();
        for identity in ids {
            w.push(&Sighting {
                identity,
                count: u16::MAX,
                rssi_min: -128,
                rssi_max: 127,
                rssi_mean: 0,
            })
            .unwrap();
        }
        let n = w.finish();
        let r = Report::decode(&out[..n]).unwrap();
        let got: [Identity; 5] = {
            let mut it = r.sightings().map(|s| s.identity);
            core::array::from_fn(|_| it.next().unwrap())
        };
        assert_eq!(got, ids);
    }

    #[test]
    fn writer_stops_at_the_buffer_and_counts_what_did_not_fit() {
        // Room for the header, one iBeacon sighting and the CRC, not two.
        let mut out = [0u8; HEADER_LEN + MAX_SIGHTING_LEN + CRC_LEN + 10];
        let mut w = ReportWriter::new(&mut out, &header()).unwrap();
        w.push(&sightings()[0]).unwrap();
        assert_eq!(w.push(&sightings()[0]), Err(EncodeError::BufferFull));
        w.add_dropped(1);
        let n = w.finish();
        let r = Report::decode(&out[..n]).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.header.dropped, 3);
        assert_eq!(
            ReportWriter::new(&mut [0u8; 10], &header()).err(),
            Some(EncodeError::BufferFull)
        );
    }

    #[test]
    fn decoder_names_what_is_wrong() {
        let mut out = [0u8; 128];
        let n = encode(&header(), &sightings(), &mut out).unwrap();
        let good = &out[..n];

        let mut v2 = [0u8; 128];
        v2[..n].copy_from_slice(good);
        v2[0] = 0xD2;
        assert_eq!(
            Report::decode(&v2[..n]),
            Err(DecodeError::UnsupportedVersion(2))
        );
        v2[0] = 0x7b;
        assert_eq!(Report::decode(&v2[..n]), Err(DecodeError::BadMagic(0x7b)));

        let mut flipped = [0u8; 128];
        flipped[..n].copy_from_slice(good);
        flipped[30] ^= 0x01;
        assert!(matches!(
            Report::decode(&flipped[..n]),
            Err(DecodeError::BadCrc { .. })
        ));

        assert!(matches!(
            Report::decode(&good[..n - 10]),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            Report::decode(&good[..5]),
            Err(DecodeError::TooShort { len: 5 })
        );

        // An unknown kind with a valid CRC is named as such.
        let mut unknown = [0u8; 64];
        let m = encode(&header(), &[], &mut unknown).unwrap();
        unknown[21] = 1;
        unknown[m - CRC_LEN] = 0x99;
        let crc = crc32(&unknown[..m - CRC_LEN + 1]);
        unknown[m - CRC_LEN + 1..m + 1].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Report::decode(&unknown[..m + 1]),
            Err(DecodeError::UnknownIdentityKind(0x99))
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut out = [0u8; 64];
        let m = encode(&header(), &[], &mut out).unwrap();
        // One extra byte before the CRC, CRC recomputed.
        out[m - CRC_LEN] = 0;
        let crc = crc32(&out[..m - CRC_LEN + 1]);
        out[m - CRC_LEN + 1..m + 1].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Report::decode(&out[..m + 1]),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn identity() -> impl Strategy<Value = Identity> {
            prop_oneof![
                any::<[u8; 8]>().prop_map(Identity::Eid),
                (any::<[u8; 16]>(), any::<u16>(), any::<u16>())
                    .prop_map(|(uuid, major, minor)| Identity::IBeacon { uuid, major, minor }),
                (any::<[u8; 16]>(), any::<u16>(), any::<u16>())
                    .prop_map(|(id1, id2, id3)| Identity::AltBeacon { id1, id2, id3 }),
                (any::<[u8; 10]>(), any::<[u8; 6]>()).prop_map(|(namespace, instance)| {
                    Identity::EddystoneUid {
                        namespace,
                        instance,
                    }
                }),
                any::<[u8; 8]>().prop_map(Identity::AddrHash),
            ]
        }

        fn sighting() -> impl Strategy<Value = Sighting> {
            (
                identity(),
                any::<u16>(),
                any::<i8>(),
                any::<i8>(),
                any::<i8>(),
            )
                .prop_map(|(identity, count, rssi_min, rssi_max, rssi_mean)| {
                    Sighting {
                        identity,
                        count,
                        rssi_min,
                        rssi_max,
                        rssi_mean,
                    }
                })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                if let Ok(r) = Report::decode(&bytes) {
                    prop_assert_eq!(r.sightings().count(), r.len());
                }
            }

            #[test]
            fn arbitrary_bytes_after_a_valid_magic_never_panic(
                mut bytes in proptest::collection::vec(any::<u8>(), 0..400)
            ) {
                if let Some(b) = bytes.first_mut() { *b = MAGIC_V1; }
                if let Ok(r) = Report::decode(&bytes) {
                    prop_assert_eq!(r.sightings().count(), r.len());
                }
            }

            #[test]
            fn reports_round_trip(
                h in (any::<u32>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u16>(),
                      any::<u16>(), any::<u16>(), any::<u16>()),
                s in proptest::collection::vec(sighting(), 0..40),
            ) {
                let header = Header {
                    node: h.0, store: h.1, zone: h.2, window_start_s: h.3, window_len_s: h.4,
                    door_in: h.5, door_out: h.6, dropped: h.7,
                };
                let mut out = [0u8; max_encoded_len(40)];
                let n = encode(&header, &s, &mut out).unwrap();
                let r = Report::decode(&out[..n]).unwrap();
                prop_assert_eq!(r.header, header);
                prop_assert!(r.sightings().eq(s.iter().copied()));
                // Any single flipped bit is caught.
                let bit = (h.0 as usize) % (n * 8);
                out[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(Report::decode(&out[..n]).is_err());
            }
        }
    }
}

//! btsnoop capture files: Android's HCI snoop log and `btmon -w`, read into HCI packets.
//!
//! Dwell replays real captures through the same decode path the live scanner feeds, so this module
//! owns the one file format both Android and BlueZ write. A file is a 16-byte header
//! (`"btsnoop\0"`, version u32be = 1, datalink u32be) and records of
//! `orig_len incl_len flags drops: u32be, timestamp: i64be, incl_len bytes`; the timestamp counts
//! microseconds since midnight, 1 January of year 0 AD.
//!
//! Three datalinks are read, and each record is normalized to a [`PacketKind`] plus the packet
//! bytes *without* any H4 indicator (an event starts with its event code, e.g. `0x3e`):
//! - 1002, H4 (Android): the first byte is the packet indicator, flags bit 0 the direction;
//! - 1001, H1: no indicator; flags bit 1 says command/event vs data, bit 0 the direction;
//! - 2001, Linux monitor (`btmon`): flags carry the opcode (low 16 bits) and the adapter index
//!   (high 16). Commands, events, ACL, SCO and ISO are read; the bookkeeping opcodes (new index,
//!   notes, logging…) are skipped, though they still count in [`Record::number`].
//!
//! Outside bytes never panic and never drive an allocation: a record longer than
//! [`MAX_RECORD_LEN`] is an error, and so is a record cut short at the end of the file; after
//! either the reader stops, since the framing can no longer be trusted.

use std::fmt;
use std::io::{self, Read};
use std::vec::Vec;

/// Microseconds from 0000-01-01T00:00 to the Unix epoch, as btsnoop writers use it.
pub const EPOCH_DELTA_US: i64 = 0x00dc_ddb3_0f2f_8000;

/// Largest record accepted. HCI packets are at most 4 + 65,535 bytes long (ACL), so anything
/// longer is corruption; refusing it keeps a bad length from becoming a huge allocation.
pub const MAX_RECORD_LEN: u32 = 64 * 1024 + 8;

const MAGIC: [u8; 8] = *b"btsnoop\0";
const HEADER_LEN: u64 = 16;
const RECORD_HEADER_LEN: usize = 24;

/// The datalinks this reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datalink {
    /// 1001: unencapsulated HCI (H1).
    H1,
    /// 1002: HCI UART (H4), what Android writes.
    H4,
    /// 2001: Linux monitor, what `btmon -w` writes.
    Monitor,
}

impl Datalink {
    /// The header's datalink number.
    pub fn code(self) -> u32 {
        match self {
            Datalink::H1 => 1001,
            Datalink::H4 => 1002,
            Datalink::Monitor => 2001,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            1001 => Some(Datalink::H1),
            1002 => Some(Datalink::H4),
            2001 => Some(Datalink::Monitor),
            _ => None,
        }
    }
}

/// Which way the packet went across HCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host to controller (commands, outgoing data).
    Sent,
    /// Controller to host (events, incoming data).
    Received,
}

/// The HCI packet type, whichever way the file encoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Command,
    Acl,
    Sco,
    Event,
    Iso,
    /// An H4 indicator this reader does not know.
    Other(u8),
}

impl PacketKind {
    /// The H4 packet indicator (0x01 command … 0x05 ISO).
    pub fn h4_indicator(self) -> u8 {
        match self {
            PacketKind::Command => 0x01,
            PacketKind::Acl => 0x02,
            PacketKind::Sco => 0x03,
            PacketKind::Event => 0x04,
            PacketKind::Iso => 0x05,
            PacketKind::Other(b) => b,
        }
    }

    fn from_h4(b: u8) -> Self {
        match b {
            0x01 => PacketKind::Command,
            0x02 => PacketKind::Acl,
            0x03 => PacketKind::Sco,
            0x04 => PacketKind::Event,
            0x05 => PacketKind::Iso,
            other => PacketKind::Other(other),
        }
    }
}

/// One HCI packet: its kind and its bytes without an H4 indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketKind,
    pub bytes: Vec<u8>,
}

/// One record of a btsnoop file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based position of the record in the file, counting skipped monitor records too, so it
    /// equals Wireshark's `frame.number`.
    pub number: u64,
    /// Unix time in milliseconds (floored).
    pub ts_ms: i64,
    /// Unix time in microseconds.
    pub ts_us_unix: i64,
    pub direction: Direction,
    /// The adapter index (monitor datalink; 0 for the others).
    pub adapter: u16,
    /// `orig_len - incl_len`: bytes the writer did not keep.
    pub truncated_by: u32,
    pub packet: Packet,
}

impl Record {
    /// The packet in H4 form, indicator first (`04 3e …` for an LE meta event).
    pub fn h4_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.packet.bytes.len());
        v.push(self.packet.kind.h4_indicator());
        v.extend_from_slice(&self.packet.bytes);
        v
    }
}

/// Why a btsnoop file, or one of its records, could not be read.
#[derive(Debug)]
pub enum BtsnoopError {
    /// Reading the underlying file failed.
    Io(io::Error),
    /// The file is shorter than its 16-byte header.
    TruncatedHeader { got: usize },
    /// The file does not start with `btsnoop\0`.
    BadMagic([u8; 8]),
    /// Version other than 1.
    BadVersion(u32),
    /// A datalink other than 1001, 1002 or 2001.
    UnsupportedDatalink(u32),
    /// The record starting at byte `offset` ends past the end of the file.
    TruncatedRecord {
        number: u64,
        offset: u64,
        needed: usize,
        got: usize,
    },
    /// The record starting at byte `offset` claims more than [`MAX_RECORD_LEN`] bytes.
    RecordTooLarge {
        number: u64,
        offset: u64,
        incl_len: u32,
    },
    /// An H4 record with no bytes (not even the packet indicator).
    EmptyRecord { number: u64, offset: u64 },
}

impl fmt::Display for BtsnoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtsnoopError::Io(e) => write!(f, "reading btsnoop file: {e}"),
            BtsnoopError::TruncatedHeader { got } => {
                write!(f, "btsnoop header needs 16 bytes, file has {got}")
            }
            BtsnoopError::BadMagic(m) => {
                write!(f, "not a btsnoop file (magic {})", crate::hex::Hex(m))
            }
            BtsnoopError::BadVersion(v) => write!(f, "btsnoop version {v}, expected 1"),
            BtsnoopError::UnsupportedDatalink(d) => write!(
                f,
                "btsnoop datalink {d} is not supported (1001 H1, 1002 H4, 2001 monitor)"
            ),
            BtsnoopError::TruncatedRecord {
                number,
                offset,
                needed,
                got,
            } => write!(
                f,
                "btsnoop record {number} at byte offset {offset} is truncated: needs {needed} \
                 bytes, file ends after {got}"
            ),
            BtsnoopError::RecordTooLarge {
                number,
                offset,
                incl_len,
            } => write!(
                f,
                "btsnoop record {number} at byte offset {offset} claims {incl_len} bytes \
                 (more than {MAX_RECORD_LEN}): the file is corrupt"
            ),
            BtsnoopError::EmptyRecord { number, offset } => write!(
                f,
                "btsnoop record {number} at byte offset {offset} is empty (no H4 packet indicator)"
            ),
        }
    }
}

impl std::error::Error for BtsnoopError {
    // No `source()`: Display already includes the cause, and a chain printer would repeat it.
}

impl From<io::Error> for BtsnoopError {
    fn from(e: io::Error) -> Self {
        BtsnoopError::Io(e)
    }
}

/// Reads into `buf` until it is full or the reader ends; returns how many bytes were read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

/// Reads btsnoop records from any byte source; an iterator of `Result<Record, BtsnoopError>`.
#[derive(Debug)]
pub struct BtsnoopReader<R> {
    reader: R,
    datalink: Datalink,
    /// Byte offset of the next record.
    offset: u64,
    /// Records read so far, skipped ones included.
    records: u64,
    done: bool,
}

impl BtsnoopReader<io::BufReader<std::fs::File>> {
    /// Opens a btsnoop file and validates its header.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, BtsnoopError> {
        let file = std::fs::File::open(path)?;
        Self::new(io::BufReader::new(file))
    }
}

impl<R: Read> BtsnoopReader<R> {
    /// Reads and validates the file header.
    pub fn new(mut reader: R) -> Result<Self, BtsnoopError> {
        let mut h = [0u8; HEADER_LEN as usize];
        let got = read_up_to(&mut reader, &mut h)?;
        if got < h.len() {
            return Err(BtsnoopError::TruncatedHeader { got });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&h[..8]);
        if magic != MAGIC {
            return Err(BtsnoopError::BadMagic(magic));
        }
        let version = be32(&h, 8);
        if version != 1 {
            return Err(BtsnoopError::BadVersion(version));
        }
        let code = be32(&h, 12);
        let datalink = Datalink::from_code(code).ok_or(BtsnoopError::UnsupportedDatalink(code))?;
        Ok(BtsnoopReader {
            reader,
            datalink,
            offset: HEADER_LEN,
            records: 0,
            done: false,
        })
    }

    /// The file's datalink.
    pub fn datalink(&self) -> Datalink {
        self.datalink
    }

    /// Records read so far, including monitor records that were skipped.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Reads the next record that carries an HCI packet; `Ok(None)` at a clean end of file.
    fn read_record(&mut self) -> Result<Option<Record>, BtsnoopError> {
        loop {
            let number = self.records + 1;
            let offset = self.offset;
            let mut h = [0u8; RECORD_HEADER_LEN];
            let got = read_up_to(&mut self.reader, &mut h)?;
            if got == 0 {
                return Ok(None);
            }
            if got < RECORD_HEADER_LEN {
                return Err(BtsnoopError::TruncatedRecord {
                    number,
                    offset,
                    needed: RECORD_HEADER_LEN,
                    got,
                });
            }
            let orig_len = be32(&h, 0);
            let incl_len = be32(&h, 4);
            let flags = be32(&h, 8);
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&h[16..24]);
            let ts = i64::from_be_bytes(ts);
            if incl_len > MAX_RECORD_LEN {
                return Err(BtsnoopError::RecordTooLarge {
                    number,
                    offset,
                    incl_len,
                });
            }
            // Bounded by MAX_RECORD_LEN just above.
            let mut data = std::vec![0u8; incl_len as usize];
            let got = read_up_to(&mut self.reader, &mut data)?;
            if got < data.len() {
                return Err(BtsnoopError::TruncatedRecord {
                    number,
                    offset,
                    needed: RECORD_HEADER_LEN + data.len(),
                    got: RECORD_HEADER_LEN + got,
                });
            }
            self.records = number;
            self.offset += (RECORD_HEADER_LEN + data.len()) as u64;

            let Some((kind, direction, adapter)) =
                self.classify(flags, &mut data, number, offset)?
            else {
                continue;
            };
            let ts_us_unix = ts.saturating_sub(EPOCH_DELTA_US);
            return Ok(Some(Record {
                number,
                ts_ms: ts_us_unix.div_euclid(1000),
                ts_us_unix,
                direction,
                adapter,
                truncated_by: orig_len.saturating_sub(incl_len),
                packet: Packet { kind, bytes: data },
            }));
        }
    }

    /// Kind, direction and adapter of a record per the datalink; strips an H4 indicator from
    /// `data`. None for monitor records that carry no HCI packet.
    fn classify(
        &self,
        flags: u32,
        data: &mut Vec<u8>,
        number: u64,
        offset: u64,
    ) -> Result<Option<(PacketKind, Direction, u16)>, BtsnoopError> {
        let dir_bit = if flags & 1 == 0 {
            Direction::Sent
        } else {
            Direction::Received
        };
        Ok(Some(match self.datalink {
            Datalink::H4 => {
                if data.is_empty() {
                    return Err(BtsnoopError::EmptyRecord { number, offset });
                }
                let kind = PacketKind::from_h4(data.remove(0));
                (kind, dir_bit, 0)
            }
            Datalink::H1 => {
                let kind = match (flags & 2 != 0, dir_bit) {
                    (true, Direction::Sent) => PacketKind::Command,
                    (true, Direction::Received) => PacketKind::Event,
                    // H1 does not tell ACL from SCO; ACL is what carries LE traffic.
                    (false, _) => PacketKind::Acl,
                };
                (kind, dir_bit, 0)
            }
            Datalink::Monitor => {
                let adapter = (flags >> 16) as u16;
                // Opcodes from BlueZ src/shared/btsnoop.h (BTSNOOP_OPCODE_*).
                let (kind, dir) = match flags & 0xffff {
                    2 => (PacketKind::Command, Direction::Sent),
                    3 => (PacketKind::Event, Direction::Received),
                    4 => (PacketKind::Acl, Direction::Sent),
                    5 => (PacketKind::Acl, Direction::Received),
                    6 => (PacketKind::Sco, Direction::Sent),
                    7 => (PacketKind::Sco, Direction::Received),
                    18 => (PacketKind::Iso, Direction::Sent),
                    19 => (PacketKind::Iso, Direction::Received),
                    _ => return Ok(None),
                };
                (kind, dir, adapter)
            }
        }))
    }
}

impl<R: Read> Iterator for BtsnoopReader<R> {
    type Item = Result<Record, BtsnoopError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            // An empty H4 record leaves the framing intact: report it and go on.
            Err(e @ BtsnoopError::EmptyRecord { .. }) => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::string::ToString;
    use std::vec;

    fn header(datalink: u32) -> Vec<u8> {
        let mut v = b"btsnoop\0".to_vec();
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&datalink.to_be_bytes());
        v
    }

    fn record(flags: u32, ts: i64, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    /// The first two records of horizon74_btsnoop_hci.log, byte for byte: an HCI Reset command
    /// and its Command Complete event.
    const ANDROID_HEAD: [u8; 16 + 28 + 31] = [
        0x62, 0x74, 0x73, 0x6e, 0x6f, 0x6f, 0x70, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03,
        0xea, // header, datalink 1002
        0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xe2, 0x97, 0xf0, 0xff, 0xf9, 0x76, 0xc7, 0x01, 0x03, 0x0c, 0x00, 0x00, 0x00,
        0x00, 0x07, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xe2, 0x97, 0xf0, 0xff, 0xf9, 0x83, 0xf3, 0x04, 0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00,
    ];

    #[test]
    fn android_h4_golden() {
        let mut r = BtsnoopReader::new(Cursor::new(&ANDROID_HEAD[..])).unwrap();
        assert_eq!(r.datalink(), Datalink::H4);
        let a = r.next().unwrap().unwrap();
        assert_eq!(a.number, 1);
        assert_eq!(a.packet.kind, PacketKind::Command);
        assert_eq!(a.direction, Direction::Sent);
        assert_eq!(a.packet.bytes, [0x03, 0x0c, 0x00]); // HCI_Reset
        assert_eq!(a.h4_bytes(), [0x01, 0x03, 0x0c, 0x00]);
        // tshark: frame.time_epoch 1612150079.092423
        assert_eq!(a.ts_us_unix, 1_612_150_079_092_423);
        assert_eq!(a.ts_ms, 1_612_150_079_092);
        let b = r.next().unwrap().unwrap();
        assert_eq!(b.packet.kind, PacketKind::Event);
        assert_eq!(b.direction, Direction::Received);
        assert_eq!(b.packet.bytes, [0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00]);
        assert_eq!(b.ts_us_unix, 1_612_150_079_095_795);
        assert!(r.next().is_none());
        assert!(r.next().is_none());
    }

    #[test]
    fn h1_flags_give_kind_and_direction() {
        let mut f = header(1001);
        f.extend(record(0b10, EPOCH_DELTA_US, &[0x03, 0x0c, 0x00]));
        f.extend(record(0b11, EPOCH_DELTA_US + 1_500, &[0x3e, 0x01, 0x02]));
        f.extend(record(0b01, EPOCH_DELTA_US - 1, &[0x01, 0x20, 0x00, 0x00]));
        let recs: Vec<Record> = BtsnoopReader::new(Cursor::new(f))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(recs[0].packet.kind, PacketKind::Command);
        assert_eq!(recs[0].ts_ms, 0);
        assert_eq!(recs[1].packet.kind, PacketKind::Event);
        assert_eq!(recs[1].packet.bytes, [0x3e, 0x01, 0x02]);
        assert_eq!(recs[1].ts_ms, 1);
        assert_eq!(recs[2].packet.kind, PacketKind::Acl);
        assert_eq!(recs[2].direction, Direction::Received);
        // Before the epoch floors towards minus infinity.
        assert_eq!(recs[2].ts_us_unix, -1);
        assert_eq!(recs[2].ts_ms, -1);
    }

    #[test]
    fn monitor_skips_bookkeeping_records() {
        let mut f = header(2001);
        // New index (opcode 0) for adapter 0, a system note (12), then an event on adapter 1.
        f.extend(record(0, 0, &[0u8; 16]));
        f.extend(record(12, 0, b"Bluetooth monitor ver 5.66\0"));
        f.extend(record(
            (1 << 16) | 3,
            EPOCH_DELTA_US,
            &[0x3e, 0x03, 0x02, 0x01, 0x00],
        ));
        f.extend(record(2, EPOCH_DELTA_US, &[0x0b, 0x20, 0x00]));
        let mut r = BtsnoopReader::new(Cursor::new(f)).unwrap();
        let ev = r.next().unwrap().unwrap();
        assert_eq!(ev.number, 3);
        assert_eq!(ev.adapter, 1);
        assert_eq!(ev.packet.kind, PacketKind::Event);
        assert_eq!(ev.h4_bytes(), [0x04, 0x3e, 0x03, 0x02, 0x01, 0x00]);
        let cmd = r.next().unwrap().unwrap();
        assert_eq!(
            (cmd.packet.kind, cmd.direction),
            (PacketKind::Command, Direction::Sent)
        );
        assert!(r.next().is_none());
        assert_eq!(r.records_read(), 4);
    }

    #[test]
    fn header_errors() {
        let e = BtsnoopReader::new(Cursor::new(b"btsnoop\0\0\0".to_vec())).unwrap_err();
        assert!(matches!(e, BtsnoopError::TruncatedHeader { got: 10 }));
        let mut f = header(1002);
        f[0] = b'B';
        assert!(matches!(
            BtsnoopReader::new(Cursor::new(f)).unwrap_err(),
            BtsnoopError::BadMagic(_)
        ));
        let mut f = header(1002);
        f[11] = 2;
        assert!(matches!(
            BtsnoopReader::new(Cursor::new(f)).unwrap_err(),
            BtsnoopError::BadVersion(2)
        ));
        assert!(matches!(
            BtsnoopReader::new(Cursor::new(header(1003))).unwrap_err(),
            BtsnoopError::UnsupportedDatalink(1003)
        ));
    }

    #[test]
    fn truncated_record_is_one_error_then_end() {
        for cut in 1..ANDROID_HEAD.len() - 16 - 28 {
            let f = &ANDROID_HEAD[..ANDROID_HEAD.len() - cut];
            let items: Vec<_> = BtsnoopReader::new(Cursor::new(f)).unwrap().collect();
            assert_eq!(items.len(), 2, "cut {cut}");
            assert!(items[0].is_ok());
            match &items[1] {
                Err(e @ BtsnoopError::TruncatedRecord { number, offset, .. }) => {
                    assert_eq!((*number, *offset), (2, 44));
                    assert!(e.to_string().contains("record 2 at byte offset 44"), "{e}");
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_length_is_an_error_not_an_allocation() {
        let mut f = header(1002);
        let mut rec = record(0, 0, &[0x04]);
        rec[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        f.extend(rec);
        let items: Vec<_> = BtsnoopReader::new(Cursor::new(f)).unwrap().collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Err(BtsnoopError::RecordTooLarge {
                number: 1,
                offset: 16,
                incl_len: u32::MAX
            })
        ));
    }

    #[test]
    fn empty_h4_record_is_reported_and_reading_goes_on() {
        let mut f = header(1002);
        f.extend(record(0, 0, &[]));
        f.extend(record(1, 0, &[0x05, 0x01]));
        f.extend(record(1, 0, &[0x09, 0x01]));
        let items: Vec<_> = BtsnoopReader::new(Cursor::new(f)).unwrap().collect();
        assert!(matches!(
            items[0],
            Err(BtsnoopError::EmptyRecord {
                number: 1,
                offset: 16
            })
        ));
        let iso = items[1].as_ref().unwrap();
        assert_eq!(iso.packet.kind, PacketKind::Iso);
        let other = items[2].as_ref().unwrap();
        assert_eq!(
            other.packet,
            Packet {
                kind: PacketKind::Other(9),
                bytes: vec![0x01]
            }
        );
        assert_eq!(other.h4_bytes(), [0x09, 0x01]);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            datalink in prop_oneof![Just(1001u32), Just(1002), Just(2001), any::<u32>()],
            with_header in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut f = std::vec::Vec::new();
            if with_header {
                f.extend_from_slice(b"btsnoop\0\0\0\0\x01");
                f.extend_from_slice(&datalink.to_be_bytes());
            }
            f.extend_from_slice(&body);
            if let Ok(r) = BtsnoopReader::new(Cursor::new(f)) {
                // Each item consumes at least a 24-byte record header or ends the reader.
                prop_assert!(r.take(64).count() <= 256 / 24 + 1);
            }
        }
    }
}

//! pcap and pcapng capture files of 802.11 traffic, read into probe-request records.
//!
//! The Wi-Fi side of Dwell's replay: a monitor-mode capture (tcpdump, Wireshark, airodump) becomes
//! the stream of [`ProbeRecord`]s the live sniffer would have produced. The container is sniffed
//! from its magic (pcap in either byte order and timestamp resolution, or pcapng) and read with
//! `pcap-file`; each packet then goes through [`radiotap`] (linktype 127) or straight to
//! [`ieee80211`] (linktype 105, no radiotap: no signal, no channel, FCS assumed absent).
//!
//! Nothing is silently lost: every packet is counted once in [`CaptureStats`] as a probe request,
//! another frame, a malformed packet, or a packet on a linktype this reader does not decode. A
//! malformed packet is counted and skipped; an error in the container itself (bad header, block
//! cut short) is yielded once and ends the reading, since the framing cannot be trusted after it.

use super::ieee80211::{self, Frame, ProbeRequest};
use super::radiotap::{self, Radiotap};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};
use std::fmt;
use std::io::{self, Cursor, Read};
use std::string::String;
use std::vec::Vec;

/// One probe request heard in a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    /// Capture time, Unix milliseconds.
    pub ts_ms: i64,
    /// Source address (the phone), as on air.
    pub sa: [u8; 6],
    /// Combined dBm signal from radiotap.
    pub rssi: Option<i8>,
    /// Channel frequency from radiotap.
    pub freq_mhz: Option<u16>,
    /// SSID asked for, invalid UTF-8 replaced; empty for the wildcard.
    pub ssid: String,
    pub seq: u16,
    /// Locally administered source address.
    pub randomized: bool,
    /// Element ids in order.
    pub ie_ids: Vec<u8>,
}

/// What a reading saw, so that nothing is dropped unaccounted:
/// `frames == probe_requests + other + malformed + unsupported_linktype`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets read.
    pub frames: u64,
    /// Probe requests yielded.
    pub probe_requests: u64,
    /// Well-formed frames that are not probe requests.
    pub other: u64,
    /// Packets whose radiotap header or 802.11 frame could not be parsed.
    pub malformed: u64,
    /// Packets on a linktype other than 127 or 105 (pcapng can mix interfaces).
    pub unsupported_linktype: u64,
}

/// Why a capture could not be read.
#[derive(Debug)]
pub enum CaptureError {
    /// Opening or reading the file failed.
    Io(io::Error),
    /// The first four bytes are neither a pcap nor a pcapng magic.
    UnknownFormat([u8; 4]),
    /// A classic pcap file whose single linktype this reader does not decode.
    UnsupportedLinktype(u32),
    /// The container is damaged (the error from `pcap-file`).
    Container(PcapError),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "reading capture: {e}"),
            CaptureError::UnknownFormat(m) => write!(
                f,
                "not a pcap or pcapng file (starts {})",
                crate::hex::Hex(m)
            ),
            CaptureError::UnsupportedLinktype(l) => write!(
                f,
                "capture linktype {l} is not 802.11 (127 radiotap or 105 plain)"
            ),
            CaptureError::Container(e) => write!(f, "damaged capture: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {
    // No `source()`: Display already includes the cause, and a chain printer would repeat it.
}

impl From<io::Error> for CaptureError {
    fn from(e: io::Error) -> Self {
        CaptureError::Io(e)
    }
}

/// The 802.11 linktypes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Radiotap,
    Plain,
}

fn link_of(dl: DataLink) -> Option<Link> {
    match dl {
        DataLink::IEEE802_11_RADIOTAP => Some(Link::Radiotap),
        DataLink::IEEE802_11 => Some(Link::Plain),
        _ => None,
    }
}

/// What one packet turned out to be.
#[derive(Debug)]
enum Outcome {
    Probe(ProbeRecord),
    Other,
    Malformed,
}

/// Decodes one link-layer packet (the public form is [`decode_packet`]).
fn decode(link: Link, ts_ms: i64, data: &[u8]) -> Outcome {
    let (rt, frame) = match link {
        Link::Radiotap => match radiotap::parse(data) {
            // `len` was checked against the buffer by the parser.
            Ok(rt) => (rt, &data[rt.len..]),
            Err(_) => return Outcome::Malformed,
        },
        Link::Plain => (Radiotap::default(), data),
    };
    match ieee80211::parse(frame, rt.fcs_at_end) {
        Ok(Frame::ProbeRequest(p)) => Outcome::Probe(record(ts_ms, &rt, &p)),
        Ok(Frame::Other(_)) => Outcome::Other,
        Err(_) => Outcome::Malformed,
    }
}

fn record(ts_ms: i64, rt: &Radiotap, p: &ProbeRequest<'_>) -> ProbeRecord {
    ProbeRecord {
        ts_ms,
        sa: p.sa,
        rssi: rt.antenna_signal_dbm,
        freq_mhz: rt.channel_freq_mhz,
        ssid: p.ssid_lossy().into_owned(),
        seq: p.seq,
        randomized: p.randomized(),
        ie_ids: p.ie_ids().collect(),
    }
}

/// Decodes one radiotap (`radiotap = true`, linktype 127) or plain 802.11 (linktype 105) packet:
/// `Some` for a probe request, `None` for anything else (malformed included).
pub fn decode_packet(radiotap: bool, ts_ms: i64, data: &[u8]) -> Option<ProbeRecord> {
    let link = if radiotap {
        Link::Radiotap
    } else {
        Link::Plain
    };
    match decode(link, ts_ms, data) {
        Outcome::Probe(r) => Some(r),
        Outcome::Other | Outcome::Malformed => None,
    }
}

/// The reader's byte source: the four sniffed magic bytes put back in front of the rest.
type Source<R> = io::Chain<Cursor<[u8; 4]>, R>;

enum Container<R: Read> {
    Pcap {
        reader: PcapReader<Source<R>>,
        link: Link,
        linktype: u32,
    },
    PcapNg {
        reader: PcapNgReader<Source<R>>,
    },
}

impl<R: Read> fmt::Debug for Container<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Container::Pcap { linktype, .. } => write!(f, "pcap (linktype {linktype})"),
            Container::PcapNg { .. } => f.write_str("pcapng"),
        }
    }
}

/// Units per second of a pcapng interface's timestamps (`if_tsresol`, default microseconds).
fn tsresol_units(opts: &[InterfaceDescriptionOption<'_>]) -> u128 {
    let r = opts.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
        _ => None,
    });
    match r {
        None => 1_000_000,
        // High bit set: a negative power of two; otherwise of ten. Capped so a silly value
        // cannot overflow (2^63 and 10^19 units per second are far beyond any clock).
        Some(r) if r & 0x80 != 0 => 1u128 << (r & 0x7f).min(63),
        Some(r) => 10u128.pow(u32::from(r.min(19))),
    }
}

/// Probe requests from a pcap or pcapng capture; yields `Result<ProbeRecord, CaptureError>`.
#[derive(Debug)]
pub struct ProbeReader<R: Read> {
    container: Container<R>,
    stats: CaptureStats,
    done: bool,
}

impl ProbeReader<io::BufReader<std::fs::File>> {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, CaptureError> {
        Self::new(io::BufReader::new(std::fs::File::open(path)?))
    }
}

impl<R: Read> ProbeReader<R> {
    /// Sniffs the format from the first four bytes and reads the file header. A classic pcap file
    /// of another linktype is refused here; pcapng interfaces are checked packet by packet.
    pub fn new(mut reader: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic)?;
        let source = Cursor::new(magic).chain(reader);
        let container = match u32::from_be_bytes(magic) {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
                let reader = PcapReader::new(source).map_err(CaptureError::Container)?;
                let dl = reader.header().datalink;
                let linktype = u32::from(dl);
                let link = link_of(dl).ok_or(CaptureError::UnsupportedLinktype(linktype))?;
                Container::Pcap {
                    reader,
                    link,
                    linktype,
                }
            }
            0x0a0d_0d0a => Container::PcapNg {
                reader: PcapNgReader::new(source).map_err(CaptureError::Container)?,
            },
            _ => return Err(CaptureError::UnknownFormat(magic)),
        };
        Ok(ProbeReader {
            container,
            stats: CaptureStats::default(),
            done: false,
        })
    }

    /// Counts so far (final once the iterator has ended).
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// The next packet as (linktype, Unix ms, bytes) → outcome; `Ok(None)` at the end.
    fn next_outcome(&mut self) -> Result<Option<Option<Outcome>>, CaptureError> {
        match &mut self.container {
            Container::Pcap { reader, link, .. } => match reader.next_packet() {
                None => Ok(None),
                Some(Err(e)) => Err(CaptureError::Container(e)),
                Some(Ok(p)) => {
                    let ts_ms = p.timestamp.as_millis() as i64;
                    Ok(Some(Some(decode(*link, ts_ms, &p.data))))
                }
            },
            Container::PcapNg { reader } => loop {
                let block = match reader.next_block() {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(CaptureError::Container(e)),
                    Some(Ok(b)) => b,
                };
                let (iface, raw_ts, data) = match block {
                    // pcap-file 2.0 stores the raw EPB timestamp as if it were nanoseconds; the
                    // real unit comes from the interface's if_tsresol, applied below.
                    Block::EnhancedPacket(p) => {
                        (Some(p.interface_id), p.timestamp.as_nanos(), p.data)
                    }
                    // Simple packets have no timestamp and belong to interface 0.
                    Block::SimplePacket(p) => (None, 0, p.data),
                    Block::Packet(p) => (
                        Some(u32::from(p.interface_id)),
                        u128::from(p.timestamp),
                        p.data,
                    ),
                    _ => continue,
                };
                // The block borrows the reader's buffer, and the interface table is on the reader
                // too: take the bytes out so both can be used.
                let data = data.into_owned();
                let Some(idb) = reader.interfaces().get(iface.unwrap_or(0) as usize) else {
                    // A packet for an interface never described: its linktype is unknown.
                    return Ok(Some(None));
                };
                let ts_ms = match iface {
                    Some(_) => (raw_ts * 1000 / tsresol_units(&idb.options)) as i64,
                    None => 0,
                };
                return Ok(Some(link_of(idb.linktype).map(|l| decode(l, ts_ms, &data))));
            },
        }
    }
}

impl<R: Read> Iterator for ProbeReader<R> {
    type Item = Result<ProbeRecord, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.next_outcome() {
                Ok(None) => self.done = true,
                Err(e) => {
                    // pcap-file does not advance past a block it failed on; stop here.
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(Some(outcome)) => {
                    self.stats.frames += 1;
                    match outcome {
                        None => self.stats.unsupported_linktype += 1,
                        Some(Outcome::Other) => self.stats.other += 1,
                        Some(Outcome::Malformed) => self.stats.malformed += 1,
                        Some(Outcome::Probe(r)) => {
                            self.stats.probe_requests += 1;
                            return Some(Ok(r));
                        }
                    }
                }
            }
        }
        None
    }
}

/// Reads every probe request of a capture file, with the counts.
pub fn read_probes(
    path: impl AsRef<std::path::Path>,
) -> Result<(Vec<ProbeRecord>, CaptureStats), CaptureError> {
    let mut reader = ProbeReader::open(path)?;
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((records, reader.stats()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use std::borrow::Cow;
    use std::time::Duration;
    use std::vec;

    /// A minimal radiotap header (flags, channel, signal) and a directed probe request for
    /// "dwell" from a randomized address, FCS flag clear.
    fn radiotap_probe() -> Vec<u8> {
        // Flags at 8, pad, channel at 10..14 (aligned to 2), signal at 14: it_len 15.
        let mut v = vec![0, 0, 15, 0];
        v.extend_from_slice(&((1u32 << 1) | (1 << 3) | (1 << 5)).to_le_bytes());
        v.extend_from_slice(&[0x00, 0x00, 0x85, 0x09, 0xa0, 0x00, 0xc5]); // 2437 MHz, -59 dBm
        v.extend_from_slice(&plain_probe());
        v
    }

    fn plain_probe() -> Vec<u8> {
        let mut f = vec![0x40, 0x00, 0x00, 0x00];
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&[0x2a, 0x11, 0x22, 0x33, 0x44, 0x55]);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&(42u16 << 4).to_le_bytes());
        f.extend_from_slice(&[0x00, 0x05, b'd', b'w', b'e', b'l', b'l', 0x01, 0x01, 0x82]);
        f
    }

    #[test]
    fn pcap_radiotap_counts_everything() {
        let header = PcapHeader {
            datalink: DataLink::IEEE802_11_RADIOTAP,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let probe = radiotap_probe();
        let mut beacon = probe.clone();
        beacon[15] = 0x80;
        let ts = Duration::from_micros(1_700_000_000_123_456);
        for data in [&probe[..], &beacon[..], &probe[..5], &probe[..20]] {
            w.write_packet(&PcapPacket::new(ts, data.len() as u32, data))
                .unwrap();
        }
        let bytes = w.into_writer();
        let mut r = ProbeReader::new(Cursor::new(bytes)).unwrap();
        let recs: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            recs,
            [ProbeRecord {
                ts_ms: 1_700_000_000_123,
                sa: [0x2a, 0x11, 0x22, 0x33, 0x44, 0x55],
                rssi: Some(-59),
                freq_mhz: Some(2437),
                ssid: "dwell".into(),
                seq: 42,
                randomized: true,
                ie_ids: vec![0, 1],
            }]
        );
        assert_eq!(
            r.stats(),
            CaptureStats {
                frames: 4,
                probe_requests: 1,
                other: 1,
                malformed: 2,
                unsupported_linktype: 0
            }
        );
    }

    #[test]
    fn pcapng_plain_80211_with_nanosecond_resolution() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::IEEE802_11, 0);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        w.write_pcapng_block(idb).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        let data = plain_probe();
        // pcap-file writes `timestamp.as_nanos()` as the raw units; with if_tsresol 9 that is
        // nanoseconds, so this is read back as 1_700_000_000_987 ms.
        let epb = |interface_id| EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(1_700_000_000_987_654_321),
            original_len: data.len() as u32,
            data: Cow::Borrowed(&data[..]),
            options: vec![],
        };
        w.write_pcapng_block(epb(0)).unwrap();
        w.write_pcapng_block(epb(1)).unwrap();
        let mut r = ProbeReader::new(Cursor::new(w.into_inner())).unwrap();
        let recs: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].ts_ms, 1_700_000_000_987);
        assert_eq!((recs[0].rssi, recs[0].freq_mhz), (None, None));
        assert_eq!(recs[0].ssid, "dwell");
        assert_eq!(r.stats().unsupported_linktype, 1);
        assert_eq!(r.stats().frames, 2);
    }

    #[test]
    fn container_errors() {
        assert!(matches!(
            ProbeReader::new(Cursor::new(b"btsnoop\0".to_vec())),
            Err(CaptureError::UnknownFormat(_))
        ));
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..PcapHeader::default()
        };
        let w = PcapWriter::with_header(Vec::new(), header).unwrap();
        assert!(matches!(
            ProbeReader::new(Cursor::new(w.into_writer())),
            Err(CaptureError::UnsupportedLinktype(1))
        ));
        // A packet record cut short: one error, then the end.
        let header = PcapHeader {
            datalink: DataLink::IEEE802_11_RADIOTAP,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let probe = radiotap_probe();
        w.write_packet(&PcapPacket::new(Duration::ZERO, probe.len() as u32, &probe))
            .unwrap();
        let mut bytes = w.into_writer();
        bytes.truncate(bytes.len() - 3);
        let items: Vec<_> = ProbeReader::new(Cursor::new(bytes)).unwrap().collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_packets_never_panic(
            buf in proptest::collection::vec(any::<u8>(), 0..200),
            radiotap in any::<bool>(),
        ) {
            let _ = decode_packet(radiotap, 0, &buf);
        }

        #[test]
        fn arbitrary_files_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(r) = ProbeReader::new(Cursor::new(buf)) {
                let _ = r.take(64).count();
            }
        }
    }
}

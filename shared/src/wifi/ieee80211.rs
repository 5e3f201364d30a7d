//! 802.11 MAC frames, as far as Dwell reads them: the frame control, the management header, and
//! the probe-request body with its information elements.
//!
//! A probe request (management type 0, subtype 4) is a phone asking "who is there?": its source
//! address (`addr2`), sequence number, the SSID it asks for (empty = any network) and the order of
//! the information elements it sends (a stable per-model fingerprint even when the address is
//! randomized). The rules, which match Wireshark's reading of the same bytes:
//! - the management header is 24 bytes; when the Order bit (`+HTC`) is set on a management frame a
//!   4-byte HT Control field follows it, and the body starts after that;
//! - if the capture says the frame ends with its FCS (radiotap Flags 0x10), the last 4 bytes are
//!   dropped before the elements are walked, so the checksum is never read as an element;
//! - elements are `id len data…`; one whose length runs past the end ends the walk, the elements
//!   before it stand and [`Elements::truncated`] reports it;
//! - the SSID is the first element with id 0 (absent → empty), kept as raw bytes: SSIDs need not
//!   be UTF-8.
//!
//! Pure byte parsing over `&[u8]`: `no_std`, no allocation, no panics.

use core::fmt;

/// Frame types (frame control bits 2–3).
pub mod frame_type {
    pub const MANAGEMENT: u8 = 0;
    pub const CONTROL: u8 = 1;
    pub const DATA: u8 = 2;
    pub const EXTENSION: u8 = 3;
}

/// Management frame subtypes (frame control bits 4–7).
pub mod mgmt_subtype {
    pub const ASSOC_REQUEST: u8 = 0;
    pub const ASSOC_RESPONSE: u8 = 1;
    pub const PROBE_REQUEST: u8 = 4;
    pub const PROBE_RESPONSE: u8 = 5;
    pub const BEACON: u8 = 8;
}

/// Element ids Dwell names.
pub mod element_id {
    pub const SSID: u8 = 0;
    pub const SUPPORTED_RATES: u8 = 1;
    pub const DS_PARAMETER_SET: u8 = 3;
    pub const HT_CAPABILITIES: u8 = 45;
    pub const EXTENDED_SUPPORTED_RATES: u8 = 50;
    pub const EXTENDED_CAPABILITIES: u8 = 127;
    pub const VHT_CAPABILITIES: u8 = 191;
    pub const VENDOR_SPECIFIC: u8 = 221;
    pub const EXTENSION: u8 = 255;
}

/// Length of the management MAC header (frame control to sequence control).
pub const MGMT_HEADER_LEN: usize = 24;
/// Length of the HT Control field present when the Order bit is set on a management frame.
const HT_CONTROL_LEN: usize = 4;
/// Length of the frame check sequence.
pub const FCS_LEN: usize = 4;

/// The 16-bit frame control field, as read little-endian from the first two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameControl(pub u16);

impl FrameControl {
    /// Protocol version (0 for every 802.11 frame in use).
    pub fn version(self) -> u8 {
        (self.0 & 0x3) as u8
    }

    /// Frame type, see [`frame_type`].
    pub fn frame_type(self) -> u8 {
        ((self.0 >> 2) & 0x3) as u8
    }

    /// Frame subtype, see [`mgmt_subtype`] for management frames.
    pub fn subtype(self) -> u8 {
        ((self.0 >> 4) & 0xf) as u8
    }

    /// The flags byte (To DS 0x01 … Protected 0x40, Order 0x80).
    pub fn flags(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The Protected Frame bit.
    pub fn protected(self) -> bool {
        self.flags() & 0x40 != 0
    }

    /// The Order bit; on management frames it means an HT Control field follows the header.
    pub fn order(self) -> bool {
        self.flags() & 0x80 != 0
    }

    /// Management, probe request.
    pub fn is_probe_request(self) -> bool {
        self.frame_type() == frame_type::MANAGEMENT && self.subtype() == mgmt_subtype::PROBE_REQUEST
    }
}

/// Why an 802.11 frame could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ieee80211Error {
    /// The frame (after removing the FCS, if any) is shorter than its header.
    TooShort { needed: usize, got: usize },
    /// Protocol version other than 0.
    BadVersion(u8),
    /// [`ProbeRequest::parse`] was given a frame of another type.
    NotProbeRequest(FrameControl),
}

impl fmt::Display for Ieee80211Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ieee80211Error::TooShort { needed, got } => {
                write!(f, "802.11 frame needs {needed} bytes, got {got}")
            }
            Ieee80211Error::BadVersion(v) => write!(f, "802.11 protocol version {v}, expected 0"),
            Ieee80211Error::NotProbeRequest(fc) => write!(
                f,
                "802.11 frame type {} subtype {} is not a probe request",
                fc.frame_type(),
                fc.subtype()
            ),
        }
    }
}

impl core::error::Error for Ieee80211Error {}

fn mac(b: &[u8], at: usize) -> [u8; 6] {
    let mut a = [0u8; 6];
    if let Some(s) = b.get(at..at + 6) {
        a.copy_from_slice(s);
    }
    a
}

/// Reads the frame control of any frame.
pub fn frame_control(frame: &[u8]) -> Result<FrameControl, Ieee80211Error> {
    match frame {
        [a, b, ..] => {
            let fc = FrameControl(u16::from_le_bytes([*a, *b]));
            if fc.version() != 0 {
                return Err(Ieee80211Error::BadVersion(fc.version()));
            }
            Ok(fc)
        }
        _ => Err(Ieee80211Error::TooShort {
            needed: 2,
            got: frame.len(),
        }),
    }
}

/// A frame as Dwell sorts it: a probe request, or anything else (by its frame control).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    ProbeRequest(ProbeRequest<'a>),
    Other(FrameControl),
}

/// Sorts one 802.11 frame; `fcs_at_end` is the radiotap Flags bit (false when unknown).
pub fn parse(frame: &[u8], fcs_at_end: bool) -> Result<Frame<'_>, Ieee80211Error> {
    let fc = frame_control(frame)?;
    if fc.is_probe_request() {
        ProbeRequest::parse(frame, fcs_at_end).map(Frame::ProbeRequest)
    } else {
        Ok(Frame::Other(fc))
    }
}

/// A probe request, borrowed from the frame bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRequest<'a> {
    pub fc: FrameControl,
    /// Destination (addr1): broadcast, or the AP for a directed probe.
    pub da: [u8; 6],
    /// Source (addr2): the phone.
    pub sa: [u8; 6],
    /// BSSID (addr3): broadcast, or the AP for a directed probe.
    pub bssid: [u8; 6],
    /// Sequence number (sequence control >> 4).
    pub seq: u16,
    /// The SSID asked for; empty is the wildcard (any network).
    pub ssid: &'a [u8],
    /// The element bytes (body after any HT Control, FCS removed).
    pub ies: &'a [u8],
}

impl<'a> ProbeRequest<'a> {
    /// Parses a probe request; see the module docs for the rules.
    pub fn parse(frame: &'a [u8], fcs_at_end: bool) -> Result<Self, Ieee80211Error> {
        let fc = frame_control(frame)?;
        if !fc.is_probe_request() {
            return Err(Ieee80211Error::NotProbeRequest(fc));
        }
        let body_start = MGMT_HEADER_LEN + if fc.order() { HT_CONTROL_LEN } else { 0 };
        let needed = body_start + if fcs_at_end { FCS_LEN } else { 0 };
        if frame.len() < needed {
            return Err(Ieee80211Error::TooShort {
                needed,
                got: frame.len(),
            });
        }
        let end = frame.len() - if fcs_at_end { FCS_LEN } else { 0 };
        let ies = &frame[body_start..end];
        let ssid = elements(ies)
            .find(|e| e.id == element_id::SSID)
            .map_or(&[][..], |e| e.data);
        Ok(ProbeRequest {
            fc,
            da: mac(frame, 4),
            sa: mac(frame, 10),
            bssid: mac(frame, 16),
            seq: u16::from_le_bytes([frame[22], frame[23]]) >> 4,
            ssid,
            ies,
        })
    }

    /// The source address is locally administered (bit 0x02 of its first octet): phones set it
    /// when they randomize their MAC, so it does not identify the device.
    pub fn randomized(&self) -> bool {
        self.sa[0] & 0x02 != 0
    }

    /// The wildcard SSID (asks every network to answer).
    pub fn is_wildcard(&self) -> bool {
        self.ssid.is_empty()
    }

    /// The information elements in order.
    pub fn elements(&self) -> Elements<'a> {
        elements(self.ies)
    }

    /// The element ids in order (the fingerprint).
    pub fn ie_ids(&self) -> impl Iterator<Item = u8> + 'a {
        self.elements().map(|e| e.id)
    }

    /// The SSID as text, invalid UTF-8 replaced.
    #[cfg(feature = "alloc")]
    pub fn ssid_lossy(&self) -> alloc::borrow::Cow<'a, str> {
        alloc::string::String::from_utf8_lossy(self.ssid)
    }
}

/// One information element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    pub id: u8,
    pub data: &'a [u8],
}

/// Iterator over `id len data…` elements; stops at the first one that runs past the end.
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    truncated: bool,
}

/// Walks the information elements of a management frame body.
pub fn elements(buf: &[u8]) -> Elements<'_> {
    Elements {
        buf,
        pos: 0,
        truncated: false,
    }
}

impl Elements<'_> {
    /// The walk stopped at an element whose header or data ran past the end of the body.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        let rest = self.buf.get(self.pos..)?;
        match rest {
            [] => None,
            [id, len, tail @ ..] if tail.len() >= usize::from(*len) => {
                let len = usize::from(*len);
                self.pos += 2 + len;
                Some(Element {
                    id: *id,
                    data: &tail[..len],
                })
            }
            _ => {
                self.truncated = true;
                self.pos = self.buf.len();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 2 of tcpdump's ieee802.11_meshid.pcap after its 56-byte radiotap header (which says
    /// FCS at end): a wildcard probe request, seq 116, elements SSID, rates, HT capabilities,
    /// extended capabilities, VHT capabilities, two vendor-specific, mesh ID; then the FCS.
    const MESHID_PROBE: [u8; 223] = [
        0x40, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xb0, 0xfc, 0x36, 0x2f, 0x07,
        0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x40, 0x07, 0x00, 0x00, 0x01, 0x08, 0x0c, 0x12,
        0x18, 0x24, 0x30, 0x48, 0x60, 0x6c, 0x2d, 0x1a, 0x6e, 0x18, 0x1f, 0xff, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x7f, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00,
        0x00, 0x20, 0xbf, 0x0c, 0xa2, 0x19, 0xc0, 0x33, 0xfe, 0xff, 0xb2, 0x01, 0xfe, 0xff, 0xb2,
        0x01, 0xdd, 0x69, 0x00, 0x50, 0xf2, 0x04, 0x10, 0x4a, 0x00, 0x01, 0x10, 0x10, 0x3a, 0x00,
        0x01, 0x00, 0x10, 0x08, 0x00, 0x02, 0x31, 0x08, 0x10, 0x47, 0x00, 0x10, 0x48, 0xe0, 0xfe,
        0x73, 0x93, 0x0d, 0x58, 0x32, 0x95, 0x16, 0xbb, 0x73, 0x7d, 0xa1, 0x08, 0xa7, 0x10, 0x54,
        0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3c, 0x00, 0x01, 0x03,
        0x10, 0x02, 0x00, 0x02, 0x00, 0x00, 0x10, 0x09, 0x00, 0x02, 0x00, 0x00, 0x10, 0x12, 0x00,
        0x02, 0x00, 0x00, 0x10, 0x21, 0x00, 0x01, 0x20, 0x10, 0x23, 0x00, 0x01, 0x20, 0x10, 0x24,
        0x00, 0x01, 0x20, 0x10, 0x11, 0x00, 0x01, 0x20, 0x10, 0x49, 0x00, 0x06, 0x00, 0x37, 0x2a,
        0x00, 0x01, 0x20, 0xdd, 0x11, 0x50, 0x6f, 0x9a, 0x09, 0x02, 0x02, 0x00, 0x21, 0x00, 0x06,
        0x05, 0x00, 0x58, 0x58, 0x04, 0x51, 0x06, 0x72, 0x00, 0x2e, 0x89, 0xc3, 0x77,
    ];

    #[test]
    fn probe_request_golden() {
        let p = ProbeRequest::parse(&MESHID_PROBE, true).unwrap();
        assert_eq!(p.sa, [0xb0, 0xfc, 0x36, 0x2f, 0x07, 0x44]);
        assert_eq!(p.da, [0xff; 6]);
        assert_eq!(p.bssid, [0xff; 6]);
        assert_eq!(p.seq, 116);
        assert!(p.is_wildcard());
        assert!(!p.randomized());
        assert!(p.ie_ids().eq([0, 1, 45, 127, 191, 221, 221, 114]));
        let rates = p.elements().nth(1).unwrap();
        assert_eq!(rates.data, [0x0c, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6c]);
        assert!(matches!(parse(&MESHID_PROBE, true), Ok(Frame::ProbeRequest(q)) if q == p));
    }

    #[test]
    fn fcs_is_not_read_as_elements() {
        // Without stripping, the FCS bytes read as element 0x2e with length 0x89: truncated.
        let p = ProbeRequest::parse(&MESHID_PROBE, false).unwrap();
        let mut it = p.elements();
        assert!(
            it.by_ref()
                .map(|e| e.id)
                .eq([0, 1, 45, 127, 191, 221, 221, 114])
        );
        assert!(it.truncated());
        let p = ProbeRequest::parse(&MESHID_PROBE, true).unwrap();
        let mut it = p.elements();
        assert_eq!(it.by_ref().count(), 8);
        assert!(!it.truncated());
    }

    #[test]
    fn ssid_randomized_and_order_bit() {
        let mut f = [0u8; 24 + 4 + 2 + 4 + 2];
        f[0] = 0x40; // probe request
        f[1] = 0x80; // Order: HT Control follows the header
        f[10] = 0xda; // locally administered
        f[22..24].copy_from_slice(&((0x0abc_u16 << 4) | 0x3).to_le_bytes());
        f[28..34].copy_from_slice(&[0x00, 0x04, b'c', b'a', 0xff, b'e']);
        f[34..36].copy_from_slice(&[0xdd, 0x00]);
        let p = ProbeRequest::parse(&f, false).unwrap();
        assert!(p.randomized());
        assert_eq!(p.seq, 0x0abc);
        assert_eq!(p.ssid, [b'c', b'a', 0xff, b'e']);
        assert!(!p.is_wildcard());
        assert!(p.ie_ids().eq([0, 221]));
        #[cfg(feature = "alloc")]
        assert_eq!(p.ssid_lossy(), "ca\u{fffd}e");
    }

    #[test]
    fn other_frames_and_errors() {
        // Beacon: sorted as other without reading further.
        assert_eq!(
            parse(&[0x80, 0x00], false),
            Ok(Frame::Other(FrameControl(0x0080)))
        );
        assert_eq!(
            parse(&[0x40], false),
            Err(Ieee80211Error::TooShort { needed: 2, got: 1 })
        );
        assert_eq!(
            parse(&[0x41, 0x00], false),
            Err(Ieee80211Error::BadVersion(1))
        );
        assert_eq!(
            parse(&[0x40, 0x00, 0, 0], false),
            Err(Ieee80211Error::TooShort { needed: 24, got: 4 })
        );
        assert_eq!(
            ProbeRequest::parse(&[0x80, 0x00], false),
            Err(Ieee80211Error::NotProbeRequest(FrameControl(0x0080)))
        );
        // A header-only probe request (no elements) with FCS flag but only 24 bytes.
        assert_eq!(
            parse(&MESHID_PROBE[..24], true),
            Err(Ieee80211Error::TooShort {
                needed: 28,
                got: 24
            })
        );
        let p = ProbeRequest::parse(&MESHID_PROBE[..24], false).unwrap();
        assert_eq!(p.ie_ids().count(), 0);
        assert!(p.is_wildcard());
    }

    #[test]
    fn truncation_never_panics() {
        for n in 0..MESHID_PROBE.len() {
            for fcs in [false, true] {
                if let Ok(Frame::ProbeRequest(p)) = parse(&MESHID_PROBE[..n], fcs) {
                    let _ = p.ie_ids().count();
                }
            }
        }
        let mut it = elements(&[0x00, 0x05, 1, 2]);
        assert_eq!(it.next(), None);
        assert!(it.truncated());
        let mut it = elements(&[0x00]);
        assert_eq!(it.next(), None);
        assert!(it.truncated());
    }
}

#[cfg(all(test, feature = "std"))]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            mut buf in proptest::collection::vec(any::<u8>(), 0..160),
            fcs in any::<bool>(),
            probe in any::<bool>(),
        ) {
            if probe && buf.len() >= 2 {
                // Make most cases probe requests so the element walk runs.
                buf[0] = 0x40;
            }
            if let Ok(Frame::ProbeRequest(p)) = parse(&buf, fcs) {
                let n: usize = p.elements().map(|e| 2 + e.data.len()).sum();
                prop_assert!(n <= p.ies.len());
                let _ = p.randomized();
            }
        }
    }
}

//! The radiotap header: what the capturing radio says about a received 802.11 frame.
//!
//! A monitor-mode capture (pcap linktype 127) puts a radiotap header before every frame:
//! `version(0) pad it_len:u16le present:u32le…` followed by the fields the present bitmaps
//! announce, each at its natural alignment counted from the start of the header. Dwell needs only
//! a few of them (signal, channel, rate, TSFT, flags) but has to walk all of them correctly to find
//! those, so the walk follows the radiotap.org defined-fields table and the rules the Linux kernel
//! and Wireshark iterator (`radiotap-iter`) apply:
//! - bitmaps chain while bit 31 is set; the fields start after the last bitmap;
//! - bit 29 switches the next bitmap back to the radiotap namespace, bit 30 to a vendor namespace;
//!   the vendor-namespace field (OUI, sub-namespace, `skip_length`, aligned to 2) is read where bit
//!   30 falls, and the vendor's own data (`skip_length` bytes) is skipped without being read;
//! - an unknown radiotap field, or the TLV bit (28), ends the walk: the fields found so far stand,
//!   and the 802.11 frame still starts at `it_len` (the header says how long it is);
//! - a field that would run past `it_len`, or bitmaps that do, is an error: the header contradicts
//!   itself, so nothing in it can be trusted.
//!
//! Pure byte parsing over `&[u8]`: `no_std`, no allocation, no panics.

use core::fmt;

/// Present-bitmap bit numbers (radiotap.org "defined fields").
pub mod bit {
    pub const TSFT: u32 = 0;
    pub const FLAGS: u32 = 1;
    pub const RATE: u32 = 2;
    pub const CHANNEL: u32 = 3;
    pub const FHSS: u32 = 4;
    pub const DBM_ANTSIGNAL: u32 = 5;
    pub const DBM_ANTNOISE: u32 = 6;
    pub const ANTENNA: u32 = 11;
    pub const TLV: u32 = 28;
    pub const RADIOTAP_NAMESPACE: u32 = 29;
    pub const VENDOR_NAMESPACE: u32 = 30;
    pub const EXT: u32 = 31;
}

/// Bits of the Flags field (bit 1).
pub mod flags {
    /// Sent/received during the contention-free period.
    pub const CFP: u8 = 0x01;
    /// Short preamble.
    pub const SHORT_PREAMBLE: u8 = 0x02;
    /// WEP-encrypted.
    pub const WEP: u8 = 0x04;
    /// Fragmented.
    pub const FRAGMENT: u8 = 0x08;
    /// The frame ends with its 4-byte FCS.
    pub const FCS_AT_END: u8 = 0x10;
    /// Padding between the 802.11 header and payload (data frames).
    pub const DATA_PAD: u8 = 0x20;
    /// The frame failed its FCS check.
    pub const BAD_FCS: u8 = 0x40;
}

/// Fixed header: version, pad, `it_len`, first present bitmap.
const FIXED_LEN: usize = 8;

/// `(alignment, size)` of the radiotap-namespace field at `bit`, or None for fields this walk does
/// not know (which ends the walk, since their size is unknown). Sizes and alignments are
/// radiotap.org's; FHSS uses alignment 2 as the Linux and Wireshark iterators do.
const fn field_layout(bit: u32) -> Option<(usize, usize)> {
    Some(match bit {
        0 => (8, 8),   // TSFT u64
        1 => (1, 1),   // Flags u8
        2 => (1, 1),   // Rate u8 (500 kb/s)
        3 => (2, 4),   // Channel u16 freq, u16 flags
        4 => (2, 2),   // FHSS u8 hop set, u8 hop pattern
        5 => (1, 1),   // dBm antenna signal i8
        6 => (1, 1),   // dBm antenna noise i8
        7 => (2, 2),   // lock quality u16
        8 => (2, 2),   // TX attenuation u16
        9 => (2, 2),   // dB TX attenuation u16
        10 => (1, 1),  // dBm TX power i8
        11 => (1, 1),  // antenna u8
        12 => (1, 1),  // dB antenna signal u8
        13 => (1, 1),  // dB antenna noise u8
        14 => (2, 2),  // RX flags u16
        15 => (2, 2),  // TX flags u16
        16 => (1, 1),  // RTS retries u8
        17 => (1, 1),  // data retries u8
        18 => (4, 8),  // XChannel u32 flags, u16 freq, u8 channel, u8 maxpower
        19 => (1, 3),  // MCS u8 known, u8 flags, u8 mcs
        20 => (4, 8),  // A-MPDU status u32 ref, u16 flags, u8 crc, u8 reserved
        21 => (2, 12), // VHT
        22 => (8, 12), // timestamp u64, u16 accuracy, u8 unit/position, u8 flags
        23 => (2, 12), // HE
        24 => (2, 12), // HE-MU
        25 => (2, 6),  // HE-MU-other-user
        26 => (1, 1),  // 0-length PSDU
        27 => (2, 4),  // L-SIG
        _ => return None,
    })
}

/// What the radiotap header says about one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Radiotap {
    /// `it_len`: the header's length, so the 802.11 frame starts at `&buf[len..]`.
    pub len: usize,
    /// The Flags field (see [`flags`]).
    pub flags: Option<u8>,
    /// The first dBm antenna signal: the combined signal when several antennas report.
    pub antenna_signal_dbm: Option<i8>,
    /// The first dBm antenna noise.
    pub antenna_noise_dbm: Option<i8>,
    /// Channel centre frequency in MHz.
    pub channel_freq_mhz: Option<u16>,
    /// Channel flags (band, modulation).
    pub channel_flags: Option<u16>,
    /// Legacy rate in units of 500 kb/s.
    pub rate_500kbps: Option<u8>,
    /// The first antenna index.
    pub antenna: Option<u8>,
    /// MAC timestamp (TSFT) in microseconds.
    pub tsft: Option<u64>,
    /// The frame ends with its 4-byte FCS (Flags bit 0x10).
    pub fcs_at_end: bool,
    /// The radiotap-namespace bit at which the walk stopped early: an unknown field, or the TLV
    /// bit (28). None when every announced field was walked.
    pub stopped_at_bit: Option<u32>,
}

impl Radiotap {
    /// The capturing radio marked the frame as failing its FCS check.
    pub fn bad_fcs(&self) -> bool {
        self.flags.is_some_and(|f| f & flags::BAD_FCS != 0)
    }
}

/// Why a radiotap header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadiotapError {
    /// Fewer than the 8 bytes of the fixed header.
    TooShort(usize),
    /// Version other than 0.
    BadVersion(u8),
    /// `it_len` is larger than the buffer, or smaller than the fixed header.
    BadLength { it_len: usize, available: usize },
    /// The chained present bitmaps run past `it_len`.
    BitmapOverrun { it_len: usize },
    /// The field for `bit` (in namespace number `namespace`, counted from 0) ends past `it_len`.
    FieldOverrun {
        bit: u32,
        namespace: u32,
        it_len: usize,
    },
}

impl fmt::Display for RadiotapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RadiotapError::TooShort(n) => {
                write!(f, "radiotap header needs 8 bytes, got {n}")
            }
            RadiotapError::BadVersion(v) => write!(f, "radiotap version {v}, expected 0"),
            RadiotapError::BadLength { it_len, available } => write!(
                f,
                "radiotap it_len {it_len} is outside 8..={available} (the captured length)"
            ),
            RadiotapError::BitmapOverrun { it_len } => {
                write!(f, "radiotap present bitmaps run past it_len {it_len}")
            }
            RadiotapError::FieldOverrun {
                bit,
                namespace,
                it_len,
            } => write!(
                f,
                "radiotap field bit {bit} (namespace #{namespace}) runs past it_len {it_len}"
            ),
        }
    }
}

impl core::error::Error for RadiotapError {}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// `at` rounded up to a multiple of `align` (a power of two).
const fn align_up(at: usize, align: usize) -> usize {
    (at + align - 1) & !(align - 1)
}

/// Which namespace the current bitmap belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Radiotap,
    Vendor,
}

/// Parses the radiotap header at the start of `buf` (a linktype-127 packet). The 802.11 frame is
/// `&buf[r.len..]`; see the module docs for the walk's rules.
pub fn parse(buf: &[u8]) -> Result<Radiotap, RadiotapError> {
    if buf.len() < FIXED_LEN {
        return Err(RadiotapError::TooShort(buf.len()));
    }
    if buf[0] != 0 {
        return Err(RadiotapError::BadVersion(buf[0]));
    }
    let it_len = usize::from(u16::from_le_bytes([buf[2], buf[3]]));
    if it_len < FIXED_LEN || it_len > buf.len() {
        return Err(RadiotapError::BadLength {
            it_len,
            available: buf.len(),
        });
    }
    // Everything below reads only inside the header.
    let hdr = &buf[..it_len];

    // Count the bitmaps first: the fields start after the last one.
    let mut n_bitmaps = 1;
    loop {
        let at = 4 + 4 * (n_bitmaps - 1);
        let word = le32(hdr, at).ok_or(RadiotapError::BitmapOverrun { it_len })?;
        if word & (1 << bit::EXT) == 0 {
            break;
        }
        n_bitmaps += 1;
    }
    let data_start = 4 + 4 * n_bitmaps;
    if data_start > it_len {
        return Err(RadiotapError::BitmapOverrun { it_len });
    }

    let mut out = Radiotap {
        len: it_len,
        ..Radiotap::default()
    };
    let mut pos = data_start;
    let mut ns = Namespace::Radiotap;
    // Bit index base within the current namespace (0, 32, 64… across extended bitmaps), and how
    // many namespaces have been entered (for error messages).
    let mut base = 0u32;
    let mut ns_count = 0u32;

    for i in 0..n_bitmaps {
        // Cannot fail: every bitmap up to n_bitmaps was read above.
        let word = le32(hdr, 4 + 4 * i).unwrap_or(0);
        for b in 0..bit::RADIOTAP_NAMESPACE {
            if word & (1 << b) == 0 || ns == Namespace::Vendor {
                continue;
            }
            let index = base + b;
            if index == bit::TLV {
                out.stopped_at_bit = Some(index);
                return Ok(out);
            }
            let Some((align, size)) = field_layout(index) else {
                out.stopped_at_bit = Some(index);
                return Ok(out);
            };
            let at = align_up(pos, align);
            let field = hdr.get(at..at + size).ok_or(RadiotapError::FieldOverrun {
                bit: index,
                namespace: ns_count,
                it_len,
            })?;
            pos = at + size;
            // The first occurrence of a field is the one that describes the whole frame; later
            // namespaces repeat signal/antenna per antenna.
            match index {
                bit::TSFT => out.tsft = out.tsft.or(le64(field, 0)),
                bit::FLAGS if out.flags.is_none() => {
                    out.flags = Some(field[0]);
                    out.fcs_at_end = field[0] & flags::FCS_AT_END != 0;
                }
                bit::RATE => out.rate_500kbps = out.rate_500kbps.or(Some(field[0])),
                bit::CHANNEL if out.channel_freq_mhz.is_none() => {
                    out.channel_freq_mhz = le16(field, 0);
                    out.channel_flags = le16(field, 2);
                }
                bit::DBM_ANTSIGNAL => {
                    out.antenna_signal_dbm = out.antenna_signal_dbm.or(Some(field[0] as i8));
                }
                bit::DBM_ANTNOISE => {
                    out.antenna_noise_dbm = out.antenna_noise_dbm.or(Some(field[0] as i8));
                }
                bit::ANTENNA => out.antenna = out.antenna.or(Some(field[0])),
                _ => {}
            }
        }

        // Namespace switches take effect at the next bitmap.
        let mut next_ns = None;
        if word & (1 << bit::RADIOTAP_NAMESPACE) != 0 {
            next_ns = Some(Namespace::Radiotap);
        }
        if word & (1 << bit::VENDOR_NAMESPACE) != 0 {
            // OUI[3], sub-namespace u8, skip_length u16le, aligned to 2; the vendor's data follows
            // and is skipped whole since Dwell reads no vendor fields.
            let at = align_up(pos, 2);
            let overrun = RadiotapError::FieldOverrun {
                bit: base + bit::VENDOR_NAMESPACE,
                namespace: ns_count,
                it_len,
            };
            let skip = le16(hdr, at + 4).ok_or(overrun)?;
            pos = at + 6 + usize::from(skip);
            if pos > it_len {
                return Err(overrun);
            }
            next_ns = Some(Namespace::Vendor);
        }
        match next_ns {
            Some(n) => {
                ns = n;
                base = 0;
                ns_count += 1;
            }
            None => base = base.saturating_add(32),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds `it_len` into a header literal so tests can write headers naturally.
    fn with_len<const N: usize>(mut h: [u8; N]) -> [u8; N] {
        let n = (N as u16).to_le_bytes();
        h[2] = n[0];
        h[3] = n[1];
        h
    }

    #[test]
    fn meshid_beacon_header_golden() {
        // First frame of tcpdump's ieee802.11_meshid.pcap: three bitmaps, the second and third
        // restarting the radiotap namespace with per-antenna signal and antenna index.
        let h: [u8; 56] = [
            0x00, 0x00, 0x38, 0x00, 0x2f, 0x40, 0x40, 0xa0, 0x20, 0x08, 0x00, 0xa0, 0x20, 0x08,
            0x00, 0x00, 0xde, 0x71, 0xd7, 0x37, 0x02, 0x00, 0x00, 0x00, 0x10, 0x0c, 0x71, 0x16,
            0x40, 0x01, 0xde, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd9, 0xd5,
            0xd7, 0x37, 0x00, 0x00, 0x00, 0x00, 0x16, 0x00, 0x11, 0x03, 0xd9, 0x00, 0xde, 0x01,
        ];
        let r = parse(&h).unwrap();
        assert_eq!(r.len, 56);
        assert_eq!(r.tsft, Some(9_526_800_862));
        assert_eq!(r.flags, Some(0x10));
        assert!(r.fcs_at_end);
        assert_eq!(r.rate_500kbps, Some(12)); // 6.0 Mb/s
        assert_eq!(r.channel_freq_mhz, Some(5745));
        assert_eq!(r.channel_flags, Some(0x0140));
        assert_eq!(r.antenna_signal_dbm, Some(-34));
        assert_eq!(r.antenna, Some(0));
        assert_eq!(r.stopped_at_bit, None);
    }

    #[test]
    fn vendor_namespace_is_skipped_by_skip_length() {
        // First frame of tcpdump's ieee802.11_htc.pcap: TSFT, flags, channel, signal, noise,
        // antenna, HE (bit 23), then a vendor namespace (Atheros OUI) with 16 bytes of data.
        let mut h = [0u8; 60];
        h[..8].copy_from_slice(&[0x00, 0x00, 0x3c, 0x00, 0x6b, 0x08, 0x80, 0x40]);
        h[8..16].copy_from_slice(&[0x86, 0xb2, 0xae, 0x39, 0, 0, 0, 0]);
        h[16] = 0x04; // WEP
        h[18..22].copy_from_slice(&[0x3c, 0x14, 0x40, 0x01]);
        h[22] = 0xd3; // -45
        h[23] = 0x95; // -107
        h[24] = 0; // antenna
        // HE at 26..38 (left zero); vendor namespace header at 38.
        h[38..44].copy_from_slice(&[0x00, 0x03, 0x7f, 0x00, 0x10, 0x00]);
        let r = parse(&h).unwrap();
        assert_eq!(r.tsft, Some(967_750_278));
        assert_eq!(r.channel_freq_mhz, Some(5180));
        assert_eq!(r.antenna_signal_dbm, Some(-45));
        assert_eq!(r.antenna_noise_dbm, Some(-107));
        assert_eq!(r.flags, Some(0x04));
        assert!(!r.fcs_at_end);
        assert_eq!(r.stopped_at_bit, None);

        // One byte less of vendor data than skip_length announces: the header lies.
        let mut short = h;
        short[42] = 0x11;
        assert_eq!(
            parse(&short),
            Err(RadiotapError::FieldOverrun {
                bit: 30,
                namespace: 0,
                it_len: 60
            })
        );
    }

    #[test]
    fn fields_are_naturally_aligned_from_header_start() {
        // Flags at 8, Channel aligned to 2 → 10..14, dBm signal at 14, XChannel aligned to 4 →
        // 16..24, MCS 24..27, A-MPDU aligned to 4 → 28..36, timestamp aligned to 8 → 40..52.
        let present: u32 =
            (1 << 1) | (1 << 3) | (1 << 5) | (1 << 18) | (1 << 19) | (1 << 20) | (1 << 22);
        let mut h = [0u8; 52];
        h[4..8].copy_from_slice(&present.to_le_bytes());
        h[8] = 0x10; // flags
        h[10..14].copy_from_slice(&[0x6c, 0x09, 0xa0, 0x00]); // 2412 MHz
        h[14] = (-61i8) as u8; // signal
        // xchannel at 16..24, mcs 24..27, ampdu 28..36, timestamp 40..52.
        let h = with_len(h);
        let r = parse(&h).unwrap();
        assert_eq!(r.channel_freq_mhz, Some(2412));
        assert_eq!(r.antenna_signal_dbm, Some(-61));
        assert!(r.fcs_at_end);
        assert_eq!(r.len, 52);
        // One byte shorter and the timestamp no longer fits.
        let mut t = [0u8; 51];
        t.copy_from_slice(&h[..51]);
        let t = with_len(t);
        assert_eq!(
            parse(&t),
            Err(RadiotapError::FieldOverrun {
                bit: 22,
                namespace: 0,
                it_len: 51
            })
        );
    }

    #[test]
    fn tsft_alignment_after_extended_bitmap() {
        // Two bitmaps (8..12 is the second), so TSFT aligns from 12 to 16.
        let mut h = [0u8; 25];
        h[4..8].copy_from_slice(&((1u32 << 0) | (1 << 5) | (1 << 31)).to_le_bytes());
        h[16..24].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        h[24] = 0xc4; // -60
        let r = parse(&with_len(h)).unwrap();
        assert_eq!(r.tsft, Some(0x0102_0304_0506_0708));
        assert_eq!(r.antenna_signal_dbm, Some(-60));
    }

    #[test]
    fn unknown_field_stops_walk_but_keeps_what_was_found() {
        // Signal, then an extended bitmap in the radiotap namespace with bit 32+3 (undefined).
        let mut h = [0u8; 20];
        h[4..8].copy_from_slice(&((1u32 << 5) | (1 << 31)).to_le_bytes());
        h[8..12].copy_from_slice(&(1u32 << 3).to_le_bytes());
        h[12] = 0xb0; // -80
        let r = parse(&with_len(h)).unwrap();
        assert_eq!(r.antenna_signal_dbm, Some(-80));
        assert_eq!(r.stopped_at_bit, Some(35));
        assert_eq!(r.len, 20);

        // TLV bit ends the fixed fields too.
        let mut h = [0u8; 16];
        h[4..8].copy_from_slice(&((1u32 << 2) | (1 << 28)).to_le_bytes());
        h[8] = 2;
        let r = parse(&with_len(h)).unwrap();
        assert_eq!(r.rate_500kbps, Some(2));
        assert_eq!(r.stopped_at_bit, Some(28));
    }

    #[test]
    fn header_errors() {
        assert_eq!(parse(&[0, 0, 8]), Err(RadiotapError::TooShort(3)));
        assert_eq!(
            parse(&[1, 0, 8, 0, 0, 0, 0, 0]),
            Err(RadiotapError::BadVersion(1))
        );
        assert_eq!(
            parse(&[0, 0, 9, 0, 0, 0, 0, 0]),
            Err(RadiotapError::BadLength {
                it_len: 9,
                available: 8
            })
        );
        assert_eq!(
            parse(&[0, 0, 4, 0, 0, 0, 0, 0]),
            Err(RadiotapError::BadLength {
                it_len: 4,
                available: 8
            })
        );
        // Bit 31 set but no room for the next bitmap.
        assert_eq!(
            parse(&[0, 0, 8, 0, 0, 0, 0, 0x80]),
            Err(RadiotapError::BitmapOverrun { it_len: 8 })
        );
        // Empty header: fine, nothing present.
        let r = parse(&[0, 0, 8, 0, 0, 0, 0, 0, 0xaa]).unwrap();
        assert_eq!(r.len, 8);
        assert_eq!(r.antenna_signal_dbm, None);
    }

    #[test]
    fn truncation_never_panics() {
        let full: [u8; 56] = [
            0x00, 0x00, 0x38, 0x00, 0x2f, 0x40, 0x40, 0xa0, 0x20, 0x08, 0x00, 0xa0, 0x20, 0x08,
            0x00, 0x00, 0xde, 0x71, 0xd7, 0x37, 0x02, 0x00, 0x00, 0x00, 0x10, 0x0c, 0x71, 0x16,
            0x40, 0x01, 0xde, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd9, 0xd5,
            0xd7, 0x37, 0x00, 0x00, 0x00, 0x00, 0x16, 0x00, 0x11, 0x03, 0xd9, 0x00, 0xde, 0x01,
        ];
        for n in 0..full.len() {
            // Both: the buffer cut short, and it_len claiming a shorter header.
            assert!(parse(&full[..n]).is_err());
            let mut lied = full;
            lied[2] = n as u8;
            let _ = parse(&lied);
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(r) = parse(&buf) {
                prop_assert!(r.len >= 8 && r.len <= buf.len());
            }
        }

        #[test]
        fn plausible_headers_never_panic(
            words in proptest::collection::vec(any::<u32>(), 1..5),
            data in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            // A valid fixed header in front, so the walk itself gets exercised.
            let mut buf = std::vec![0u8, 0, 0, 0];
            for (i, w) in words.iter().enumerate() {
                let last = i + 1 == words.len();
                let w = if last { w & !(1 << 31) } else { w | (1 << 31) };
                buf.extend_from_slice(&w.to_le_bytes());
            }
            buf.extend_from_slice(&data);
            let len = (buf.len() as u16).to_le_bytes();
            buf[2] = len[0];
            buf[3] = len[1];
            let _ = parse(&buf);
        }
    }
}

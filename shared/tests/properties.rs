//! Property tests of the codecs and of every parser of outside bytes.
//!
//! - Round trips: every beacon frame type encodes into a legacy (≤ 31-byte) advertisement that
//!   decodes to exactly that frame; Eddystone-URL text survives encode → display; an HCI legacy
//!   report survives `encode_legacy_report` → `parse_h4`; AD structures survive write → walk.
//! - Arbitrary bytes never panic: the AD walk (and `AdFields` with its JSON), the frame walk, the
//!   HCI parsers and salvage, the btsnoop reader, radiotap, 802.11, the pcap packet decoder and
//!   the pcap/pcapng reader.
//!   Generators are shaped like the real thing (valid headers, plausible lengths) so the cases get
//!   past the first length check; what is returned must stay inside the input.
//! - Eddystone-EID: a table built for a time window resolves every key's EID anywhere in it.
//!
//! Case counts keep the whole file to a few seconds in a debug build; the fuzz targets in
//! `shared/fuzz` run the same no-panic properties for minutes.

use dwell_shared::Uuid;
use dwell_shared::ad::{self, AdFields, AdSummary, AdWriter, ad_type};
use dwell_shared::btsnoop::{BtsnoopError, BtsnoopReader, PacketKind};
use dwell_shared::eid::{self, EidTable, IdentityKey, Resolved};
use dwell_shared::frame::eddystone::UrlError;
use dwell_shared::frame::ibeacon::is_tilt_hydrometer;
use dwell_shared::frame::{
    self, AltBeacon, EddystoneEid, EddystoneTlm, EddystoneUid, EddystoneUrl, Frame, IBeacon,
    TlmEncrypted, TlmPlain,
};
use dwell_shared::hci::{self, ReportKind};
use dwell_shared::wifi::ieee80211::{self, FCS_LEN, MGMT_HEADER_LEN};
use dwell_shared::wifi::{pcap, radiotap};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::io::Cursor;

/// A legacy advertisement carries at most 31 bytes of AD structures.
const LEGACY_ADV_MAX: usize = 31;

/// Whether `inner` lies inside `outer` (by address, not by value).
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

/// Encodes a frame, checks the size limit and returns the payload.
fn encode(f: &Frame) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = f.encode(&mut buf).expect("every frame fits 64 bytes");
    assert!(n <= LEGACY_ADV_MAX, "{f:?} encodes to {n} bytes");
    buf[..n].to_vec()
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn ibeacon() -> impl Strategy<Value = IBeacon> {
    (
        any::<[u8; 16]>().prop_filter("Tilt hydrometers are refused by design", |u| {
            !is_tilt_hydrometer(u)
        }),
        any::<u16>(),
        any::<u16>(),
        any::<i8>(),
    )
        .prop_map(|(uuid, major, minor, tx_power)| IBeacon {
            uuid: Uuid::from_bytes(uuid),
            major,
            minor,
            tx_power,
        })
}

fn altbeacon() -> impl Strategy<Value = AltBeacon> {
    (
        any::<u16>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
        any::<i8>(),
        any::<u8>(),
    )
        .prop_map(
            |(manufacturer, id1, id2, id3, ref_rssi, mfg_reserved)| AltBeacon {
                manufacturer,
                id1: Uuid::from_bytes(id1),
                id2,
                id3,
                ref_rssi,
                mfg_reserved,
            },
        )
}

fn eddystone_uid() -> impl Strategy<Value = EddystoneUid> {
    (any::<i8>(), any::<[u8; 10]>(), any::<[u8; 6]>()).prop_map(
        |(tx_power, namespace, instance)| EddystoneUid {
            tx_power,
            namespace,
            instance,
        },
    )
}

const SCHEMES: [&str; 4] = ["http://www.", "https://www.", "http://", "https://"];
const EXPANSIONS: [&str; 14] = [
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/", ".com", ".org", ".edu", ".net",
    ".info", ".biz", ".gov",
];

/// URL text: a scheme prefix, then up to 17 tokens, each one printable ASCII character or one
/// expansion word, so it can be written in at most 17 codes.
fn url_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => (0x21u8..=0x7e).prop_map(|c| char::from(c).to_string()),
        1 => select(&EXPANSIONS[..]).prop_map(str::to_owned),
    ];
    (select(&SCHEMES[..]), vec(token, 0..=17))
        .prop_map(|(scheme, tokens)| format!("{scheme}{}", tokens.concat()))
}

/// The greedy encoder's one blind spot: after `http(s)://` it always takes the `www.` scheme, so
/// `www.info/…` costs `info/` (5 codes) where `www` + `.info/` costs 4. Such text can be one code
/// too long for `EddystoneUrl::new` although a 17-code encoding exists.
fn greedy_scheme_costs_a_code(text: &str) -> bool {
    text.contains("://www.info/")
}

fn eddystone_url() -> impl Strategy<Value = EddystoneUrl> {
    (url_text(), any::<i8>()).prop_filter_map("encodes in 17 codes", |(text, tx)| {
        EddystoneUrl::new(&text, tx).ok()
    })
}

/// Temperatures the 8.8 fixed point carries exactly: multiples of 1/256 within ±127 °C.
fn tlm_temperature() -> impl Strategy<Value = Option<f32>> {
    prop_oneof![
        1 => Just(None),
        4 => (-127i16 * 256..=127 * 256).prop_map(|t| Some(f32::from(t) / 256.0)),
    ]
}

fn eddystone_tlm() -> impl Strategy<Value = EddystoneTlm> {
    let plain = (any::<u16>(), tlm_temperature(), any::<u32>(), any::<u32>()).prop_map(
        |(battery_mv, temperature_c, adv_count, sec_count)| {
            EddystoneTlm::Plain(TlmPlain {
                battery_mv,
                temperature_c,
                adv_count,
                sec_count,
            })
        },
    );
    let encrypted = (any::<[u8; 12]>(), any::<[u8; 2]>(), any::<[u8; 2]>())
        .prop_map(|(etlm, salt, mic)| EddystoneTlm::Encrypted(TlmEncrypted { etlm, salt, mic }));
    prop_oneof![plain, encrypted]
}

fn eddystone_eid() -> impl Strategy<Value = EddystoneEid> {
    (any::<i8>(), any::<[u8; 8]>()).prop_map(|(tx_power, eid)| EddystoneEid { tx_power, eid })
}

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        ibeacon().prop_map(Frame::IBeacon),
        altbeacon().prop_map(Frame::AltBeacon),
        eddystone_uid().prop_map(Frame::EddystoneUid),
        eddystone_url().prop_map(Frame::EddystoneUrl),
        eddystone_tlm().prop_map(Frame::EddystoneTlm),
        eddystone_eid().prop_map(Frame::EddystoneEid),
    ]
}

/// Advertising payloads that look like real ones, damaged: padding, well-formed structures of
/// the types Dwell reads (Eddystone and beacon-shaped ones included), lengths that lie, junk.
fn ad_like() -> impl Strategy<Value = Vec<u8>> {
    let interesting_type = prop_oneof![
        select(vec![
            ad_type::FLAGS,
            ad_type::UUID16_COMPLETE,
            ad_type::UUID32_INCOMPLETE,
            ad_type::UUID128_COMPLETE,
            ad_type::SHORT_LOCAL_NAME,
            ad_type::COMPLETE_LOCAL_NAME,
            ad_type::TX_POWER_LEVEL,
            ad_type::SERVICE_DATA16,
            ad_type::SERVICE_DATA32,
            ad_type::SERVICE_DATA128,
            ad_type::MANUFACTURER_DATA,
        ]),
        any::<u8>(),
    ];
    let beacon_prefix = select(vec![
        vec![],
        vec![0xaa, 0xfe, 0x00],
        vec![0xaa, 0xfe, 0x10],
        vec![0xaa, 0xfe, 0x20, 0x00],
        vec![0xaa, 0xfe, 0x20, 0x01],
        vec![0xaa, 0xfe, 0x30],
        vec![0x4c, 0x00, 0x02, 0x15],
        vec![0x18, 0x01, 0xbe, 0xac],
    ]);
    let chunk = prop_oneof![
        1 => Just(vec![0u8]),
        6 => (interesting_type, beacon_prefix, vec(any::<u8>(), 0..26), -2i8..=2)
            .prop_map(|(t, prefix, data, lie)| {
                let len = (1 + prefix.len() + data.len()) as i16 + i16::from(lie);
                let mut v = vec![len.clamp(0, 255) as u8, t];
                v.extend(prefix);
                v.extend(data);
                v
            }),
        1 => vec(any::<u8>(), 0..8),
        // A real beacon advertisement, cut short or with one byte changed.
        2 => (any_frame(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
            .prop_map(|(f, at, byte, cut)| {
                let mut v = encode(&f);
                let at = at.index(v.len());
                if cut {
                    v.truncate(at);
                } else {
                    v[at] = byte;
                }
                v
            }),
    ];
    vec(chunk, 0..6).prop_map(|chunks| chunks.concat())
}

fn ad_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..80), ad_like()]
}

/// HCI events shaped like LE advertising reports (H4 form), often with lengths that disagree.
fn hci_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![4 => Just(hci::H4_EVENT), 1 => any::<u8>()],
        prop_oneof![4 => Just(hci::EVENT_LE_META), 1 => any::<u8>()],
        prop_oneof![
            2 => Just(hci::SUBEVENT_ADV_REPORT),
            1 => Just(hci::SUBEVENT_EXT_ADV_REPORT),
            1 => any::<u8>(),
        ],
        0u8..5,
        vec(any::<u8>(), 0..120),
        any::<bool>(),
    )
        .prop_map(|(h4, code, subevent, num, body, fix_len)| {
            let plen = if fix_len {
                (2 + body.len()) as u8
            } else {
                body.first().copied().unwrap_or(0)
            };
            let mut v = vec![h4, code, plen, subevent, num];
            v.extend(body);
            v
        })
}

/// Real legacy report events, one to three reports each, then damaged: one byte changed and
/// the event maybe cut short.
fn hci_damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        vec(
            (any::<[u8; 6]>(), vec(any::<u8>(), 0..31), any::<i8>()),
            1..4,
        ),
        any::<prop::sample::Index>(),
        any::<u8>(),
        prop_oneof![3 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
    )
        .prop_map(|(reports, at, byte, cut)| {
            // Several reports: one event header, the reports' bodies one after the other.
            let mut v = vec![
                hci::H4_EVENT,
                hci::EVENT_LE_META,
                0,
                hci::SUBEVENT_ADV_REPORT,
            ];
            v.push(reports.len() as u8);
            for (addr, data, rssi) in &reports {
                let mut b = [0u8; 64];
                let n = hci::encode_legacy_report(&mut b, 0, 1, addr, data, *rssi).unwrap();
                v.extend_from_slice(&b[5..n]);
            }
            v[2] = (v.len() - 3) as u8;
            let at = at.index(v.len());
            v[at] = byte;
            if let Some(cut) = cut {
                v.truncate(cut.index(v.len()));
            }
            v
        })
}

fn hci_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..64), hci_like(), hci_damaged()]
}

/// One btsnoop record: flags, timestamp, data, and how much its length fields lie.
fn btsnoop_record() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            3 => (0u32..20).prop_map(|op| op | (u32::from(op % 3 == 0) << 16)),
            1 => any::<u32>(),
        ],
        any::<i64>(),
        prop_oneof![
            2 => vec(any::<u8>(), 0..48),
            // An LE advertising report event, so records reach the HCI parser.
            1 => (vec(any::<u8>(), 0..31), any::<[u8; 6]>()).prop_map(|(data, addr)| {
                let mut b = [0u8; 64];
                let n = hci::encode_legacy_report(&mut b, 0, 1, &addr, &data, -60).unwrap();
                b[..n].to_vec()
            }),
        ],
        prop_oneof![8 => Just(0i64), 1 => -3i64..=3, 1 => any::<u32>().prop_map(i64::from)],
        any::<u32>(),
    )
        .prop_map(|(flags, ts, data, lie, orig_extra)| {
            let incl = (data.len() as i64 + lie).clamp(0, i64::from(u32::MAX)) as u32;
            let mut v = Vec::with_capacity(24 + data.len());
            v.extend_from_slice(&incl.saturating_add(orig_extra % 8).to_be_bytes());
            v.extend_from_slice(&incl.to_be_bytes());
            v.extend_from_slice(&flags.to_be_bytes());
            v.extend_from_slice(&0u32.to_be_bytes());
            v.extend_from_slice(&ts.to_be_bytes());
            v.extend(data);
            v
        })
}

/// btsnoop files: a (usually) valid header, records whose lengths sometimes lie, a tail of junk.
fn btsnoop_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![4 => select(vec![1001u32, 1002, 2001]), 1 => any::<u32>()],
        prop_oneof![8 => Just(1u32), 1 => any::<u32>()],
        vec(btsnoop_record(), 0..6),
        vec(any::<u8>(), 0..30),
    )
        .prop_map(|(datalink, version, records, tail)| {
            let mut v = b"btsnoop\0".to_vec();
            v.extend_from_slice(&version.to_be_bytes());
            v.extend_from_slice(&datalink.to_be_bytes());
            v.extend(records.concat());
            v.extend(tail);
            v
        })
}

/// Radiotap packets: version 0 and an `it_len` inside the buffer most of the time, random
/// present bitmaps (so extended bitmaps, namespaces and vendor fields all come up), random fields.
fn radiotap_like() -> impl Strategy<Value = Vec<u8>> {
    (
        vec(any::<u8>(), 8..160),
        prop_oneof![8 => Just(0u8), 1 => any::<u8>()],
        any::<u16>(),
        any::<bool>(),
        // Present bitmaps biased towards the fields Dwell reads.
        prop_oneof![
            1 => any::<u32>(),
            1 => any::<u32>().prop_map(|w| w & 0x2000_08ef),
        ],
    )
        .prop_map(|(mut v, version, len_seed, len_inside, present)| {
            let it_len = if len_inside {
                8 + usize::from(len_seed) % (v.len() - 7)
            } else {
                usize::from(len_seed)
            };
            v[0] = version;
            v[2..4].copy_from_slice(&(it_len as u16).to_le_bytes());
            v[4..8].copy_from_slice(&present.to_le_bytes());
            v
        })
}

/// Well-formed radiotap headers (the fields Dwell reads, at their alignments, with or without
/// the FCS flag) in front of 802.11 frames, one byte sometimes changed.
fn radiotap_probe_like() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[bool; 7]>(),
        any::<[u8; 16]>(),
        any::<bool>(),
        ieee80211_like(),
        prop_oneof![3 => Just(None), 1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(Some)],
    )
        .prop_map(|(which, values, fcs, frame, damage)| {
            // (bit, alignment, size) of TSFT, flags, rate, channel, signal, noise, antenna.
            const FIELDS: [(u32, usize, usize); 7] =
                [(0, 8, 8), (1, 1, 1), (2, 1, 1), (3, 2, 4), (5, 1, 1), (6, 1, 1), (11, 1, 1)];
            let mut present = 0u32;
            let mut v = vec![0u8; 8];
            for (i, (bit, align, size)) in FIELDS.into_iter().enumerate() {
                if !which[i] {
                    continue;
                }
                present |= 1 << bit;
                while !v.len().is_multiple_of(align) {
                    v.push(0);
                }
                let at = v.len();
                v.extend_from_slice(&values[i..i + size]);
                if bit == 1 {
                    v[at] = if fcs { 0x10 } else { 0 };
                }
            }
            let it_len = v.len() as u16;
            v[2..4].copy_from_slice(&it_len.to_le_bytes());
            v[4..8].copy_from_slice(&present.to_le_bytes());
            v.extend(frame);
            if let Some((at, byte)) = damage {
                let at = at.index(v.len());
                v[at] = byte;
            }
            v
        })
}

/// 802.11 frames, half of them with a probe-request frame control.
fn ieee80211_like() -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), 0..100), any::<bool>(), any::<u8>()).prop_map(|(mut v, probe, flags)| {
        if probe && v.len() >= 2 {
            v[0] = 0x40; // version 0, management, probe request
            v[1] = flags & 0x80; // maybe the Order bit
        }
        v
    })
}

// ---------------------------------------------------------------------------------------------
// Beacon frames: encode → decode
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_frame_round_trips_through_a_legacy_advertisement(f in any_frame()) {
        let payload = encode(&f);
        prop_assert_eq!(frame::frames(&payload).collect::<Vec<_>>(), vec![f]);
        // The encoder writes well-formed AD structures, flags first.
        let fields = AdFields::parse(&payload);
        prop_assert_eq!(fields.error, None);
        prop_assert_eq!(fields.flags, Some(frame::BEACON_FLAGS));
    }

    #[test]
    fn ibeacon_round_trips(b in ibeacon()) {
        let f = Frame::IBeacon(b);
        prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
    }

    #[test]
    fn altbeacon_round_trips(b in altbeacon()) {
        let f = Frame::AltBeacon(b);
        prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
    }

    #[test]
    fn eddystone_uid_round_trips(b in eddystone_uid()) {
        let f = Frame::EddystoneUid(b);
        prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
    }

    #[test]
    fn eddystone_tlm_round_trips(t in eddystone_tlm()) {
        let f = Frame::EddystoneTlm(t);
        prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
    }

    #[test]
    fn eddystone_eid_round_trips(e in eddystone_eid()) {
        let f = Frame::EddystoneEid(e);
        prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
    }

    #[test]
    fn eddystone_url_text_and_frame_round_trip(text in url_text(), tx in any::<i8>()) {
        match EddystoneUrl::new(&text, tx) {
            Ok(u) => {
                prop_assert_eq!(u.to_string(), text.as_str());
                prop_assert!(u.encoded().len() <= 17);
                prop_assert_eq!(u.tx_power, tx);
                let f = Frame::EddystoneUrl(u);
                prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
            }
            // Generated text needs at most 17 codes; only the greedy scheme choice can need 18.
            Err(e) => {
                prop_assert_eq!(e, UrlError::TooLong);
                prop_assert!(greedy_scheme_costs_a_code(&text), "{text:?} needs ≤ 17 codes");
            }
        }
    }

    /// Any valid URL frame (codes 0x00..=0x0d and 0x21..=0x7e, however unusually encoded) shows as
    /// text that the encoder takes back, as the same text in no more codes.
    #[test]
    fn decoded_url_text_re_encodes(
        scheme in 0u8..4,
        codes in vec(prop_oneof![0u8..=0x0d, 0x21u8..=0x7e], 0..=17),
        tx in any::<i8>(),
    ) {
        let mut buf = [0u8; 64];
        let mut w = AdWriter::new(&mut buf);
        w.push(ad_type::SERVICE_DATA16, &[&[0xaa, 0xfe, 0x10, tx as u8, scheme], &codes]).unwrap();
        let payload = w.as_bytes().to_vec();
        let found: Vec<Frame> = frame::frames(&payload).collect();
        let [Frame::EddystoneUrl(u)] = found[..] else {
            return Err(TestCaseError::fail(format!("{found:?}")));
        };
        prop_assert_eq!(u.encoded(), &codes[..]);
        let text = u.to_string();
        match EddystoneUrl::new(&text, tx) {
            Ok(again) => {
                prop_assert_eq!(again.to_string(), text.as_str());
                prop_assert!(again.encoded().len() <= codes.len()
                    || greedy_scheme_costs_a_code(&text));
            }
            Err(e) => {
                prop_assert_eq!(e, UrlError::TooLong);
                prop_assert!(greedy_scheme_costs_a_code(&text), "{text:?}");
            }
        }
    }

    /// Tilt hydrometers borrow the iBeacon layout; they encode, but decode refuses them.
    #[test]
    fn tilt_hydrometers_are_not_reported_as_ibeacons(
        colour in 1u8..=8,
        major in any::<u16>(),
        minor in any::<u16>(),
    ) {
        let mut uuid = [
            0xa4, 0x95, 0xbb, 0x00, 0xc5, 0xb1, 0x4b, 0x44, 0xb5, 0x12, 0x13, 0x70, 0xf0, 0x2d,
            0x74, 0xde,
        ];
        uuid[3] = colour << 4;
        prop_assert!(is_tilt_hydrometer(&uuid));
        let f = Frame::IBeacon(IBeacon { uuid: Uuid::from_bytes(uuid), major, minor, tx_power: -59 });
        prop_assert_eq!(frame::frames(&encode(&f)).count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// AD structures
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Well-formed structures, with zero padding anywhere, walk back out exactly and cleanly; the
    /// writer produces the same bytes as the by-hand layout.
    #[test]
    fn written_structures_walk_back_out(
        parts in vec((0usize..3, any::<u8>(), vec(any::<u8>(), 0..40)), 0..6),
    ) {
        let mut bytes = Vec::new();
        for (pad, t, data) in &parts {
            bytes.extend(std::iter::repeat_n(0u8, *pad));
            let mut one = [0u8; 64];
            let mut w = AdWriter::new(&mut one);
            w.push(*t, &[data]).unwrap();
            prop_assert_eq!(w.len(), 2 + data.len());
            bytes.extend_from_slice(w.as_bytes());
        }
        let mut walk = ad::structures(&bytes);
        let got: Vec<(u8, Vec<u8>)> = walk.by_ref().map(|s| (s.ad_type, s.data.to_vec())).collect();
        let want: Vec<(u8, Vec<u8>)> = parts.into_iter().map(|(_, t, d)| (t, d)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(walk.error(), None);
    }

    /// The walk never yields a structure outside the input, and never more bytes than it holds.
    #[test]
    fn ad_walk_stays_inside_the_input(bytes in ad_bytes()) {
        let mut walk = ad::structures(&bytes);
        let mut total = 0;
        for st in walk.by_ref() {
            prop_assert!(within(st.data, &bytes));
            total += 2 + st.data.len();
            prop_assert!(total <= bytes.len());
            for _ in st.service_uuids() {}
            if let Some((_, d)) = st.service_data() {
                prop_assert!(within(d, st.data));
            }
            if let Some((_, d)) = st.manufacturer_data() {
                prop_assert!(within(d, st.data));
            }
        }
        if let Some(ad::AdError::Overrun { offset, declared, available }) = walk.error() {
            prop_assert!(offset < bytes.len());
            prop_assert_eq!(available, bytes.len() - offset - 1);
            prop_assert!(usize::from(declared) > available);
        }
    }

    /// `AdFields`, `AdSummary`, the frame walk and their JSON take any bytes; every frame found
    /// re-encodes and decodes to itself.
    #[test]
    fn arbitrary_ad_bytes_never_panic(bytes in ad_bytes()) {
        let fields = AdFields::parse(&bytes);
        let json = serde_json::to_string(&fields).unwrap();
        prop_assert!(json.starts_with('{'), "{}", json);
        let summary = AdSummary::parse(&bytes);
        if let Some(name) = summary.local_name {
            prop_assert!(!name.is_empty() && within(name, &bytes));
        }
        for f in frame::frames(&bytes) {
            serde_json::to_string(&f).unwrap();
            prop_assert_eq!(frame::frames(&encode(&f)).collect::<Vec<_>>(), vec![f]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HCI
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn legacy_report_round_trips(
        event_type in any::<u8>(),
        addr_type in any::<u8>(),
        addr in any::<[u8; 6]>(),
        data in vec(any::<u8>(), 0..=200),
        rssi in any::<i8>(),
    ) {
        let mut buf = [0u8; 300];
        let n = hci::encode_legacy_report(&mut buf, event_type, addr_type, &addr, &data, rssi)
            .unwrap();
        prop_assert_eq!(n, 3 + 2 + 9 + data.len() + 1);
        for parsed in [hci::parse_h4(&buf[..n]), hci::parse_event(&buf[1..n])] {
            let mut reports = parsed.unwrap();
            prop_assert_eq!(reports.kind(), ReportKind::Legacy);
            let r = reports.next().unwrap().unwrap();
            prop_assert_eq!(r.kind, ReportKind::Legacy);
            prop_assert_eq!(r.event_type, u16::from(event_type));
            prop_assert_eq!(r.addr_type, addr_type);
            prop_assert_eq!(r.addr, addr);
            prop_assert_eq!(r.rssi, (rssi != hci::NOT_AVAILABLE).then_some(rssi));
            prop_assert_eq!(r.tx_power, None);
            prop_assert_eq!(r.data, &data[..]);
            prop_assert!(reports.next().is_none());
        }
        // A well-formed event is not the salvage path's business, but it reads it the same way.
        let s = hci::salvage_single_legacy(&buf[..n]).unwrap();
        prop_assert_eq!((s.addr, s.data), (addr, &data[..]));
    }

    #[test]
    fn arbitrary_hci_bytes_never_panic(bytes in hci_bytes()) {
        let tail = bytes.get(1..).unwrap_or(&[]);
        for parsed in [hci::parse_h4(&bytes), hci::parse_event(&bytes), hci::parse_event(tail)] {
            let Ok(reports) = parsed else { continue };
            let announced = reports.remaining();
            let mut seen = 0;
            for item in reports {
                seen += 1;
                prop_assert!(seen <= announced);
                match item {
                    Ok(r) => {
                        prop_assert!(within(r.data, &bytes));
                        let _ = (r.random_subtype(), r.legacy_event_name());
                        frame::frames(r.data).count();
                    }
                    Err(e) => prop_assert!(
                        matches!(e, hci::HciError::TruncatedReport { .. }),
                        "{:?}",
                        e
                    ),
                }
            }
        }
        if let Some(r) = hci::salvage_single_legacy(&bytes) {
            prop_assert!(within(r.data, &bytes));
            prop_assert!(r.data.len() < bytes.len());
        }
    }
}

#[test]
fn legacy_report_encoder_refuses_what_a_length_byte_cannot_say() {
    let mut buf = [0u8; 300];
    // parameter length = 2 + 9 + data + 1 must fit one byte: 243 bytes of data is the most.
    assert!(hci::encode_legacy_report(&mut buf, 0, 0, &[0; 6], &[0; 243], -1).is_some());
    assert!(hci::encode_legacy_report(&mut buf, 0, 0, &[0; 6], &[0; 244], -1).is_none());
    assert!(hci::encode_legacy_report(&mut buf[..20], 0, 0, &[0; 6], &[0; 10], -1).is_none());
}

// ---------------------------------------------------------------------------------------------
// btsnoop
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes: the reader ends, each record costs at least its 24-byte header, numbers rise,
    /// and event records go through the HCI parser.
    #[test]
    fn arbitrary_btsnoop_bytes_never_panic(
        bytes in prop_oneof![1 => vec(any::<u8>(), 0..64), 6 => btsnoop_like()],
    ) {
        let Ok(reader) = BtsnoopReader::new(Cursor::new(&bytes)) else {
            return Ok(());
        };
        let max_items = (bytes.len() - 16) / 24 + 1;
        let mut items = 0;
        let mut last = 0;
        for item in reader {
            items += 1;
            prop_assert!(items <= max_items);
            match item {
                Ok(r) => {
                    prop_assert!(r.number > last);
                    last = r.number;
                    prop_assert!(r.packet.bytes.len() <= bytes.len());
                    if r.packet.kind == PacketKind::Event
                        && let Ok(reports) = hci::parse_event(&r.packet.bytes)
                    {
                        reports.flatten().for_each(|rep| {
                            frame::frames(rep.data).count();
                        });
                    }
                    let _ = hci::parse_h4(&r.h4_bytes()).map(Iterator::count);
                }
                Err(BtsnoopError::EmptyRecord { number, .. }) => {
                    prop_assert!(number > last);
                    last = number;
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }

    /// A well-formed H4 file gives back every record's bytes, indicator split off.
    #[test]
    fn well_formed_h4_files_read_back(
        packets in vec((1u8..=5, vec(any::<u8>(), 0..40), any::<bool>()), 0..8),
    ) {
        let mut file = b"btsnoop\0".to_vec();
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&1002u32.to_be_bytes());
        for (indicator, body, received) in &packets {
            let len = (1 + body.len()) as u32;
            file.extend_from_slice(&len.to_be_bytes());
            file.extend_from_slice(&len.to_be_bytes());
            file.extend_from_slice(&u32::from(*received).to_be_bytes());
            file.extend_from_slice(&0u32.to_be_bytes());
            file.extend_from_slice(&dwell_shared::btsnoop::EPOCH_DELTA_US.to_be_bytes());
            file.push(*indicator);
            file.extend_from_slice(body);
        }
        let records = BtsnoopReader::new(Cursor::new(file))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        prop_assert_eq!(records.len(), packets.len());
        for (i, (r, (indicator, body, _))) in records.iter().zip(&packets).enumerate() {
            prop_assert_eq!(r.number, i as u64 + 1);
            prop_assert_eq!(r.packet.kind.h4_indicator(), *indicator);
            prop_assert_eq!(&r.packet.bytes, body);
            prop_assert_eq!(r.ts_us_unix, 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wi-Fi
// ---------------------------------------------------------------------------------------------

/// Parses one 802.11 frame and checks what it borrows; true for a probe request.
fn check_80211(frame: &[u8], fcs_at_end: bool) -> Result<bool, TestCaseError> {
    match ieee80211::parse(frame, fcs_at_end) {
        Ok(ieee80211::Frame::ProbeRequest(p)) => {
            prop_assert!(within(p.ies, frame));
            prop_assert!(p.ssid.is_empty() || within(p.ssid, p.ies));
            let fcs = if fcs_at_end { FCS_LEN } else { 0 };
            let ht = if p.fc.order() { 4 } else { 0 };
            prop_assert_eq!(p.ies.len() + MGMT_HEADER_LEN + ht + fcs, frame.len());
            let mut walk = p.elements();
            for e in walk.by_ref() {
                prop_assert!(within(e.data, p.ies));
            }
            let _ = (walk.truncated(), p.ie_ids().count(), p.ssid_lossy());
            Ok(true)
        }
        Ok(ieee80211::Frame::Other(_)) | Err(_) => Ok(false),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_radiotap_bytes_never_panic(
        bytes in prop_oneof![radiotap_like(), radiotap_probe_like()],
    ) {
        let mut radiotap_probe = false;
        if let Ok(rt) = radiotap::parse(&bytes) {
            prop_assert!(rt.len >= 8 && rt.len <= bytes.len());
            radiotap_probe = check_80211(&bytes[rt.len..], rt.fcs_at_end)?;
        }
        prop_assert_eq!(pcap::decode_packet(true, 0, &bytes).is_some(), radiotap_probe);
    }

    #[test]
    fn arbitrary_80211_bytes_never_panic(bytes in ieee80211_like()) {
        let plain = check_80211(&bytes, false)?;
        check_80211(&bytes, true)?;
        let r = pcap::decode_packet(false, 7, &bytes);
        prop_assert_eq!(r.is_some(), plain);
        if let Some(r) = r {
            prop_assert_eq!((r.ts_ms, r.rssi, r.freq_mhz), (7, None, None));
        }
        let _ = pcap::decode_packet(true, 0, &bytes);
    }
}

/// Classic pcap files (either byte order) of radiotap-shaped packets whose record lengths may lie,
/// and pcapng magic followed by junk.
fn pcap_like() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec![0xa1b2_c3d4u32, 0xd4c3_b2a1, 0x0a0d_0d0a]),
        prop_oneof![3 => Just(127u32), 1 => Just(105u32), 1 => any::<u32>()],
        vec(
            (
                prop_oneof![radiotap_probe_like(), radiotap_like()],
                -2i64..=2,
            ),
            0..4,
        ),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(magic, linktype, packets, tail)| {
            let mut v = magic.to_be_bytes().to_vec();
            if magic != 0x0a0d_0d0a {
                let big = magic == 0xa1b2_c3d4;
                let w32 = |v: &mut Vec<u8>, x: u32| {
                    v.extend_from_slice(&if big {
                        x.to_be_bytes()
                    } else {
                        x.to_le_bytes()
                    });
                };
                // version 2.4, thiszone, sigfigs, snaplen, linktype
                w32(&mut v, if big { 0x0002_0004 } else { 0x0004_0002 });
                w32(&mut v, 0);
                w32(&mut v, 0);
                w32(&mut v, 65_535);
                w32(&mut v, linktype);
                for (p, lie) in packets {
                    let incl = (p.len() as i64 + lie).max(0) as u32;
                    w32(&mut v, 1_700_000_000);
                    w32(&mut v, 0);
                    w32(&mut v, incl);
                    w32(&mut v, incl);
                    v.extend(p);
                }
            }
            v.extend(tail);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The capture reader takes any bytes; every packet it reads is counted exactly once.
    #[test]
    fn arbitrary_pcap_bytes_never_panic(bytes in pcap_like()) {
        let Ok(mut reader) = pcap::ProbeReader::new(Cursor::new(&bytes)) else {
            return Ok(());
        };
        let mut probes = 0;
        for item in reader.by_ref() {
            if item.is_ok() {
                probes += 1;
            }
            prop_assert!(probes <= bytes.len());
        }
        let s = reader.stats();
        prop_assert_eq!(s.probe_requests, probes as u64);
        prop_assert_eq!(s.frames, s.probe_requests + s.other + s.malformed + s.unsupported_linktype);
    }
}

// ---------------------------------------------------------------------------------------------
// Eddystone-EID
// ---------------------------------------------------------------------------------------------

proptest! {
    // Each case runs a few thousand AES blocks; unoptimised AES is slow.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn eid_table_resolves_every_key_anywhere_in_its_window(
        keys in vec((any::<IdentityKey>(), 0u8..=15), 1..6),
        from in any::<u32>(),
        span in 0u32..2_000,
        picks in vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..8),
    ) {
        // Distinct keys collide on a 64-bit EID with probability ~n²/2⁶⁵: never, in practice.
        let mut distinct: Vec<_> = keys.iter().map(|(k, _)| *k).collect();
        distinct.sort();
        distinct.dedup();
        prop_assume!(distinct.len() == keys.len());
        // Few enough windows for the smallest exponent: at most ~64 per key.
        let min_k = keys.iter().map(|(_, k)| *k).min().unwrap();
        let to = from.saturating_add(span.min(64 << min_k));
        let table = EidTable::build(&keys, from, to);
        prop_assert!(!table.is_empty());
        for (key_pick, t_pick) in picks {
            let i = key_pick.index(keys.len());
            let (key, k) = &keys[i];
            let t = from + t_pick.index((to - from) as usize + 1) as u32;
            let eid = eid::compute(key, *k, t);
            prop_assert_eq!(
                table.resolve(&eid),
                Some(Resolved { key_index: i, window_start: eid::window_start(*k, t) })
            );
            prop_assert_eq!(eid::find_key(&keys, &eid, t, 0), Some(i));
        }
    }

    #[test]
    fn eid_is_constant_within_a_window(key in any::<IdentityKey>(), k in 0u8..=15, t in any::<u32>()) {
        let start = eid::window_start(k, t);
        prop_assert!(start <= t && u64::from(t - start) < 1u64 << k);
        let end = start.saturating_add((1u32 << k) - 1);
        prop_assert_eq!(eid::compute(&key, k, t), eid::compute(&key, k, start));
        prop_assert_eq!(eid::compute(&key, k, t), eid::compute(&key, k, end));
    }
}

//! The capture readers against real captures and other decoders' readings of them.
//!
//! - tcpdump's radiotap test captures, checked frame by frame against tcpdump's own expected
//!   output (`.out`, from the-tcpdump-group/tcpdump tests/): frequency, dBm signal, TSFT, and
//!   every probe request with its SSID.
//! - A real Android btsnoop HCI log, checked against the counts tshark 4.0 reports for it.

use dwell_shared::btsnoop::{BtsnoopReader, Datalink, Direction, PacketKind, Record};
use dwell_shared::wifi::pcap::{CaptureStats, ProbeReader};
use dwell_shared::wifi::radiotap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/captures/"
    ))
    .join(name)
}

/// What tcpdump printed for one frame (the summary line of a `.out` file).
#[derive(Debug, Default)]
struct TcpdumpFrame {
    number: usize,
    freq_mhz: Option<u16>,
    signal_dbm: Option<i8>,
    tsft_us: Option<u64>,
    /// `Some(ssid)` when tcpdump decoded a probe request.
    probe_ssid: Option<String>,
}

/// Reads the summary lines (`    N  date time …`) of a tcpdump `.out` file; continuation lines of
/// verbose decodes start with other tokens and are skipped.
fn tcpdump_frames(out: &str) -> Vec<TcpdumpFrame> {
    let mut frames = Vec::new();
    for line in out.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let (Some(n), Some(date)) = (toks.first(), toks.get(1)) else {
            continue;
        };
        let Ok(number) = n.parse::<usize>() else {
            continue;
        };
        if date.len() != 10 || date.as_bytes()[4] != b'-' {
            continue;
        }
        let mut f = TcpdumpFrame {
            number,
            ..TcpdumpFrame::default()
        };
        for w in toks.windows(2) {
            match w {
                [v, "MHz"] if f.freq_mhz.is_none() => f.freq_mhz = v.parse().ok(),
                [v, "signal"] if f.signal_dbm.is_none() => {
                    f.signal_dbm = v.strip_suffix("dBm").and_then(|s| s.parse().ok());
                }
                [v, "tsft"] if f.tsft_us.is_none() => {
                    f.tsft_us = v.strip_suffix("us").and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        if let Some(at) = line.find("Probe Request (") {
            let rest = &line[at + "Probe Request (".len()..];
            f.probe_ssid = rest.find(')').map(|end| rest[..end].to_owned());
        }
        frames.push(f);
    }
    frames
}

fn check_against_tcpdump(stem: &str) {
    let out = std::fs::read_to_string(fixture(&format!("{stem}.out"))).unwrap();
    let expected = tcpdump_frames(&out);
    assert!(!expected.is_empty(), "{stem}.out has no frame lines");

    // Every frame's radiotap header, read through pcap-file directly.
    let file = std::fs::File::open(fixture(&format!("{stem}.pcap"))).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut n = 0;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        let want = &expected[n];
        n += 1;
        assert_eq!(want.number, n, "{stem}: .out frame numbering");
        // Every frame in these captures has both; a None here means the .out parse broke.
        assert!(
            want.freq_mhz.is_some() && want.signal_dbm.is_some(),
            "{stem}: {want:?}"
        );
        let rt = radiotap::parse(&packet.data).unwrap();
        assert_eq!(rt.channel_freq_mhz, want.freq_mhz, "{stem} frame {n}: MHz");
        assert_eq!(
            rt.antenna_signal_dbm, want.signal_dbm,
            "{stem} frame {n}: dBm signal"
        );
        assert_eq!(rt.tsft, want.tsft_us, "{stem} frame {n}: tsft");
    }
    assert_eq!(n, expected.len(), "{stem}: frame count");

    // The probe requests, through the reader the edge uses.
    let mut probes = ProbeReader::open(fixture(&format!("{stem}.pcap"))).unwrap();
    let got: Vec<_> = probes.by_ref().collect::<Result<_, _>>().unwrap();
    let want: Vec<_> = expected.iter().filter(|f| f.probe_ssid.is_some()).collect();
    assert_eq!(got.len(), want.len(), "{stem}: probe requests");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            Some(&g.ssid),
            w.probe_ssid.as_ref(),
            "{stem} frame {}",
            w.number
        );
        assert_eq!(g.rssi, w.signal_dbm, "{stem} frame {}", w.number);
        assert_eq!(g.freq_mhz, w.freq_mhz, "{stem} frame {}", w.number);
    }
    let stats = probes.stats();
    assert_eq!(
        stats,
        CaptureStats {
            frames: expected.len() as u64,
            probe_requests: want.len() as u64,
            other: (expected.len() - want.len()) as u64,
            malformed: 0,
            unsupported_linktype: 0,
        },
        "{stem}: stats"
    );
}

#[test]
fn tcpdump_htc_matches_tcpdump() {
    // Data frame with +HTC; radiotap with HE (bit 23) and an Atheros vendor namespace.
    check_against_tcpdump("tcpdump_ieee802.11_htc");
}

#[test]
fn tcpdump_rx_stbc_matches_tcpdump() {
    // Three data frames with MCS (bit 19) fields.
    check_against_tcpdump("tcpdump_ieee802.11_rx-stbc");
}

#[test]
fn tcpdump_meshid_matches_tcpdump() {
    // Three bitmaps with namespace resets; frame 2 is a wildcard probe request.
    check_against_tcpdump("tcpdump_ieee802.11_meshid");
    let (probes, _) =
        dwell_shared::wifi::pcap::read_probes(fixture("tcpdump_ieee802.11_meshid.pcap")).unwrap();
    assert_eq!(probes.len(), 1);
    // Values from tshark 4.0 (`wlan.sa`, `wlan.seq`, `wlan.tag.number`) for the same frame.
    let p = &probes[0];
    assert_eq!(p.sa, [0xb0, 0xfc, 0x36, 0x2f, 0x07, 0x44]);
    assert_eq!(p.seq, 116);
    assert!(!p.randomized);
    assert_eq!(p.ie_ids, [0, 1, 45, 127, 191, 221, 221, 114]);
    assert_eq!(p.ts_ms, 1_625_401_238_357); // 2021-07-04 12:20:38.357687 UTC
}

fn horizon74() -> Vec<Record> {
    let reader = BtsnoopReader::open(fixture("horizon74_btsnoop_hci.log")).unwrap();
    assert_eq!(reader.datalink(), Datalink::H4);
    reader.collect::<Result<_, _>>().unwrap()
}

#[test]
fn android_btsnoop_counts_match_tshark() {
    let recs = horizon74();
    // tshark -r horizon74_btsnoop_hci.log | wc -l
    assert_eq!(recs.len(), 2572);
    assert!(
        recs.iter()
            .enumerate()
            .all(|(i, r)| r.number == i as u64 + 1)
    );

    // tshark -Y 'bthci_evt.le_meta_subevent == 0x02' | wc -l
    let adv_reports = recs
        .iter()
        .filter(|r| r.packet.kind == PacketKind::Event)
        .filter(|r| matches!(r.packet.bytes[..], [0x3e, _, 0x02, ..]))
        .count();
    assert_eq!(adv_reports, 412);

    // tshark -T fields -e hci_h4.type -e hci_h4.direction | sort | uniq -c
    let count = |kind, dir| {
        recs.iter()
            .filter(|r| r.packet.kind == kind && r.direction == dir)
            .count()
    };
    assert_eq!(count(PacketKind::Command, Direction::Sent), 95);
    assert_eq!(count(PacketKind::Acl, Direction::Sent), 306);
    assert_eq!(count(PacketKind::Acl, Direction::Received), 1353);
    assert_eq!(count(PacketKind::Event, Direction::Received), 818);
}

#[test]
fn android_btsnoop_timestamps_are_monotone_unix_ms() {
    let recs = horizon74();
    let first = &recs[0];
    println!(
        "first record: ts_ms {} ts_us_unix {} ({:?} {:02x?})",
        first.ts_ms, first.ts_us_unix, first.packet.kind, first.packet.bytes
    );
    // tshark frame.time_epoch of frame 1: 1612150079.092423000 (2021-02-01).
    assert_eq!(first.ts_us_unix, 1_612_150_079_092_423);
    // 2015-01-01 ..= 2035-01-01.
    let plausible = 1_420_070_400_000..=2_051_222_400_000;
    for w in recs.windows(2) {
        assert!(
            w[0].ts_us_unix <= w[1].ts_us_unix,
            "records {} → {}",
            w[0].number,
            w[1].number
        );
    }
    assert!(recs.iter().all(|r| plausible.contains(&r.ts_ms)));
    assert!(
        recs.iter()
            .all(|r| r.ts_ms == r.ts_us_unix.div_euclid(1000))
    );
}

#[test]
fn android_btsnoop_first_advertising_report_matches_tshark() {
    // tshark: frame 133, event type 0x00, public address a4:c1:38:bf:6f:ab, 31 bytes of data,
    // RSSI -49, time 1612150079.789053.
    let recs = horizon74();
    let r = recs.iter().find(|r| r.number == 133).unwrap();
    assert_eq!(r.ts_us_unix, 1_612_150_079_789_053);
    let b = &r.packet.bytes;
    assert_eq!(r.h4_bytes()[..4], [0x04, 0x3e, b[1], 0x02]);
    assert_eq!(usize::from(b[1]), b.len() - 2, "event parameter length");
    assert_eq!(&b[3..6], [0x01, 0x00, 0x00], "one report, ADV_IND, public");
    let mut addr = [0u8; 6];
    addr.copy_from_slice(&b[6..12]);
    addr.reverse(); // little-endian on the wire
    assert_eq!(addr, [0xa4, 0xc1, 0x38, 0xbf, 0x6f, 0xab]);
    assert_eq!(b[12], 31);
    assert_eq!(b[13 + 31] as i8, -49);
}

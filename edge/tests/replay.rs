//! `dwell-edge replay` on real captures and recorded sightings: every record is accounted for
//! (read, or counted as bad with a reason), and the output is the wire events the gateway would
//! publish, numbered from 1.

use dwell_edge::config::Config;
use dwell_edge::replay::{self, InputKind};
use dwell_edge::source::capture::{BtsnoopSource, PcapSource};
use dwell_edge::source::jsonl::JsonlSource;
use dwell_shared::wire::{Event, EventKind};
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/captures");

fn events(buf: &[u8]) -> Vec<Event> {
    String::from_utf8(buf.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is a wire event"))
        .collect()
}

fn assert_numbered(ev: &[Event]) {
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
}

#[test]
fn btsnoop_capture_replays_without_loss() {
    let config = Config::shipped_default();
    let path = format!("{FIXTURES}/horizon74_btsnoop_hci.log");
    assert_eq!(
        replay::sniff(&std::fs::read(&path).unwrap()[..8]),
        InputKind::Btsnoop
    );
    let src = BtsnoopSource::open(Path::new(&path), &config.gateway.id).unwrap();
    let mut out = Vec::new();
    let s = replay::run(&config, src, &mut out, |_| {}).unwrap();
    assert_eq!((s.records, s.bad_records), (412, 0));
    assert_eq!(s.pipeline.observations, 412);
    let ev = events(&out);
    assert_eq!(ev.len() as u64, s.events);
    assert_numbered(&ev);
    // 36 devices advertise within a few metres of the phone that recorded this: some become visits.
    assert!(
        ev.iter()
            .any(|e| matches!(e.kind, EventKind::VisitStart { .. }))
    );
    assert!(
        ev.iter()
            .all(|e| !serde_json::to_string(e).unwrap().contains("a4:c1:38")),
        "no raw address of the capture leaves the pipeline"
    );
}

#[test]
fn tcpdump_pcaps_replay_without_loss() {
    let config = Config::shipped_default();
    for name in ["htc", "meshid", "rx-stbc"] {
        let path = format!("{FIXTURES}/tcpdump_ieee802.11_{name}.pcap");
        assert_eq!(
            replay::sniff(&std::fs::read(&path).unwrap()[..8]),
            InputKind::Pcap
        );
        let mut src = PcapSource::open(Path::new(&path), &config.gateway.id).unwrap();
        let mut out = Vec::new();
        let s = replay::run(&config, &mut src, &mut out, |_| {}).unwrap();
        let stats = src.stats();
        assert_eq!(stats.malformed, 0, "{name}");
        assert_eq!(s.bad_records, 0, "{name}");
        // Every probe request with a signal level became an observation.
        assert_eq!(
            s.records,
            stats.probe_requests - src.without_signal,
            "{name}"
        );
        assert_numbered(&events(&out));
    }
}

#[test]
fn jsonl_bad_lines_are_counted_and_described() {
    let input = concat!(
        r#"{"ts_ms":1767258000000,"receiver":"gw-1","wifi_sa":"02:00:00:00:00:01","rssi":-50}"#,
        "\n{oops\n",
        r#"{"ts_ms":1767258001000,"receiver":"gw-1","addr":"4a:00:00:00:00:02","rssi":-55,"ad":"020106"}"#,
        "\n"
    );
    let mut out = Vec::new();
    let s = replay::run(
        &Config::shipped_default(),
        JsonlSource::new(input.as_bytes()),
        &mut out,
        |_| {},
    )
    .unwrap();
    assert_eq!((s.records, s.bad_records), (3, 1));
    assert!(
        s.first_errors[0].starts_with("jsonl record 2:"),
        "{:?}",
        s.first_errors
    );
    assert_eq!(s.pipeline.observations, 2);
}

//! Decoding speed on real advertisement mixes.
//!
//! Inputs: every LE advertising report of the real Android capture
//! (tests/fixtures/captures/horizon74_btsnoop_hci.log: 412 events from 36 devices — names, Apple
//! continuity, Microsoft CDP, sensors) plus every advertising payload of the upstream decoder
//! vectors (tests/fixtures/ble/ble_vectors.jsonl). Measured:
//! - `frames`: beacon-frame decoding (`frame::frames`), the gateway's hot path — allocation-free;
//! - `hci+frames`: parse the HCI event, then decode its frames — what the raw-socket backend does;
//! - `ad_fields`: the owned generic AD fields (`AdFields::parse`), what `decode` prints.
//!
//! Run: `cargo bench -p dwell-shared --bench decode`. Throughput is in advertisements per second on
//! one core (criterion runs single-threaded).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dwell_shared::ad::AdFields;
use dwell_shared::btsnoop::{BtsnoopReader, PacketKind};
use dwell_shared::{frame, hci, hex};
use std::hint::black_box;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

/// The HCI events (from the event code on) of every advertising report in the capture.
fn capture_events() -> Vec<Vec<u8>> {
    let path = format!("{FIXTURES}/captures/horizon74_btsnoop_hci.log");
    BtsnoopReader::open(path)
        .expect("capture present")
        .filter_map(Result::ok)
        .filter(|r| r.packet.kind == PacketKind::Event)
        .map(|r| r.packet.bytes)
        .filter(|b| b.len() > 2 && b[0] == hci::EVENT_LE_META && b[2] == hci::SUBEVENT_ADV_REPORT)
        .collect()
}

/// Advertising payloads: the capture's reports plus the vectors' raw advertising data.
fn payload_mix(events: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = events
        .iter()
        .flat_map(|e| {
            hci::parse_event(e)
                .into_iter()
                .flatten()
                .flatten()
                .map(|r| r.data.to_vec())
        })
        .collect();
    let vectors = std::fs::read_to_string(format!("{FIXTURES}/ble/ble_vectors.jsonl")).unwrap();
    for line in vectors.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["raw_kind"] == "adv_data" {
            out.push(hex::decode(v["raw_hex"].as_str().unwrap()).unwrap());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let events = capture_events();
    let payloads = payload_mix(&events);
    let mut g = c.benchmark_group("decode");

    g.throughput(Throughput::Elements(payloads.len() as u64));
    g.bench_function("frames", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for p in &payloads {
                n += frame::frames(black_box(p)).count();
            }
            n
        })
    });
    g.bench_function("ad_fields", |b| {
        b.iter(|| {
            payloads
                .iter()
                .map(|p| AdFields::parse(black_box(p)).manufacturer_data.len())
                .sum::<usize>()
        })
    });

    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("hci+frames", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                for r in hci::parse_event(black_box(e))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    n += frame::frames(r.data).count();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The node end to end on the host: scripted UART bytes (real captured advertisements among
//! them), scripted pins, a scripted clock, and the reports decoded with the gateway's decoder.

mod support;

use dwell_node::beacon::{Phase, Schedule, ZoneBeacon};
use dwell_node::controller::NoResetPin;
use dwell_node::node_report::{Identity, Report};
use dwell_node::{Config, Node};
use dwell_shared::Uuid;
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};
use support::*;

const SALT: [u8; 16] = *b"node-test-salt!!";

type TestNode<const N: usize> = Node<ScriptedUart, NoResetPin, FakeBeam, FakeBeam, NoopDelay, N>;

fn node<const N: usize>(cfg: Config, steps: Vec<Step>) -> TestNode<N> {
    Node::new(
        cfg,
        ScriptedUart::new(steps),
        None,
        FakeBeam::default(),
        FakeBeam::default(),
        NoopDelay::new(),
    )
}

/// Polls every 10 ms from `from` to `to` (exclusive); returns the reports written.
fn run<const N: usize>(n: &mut TestNode<N>, from: u64, to: u64) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let mut buf = vec![0u8; TestNode::<N>::report_capacity()];
    let mut t = from;
    while t < to {
        if let Some(len) = n.poll(t, &mut buf).unwrap() {
            out.push(buf[..len].to_vec());
        }
        t += 10;
    }
    out
}

const IBEACON: &str = "0201061aff4c0002154142434445464748494041424344454600010002f8";
const EID: &str = "0201060303aafe0d16aafe30e34549445f74657374";

fn hex(s: &str) -> Vec<u8> {
    dwell_shared::hex::decode(s).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_stream_of_advertisements_becomes_one_report() {
    let capture = capture_adv_events(20);
    let beacon_addr = [0xc0, 0x11, 0x22, 0x33, 0x44, 0x55];
    let phone_addr = [0x5a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f];
    let tag_addr = [0x00, 0x1b, 0xdc, 0x01, 0x02, 0x03];
    let mut steps = bring_up();
    steps.extend(capture.iter().cloned().map(Step::Read));
    for rssi in [-60, -70, -80] {
        steps.push(Step::Read(adv_event(beacon_addr, 1, &hex(IBEACON), rssi)));
    }
    steps.push(Step::Read(adv_event(phone_addr, 1, &hex(EID), -65)));
    steps.push(Step::Read(adv_event(tag_addr, 0, &[0x02, 0x01, 0x06], -90)));
    steps.push(Step::Read(adv_event(tag_addr, 0, &[0x02, 0x01, 0x06], -91)));

    let mut n: TestNode<64> = node(Config::new(7, 42, 3, SALT), steps);
    assert!(run(&mut n, 1_000, 2_000).is_empty());
    assert!(n.is_up());
    let reports = run(&mut n, 59_990, 60_010);
    assert_eq!(reports.len(), 1);
    let (uart, ..) = n.release();
    uart.done();

    let bytes = &reports[0];
    let r = Report::decode(bytes).unwrap();
    assert_eq!((r.header.node, r.header.store, r.header.zone), (7, 42, 3));
    assert_eq!((r.header.window_start_s, r.header.window_len_s), (0, 60));
    assert_eq!(r.header.dropped, 0);

    // Every advertisement is counted once, under some identity.
    let capture_reports: usize = capture
        .iter()
        .map(|e| dwell_shared::hci::parse_h4(e).unwrap().count())
        .sum();
    let total: u32 = r.sightings().map(|s| u32::from(s.count)).sum();
    assert_eq!(total as usize, capture_reports + 6);

    let ib = r
        .sightings()
        .find(|s| {
            matches!(
                s.identity,
                Identity::IBeacon {
                    major: 1,
                    minor: 2,
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(
        (ib.count, ib.rssi_min, ib.rssi_max, ib.rssi_mean),
        (3, -80, -60, -70)
    );
    let eid = r
        .sightings()
        .find(|s| s.identity == Identity::Eid(*b"EID_test"))
        .unwrap();
    assert_eq!(eid.count, 1);
    let tag = r
        .sightings()
        .filter(|s| matches!(s.identity, Identity::AddrHash(_)) && s.count == 2)
        .find(|s| s.rssi_min == -91)
        .unwrap();
    assert_eq!((tag.rssi_max, tag.rssi_mean), (-90, -91));

    // No raw address, in either byte order, appears anywhere in the report.
    let mut addrs: Vec<[u8; 6]> = vec![beacon_addr, phone_addr, tag_addr];
    for e in &capture {
        for rep in dwell_shared::hci::parse_h4(e).unwrap() {
            addrs.push(rep.unwrap().addr);
        }
    }
    for a in addrs {
        let mut rev = a;
        rev.reverse();
        assert!(
            !contains(bytes, &a) && !contains(bytes, &rev),
            "{a:02x?} leaked"
        );
    }
}

#[test]
fn garbage_and_truncated_packets_are_survived() {
    let good = adv_event([0xc0, 1, 2, 3, 4, 5], 1, &hex(IBEACON), -50);
    let mut steps = bring_up();
    steps.push(Step::Read(vec![0xff, 0x00, 0x99, 0x42])); // noise
    steps.push(Step::Read(good.clone()));
    steps.push(Step::Read(vec![0x13, 0x37])); // more noise
    steps.push(Step::Read(good.clone()));
    // An LE Meta event whose length is right but whose report is cut short.
    steps.push(Step::Read(vec![
        0x04, 0x3e, 0x05, 0x02, 0x01, 0x00, 0x00, 0x01,
    ]));
    // A packet truncated on the wire: the header promises 40 bytes, 6 come, then the line stalls.
    steps.push(Step::Read(good[..9].to_vec()));
    // Silent for 80 ms of 10 ms polls, longer than the 50 ms stall limit.
    steps.extend(std::iter::repeat_n(Step::Gap, 8));
    steps.push(Step::Read(good.clone()));

    let mut n: TestNode<8> = node(Config::new(1, 1, 1, SALT), steps);
    run(&mut n, 1_000, 1_200);
    let stats = n.controller().reader().stats();
    assert_eq!(stats.garbage_bytes, 6);
    assert_eq!(stats.abandoned, 1);
    assert_eq!(n.stats().malformed, 1);
    assert_eq!(n.stats().advertisements, 3);
    assert_eq!(n.table().entries()[0].count, 3);
    n.release().0.done();
}

#[test]
fn a_controller_reset_mid_stream_brings_it_up_again() {
    let ev = adv_event([0xc0, 9, 9, 9, 9, 9], 1, &hex(EID), -70);
    let mut steps = bring_up();
    steps.push(Step::Read(ev.clone()));
    steps.push(Step::Read(vec![0x04, 0x10, 0x01, 0x00])); // Hardware Error
    steps.extend(bring_up());
    steps.push(Step::Read(ev.clone()));
    steps.push(Step::Read(ev.clone()));

    let reset = PinMock::new(&[
        PinTx::set(State::Low),
        PinTx::set(State::High),
        PinTx::set(State::Low),
        PinTx::set(State::High),
    ]);
    let mut n: Node<_, _, _, _, _, 8> = Node::new(
        Config::new(1, 1, 1, SALT),
        ScriptedUart::new(steps),
        Some(reset),
        FakeBeam::default(),
        FakeBeam::default(),
        NoopDelay::new(),
    );
    let mut buf = [0u8; 256];
    for t in (1_000..1_100).step_by(10) {
        n.poll(t, &mut buf).unwrap();
    }
    assert_eq!(n.stats().controller_resets, 1);
    assert_eq!(n.controller().stats().bring_ups, 2);
    assert_eq!(n.stats().advertisements, 3);
    assert!(n.is_up());
    let (uart, reset, ..) = n.release();
    uart.done();
    reset.unwrap().done();
}

#[test]
fn a_failed_bring_up_is_retried_after_the_backoff() {
    // The controller refuses HCI_Reset once; the next attempt, 5 s later, succeeds.
    let mut steps = vec![
        Step::Write(RESET.to_vec()),
        Step::Read(cc_status(0x0c03, 0x03)),
    ];
    steps.extend(bring_up());
    let mut n: TestNode<8> = node(Config::new(1, 1, 1, SALT), steps);
    let mut buf = [0u8; 256];
    assert!(n.poll(1_000, &mut buf).is_err());
    for t in (1_010..6_000).step_by(10) {
        assert_eq!(n.poll(t, &mut buf), Ok(None));
    }
    assert!(!n.is_up());
    assert_eq!(n.poll(6_000, &mut buf), Ok(None));
    assert!(n.is_up());
    assert_eq!(n.stats().controller_errors, 1);
    n.release().0.done();
}

#[test]
fn the_zone_beacon_alternates_with_scanning_on_schedule() {
    let uuid = Uuid::parse_str("41424344-4546-4748-4940-414243444546").unwrap();
    let mut cfg = Config::new(1, 1, 2, SALT);
    cfg.retailer_uuid = Some(uuid);
    cfg.measured_power = -8;
    cfg.schedule = Schedule::new(4_000, 1_000).unwrap();
    let beacon = cfg.beacon().unwrap();
    assert_eq!(
        beacon,
        ZoneBeacon {
            uuid,
            store: 1,
            zone: 2,
            measured_power: -8,
            interval: 160
        }
    );
    let mut steps = bring_up();
    steps.extend(exchange(beacon.set_parameters().as_bytes()));
    steps.extend(exchange(beacon.set_data().as_bytes()));
    for _ in 0..2 {
        steps.extend(exchange(&SCAN_OFF));
        steps.extend(exchange(&ADV_ON));
        steps.extend(exchange(&ADV_OFF));
        steps.extend(exchange(&SCAN_ON));
    }
    let mut n: TestNode<8> = node(cfg, steps);
    let mut scan_ms = 0;
    let mut buf = [0u8; 256];
    for t in (1_000..11_000).step_by(10) {
        n.poll(t, &mut buf).unwrap();
        if n.phase() == Phase::Scan {
            scan_ms += 10;
        }
    }
    // 10 s from the bring-up at 1 s: two full periods, 80% of it scanning.
    assert_eq!(scan_ms, 8_000);
    assert_eq!(n.phase(), Phase::Advertise);
    n.poll(11_000, &mut buf).unwrap();
    assert_eq!(n.phase(), Phase::Scan);
    n.release().0.done();
}

#[test]
fn door_crossings_read_through_the_pins_land_in_the_report() {
    // Every poll reads A then B once; script the levels per poll (10 ms apart from t = 0).
    let levels = |t: u64| ((100..400).contains(&t), (250..600).contains(&t));
    let polls: Vec<u64> = (0..60_000).step_by(10).chain([60_000]).collect();
    let tx = |beam: usize| -> Vec<PinTx> {
        polls
            .iter()
            .map(|&t| {
                let l = levels(t);
                let high = if beam == 0 { l.0 } else { l.1 };
                PinTx::get(if high { State::High } else { State::Low })
            })
            .collect()
    };
    let a = PinMock::new(&tx(0));
    let b = PinMock::new(&tx(1));
    let (mut a_done, mut b_done) = (a.clone(), b.clone());
    let mut cfg = Config::new(5, 6, 7, SALT);
    cfg.retry_ms = u32::MAX; // no controller in this test: one failed attempt, then none
    cfg.controller.command_timeout_ms = 0;
    let mut n: Node<_, NoResetPin, _, _, _, 4> = Node::new(
        cfg,
        ScriptedUart::new([Step::Write(RESET.to_vec())]),
        None,
        a,
        b,
        NoopDelay::new(),
    );
    let mut buf = [0u8; 256];
    let mut reports = vec![];
    for &t in &polls {
        if let Ok(Some(len)) = n.poll(t, &mut buf) {
            reports.push(buf[..len].to_vec());
        }
    }
    a_done.done();
    b_done.done();
    assert_eq!(reports.len(), 1);
    let r = Report::decode(&reports[0]).unwrap();
    assert_eq!((r.header.door_in, r.header.door_out), (1, 0));
    assert!(r.is_empty());
}

#[test]
fn a_full_table_drops_new_devices_and_says_so() {
    let mut steps = bring_up();
    for i in 0..5u8 {
        steps.push(Step::Read(adv_event([0xc0, 0, 0, 0, 0, i], 1, &[], -60)));
    }
    // The first device again: still updated although the table is full.
    steps.push(Step::Read(adv_event([0xc0, 0, 0, 0, 0, 0], 1, &[], -40)));
    let mut n: TestNode<3> = node(Config::new(1, 1, 1, SALT), steps);
    run(&mut n, 1_000, 1_100);
    assert_eq!(n.table().len(), 3);
    assert_eq!(n.table().dropped(), 2);
    let reports = run(&mut n, 60_000, 60_010);
    let r = Report::decode(&reports[0]).unwrap();
    assert_eq!(r.header.dropped, 2);
    assert_eq!(r.len(), 3);
    let first = r.sightings().next().unwrap();
    assert_eq!((first.count, first.rssi_max), (2, -40));
    // The next window starts empty.
    assert!(n.table().is_empty());
    n.release().0.done();
}

#[test]
fn a_report_buffer_too_small_for_every_sighting_counts_the_rest_as_dropped() {
    let mut steps = bring_up();
    for i in 0..4u8 {
        steps.push(Step::Read(adv_event([0xc0, 0, 0, 0, 1, i], 1, &[], -60)));
    }
    let mut n: TestNode<8> = node(Config::new(1, 1, 1, SALT), steps);
    let mut buf = [0u8; 256];
    for t in (1_000..1_100).step_by(10) {
        n.poll(t, &mut buf).unwrap();
    }
    // Header (22) + two address-hash sightings (14 each) + CRC (4).
    let mut small = [0u8; 22 + 2 * 14 + 4];
    let len = n.poll(60_000, &mut small).unwrap().unwrap();
    let r = Report::decode(&small[..len]).unwrap();
    assert_eq!((r.len(), r.header.dropped), (2, 2));
    assert_eq!(
        n.poll(120_000, &mut [0u8; 4]),
        Err(dwell_node::node::Error::ReportBuffer)
    );
}

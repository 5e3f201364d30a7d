//! The live radio sources without radios: on a host with no Bluetooth adapter, no BlueZ and no
//! monitor-mode Wi-Fi, opening them must fail with one line that names the cause and the fix;
//! the bytes they would send are checked exactly; the parsing they would do runs on recorded
//! bytes through the very functions the socket loops call; and the doctor's probes run.

use dwell_edge::config::SourceConfig;
use dwell_edge::source::btleplug::{self as bl, BtleplugSource};
use dwell_edge::source::capture::{BtsnoopSource, PcapSource};
use dwell_edge::source::hci_socket::{self, Incoming, StoreBeacon, bring_up_commands, decode_h4};
use dwell_edge::source::probe::{self, Status};
use dwell_edge::source::wifi_monitor::{self, MonitorStats};
use dwell_edge::source::{Observation, SourceError};
use dwell_shared::Uuid;
use dwell_shared::btsnoop::BtsnoopReader;
use dwell_shared::hci::ScanParams;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/captures");

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A fatal error on one line, naming one of `causes` and carrying a fix hint.
fn assert_one_line_cause_and_fix(e: &SourceError, causes: &[&str], fixes: &[&str]) {
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(e.is_fatal(), "{msg}");
    assert!(!msg.contains('\n'), "not one line: {msg:?}");
    assert!(
        causes.iter().any(|c| msg.contains(c)),
        "names no known cause: {msg}"
    );
    assert!(
        fixes.iter().any(|f| msg.contains(f)),
        "carries no fix: {msg}"
    );
}

// ---- raw HCI ----

/// An adapter index that this host does not have: `hci0` where there is none (this machine),
/// otherwise one past the last, so the test never takes a real adapter away from BlueZ.
fn absent_hci() -> u16 {
    (0..u16::MAX)
        .find(|i| !Path::new(&format!("/sys/class/bluetooth/hci{i}")).exists())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn hci_source_fails_with_the_cause_and_the_fix() {
    let dev = absent_hci();
    let e = hci_socket::HciSource::open(dev, "gw-1").await.unwrap_err();
    assert_one_line_cause_and_fix(
        &e,
        &[
            "no Bluetooth support (AF_BLUETOOTH)",
            &format!("no hci{dev}"),
            "needs CAP_NET_ADMIN",
            "owned by BlueZ",
            "rfkill",
        ],
        &[
            "modprobe bluetooth",
            "ls /sys/class/bluetooth",
            "setcap cap_net_admin+ep",
            "btmgmt",
            "rfkill unblock",
        ],
    );
    assert!(e.to_string().starts_with("hci: "), "{e}");
}

#[test]
fn every_mapped_hci_errno_reads_as_cause_and_fix() {
    for (errno, cause, fix) in [
        (
            libc_errno::EAFNOSUPPORT,
            "no Bluetooth support (AF_BLUETOOTH)",
            "modprobe",
        ),
        (libc_errno::ENODEV, "no hci0", "ls /sys/class/bluetooth"),
        (
            libc_errno::EPERM,
            "needs CAP_NET_ADMIN",
            "setcap cap_net_admin+ep /usr/bin/dwell-edge",
        ),
        (libc_errno::EACCES, "needs CAP_NET_ADMIN", "run as root"),
        (
            libc_errno::EBUSY,
            "hci0 is up and owned by BlueZ",
            "btmgmt -i hci0 power off",
        ),
    ] {
        let r = hci_socket::open_error_reason(0, &std::io::Error::from_raw_os_error(errno));
        assert!(
            r.contains(cause) && r.contains(fix) && !r.contains('\n'),
            "{errno}: {r}"
        );
    }
}

/// Linux errno values on the architectures Dwell ships for (x86_64, aarch64, armv7).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const ENODEV: i32 = 19;
    pub const EAFNOSUPPORT: i32 = 97;
}

#[test]
fn bring_up_commands_are_exact() {
    let got: Vec<u8> = bring_up_commands(&ScanParams::default())
        .iter()
        .flat_map(|c| c.as_bytes().to_vec())
        .collect();
    let want = hex("01 030c 00
         01 010c 08 ffffffffff1f0020
         01 0120 08 1f00000000000000
         01 0b20 07 00 6000 6000 00 00
         01 0c20 02 01 00");
    assert_eq!(got, want);
}

#[test]
fn store_beacon_commands_are_exact() {
    let beacon = StoreBeacon {
        uuid: Uuid::parse_str("41424344-4546-4748-4940-414243444546").unwrap(),
        store: 1,
        zone: 2,
        measured_power: -8,
        interval: StoreBeacon::DEFAULT_INTERVAL,
    };
    let [params, data, enable] = beacon.commands();
    // Non-connectable, 100 ms, public address, channels 37-39, no filter.
    assert_eq!(
        params.as_bytes(),
        hex("01 0620 0f a000 a000 03 00 00 000000000000 07 00")
    );
    // Length 30, flags + Apple iBeacon (UUID, major 1, minor 2, -8 dBm), zero-padded to 31.
    let mut want =
        hex("01 0820 20 1e 020106 1aff4c000215 41424344454647484940414243444546 0001 0002 f8");
    want.push(0);
    assert_eq!(data.as_bytes(), want);
    // Advertising on; scanning is not touched (no LE_Set_Scan_Enable among them).
    assert_eq!(enable.as_bytes(), hex("01 0a20 01 01"));
    assert!(
        beacon
            .commands()
            .iter()
            .all(|c| c.opcode() != dwell_shared::hci::opcode::LE_SET_SCAN_ENABLE)
    );
    // And what goes on air decodes back to the beacon.
    let payload = &data.as_bytes()[5..35];
    let frame = dwell_shared::frame::frames(payload).next().unwrap();
    assert_eq!(frame, beacon.frame());
}

/// The capture's packets, H4 form, through the socket loop's `decode_h4`, give exactly what
/// the btsnoop replay source gives.
#[test]
fn recorded_hci_packets_decode_through_the_socket_path() {
    let path = format!("{FIXTURES}/horizon74_btsnoop_hci.log");
    let receiver: Arc<str> = Arc::from("gw-1");
    let mut out = VecDeque::new();
    let (mut commands, mut reports) = (0, 0);
    for rec in BtsnoopReader::open(&path).unwrap() {
        let rec = rec.unwrap();
        match decode_h4(&rec.h4_bytes(), rec.ts_ms, &receiver, rec.number, &mut out) {
            Incoming::Command(_) => commands += 1,
            Incoming::Reports { .. } => reports += 1,
            Incoming::HardwareError(c) => panic!("hardware error 0x{c:02x} in a clean capture"),
            Incoming::Other => {}
        }
    }
    let live: Vec<Observation> = out.into_iter().map(Result::unwrap).collect();
    let replay: Vec<Observation> = BtsnoopSource::open(Path::new(&path), "gw-1")
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(live.len(), 412);
    assert_eq!(live, replay);
    assert!(reports > 0);
    // The capture holds the host's own bring-up: its Command Completes are recognised.
    assert!(commands > 0, "no command results recognised");
}

// ---- Wi-Fi monitor ----

#[cfg(target_os = "linux")]
#[test]
fn wifi_monitor_on_a_missing_interface_says_so() {
    let e = wifi_monitor::WifiMonitorSource::open("dwellnope0", "gw-1").unwrap_err();
    assert_one_line_cause_and_fix(&e, &["no network interface dwellnope0"], &["iw dev"]);
}

#[cfg(target_os = "linux")]
#[test]
fn wifi_monitor_on_loopback_says_it_is_not_monitor_mode() {
    let e = wifi_monitor::WifiMonitorSource::open("lo", "gw-1").unwrap_err();
    assert_one_line_cause_and_fix(
        &e,
        &["lo is not in monitor mode (link type 772, not 803)"],
        &["iw dev lo set type monitor"],
    );
    assert!(e.to_string().contains("airmon-ng start lo"), "{e}");
}

#[test]
fn missing_capture_permission_is_named() {
    let r = wifi_monitor::socket_error_reason("mon0", &std::io::Error::from_raw_os_error(1));
    assert!(
        r.contains("CAP_NET_RAW") && r.contains("setcap cap_net_raw+ep"),
        "{r}"
    );
}

/// The packets of a classic little-endian pcap file.
fn pcap_packets(bytes: &[u8]) -> Vec<(i64, &[u8])> {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(20), 127, "radiotap linktype");
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= bytes.len() {
        let ts_ms = i64::from(u32_at(at)) * 1000 + i64::from(u32_at(at + 4)) / 1000;
        let len = u32_at(at + 8) as usize;
        out.push((ts_ms, &bytes[at + 16..at + 16 + len]));
        at += 16 + len;
    }
    out
}

/// The capture's frames through the monitor loop's `decode_frame` give exactly what pcap replay
/// gives.
#[test]
fn recorded_wifi_frames_decode_through_the_socket_path() {
    for name in [
        "tcpdump_ieee802.11_meshid.pcap",
        "tcpdump_ieee802.11_htc.pcap",
        "tcpdump_ieee802.11_rx-stbc.pcap",
    ] {
        let path = format!("{FIXTURES}/{name}");
        let bytes = std::fs::read(&path).unwrap();
        let receiver: Arc<str> = Arc::from("gw-1");
        let mut stats = MonitorStats::default();
        let live: Vec<Observation> = pcap_packets(&bytes)
            .into_iter()
            .filter_map(|(ts, frame)| wifi_monitor::decode_frame(frame, ts, &receiver, &mut stats))
            .collect();
        let replay: Vec<Observation> = PcapSource::open(Path::new(&path), "gw-1")
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(live, replay, "{name}");
        assert_eq!(
            stats.frames,
            stats.other + stats.probe_requests,
            "{name}: every frame counted once"
        );
    }
}

// ---- btleplug ----

#[tokio::test]
async fn btleplug_source_fails_with_the_cause_and_the_fix() {
    let e = BtleplugSource::open(None, "gw-1").await.unwrap_err();
    assert_one_line_cause_and_fix(
        &e,
        &[
            bl::reason::NOT_BUILT,
            bl::reason::NO_SYSTEM_BUS,
            bl::reason::NO_BLUEZ,
            bl::reason::NO_ADAPTER,
            bl::reason::ACCESS_DENIED,
        ],
        &[
            "--features bluez",
            "systemctl start dbus",
            "systemctl start bluetooth",
            "bluetoothctl list",
            "bluetooth.conf",
        ],
    );
    if cfg!(not(feature = "bluez")) {
        assert!(e.to_string().contains(bl::reason::NOT_BUILT));
    }
}

// ---- doctor probes ----

#[test]
fn bluetooth_probes_run_and_every_problem_has_a_fix() {
    let sources = [SourceConfig::Hci {
        device: 0,
        receiver: None,
    }];
    let checks = probe::bluetooth(&sources);
    assert!(checks.len() >= 5, "{checks:#?}");
    assert_eq!(checks.last().unwrap().name, "BLE backend");
    for c in &checks {
        let line = c.to_string();
        eprintln!("{line}");
        assert!(!line.contains('\n'), "{line:?}");
        if c.status != Status::Ok {
            assert!(
                c.fix.as_ref().is_some_and(|f| !f.trim().is_empty()),
                "no fix: {line}"
            );
        }
    }
    if !Path::new("/sys/class/bluetooth").exists() {
        // This machine: no adapter, so the configured HCI backend cannot work.
        let adapters = checks
            .iter()
            .find(|c| c.name == "bluetooth adapters")
            .unwrap();
        assert_eq!(adapters.status, Status::Fail);
        assert_eq!(checks.last().unwrap().status, Status::Fail);
    }
}

#[test]
fn wifi_probes_run_and_say_what_to_fix() {
    let checks = probe::radios(&[SourceConfig::Wifi {
        interface: "lo".into(),
        receiver: None,
    }]);
    let lo = checks.iter().find(|c| c.name == "wifi lo").unwrap();
    assert_eq!(lo.status, Status::Fail);
    assert!(
        lo.fix.as_ref().unwrap().contains("set type monitor"),
        "{lo}"
    );
    assert!(checks.iter().any(|c| c.name == "CAP_NET_RAW"));
    assert!(
        checks
            .iter()
            .filter(|c| c.status != Status::Ok)
            .all(|c| c.fix.as_ref().is_some_and(|f| !f.is_empty()))
    );
}

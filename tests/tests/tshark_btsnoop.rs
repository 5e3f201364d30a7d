//! `dwell-edge decode --btsnoop` against Wireshark's dissector (tshark) on the same real capture.
//!
//! Every LE advertising report tshark finds in tests/fixtures/captures/horizon74_btsnoop_hci.log
//! must come out of Dwell with the same record number, time, event type, address type, address,
//! RSSI and data length, and the AD structures must agree: device name, company ids, 16-bit
//! service UUIDs (tshark lists list-UUIDs and service-data UUIDs under one field) and TX power.
//!
//! Needs `tshark` (Debian package `tshark`). Without it the test says SKIP; under CI (`CI` set) a
//! missing tshark is a failure, so the comparison cannot silently stop running.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/captures/horizon74_btsnoop_hci.log"
);

const FIELDS: [&str; 11] = [
    "frame.number",
    "frame.time_epoch",
    "bthci_evt.le_advts_event_type",
    "bthci_evt.le_peer_address_type",
    "bthci_evt.bd_addr",
    "bthci_evt.rssi",
    "bthci_evt.data_length",
    "btcommon.eir_ad.entry.device_name",
    "btcommon.eir_ad.entry.company_id",
    "btcommon.eir_ad.entry.uuid_16",
    "btcommon.eir_ad.entry.power_level",
];

fn tshark_rows() -> Option<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args([
        "-r",
        CAPTURE,
        "-Y",
        "bthci_evt.le_meta_subevent == 0x02",
        "-T",
        "fields",
    ])
    .args(["-E", "occurrence=a", "-E", "aggregator=|"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("tshark not runnable ({e}); install it: apt-get install tshark");
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run this test: {msg}"
            );
            eprintln!("SKIP tshark_btsnoop: {msg}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect(),
    )
}

fn hex_set(field: &str) -> BTreeSet<u32> {
    field
        .split('|')
        .filter(|s| !s.is_empty())
        .map(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
        .collect()
}

/// 16-bit UUIDs in canonical form (`0000xxxx-0000-1000-8000-00805f9b34fb`) → their short value.
fn short_uuid(u: &str) -> Option<u32> {
    u.strip_prefix("0000")
        .filter(|rest| rest.ends_with("-0000-1000-8000-00805f9b34fb"))
        .map(|rest| u32::from_str_radix(&rest[..4], 16).unwrap())
}

#[test]
fn every_advertising_report_agrees_with_tshark() {
    let Some(rows) = tshark_rows() else { return };
    let mut out = Vec::new();
    let summary =
        dwell_edge::decode::btsnoop_file(std::path::Path::new(CAPTURE), &mut out).unwrap();
    let ours: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 412, "tshark's count of advertising reports");
    assert_eq!(ours.len(), 412);
    assert_eq!((summary.decoded, summary.errors), (412, 0));

    for (row, v) in rows.iter().zip(&ours) {
        let ctx = format!("record {}: {v}", row[0]);
        assert_eq!(v["record"].to_string(), row[0], "{ctx}");
        let t: f64 = row[1].parse().unwrap();
        assert_eq!(
            v["ts_ms"].as_i64().unwrap(),
            (t * 1000.0).floor() as i64,
            "{ctx}"
        );
        assert_eq!(
            v["event_type"].as_u64().unwrap(),
            u64::from(hex_set(&row[2]).first().copied().unwrap()),
            "{ctx}"
        );
        assert_eq!(
            v["addr_type"].as_u64().unwrap(),
            u64::from(hex_set(&row[3]).first().copied().unwrap()),
            "{ctx}"
        );
        assert_eq!(v["addr"], row[4], "{ctx}");
        assert_eq!(v["rssi"].to_string(), row[5], "{ctx}");
        assert_eq!(
            (v["ad"].as_str().unwrap().len() / 2).to_string(),
            row[6],
            "{ctx}"
        );

        let names: Vec<&str> = row[7].split('|').filter(|s| !s.is_empty()).collect();
        match v["local_name"].as_str() {
            Some(n) => assert!(names.contains(&n), "{ctx}: tshark names {names:?}"),
            None => assert!(names.is_empty(), "{ctx}: tshark names {names:?}"),
        }

        let companies: BTreeSet<u32> = v["manufacturer_data"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| u32::from_str_radix(k, 16).unwrap())
            .collect();
        assert_eq!(companies, hex_set(&row[8]), "{ctx}");

        let mut uuids: BTreeSet<u32> = v["service_uuids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| short_uuid(u.as_str().unwrap()))
            .collect();
        uuids.extend(
            v["service_data"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| short_uuid(k)),
        );
        assert_eq!(uuids, hex_set(&row[9]), "{ctx}");

        let power = row.get(10).map(String::as_str).unwrap_or("");
        match v["tx_power_level"].as_i64() {
            Some(p) => assert_eq!(p.to_string(), power, "{ctx}"),
            None => assert_eq!(power, "", "{ctx}"),
        }
    }
}

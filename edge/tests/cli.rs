//! The `dwell-edge` binary as users run it: arguments, stdin/stdout, exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn edge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dwell-edge"));
    c.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    c
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn decode_reads_stdin_and_keeps_going_after_a_bad_line() {
    let mut child = edge()
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"0201060303aafe0d16aafe30e34549445f74657374\nnot hex\n020a04\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["frames"][0]["eid"], "4549445f74657374");
    assert!(lines[1]["error"].as_str().unwrap().contains("not hex"));
    assert_eq!(lines[2]["tx_power_level"], 4);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("3 input records, 2 decoded, 1 errors"),
        "{err}"
    );
}

#[test]
fn decode_btsnoop_prints_every_advertising_report() {
    let out = edge()
        .args(["decode", "--btsnoop"])
        .arg(format!("{FIXTURES}/captures/horizon74_btsnoop_hci.log"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 412);
    assert!(
        lines
            .iter()
            .all(|l| l["ts_ms"].is_i64() && l["addr"].is_string())
    );
    let ibeacons = lines
        .iter()
        .filter(|l| {
            l["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["type"] == "ibeacon")
        })
        .count();
    assert!(ibeacons > 0);
}

#[test]
fn decode_pcap_prints_the_probe_request() {
    let out = edge()
        .args(["decode", "--pcap"])
        .arg(format!(
            "{FIXTURES}/captures/tcpdump_ieee802.11_meshid.pcap"
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    let p = &lines[0];
    assert_eq!(p["sa"], "b0:fc:36:2f:07:44");
    assert_eq!(
        (p["rssi"].as_i64(), p["freq_mhz"].as_i64()),
        (Some(-38), Some(5745))
    );
    assert_eq!(
        (p["seq"].as_i64(), p["ssid"].as_str()),
        (Some(116), Some(""))
    );
    assert_eq!(p["randomized"], false);
    assert_eq!(
        p["ie_ids"],
        serde_json::json!([0, 1, 45, 127, 191, 221, 221, 114])
    );
}

#[test]
fn missing_capture_is_a_one_line_error() {
    let out = edge()
        .args(["decode", "--btsnoop", "/nonexistent/capture.log"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/capture.log") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn print_default_config_is_the_shipped_deploy_file() {
    let out = edge().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/dwell-edge.toml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), shipped);
}

#[test]
fn simulate_then_replay_produces_visits() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    );
    let sightings = dir.path().join("s.jsonl");
    let out = edge()
        .args([
            "simulate",
            "--config",
            config,
            "--shoppers",
            "10",
            "--minutes",
            "20",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&sightings)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s.truth.json")).unwrap()).unwrap();
    assert!(truth["people"].as_array().unwrap().len() >= 10);

    let events = dir.path().join("e.jsonl");
    let out = edge()
        .args(["replay", "--config", config, "--input"])
        .arg(&sightings)
        .arg("--output")
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&std::fs::read(&events).unwrap());
    assert!(
        lines
            .iter()
            .any(|e| e["type"] == "visit_end" && e["class"] == "visitor")
    );
    assert!(
        lines
            .iter()
            .all(|e| e["seq"].is_u64() && e["ts_ms"].is_i64())
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("(0 bad)"), "{err}");
}

#[test]
fn broken_config_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("gw.toml");
    std::fs::write(
        &bad,
        "[gateway]\nid = \"gw-1\"\nstore = \"s\"\ncolour = 1\n",
    )
    .unwrap();
    let out = edge()
        .args(["replay", "--config"])
        .arg(&bad)
        .args(["--input", "-", "--output", "-"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("gw.toml") && err.contains("colour"), "{err}");
}

#[test]
fn doctor_names_each_problem_with_a_fix_and_fails_on_a_dead_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens on `port` once the listener above is dropped.
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    ))
    .unwrap();
    text.push_str(&format!(
        "\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n[outbox]\npath = \"{}\"\n[metrics]\nlisten = \"\"\n",
        dir.path().join("outbox").display()
    ));
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, text).unwrap();
    let out = edge()
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unreachable broker is a failure");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("[ok] config:"), "{stdout}");
    assert!(
        stdout.contains("[FAIL] broker:") && stdout.contains("unreachable"),
        "{stdout}"
    );
    assert!(stdout.contains("[ok] outbox:"), "{stdout}");
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("[FAIL]") || l.starts_with("[warn]"))
    {
        assert!(
            line.contains("fix:"),
            "every problem says what to do: {line}"
        );
    }
}

//! Runs the zone-node logic on a Linux host and prints each window's report as a JSON line.
//!
//! ```text
//! cargo run -p dwell-node --example host -- RECORDING [--window-s 60] [--step-ms 100]
//! cargo run -p dwell-node --example host -- --serial /dev/ttyACM0 [--window-s 60]
//! ```
//!
//! RECORDING is the controller → host side of an H4 UART (raw bytes, `04 3e …`), or a btsnoop
//! file (`btmon -w`, Android HCI snoop log) whose received packets are replayed as H4. The replay
//! answers every command the node writes with a successful Command Complete, and advances a virtual
//! clock by `--step-ms` per poll; at the end it keeps polling until the last window closes.
//!
//! `--serial` talks to a real controller running HCI UART firmware. The device is opened as a
//! plain `std::fs::File`, read and write — no serial crate is needed because the tty is configured
//! beforehand, e.g. `stty -F /dev/ttyACM0 1000000 raw -echo crtscts` (use the controller's baud
//! rate; H4 needs flow control at high rates). Reads block until the controller sends something;
//! a scanning controller sends advertisements continuously, so the loop keeps moving.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read as _, Write as _};

use dwell_node::controller::NoResetPin;
use dwell_node::host::{self, HostDelay, NoBeam, Replay};
use dwell_node::node_report::{Identity, Report};
use dwell_node::{Config, Node};
use dwell_shared::hex::Hex;
use embedded_io::{ErrorType, Read, ReadReady, Write};
use std::time::Instant;

/// Devices per window the host run can tell apart.
const TABLE: usize = 128;

/// A tty opened as a file (see the module docs for `stty`).
struct Serial(File);

impl ErrorType for Serial {
    type Error = std::io::Error;
}

impl Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        self.0.read(buf)
    }
}

impl ReadReady for Serial {
    /// std has no readiness check for files; the read blocks instead.
    fn read_ready(&mut self) -> Result<bool, std::io::Error> {
        Ok(true)
    }
}

impl Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        self.0.flush()
    }
}

fn identity_json(id: &Identity) -> serde_json::Value {
    use serde_json::json;
    match id {
        Identity::Eid(e) => json!({"type": "eid", "eid": Hex(e).to_string()}),
        Identity::IBeacon { uuid, major, minor } => json!({"type": "ibeacon",
            "uuid": dwell_shared::Uuid::from_bytes(*uuid).to_string(), "major": major, "minor": minor}),
        Identity::AltBeacon { id1, id2, id3 } => json!({"type": "altbeacon",
            "id1": dwell_shared::Uuid::from_bytes(*id1).to_string(), "id2": id2, "id3": id3}),
        Identity::EddystoneUid {
            namespace,
            instance,
        } => json!({"type": "eddystone_uid",
            "namespace": Hex(namespace).to_string(), "instance": Hex(instance).to_string()}),
        Identity::AddrHash(h) => json!({"type": "addr_hash", "hash": Hex(h).to_string()}),
    }
}

fn print_report(bytes: &[u8]) {
    match Report::decode(bytes) {
        Ok(r) => {
            let h = r.header;
            let sightings: Vec<_> = r
                .sightings()
                .map(|s| {
                    serde_json::json!({"identity": identity_json(&s.identity), "count": s.count,
                        "rssi_min": s.rssi_min, "rssi_max": s.rssi_max, "rssi_mean": s.rssi_mean})
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"v": 1, "node": h.node, "store": h.store, "zone": h.zone,
                    "window_start_s": h.window_start_s, "window_len_s": h.window_len_s,
                    "door_in": h.door_in, "door_out": h.door_out, "dropped": h.dropped,
                    "bytes": bytes.len(), "sightings": sightings})
            );
        }
        Err(e) => println!("{}", serde_json::json!({"error": e.to_string()})),
    }
}

/// The recording as controller → host H4 bytes.
fn load_recording(path: &str) -> Result<VecDeque<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    host::h4_from_file(&bytes).map_err(|e| format!("{path}: {e}"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |name: &str, default: u64| -> Result<u64, String> {
        opt(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("{name} {v}: not a number"))
        })
    };
    let mut cfg = Config::new(num("--node", 1)? as u32, 1, 1, *b"host-example-key");
    cfg.window_s = num("--window-s", 60)? as u16;
    let mut buf =
        vec![0u8; Node::<Replay, NoResetPin, NoBeam, NoBeam, HostDelay, TABLE>::report_capacity()];

    if let Some(dev) = opt("--serial") {
        let file = File::options()
            .read(true)
            .write(true)
            .open(&dev)
            .map_err(|e| {
                format!("{dev}: {e} (is it the controller's tty, configured with stty?)")
            })?;
        let mut node: Node<_, NoResetPin, _, _, _, TABLE> =
            Node::new(cfg, Serial(file), None, NoBeam, NoBeam, HostDelay(true));
        let start = Instant::now();
        loop {
            let now = start.elapsed().as_millis() as u64;
            match node.poll(now, &mut buf) {
                Ok(Some(n)) => print_report(&buf[..n]),
                Ok(None) => {}
                Err(e) => eprintln!("node: {e}"),
            }
        }
    }

    let Some(path) = args.first().filter(|a| !a.starts_with("--")) else {
        return Err(
            "usage: host RECORDING [--window-s N] [--step-ms N] | host --serial DEVICE".into(),
        );
    };
    let step = num("--step-ms", 100)?.max(1);
    let window_ms = u64::from(cfg.window_s) * 1000;
    let replay = Replay::new(load_recording(path)?);
    let mut node: Node<_, NoResetPin, _, _, _, TABLE> =
        Node::new(cfg, replay, None, NoBeam, NoBeam, HostDelay(false));
    let mut now = 0u64;
    let mut seen = 0u32;
    let mut drained_at: Option<u64> = None;
    loop {
        match node.poll(now, &mut buf) {
            Ok(Some(n)) => print_report(&buf[..n]),
            Ok(None) => {}
            Err(e) => eprintln!("node: {e}"),
        }
        // The replay is always ready while it has bytes, so a poll of a running node that read
        // nothing means the recording is used up; then run until the window it was in closes.
        let bytes = node.controller().reader().stats().bytes;
        if drained_at.is_none() && node.is_up() && bytes == seen {
            drained_at = Some(now);
        }
        seen = bytes;
        now += step;
        if drained_at.is_some_and(|d| now / window_ms > d / window_ms) {
            if let Ok(Some(n)) = node.poll(now, &mut buf) {
                print_report(&buf[..n]);
            }
            break;
        }
    }
    let s = node.stats();
    eprintln!(
        "advertisements {} malformed {} reports {} h4 {:?}",
        s.advertisements,
        s.malformed,
        s.reports,
        node.controller().reader().stats()
    );
    Ok(())
}

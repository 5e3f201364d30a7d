//! The gateway consuming zone-node reports and a pushed layout over MQTT, end to end: a private
//! Mosquitto (project config, free port), `dwell_edge::gateway::run` in-process, a zone node's
//! binary report (encoded with the same `dwell_shared::node_report` codec the firmware uses) on
//! `dwell/v1/{store}/nodes/{node}/report`, and a retained layout on `dwell/v1/{store}/config`.
//!
//! A second test runs the zone-node firmware logic itself (`dwell_node::Node`, on the host) over
//! the real Android capture, and the report it produces travels the same way.
//!
//! Asserted: the node's door counts become a `door` event and its sightings become tracked
//! devices (a visit starts for the EID it heard); a report with a broken CRC is rejected and
//! counted while the gateway goes on; a valid pushed layout is applied and an invalid one refused;
//! `/metrics` shows all of it.

mod support;

use dwell_edge::config::Config;
use dwell_shared::node_report::{self, Header, Identity, Sighting};
use dwell_shared::wire::{EventBatch, EventKind};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{free_port, start_mosquitto, wait_for_port};
use tokio_util::sync::CancellationToken;

const STORE: &str = "store-042";

/// The report `dwell-node` makes of the real capture: its controller is a replay of the capture's
/// H4 bytes (every command answered), its beams are idle, its clock is virtual.
fn report_from_the_node_logic() -> Vec<u8> {
    use dwell_node::controller::NoResetPin;
    use dwell_node::host::{self, HostDelay, NoBeam, Replay};
    use dwell_node::{Config, Node};
    let capture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/captures/horizon74_btsnoop_hci.log"
    ))
    .unwrap();
    let replay = Replay::new(host::h4_from_file(&capture).unwrap());
    let cfg = Config::new(4, 42, 4, [7; 16]);
    let mut node: Node<_, NoResetPin, _, _, _, 128> =
        Node::new(cfg, replay, None, NoBeam, NoBeam, HostDelay(false));
    let mut buf =
        vec![0u8; Node::<Replay, NoResetPin, NoBeam, NoBeam, HostDelay, 128>::report_capacity()];
    // 100 ms per poll; the first window (60 s) closes with everything the capture holds in it.
    for step in 0..1_000u64 {
        if let Ok(Some(n)) = node.poll(step * 100, &mut buf) {
            buf.truncate(n);
            return buf;
        }
    }
    panic!("the node produced no report in 100 s of virtual time");
}

fn report(window_start_s: u32, door_in: u16, door_out: u16, eid: [u8; 8]) -> Vec<u8> {
    let header = Header {
        node: 1,
        store: 42,
        zone: 4,
        window_start_s,
        window_len_s: 60,
        door_in,
        door_out,
        dropped: 0,
    };
    let sightings = [
        Sighting {
            identity: Identity::Eid(eid),
            count: 55,
            rssi_min: -58,
            rssi_max: -44,
            rssi_mean: -50,
        },
        Sighting {
            identity: Identity::AddrHash([9; 8]),
            count: 20,
            rssi_min: -90,
            rssi_max: -70,
            rssi_mean: -80,
        },
    ];
    let mut buf = vec![0u8; node_report::max_encoded_len(sightings.len())];
    let n = node_report::encode(&header, &sightings, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The example store's gateway, taking zone-node reports, on the broker at `port`.
fn gateway_config(port: u16, dir: &std::path::Path, metrics: &str) -> Config {
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    ))
    .unwrap();
    text.push_str(&format!(
        "\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n[outbox]\npath = \"{}\"\n[metrics]\nlisten = \"{metrics}\"\n[[sources]]\nkind = \"nodes\"\n",
        dir.join("outbox").display()
    ));
    Config::from_toml_str(&text, "test.toml").unwrap()
}

/// Every event the store's gateways publish, as they arrive.
async fn collect_events(port: u16, client_id: &str) -> Arc<Mutex<Vec<EventKind>>> {
    let events: Arc<Mutex<Vec<EventKind>>> = Arc::default();
    let (sub, mut sub_loop) = AsyncClient::new(MqttOptions::new(client_id, "127.0.0.1", port), 64);
    sub.subscribe(format!("dwell/v1/{STORE}/+/events"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen = events.clone();
    tokio::spawn(async move {
        while let Ok(ev) = sub_loop.poll().await {
            if let rumqttc::Event::Incoming(Packet::Publish(p)) = ev {
                let b: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                seen.lock()
                    .unwrap()
                    .extend(b.events.into_iter().map(|e| e.kind));
            }
        }
    });
    events
}

async fn metric(port: u16, name: &str) -> f64 {
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_reports_and_pushed_layouts_reach_the_tracker() {
    let port = free_port();
    let Some(_mosquitto) = start_mosquitto(port) else {
        return;
    };
    wait_for_port(port).await;
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config(port, dir.path(), &format!("127.0.0.1:{metrics_port}"));
    let layout = config.store_layout().clone();

    // Everything the gateway publishes.
    let events = collect_events(port, "test-sub").await;

    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(dwell_edge::gateway::run(
        config,
        "test.toml",
        shutdown.clone(),
    ));
    wait_for_port(metrics_port).await;

    let (node, mut node_loop) =
        AsyncClient::new(MqttOptions::new("test-node", "127.0.0.1", port), 64);
    tokio::spawn(async move { while node_loop.poll().await.is_ok() {} });
    let topic = format!("dwell/v1/{STORE}/nodes/n-4/report");
    let now_s = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()) as u32;
    // Let the control connection subscribe before publishing (reports are not retained).
    for _ in 0..50 {
        if metric(metrics_port, "dwell_edge_uplink_connects_total").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let eid = [0xa9, 0xb7, 0x6a, 0x71, 0xc5, 0xf8, 0x92, 0x90];
    let mut broken = report(now_s - 60, 0, 0, eid);
    let last = broken.len() - 1;
    broken[last] ^= 0xff; // CRC no longer matches
    node.publish(&topic, QoS::AtLeastOnce, false, broken)
        .await
        .unwrap();
    node.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        report(now_s - 60, 3, 1, eid),
    )
    .await
    .unwrap();

    // A valid layout (receivers and zones as they are, new thresholds) and an invalid one.
    let mut pushed = layout.clone();
    pushed.visit.min_visit_s = 90;
    node.publish(
        format!("dwell/v1/{STORE}/config"),
        QoS::AtLeastOnce,
        false,
        serde_json::to_vec(&pushed).unwrap(),
    )
    .await
    .unwrap();
    let mut bad = layout.clone();
    bad.zones[0].polygon.truncate(2);
    node.publish(
        format!("dwell/v1/{STORE}/config"),
        QoS::AtLeastOnce,
        false,
        serde_json::to_vec(&bad).unwrap(),
    )
    .await
    .unwrap();

    let mut ok = false;
    for _ in 0..100 {
        let ev = events.lock().unwrap().clone();
        let door = ev.iter().any(|e| {
            matches!(e, EventKind::Door { node, entered: 3, exited: 1, window_s: 60 } if node == "n-4")
        });
        let visit = ev.iter().any(|e| {
            matches!(e, EventKind::VisitStart { device, .. } if device.device == "eid:a9b76a71c5f89290")
        });
        if door && visit {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "door event and the EID's visit published: {:?}",
        events.lock().unwrap()
    );
    // The pipeline's counters are published once a second: poll.
    let want = [
        ("dwell_edge_node_reports_total", 2.0),
        ("dwell_edge_node_reports_rejected_total", 1.0),
        ("dwell_edge_layouts_total", 2.0),
        ("dwell_edge_layouts_rejected_total", 1.0),
    ];
    let mut got = Vec::new();
    for _ in 0..30 {
        got.clear();
        for (name, _) in want {
            got.push(metric(metrics_port, name).await);
        }
        if got.iter().zip(want).all(|(g, (_, w))| *g == w) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got, want.map(|(_, w)| w).to_vec(), "{want:?}");
    // No raw address and no node hash appear as anything but the node-scoped pseudonym.
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| e.device())
            .all(|d| { d.device.starts_with("eid:") || d.device.starts_with("n:n-4:") })
    );

    shutdown.cancel();
    gw.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_made_by_the_node_logic_reaches_the_tracker() {
    let report = report_from_the_node_logic();
    let decoded = node_report::Report::decode(&report).unwrap();
    assert!(decoded.sightings().count() > 0);
    let port = free_port();
    let Some(_mosquitto) = start_mosquitto(port) else {
        return;
    };
    wait_for_port(port).await;
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config(port, dir.path(), "");
    let events = collect_events(port, "test-sub-2").await;
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(dwell_edge::gateway::run(
        config,
        "test.toml",
        shutdown.clone(),
    ));
    let (node, mut node_loop) =
        AsyncClient::new(MqttOptions::new("test-node-2", "127.0.0.1", port), 64);
    tokio::spawn(async move { while node_loop.poll().await.is_ok() {} });
    // The iBeacon the capture's phone heard (frame 134): strong enough at the node to be inside.
    let want = "ibeacon:494e5445-4c4c-495f-524f-434b535f4857:20594:62207";
    let mut ok = false;
    for _ in 0..60 {
        // Re-publish until the gateway's control connection is subscribed (reports aren't retained).
        node.publish(
            format!("dwell/v1/{STORE}/nodes/n-4/report"),
            QoS::AtLeastOnce,
            false,
            report.clone(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        if events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, EventKind::VisitStart { device, .. } if device.device == want))
        {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the node's iBeacon sighting started a visit: {:?}",
        events.lock().unwrap()
    );
    shutdown.cancel();
    gw.await.unwrap().unwrap();
}

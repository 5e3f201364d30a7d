//! `dwell-edge run`, the real binary, against a private Mosquitto (the project's config, free
//! port). With the broker down, events from a recorded source pile up in the outbox; `kill -9`
//! mid-stream; with the broker up and the gateway restarted, everything that was in the outbox
//! arrives and `seq` continues above everything handed out before; SIGTERM drains and publishes
//! the retained offline status.

mod support;

use dwell_edge::outbox::{Outbox, OutboxConfig, SledOutbox};
use dwell_edge::simulate::{self, SimParams};
use dwell_shared::wire::{EventBatch, GatewayState, GatewayStatus};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{free_port, start_mosquitto, wait_for_port};

const STORE: &str = "store-042";

#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
    statuses: Vec<GatewayState>,
}

async fn subscribe(port: u16) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut opts = MqttOptions::new("test-subscriber", "127.0.0.1", port);
    opts.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut events) = AsyncClient::new(opts, 64);
    client
        .subscribe("dwell/v1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let mut s = s.lock().unwrap();
                    if p.topic.ends_with("/events") {
                        let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                        assert_eq!(batch.store, STORE);
                        s.seqs.extend(batch.events.iter().map(|e| e.seq));
                    } else if p.topic.ends_with("/status") {
                        let st: GatewayStatus = serde_json::from_slice(&p.payload).unwrap();
                        s.statuses.push(st.state);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    seen
}

fn write_config(dir: &Path, port: u16, sightings: &Path) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    ))
    .unwrap();
    text.push_str(&format!(
        "\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n\n[outbox]\npath = \"{}\"\n\n[metrics]\nlisten = \"\"\n\n\
         [[sources]]\nkind = \"jsonl\"\npath = \"{}\"\nspeed = 30.0\n",
        dir.join("outbox").display(),
        sightings.display()
    ));
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_gateway(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dwell-edge"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    for _ in 0..secs * 10 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_survives_kill9_and_drains_on_sigterm() {
    if !Path::new(support::MOSQUITTO).exists() {
        // start_mosquitto says SKIP (or fails under CI); ask it now, before doing any work.
        let _ = start_mosquitto(free_port());
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();

    // 40 minutes of a busy store, replayed 30× faster: about 80 s of sightings.
    let example = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/edge/example-store.toml"
    ));
    let layout_config = dwell_edge::config::Config::load(example).unwrap();
    let sim = simulate::run(
        layout_config.store_layout(),
        &SimParams {
            shoppers: 150,
            minutes: 40,
            seed: 9,
            ..SimParams::default()
        },
    )
    .unwrap();
    let sightings = dir.path().join("s.jsonl");
    sim.write_sightings(std::fs::File::create(&sightings).unwrap())
        .unwrap();
    let config = write_config(dir.path(), port, &sightings);
    let outbox_config = OutboxConfig::new(dir.path().join("outbox"));

    // Phase 1: the broker is down; events pile up in the outbox. Then kill -9 mid-stream.
    let mut gw = start_gateway(&config);
    tokio::time::sleep(Duration::from_secs(8)).await;
    gw.kill().unwrap();
    gw.wait().unwrap();
    let (in_outbox, next_seq) = {
        let outbox = SledOutbox::open(&outbox_config).unwrap();
        let stored: BTreeSet<u64> = outbox
            .read(0, u64::MAX, usize::MAX, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        (stored, outbox.stats().next_seq)
    };
    assert!(
        in_outbox.len() >= 20,
        "events waited in the outbox: {}",
        in_outbox.len()
    );
    let max_before = *in_outbox.iter().max().unwrap();
    assert!(next_seq > max_before);

    // Phase 2: broker up, gateway restarted: everything that was in the outbox arrives, and the
    // new events are numbered above everything handed out before the kill.
    let _mosquitto = start_mosquitto(port).expect("mosquitto present");
    wait_for_port(port).await;
    let seen = subscribe(port).await;
    let mut gw = start_gateway(&config);
    wait_until("outbox contents delivered after restart", 60, || {
        in_outbox.is_subset(&seen.lock().unwrap().seqs)
    })
    .await;
    wait_until("new events after restart", 60, || {
        seen.lock().unwrap().seqs.iter().any(|s| *s >= next_seq)
    })
    .await;
    let all = seen.lock().unwrap().seqs.clone();
    assert!(
        all.iter().all(|s| *s <= max_before || *s >= next_seq),
        "seqs are never reused: nothing between the last stored one and the restart's first"
    );

    // SIGTERM: drain, close open visits, publish offline. (`kill` the command, so the test needs
    // no unsafe signal call.)
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(gw.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = gw.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    wait_until("offline status", 10, || {
        seen.lock().unwrap().statuses.last() == Some(&GatewayState::Offline)
    })
    .await;
    let outbox = SledOutbox::open(&outbox_config).unwrap();
    assert_eq!(outbox.stats().records, 0, "everything acked before exit");
}

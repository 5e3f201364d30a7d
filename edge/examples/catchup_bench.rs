//! Catch-up rate of a backlog against a broker on loopback:
//! `cargo run --release -p dwell-edge --example catchup_bench [N] [PORT]`.
//!
//! Fills an outbox with N events (default 1,000,000), then starts the uplink against the broker on
//! 127.0.0.1:PORT (default: a Mosquitto this program starts with `deploy/mosquitto/dwell.conf`)
//! with a subscriber counting distinct seqs, and reports the time until every event is both
//! received by the subscriber and acked out of the outbox.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dwell_edge::outbox::{Outbox, OutboxConfig, SledOutbox};
use dwell_edge::uplink::{MqttTransport, Uplink, UplinkConfig};
use dwell_shared::topic;
use dwell_shared::wire::{DeviceRef, Event, EventBatch, EventKind};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};

fn event(i: u64) -> Event {
    Event {
        seq: 0,
        ts_ms: 1_760_000_000_000 + i as i64,
        kind: EventKind::ZoneDwell {
            device: DeviceRef::new(format!("h:{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
            zone: "cosmetics".into(),
            dwell_s: 60,
        },
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let (port, _mosquitto) = match args.next() {
        Some(p) => (p.parse::<u16>().unwrap(), None),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let conf: String = include_str!("../../deploy/mosquitto/dwell.conf")
                .lines()
                .filter(|l| {
                    ![
                        "listener",
                        "persistence_location",
                        "allow_anonymous",
                        "password_file",
                    ]
                    .iter()
                    .any(|k| l.starts_with(k))
                })
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + &format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence_location {}/\n",
                    tmp.path().display()
                );
            let conf_path = tmp.path().join("dwell.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let child = std::process::Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&conf_path)
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("mosquitto (apt-get install mosquitto), or pass a broker PORT");
            tokio::time::sleep(Duration::from_millis(300)).await;
            (port, Some(KillOnDrop(child)))
        }
    };

    let outbox = Arc::new(
        SledOutbox::open(&OutboxConfig {
            durable: false,
            max_bytes: u64::MAX,
            ..OutboxConfig::new(tmp.path().join("outbox"))
        })
        .unwrap(),
    );
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let k = 1000.min(n - i);
        outbox
            .append(&mut (i..i + k).map(event).collect::<Vec<_>>())
            .unwrap();
        i += k;
    }
    outbox.flush().unwrap();
    println!(
        "backlog of {n} events written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Subscriber.
    let mut options = MqttOptions::new("bench-subscriber", "127.0.0.1", port);
    options.set_max_packet_size(8 << 20, 64 << 10);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe(topic::ALL_EVENTS, QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(HashSet::<u64>::new()));
    let seen2 = seen.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                    seen2
                        .lock()
                        .unwrap()
                        .extend(batch.events.iter().map(|e| e.seq));
                }
                Ok(_) => {}
                Err(_) => return, // the broker went away (the end of the run)
            }
        }
    });
    ready_rx.await.unwrap();

    let config = UplinkConfig {
        port,
        ..UplinkConfig::new("store-001", "gw-bench")
    };
    let transport = MqttTransport::new(&config).unwrap();
    let uplink = Uplink::new(config, outbox.clone(), transport).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let t = Instant::now();
    let task = tokio::spawn(uplink.run(shutdown.clone()));
    loop {
        let got = seen.lock().unwrap().len() as u64;
        if got == n && outbox.stats().records == 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(600), "stuck at {got}/{n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "caught up {n} events in {secs:.1} s: {:.0} events/s (received by the subscriber and acked out of the outbox)",
        n as f64 / secs
    );
    shutdown.cancel();
    let stats = task.await.unwrap().unwrap();
    println!("{stats:?}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

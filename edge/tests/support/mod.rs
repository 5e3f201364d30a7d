//! Helpers shared by the broker tests: free ports, and a private Mosquitto started with the
//! project's config (`deploy/mosquitto/dwell.conf`) on a free port, never the standard one.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;

pub fn free_port() -> u16 {
    // rumqttd and mosquitto take a fixed port: ask the OS for a free one and release it.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("broker did not listen on {port}");
}

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Mosquitto {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deploy/mosquitto/dwell.conf` with this test's listener, persistence directory, logging and
/// anonymous access; every delivery setting stays as shipped.
pub fn mosquitto_conf(port: u16, dir: &Path) -> String {
    let shipped = include_str!("../../../deploy/mosquitto/dwell.conf");
    let replaced = [
        "listener",
        "persistence_location",
        "allow_anonymous",
        "password_file",
        "log_dest",
    ];
    let mut conf: String = shipped
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("max_queued_messages 0"));
    assert!(conf.contains("max_inflight_messages 100"));
    conf.push_str(&format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence_location {}/\nlog_dest stderr\n",
        dir.display()
    ));
    conf
}

pub fn start_mosquitto(port: u16) -> Option<Mosquitto> {
    if !Path::new(MOSQUITTO).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "mosquitto not installed (apt-get install mosquitto) and CI is set"
        );
        println!("SKIP: mosquitto not installed (apt-get install mosquitto)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dwell.conf");
    std::fs::write(&conf, mosquitto_conf(port, dir.path())).unwrap();
    let child = std::process::Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mosquitto");
    Some(Mosquitto { child, _dir: dir })
}

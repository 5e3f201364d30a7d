//! The demo's embedded MQTT broker: rumqttd on a free local port, on its own thread.
//!
//! rumqttd keeps retained messages and sessions in memory and has no shutdown API: it lives as
//! long as the process (NOTES-dependencies.md). Production uses Mosquitto or EMQX.

use anyhow::Context;

/// rumqttd's configuration for a listener on 127.0.0.1:`port` (also what the tests embed).
pub fn config(port: u16) -> String {
    format!(
        r#"
id = 0
[router]
id = 0
max_connections = 200
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 4194304
    max_inflight_count = 100
    dynamic_filters = true
"#
    )
}

/// Starts rumqttd on 127.0.0.1:`port` on its own thread (for the life of the process).
pub fn spawn(port: u16) -> anyhow::Result<()> {
    let config: rumqttd::Config = toml::from_str(&config(port)).context("broker config")?;
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("starting the broker thread")?;
    Ok(())
}

/// Starts rumqttd on a free port of 127.0.0.1 and waits until it accepts connections.
pub fn start() -> anyhow::Result<u16> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port")?
        .port();
    spawn(port)?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    anyhow::bail!("the embedded MQTT broker did not start listening on 127.0.0.1:{port}")
}

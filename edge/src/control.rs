//! The gateway's control subscription: the retained store layout the cloud pushes
//! (`dwell/v1/{store}/config`) and zone-node reports (`dwell/v1/{store}/nodes/{node}/report`).
//!
//! It is a second MQTT connection (client id `<uplink client id>-ctl`) so the uplink's
//! publish/PubAck bookkeeping stays its own. Messages are handed to the pipeline stage, which
//! validates and applies them; nothing here changes state. Unreadable messages are counted and
//! logged, never fatal.

use crate::uplink::UplinkConfig;
use dwell_shared::topic::{self, Topic};
use dwell_shared::wire::StoreConfig;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the control connection hands to the pipeline.
#[derive(Debug)]
pub enum Control {
    /// A pushed layout (parsed, not yet validated against the running config).
    Layout(Box<StoreConfig>),
    /// A zone node's binary report, as received (decoded by the pipeline stage).
    NodeReport { node: String, payload: Vec<u8> },
}

/// Counters of the control connection.
#[derive(Debug, Default)]
pub struct ControlStats {
    pub connects: AtomicU64,
    pub layouts: AtomicU64,
    pub node_reports: AtomicU64,
    /// Messages that were not JSON/binary of the expected shape, or on an unexpected topic.
    pub rejected: AtomicU64,
}

/// Runs the control connection until `shutdown`.
pub async fn run(
    uplink: UplinkConfig,
    tx: mpsc::Sender<Control>,
    stats: Arc<ControlStats>,
    shutdown: CancellationToken,
) -> Result<(), crate::uplink::UplinkError> {
    let mut options = MqttOptions::new(
        format!("{}-ctl", uplink.client_id()),
        &uplink.host,
        uplink.port,
    );
    options.set_keep_alive(Duration::from_secs(uplink.keep_alive_s.max(5)));
    options.set_max_packet_size(1024 * 1024, 64 * 1024);
    if let Some(user) = &uplink.username {
        options.set_credentials(user, uplink.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &uplink.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            crate::uplink::mqtt::tls_config(tls)?,
        ));
    }
    uplink.validate()?;
    // `validate` checked the store id against the topic rules, so these cannot fail.
    let config_topic = topic::store_config(&uplink.store).expect("validated store id");
    let nodes_topic = topic::store_node_reports(&uplink.store).expect("validated store id");
    let (client, mut events) = AsyncClient::new(options, 16);
    let mut backoff = Duration::from_millis(500);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(500);
                stats.connects.fetch_add(1, Ordering::Relaxed);
                // Subscribe on every connect: cheap, and right whatever the session kept.
                for t in [&config_topic, &nodes_topic] {
                    if let Err(e) = client.subscribe(t.as_str(), QoS::AtLeastOnce).await {
                        tracing::warn!(topic = %t, error = %e, "control subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let msg = match topic::parse(&p.topic) {
                    Ok(Topic::StoreConfig { store }) if store == uplink.store => {
                        match serde_json::from_slice::<StoreConfig>(&p.payload) {
                            Ok(c) => {
                                stats.layouts.fetch_add(1, Ordering::Relaxed);
                                Some(Control::Layout(Box::new(c)))
                            }
                            Err(e) => {
                                tracing::warn!(topic = %p.topic, error = %e, "pushed layout is not a v1 store config; keeping the current one");
                                None
                            }
                        }
                    }
                    Ok(Topic::NodeReport { store, node }) if store == uplink.store => {
                        stats.node_reports.fetch_add(1, Ordering::Relaxed);
                        Some(Control::NodeReport {
                            node: node.to_owned(),
                            payload: p.payload.to_vec(),
                        })
                    }
                    _ => {
                        tracing::warn!(topic = %p.topic, "message on an unexpected topic ignored");
                        None
                    }
                };
                match msg {
                    Some(m) => {
                        if tx.send(m).await.is_err() {
                            break; // the pipeline stage has stopped
                        }
                    }
                    None => {
                        stats.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "control connection down");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    let _ = client.disconnect().await;
    Ok(())
}

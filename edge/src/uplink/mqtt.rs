//! [`Transport`] over rumqttc (MQTT 3.1.1): persistent session under a stable client id, the
//! retained `offline` status as last will, username/password, and TLS through rustls with the
//! ring provider (no aws-lc; see NOTES-dependencies.md).
//!
//! # From MQTT packet id to [`PublishId`]
//! rumqttc's `publish()` only queues a request; the packet id is chosen later, inside the event
//! loop. The mapping relies on two facts of rumqttc 0.25's event loop:
//! 1. requests leave the request channel in FIFO order, and each QoS 1 publish yields exactly one
//!    `Event::Outgoing(Outgoing::Publish(pkid))` when it is written, in that order — except a
//!    publish whose pkid collides with one still unacked, which yields `Outgoing::AwaitAck(pkid)`
//!    and later, when that pkid is acked, its `Outgoing::Publish(pkid)`; nothing else is sent in
//!    between (the collision blocks new requests);
//! 2. `Incoming::PubAck(pkid)` comes after that publish's `Outgoing::Publish(pkid)`.
//!
//! So [`MqttTransport::publish`] pushes our id onto a FIFO (under the same lock as the request
//! send), the event-loop task pops the FIFO on each `Outgoing::Publish`/`AwaitAck` and records
//! `pkid → id`, and a PubAck for `pkid` resolves to that id — only once, since the entry is
//! removed. rumqttc's own retransmission of unacked publishes after a reconnect would break fact
//! 1 (those publishes are not in the FIFO), so after every connection error this transport clears
//! rumqttc's `pending` queue and the FIFO: the forwarder resends from the outbox instead.
//!
//! The event loop runs in its own task (rumqttc's `poll` is not cancel-safe: dropping it mid-write
//! could cut a packet), reporting to the transport through a channel, which is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwell_shared::topic;
use dwell_shared::wire::{GatewayState, GatewayStatus};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::transport::{Message, PublishId, Session, Transport, TransportError, TransportEvent};
use super::{TlsConfig, UplinkConfig, UplinkError, now_ms};

/// Room in rumqttc's request channel beyond the forwarder's window (status publishes, disconnect).
const REQUEST_HEADROOM: usize = 8;

/// What the event-loop task reports.
#[derive(Debug)]
enum LoopEvent {
    Connected { session_present: bool },
    ConnectFailed(String),
    Acked(PublishId),
    Lost(String),
}

#[derive(Debug, Default)]
struct Fifo {
    /// Our ids of queued publishes not yet given a packet id, in request order.
    queued: VecDeque<PublishId>,
    /// The publish waiting on a packet-id collision.
    collided: Option<PublishId>,
    /// Packet ids in flight → our ids.
    by_pkid: HashMap<u16, PublishId>,
}

impl Fifo {
    fn clear(&mut self) {
        self.queued.clear();
        self.collided = None;
        self.by_pkid.clear();
    }
}

/// The product's [`Transport`].
#[derive(Debug)]
pub struct MqttTransport {
    client: AsyncClient,
    fifo: Arc<Mutex<Fifo>>,
    connect_tx: mpsc::Sender<()>,
    events: mpsc::UnboundedReceiver<LoopEvent>,
    next_id: PublishId,
    task: JoinHandle<()>,
}

fn lock(fifo: &Mutex<Fifo>) -> std::sync::MutexGuard<'_, Fifo> {
    // The FIFO is plain data: a panic elsewhere cannot leave it unsafe to use.
    fifo.lock().unwrap_or_else(|e| e.into_inner())
}

impl MqttTransport {
    /// Builds the client (no I/O yet; [`Transport::connect`] connects). Must be called inside a
    /// tokio runtime.
    pub fn new(config: &UplinkConfig) -> Result<Self, UplinkError> {
        config.validate()?;
        let mut options = MqttOptions::new(config.client_id(), &config.host, config.port);
        options
            .set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)))
            // A persistent session: the broker keeps our subscriptions (and queued QoS 1
            // messages to us) across reconnects.
            .set_clean_session(false)
            .set_inflight(config.max_inflight.saturating_add(REQUEST_HEADROOM as u16))
            // Batches up to batch_max_bytes of events plus the envelope.
            .set_max_packet_size(
                1024 * 1024,
                config.batch_max_bytes.saturating_mul(2).max(64 * 1024),
            );
        if let Some(user) = &config.username {
            options.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        let will = GatewayStatus::new(
            &config.store,
            &config.gateway,
            GatewayState::Offline,
            now_ms(),
        );
        options.set_last_will(LastWill::new(
            // Validated above.
            topic::status(&config.store, &config.gateway).expect("validated ids"),
            serde_json::to_vec(&will)?,
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(tls) = &config.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(tls_config(tls)?));
        }
        let cap = usize::from(config.max_inflight) + REQUEST_HEADROOM;
        let (client, mut eventloop) = AsyncClient::new(options, cap);
        let mut network = eventloop.network_options();
        network.set_connection_timeout(config.connect_timeout_s.max(1));
        eventloop.set_network_options(network);
        let fifo = Arc::new(Mutex::new(Fifo::default()));
        let (connect_tx, connect_rx) = mpsc::channel(1);
        let (events_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(event_loop(eventloop, fifo.clone(), connect_rx, events_tx));
        Ok(MqttTransport {
            client,
            fifo,
            connect_tx,
            events,
            next_id: 0,
            task,
        })
    }
}

impl Drop for MqttTransport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// rustls client config with the ring provider chosen explicitly (not the process default, so a
/// second provider linked by another crate cannot make TLS set-up panic). Trusts only the
/// certificates in `tls.ca_file`; errors name the file. Public: the cloud's broker connections
/// (ingest workers, coupon publisher) use the same builder.
pub fn tls_config(tls: &TlsConfig) -> Result<rumqttc::TlsConfiguration, UplinkError> {
    use rumqttc::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let err = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        UplinkError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&tls.ca_file)
        .map_err(|e| err("cannot read CA file", &tls.ca_file, &e))?;
    for cert in certs {
        let cert = cert.map_err(|e| err("bad certificate in CA file", &tls.ca_file, &e))?;
        roots
            .add(cert)
            .map_err(|e| err("unusable CA certificate in", &tls.ca_file, &e))?;
    }
    if roots.is_empty() {
        return Err(err(
            "no certificate in CA file",
            &tls.ca_file,
            &"expected PEM `BEGIN CERTIFICATE` blocks",
        ));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| UplinkError::Tls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| err("cannot read client certificate", cert_file, &e))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| err("cannot read client key", key_file, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| UplinkError::Tls(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// Drives rumqttc's event loop: waits for a connect request, polls until the connection ends,
/// reports, and waits again.
async fn event_loop(
    mut eventloop: EventLoop,
    fifo: Arc<Mutex<Fifo>>,
    mut connect_rx: mpsc::Receiver<()>,
    events: mpsc::UnboundedSender<LoopEvent>,
) {
    while connect_rx.recv().await.is_some() {
        {
            // Publishes queued while disconnected belong to a dead connection: forget them (the
            // forwarder resends from the outbox), and let rumqttc retransmit nothing.
            let mut fifo = lock(&fifo);
            eventloop.clean();
            eventloop.pending.clear();
            fifo.clear();
        }
        let mut connected = false;
        loop {
            let event = eventloop.poll().await;
            let report = match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connected = true;
                    Some(LoopEvent::Connected {
                        session_present: ack.session_present,
                    })
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let mut fifo = lock(&fifo);
                    let id = fifo.collided.take().or_else(|| fifo.queued.pop_front());
                    if let Some(id) = id {
                        fifo.by_pkid.insert(pkid, id);
                    }
                    None
                }
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                    tracing::debug!(pkid, "uplink: packet id collision, waiting for its ack");
                    let mut fifo = lock(&fifo);
                    fifo.collided = fifo.queued.pop_front();
                    None
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    lock(&fifo).by_pkid.remove(&ack.pkid).map(LoopEvent::Acked)
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    let _ = events.send(LoopEvent::Lost("disconnected".into()));
                    return;
                }
                Ok(_) => None,
                Err(error) => {
                    {
                        let mut fifo = lock(&fifo);
                        eventloop.pending.clear();
                        fifo.clear();
                    }
                    let error = describe(&error);
                    let _ = events.send(if connected {
                        LoopEvent::Lost(error)
                    } else {
                        LoopEvent::ConnectFailed(error)
                    });
                    break;
                }
            };
            if let Some(report) = report
                && events.send(report).is_err()
            {
                return; // the transport is gone
            }
        }
    }
}

/// The error, with what to do for the ones an operator can fix: the `[broker]` keys of both the
/// gateway's and the cloud's config. Public: the cloud's ingest workers log broker errors with it.
pub fn describe(error: &rumqttc::ConnectionError) -> String {
    use rumqttc::ConnectReturnCode as Code;
    match error {
        rumqttc::ConnectionError::ConnectionRefused(
            Code::BadUserNamePassword | Code::NotAuthorized,
        ) => format!("{error} (check broker.username and broker.password)"),
        rumqttc::ConnectionError::Tls(_) => format!(
            "{error} (check that broker.ca_file is the CA that signed the broker's certificate, \
             and that the broker URL's host is a name in that certificate)"
        ),
        _ => error.to_string(),
    }
}

impl Transport for MqttTransport {
    async fn connect(&mut self) -> Result<Session, TransportError> {
        // Stale reports of the previous connection are of no use now.
        while self.events.try_recv().is_ok() {}
        self.connect_tx
            .send(())
            .await
            .map_err(|_| TransportError::Connect("MQTT event loop stopped".into()))?;
        loop {
            match self.events.recv().await {
                Some(LoopEvent::Connected { session_present }) => {
                    return Ok(Session { session_present });
                }
                Some(LoopEvent::ConnectFailed(e) | LoopEvent::Lost(e)) => {
                    return Err(TransportError::Connect(e));
                }
                Some(LoopEvent::Acked(_)) => {}
                None => return Err(TransportError::Connect("MQTT event loop stopped".into())),
            }
        }
    }

    fn publish(&mut self, message: Message) -> Result<PublishId, TransportError> {
        self.next_id += 1;
        let id = self.next_id;
        // Under the FIFO lock, so the event loop cannot clear between push and send.
        let mut fifo = lock(&self.fifo);
        fifo.queued.push_back(id);
        if let Err(e) = self.client.try_publish(
            message.topic,
            QoS::AtLeastOnce,
            message.retain,
            message.payload,
        ) {
            fifo.queued.pop_back();
            return Err(TransportError::Publish(e.to_string()));
        }
        Ok(id)
    }

    async fn next_event(&mut self) -> Result<TransportEvent, TransportError> {
        loop {
            match self.events.recv().await {
                Some(LoopEvent::Acked(id)) => return Ok(TransportEvent::Acked(id)),
                Some(LoopEvent::Lost(e) | LoopEvent::ConnectFailed(e)) => {
                    return Err(TransportError::ConnectionLost(e));
                }
                Some(LoopEvent::Connected { .. }) => {}
                None => {
                    return Err(TransportError::ConnectionLost(
                        "MQTT event loop stopped".into(),
                    ));
                }
            }
        }
    }

    async fn disconnect(&mut self) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        // Wait (briefly) until the DISCONNECT is written.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(event) = self.events.recv().await {
                if matches!(event, LoopEvent::Lost(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tls(ca_file: PathBuf) -> TlsConfig {
        TlsConfig {
            ca_file,
            client_cert_file: None,
            client_key_file: None,
        }
    }

    #[test]
    fn tls_errors_name_the_file() {
        let err = tls_config(&tls("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = std::env::temp_dir().join(format!("dwell-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = tls_config(&tls(empty)).unwrap_err();
        assert!(
            err.to_string().contains("no certificate in CA file"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn builds_without_io_and_fails_to_connect_clearly() {
        // Nothing listens on port 1 of loopback: connect fails with an error, not a hang or panic.
        let config = UplinkConfig {
            port: 1,
            connect_timeout_s: 2,
            ..UplinkConfig::new("store-001", "gw-1")
        };
        let mut transport = MqttTransport::new(&config).unwrap();
        let err = transport.connect().await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err}");
        // A second attempt works the same (the event loop waits for the next connect).
        assert!(transport.connect().await.is_err());
    }
}

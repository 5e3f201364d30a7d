//! The seam between the forwarder's state machine and MQTT: a small [`Transport`] trait with the
//! four things the forwarder needs (connect, publish at QoS 1, the next PubAck, disconnect). The
//! product implements it over rumqttc ([`super::mqtt::MqttTransport`]); tests drive the state
//! machine through the scripted [`super::fake::FakeTransport`] instead, with paused time, so
//! outages, slow acks and reconnect storms are reproducible without a broker.

use std::future::Future;

/// Our id for one publish, unique for the life of a transport (never a reused MQTT packet id).
pub type PublishId = u64;

/// One QoS 1 publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// What a successful connect learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The broker kept our session (clean_session = false and it remembered us).
    pub session_present: bool,
}

/// What a connected transport reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// The broker's PubAck for this publish arrived: it is delivered to the broker.
    Acked(PublishId),
}

/// Why the transport can't go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("could not connect to the broker: {0}")]
    Connect(String),
    #[error("connection to the broker lost: {0}")]
    ConnectionLost(String),
    #[error("not connected")]
    NotConnected,
    #[error("could not queue a publish: {0}")]
    Publish(String),
}

/// An MQTT connection the forwarder can drive. Every publish is QoS 1.
///
/// After a [`TransportError`] from `next_event` (or `publish`), the connection is gone and every
/// publish not yet acked is forgotten by the transport (it will not retransmit them): the
/// forwarder resends from the outbox after the next `connect`. Owning retransmission in one
/// place keeps the "delete only on PubAck" bookkeeping exact.
pub trait Transport: Send {
    /// Connects (once; the caller owns backoff). Resolves on the broker's ConnAck.
    fn connect(&mut self) -> impl Future<Output = Result<Session, TransportError>> + Send;

    /// Queues one QoS 1 publish and returns its id; does not wait for the network. Queuing is
    /// not delivery: only [`TransportEvent::Acked`] is.
    fn publish(&mut self, message: Message) -> Result<PublishId, TransportError>;

    /// The next event of the live connection. Must be cancel-safe (it is used in `select!`).
    fn next_event(&mut self)
    -> impl Future<Output = Result<TransportEvent, TransportError>> + Send;

    /// Sends DISCONNECT (so the broker does not publish the last will) and closes.
    fn disconnect(&mut self) -> impl Future<Output = ()> + Send;
}

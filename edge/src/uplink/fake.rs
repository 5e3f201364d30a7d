//! A scripted, in-memory broker for the forwarder's state-machine tests (and anyone else's): the
//! test holds a [`FakeBroker`] handle and decides when connects succeed, when PubAcks arrive and
//! when the connection drops, while the forwarder owns the [`FakeTransport`]. Deterministic and
//! timer-free, so it runs under `tokio::time::pause()`.

use std::sync::{Arc, Mutex};

use dwell_shared::wire::{EventBatch, GatewayStatus};
use tokio::sync::Notify;

use super::transport::{Message, PublishId, Session, Transport, TransportError, TransportEvent};

/// One publish the fake broker received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub id: PublishId,
    /// Which connection (1 = the first successful connect) carried it.
    pub connection: u64,
    pub message: Message,
}

#[derive(Debug, Default)]
struct Inner {
    /// Connects succeed while up.
    up: bool,
    /// Ack every publish as soon as it arrives.
    auto_ack: bool,
    /// Current connection number; 0 while disconnected.
    connection: u64,
    connections: u64,
    connect_attempts: Vec<tokio::time::Instant>,
    next_id: PublishId,
    log: Vec<Published>,
    /// Publishes of the current connection not yet acked, in arrival order.
    unacked: Vec<PublishId>,
    /// Acks to deliver on the current connection.
    acks: std::collections::VecDeque<PublishId>,
    /// The connection was cut; the transport reports it once.
    cut: bool,
}

/// The test's side: scripts the broker.
#[derive(Clone, Debug, Default)]
pub struct FakeBroker {
    inner: Arc<Mutex<Inner>>,
    wake: Arc<Notify>,
}

/// The forwarder's side.
#[derive(Debug)]
pub struct FakeTransport {
    broker: FakeBroker,
}

impl FakeTransport {
    /// A transport and the handle that scripts it. The broker starts up, acking nothing.
    pub fn new() -> (FakeTransport, FakeBroker) {
        let broker = FakeBroker::default();
        broker.lock().up = true;
        (
            FakeTransport {
                broker: broker.clone(),
            },
            broker,
        )
    }
}

impl FakeBroker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether connects succeed.
    pub fn set_up(&self, up: bool) {
        self.lock().up = up;
    }

    /// Ack every publish on arrival (and everything pending now).
    pub fn set_auto_ack(&self, on: bool) {
        let mut inner = self.lock();
        inner.auto_ack = on;
        if on {
            let pending: Vec<_> = inner.unacked.drain(..).collect();
            inner.acks.extend(pending);
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Acks the oldest `n` unacked publishes of the current connection.
    pub fn ack_oldest(&self, n: usize) {
        let mut inner = self.lock();
        let n = n.min(inner.unacked.len());
        let acked: Vec<_> = inner.unacked.drain(..n).collect();
        inner.acks.extend(acked);
        drop(inner);
        self.wake.notify_one();
    }

    /// Acks these publishes (any order).
    pub fn ack(&self, ids: &[PublishId]) {
        let mut inner = self.lock();
        inner.unacked.retain(|id| !ids.contains(id));
        inner.acks.extend(ids);
        drop(inner);
        self.wake.notify_one();
    }

    /// Drops the connection (unacked publishes are lost with it) and refuses connects until
    /// [`FakeBroker::set_up`]`(true)`.
    pub fn cut(&self) {
        let mut inner = self.lock();
        inner.up = false;
        if inner.connection != 0 {
            inner.cut = true;
        }
        inner.connection = 0;
        inner.unacked.clear();
        inner.acks.clear();
        drop(inner);
        self.wake.notify_one();
    }

    /// Every publish received, in order.
    pub fn published(&self) -> Vec<Published> {
        self.lock().log.clone()
    }

    /// Publish ids of the current connection not yet acked.
    pub fn unacked(&self) -> Vec<PublishId> {
        self.lock().unacked.clone()
    }

    /// Event-batch publish ids of the current connection not yet acked (status publishes left
    /// out).
    pub fn unacked_batches(&self) -> Vec<PublishId> {
        let inner = self.lock();
        inner
            .unacked
            .iter()
            .copied()
            .filter(|id| {
                inner
                    .log
                    .iter()
                    .any(|p| p.id == *id && p.message.topic.ends_with("/events"))
            })
            .collect()
    }

    /// The event batches received, in order.
    pub fn batches(&self) -> Vec<EventBatch> {
        self.published()
            .iter()
            .filter(|p| p.message.topic.ends_with("/events"))
            .map(|p| serde_json::from_slice(&p.message.payload).expect("fake: batch payload"))
            .collect()
    }

    /// The status messages received, in order.
    pub fn statuses(&self) -> Vec<GatewayStatus> {
        self.published()
            .iter()
            .filter(|p| p.message.topic.ends_with("/status"))
            .map(|p| serde_json::from_slice(&p.message.payload).expect("fake: status payload"))
            .collect()
    }

    /// When each connect attempt happened (for backoff tests).
    pub fn connect_attempts(&self) -> Vec<tokio::time::Instant> {
        self.lock().connect_attempts.clone()
    }

    /// Successful connects so far.
    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.lock().connection != 0
    }
}

impl Transport for FakeTransport {
    async fn connect(&mut self) -> Result<Session, TransportError> {
        let mut inner = self.broker.lock();
        inner.connect_attempts.push(tokio::time::Instant::now());
        if !inner.up {
            return Err(TransportError::Connect("fake broker is down".into()));
        }
        inner.connections += 1;
        inner.connection = inner.connections;
        inner.cut = false;
        Ok(Session {
            session_present: inner.connections > 1,
        })
    }

    fn publish(&mut self, message: Message) -> Result<PublishId, TransportError> {
        let mut inner = self.broker.lock();
        if inner.connection == 0 {
            return Err(TransportError::NotConnected);
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let connection = inner.connection;
        inner.log.push(Published {
            id,
            connection,
            message,
        });
        if inner.auto_ack {
            inner.acks.push_back(id);
            drop(inner);
            self.broker.wake.notify_one();
        } else {
            inner.unacked.push(id);
        }
        Ok(id)
    }

    async fn next_event(&mut self) -> Result<TransportEvent, TransportError> {
        loop {
            // Register for a wake-up before looking, so a notify in between is not missed.
            let woken = self.broker.wake.notified();
            {
                let mut inner = self.broker.lock();
                if inner.cut {
                    inner.cut = false;
                    return Err(TransportError::ConnectionLost("fake broker cut".into()));
                }
                if inner.connection == 0 {
                    return Err(TransportError::NotConnected);
                }
                if let Some(id) = inner.acks.pop_front() {
                    return Ok(TransportEvent::Acked(id));
                }
            }
            woken.await;
        }
    }

    async fn disconnect(&mut self) {
        self.broker.lock().connection = 0;
    }
}

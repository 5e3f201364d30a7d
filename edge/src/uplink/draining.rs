//! `Draining`: shutdown was asked for. Send nothing new; wait up to `drain_timeout_ms` for the
//! PubAcks in flight (each one deletes its records); publish the retained `offline` status (a
//! clean DISCONNECT suppresses the last will, so we say it ourselves); disconnect. Whatever is
//! still unacked stays in the outbox for the next start.

use std::time::Duration;

use dwell_shared::wire::{GatewayState, GatewayStatus};

use super::{Next, Transport, TransportEvent, Uplink, UplinkState, now_ms};
use crate::outbox::Outbox;

impl<O: Outbox, T: Transport> Uplink<O, T> {
    pub(super) async fn draining(&mut self) -> Next {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.drain_timeout_ms);
        let status = GatewayStatus {
            backlog: Some(self.outbox.stats().records),
            ..GatewayStatus::new(
                &self.config.store,
                &self.config.gateway,
                GatewayState::Offline,
                now_ms(),
            )
        };
        let mut status_id = self.publish_status(&status).ok();
        while !self.inflight.is_empty() || status_id.is_some() {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        inflight = self.inflight.len(),
                        "uplink: drain timed out; unacked events stay in the outbox and go after restart"
                    );
                    break;
                }
                event = self.transport.next_event() => match event {
                    Ok(TransportEvent::Acked(id)) if status_id == Some(id) => status_id = None,
                    Ok(event) => {
                        if let Err(super::Stop::Fatal(e)) = self.on_event(event) {
                            return Err(e);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "uplink: connection lost while draining");
                        break;
                    }
                },
            }
        }
        self.stats.abandoned_batches += self.inflight.len() as u64;
        self.inflight.clear();
        self.transport.disconnect().await;
        Ok(UplinkState::Stopped)
    }
}

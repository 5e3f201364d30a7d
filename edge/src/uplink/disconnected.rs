//! `Disconnected`: connect with capped exponential backoff; on ConnAck announce `online` and pick
//! `Live` or `CatchUp` by whether the outbox holds records.

use tokio_util::sync::CancellationToken;

use super::{Next, Transport, Uplink, UplinkState};
use crate::outbox::Outbox;

impl<O: Outbox, T: Transport> Uplink<O, T> {
    pub(super) async fn disconnected(&mut self, shutdown: &CancellationToken) -> Next {
        loop {
            tokio::select! {
                biased;
                // Nothing is in flight while disconnected: nothing to drain.
                () = shutdown.cancelled() => return Ok(UplinkState::Stopped),
                result = self.transport.connect() => match result {
                    Ok(session) => {
                        tracing::debug!(session_present = session.session_present, "uplink: ConnAck");
                        return self.on_connected();
                    }
                    Err(error) => {
                        self.stats.connect_failures += 1;
                        self.publish_stats();
                        tracing::warn!(
                            %error,
                            retry_in_ms = self.backoff.as_millis() as u64,
                            host = %self.config.host,
                            port = self.config.port,
                            "uplink: broker unreachable; events wait in the outbox"
                        );
                    }
                },
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(UplinkState::Stopped),
                () = tokio::time::sleep(self.backoff) => {}
            }
            self.backoff = (self.backoff * 2).min(self.config.backoff_max());
        }
    }
}

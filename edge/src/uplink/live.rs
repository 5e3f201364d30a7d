//! `Live`: no backlog; send records as they are appended, up to `max_inflight` batches in flight.

use tokio_util::sync::CancellationToken;

use super::{Next, Transport, Uplink, UplinkState};
use crate::outbox::Outbox;

impl<O: Outbox, T: Transport> Uplink<O, T> {
    pub(super) async fn live(&mut self, shutdown: &CancellationToken) -> Next {
        loop {
            if let Err(stop) = self.fill_window(false) {
                return self.stopped(stop);
            }
            if self.demote_lagging_live() {
                return Ok(UplinkState::CatchUp);
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(UplinkState::Draining),
                event = self.transport.next_event() => {
                    if let Err(stop) = event.map_err(Into::into).and_then(|e| self.on_event(e)) {
                        return self.stopped(stop);
                    }
                }
                changed = self.appended.changed() => {
                    // The outbox is gone (the producer side shut down first): drain.
                    if changed.is_err() {
                        return Ok(UplinkState::Draining);
                    }
                }
            }
        }
    }
}

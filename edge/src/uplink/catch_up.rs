//! `CatchUp` ("backlogged"): connected with a backlog. Live batches go first, but after every
//! `live_batches_per_backlog` of them at least one backlog batch goes, and when live is idle the
//! backlog gets the whole window. When every backlog record has been sent, back to `Live` (the
//! acks still in flight are handled there).

use tokio_util::sync::CancellationToken;

use super::{Next, Transport, Uplink, UplinkState};
use crate::outbox::Outbox;

impl<O: Outbox, T: Transport> Uplink<O, T> {
    pub(super) async fn catch_up(&mut self, shutdown: &CancellationToken) -> Next {
        loop {
            if let Err(stop) = self.fill_window(true) {
                return self.stopped(stop);
            }
            if !self.has_backlog() {
                tracing::info!("uplink: backlog sent; live");
                return Ok(UplinkState::Live);
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
                    if changed.is_err() {
                        return Ok(UplinkState::Draining);
                    }
                }
            }
        }
    }
}

//! A room with a simulated caller in it (the `simulate` caller, speaking its recorded lines): the
//! [`RoomIo`] for running the worker end to end without a media server (tests, `--simulated-caller`).

use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::loopback::LoopbackRoom;
use frontdesk_actors::provider::{JoinRequest, RoomError, RoomIo, RoomLink};

use super::caller::{Caller, CallerConfig};
use super::clips::Clips;

#[derive(Clone, Debug)]
pub struct SimulatedCallerRoom {
    clips: Arc<Clips>,
    caller: CallerConfig,
}

impl SimulatedCallerRoom {
    pub fn new(clips: Arc<Clips>, caller: CallerConfig) -> Self {
        Self { clips, caller }
    }
}

#[async_trait]
impl RoomIo for SimulatedCallerRoom {
    fn name(&self) -> &'static str {
        "simulated-caller"
    }

    async fn join(&self, req: JoinRequest) -> Result<RoomLink, RoomError> {
        let (end, mut link) = LoopbackRoom::pair(32);
        // As the real room's Opus track: the TTS's own rate goes out as it is.
        link.output_rates = &crate::room::OPUS_RATES_PREFERRED;
        let closed = end.events.clone();
        let caller = Caller::new(end, Arc::clone(&self.clips), self.caller.clone());
        let room = req.room;
        tokio::spawn(async move {
            // The caller stops talking when the agent's side of the room is gone (hang-up,
            // termination), not only when its own script ends.
            tokio::select! {
                stats = caller.run() => tracing::debug!(%room, lines = stats.lines, "simulated caller hung up"),
                _ = closed.closed() => tracing::debug!(%room, "simulated caller's room closed"),
            }
        });
        Ok(link)
    }
}

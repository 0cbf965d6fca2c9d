//! The LiveKit room transport, in pure Rust: the official SDK's signal client
//! (`livekit-signaling`), webrtc-rs peer connections and libopus. It joins a room with the job's
//! token, subscribes to the caller's audio (decoded straight to the pipeline rate), publishes the
//! agent's audio as a microphone track (Opus, 20 ms, DTX), follows the participants, recovers
//! from signal and network blips (resume, ICE restart, rejoin) and leaves when the call ends.
//!
//! Queues of a joined room (each bounded; drops counted in `frontdesk_edge_dropped_items_total`):
//!
//! | queue | carries | bound | when full |
//! |---|---|---|---|
//! | `room_link_audio` (transport → call) | decoded caller audio | `room.inbound_queue` packets | newest dropped, counted |
//! | room events (transport → call) | participant/connection events | 16 | sender waits (low rate, read first) |
//! | `room_output` (call → peer connection) | agent RTP | webrtc's 256-packet driver queue | frame dropped after `room.send_timeout_ms`, counted |
//! | peer connection events (webrtc → session) | candidates, states, tracks | 64 | webrtc's handler waits |
//! | `room_data` (call → session) | transcript segments, turn metrics | 32 | newest dropped, counted |
//! | `room_data_channel` (session → data channel) | encoded packets, while the channel opens | 64 | newest dropped, counted |
//! | caller track (webrtc → reader) | RTP packets | webrtc's 256 | dropped by webrtc, seen as loss |

pub mod codec;
pub mod config;
pub mod data;
pub mod error;
mod inbound;
pub mod metrics;
mod outbound;
mod peer;
mod roster;
mod session;
pub mod stats;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::provider::room::RoomDataOut;
use frontdesk_actors::provider::{JoinRequest, RoomError, RoomIo, RoomLink, StayGuard};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use config::RoomConfig;
pub use error::TransportError;
pub use stats::{LinkSnapshot, LinkStats};

use codec::OPUS_RATES;
use outbound::AgentOutput;
use roster::Party;
use session::{LinkEnds, Session};

/// Control events queued towards the call.
const EVENTS_QUEUE: usize = frontdesk_actors::call::ports::ROOM_EVENTS.fixed_bound();
/// Transcript segments and turn metrics queued from the call (a few per turn).
const DATA_QUEUE: usize = frontdesk_actors::call::ports::ROOM_DATA.fixed_bound();

/// Joins LiveKit rooms as the agent (or, for `loadtest`, as a caller talking to an agent).
#[derive(Clone, Debug)]
pub struct LiveKitRoom {
    cfg: Arc<RoomConfig>,
    party: Party,
}

/// A joined room plus its media counters (for `loadtest` and tests).
pub struct Joined {
    pub link: RoomLink,
    pub stats: Arc<LinkStats>,
}

impl LiveKitRoom {
    pub fn new(cfg: RoomConfig) -> Self {
        wire::install();
        Self {
            cfg: Arc::new(cfg),
            party: Party::Caller,
        }
    }

    /// The caller's side: the party is the first agent in the room that publishes audio
    /// (`loadtest` callers, tests).
    pub fn caller_side(cfg: RoomConfig) -> Self {
        wire::install();
        Self {
            cfg: Arc::new(cfg),
            party: Party::Agent,
        }
    }

    /// Join, keeping the media counters.
    pub async fn join_with_stats(&self, req: JoinRequest) -> Result<Joined, TransportError> {
        let began = Instant::now();
        let (audio, audio_rx) = mpsc::channel(self.cfg.inbound_queue.max(1));
        let (events, events_rx) = mpsc::channel(EVENTS_QUEUE);
        let (mic, mic_rx) = watch::channel(None);
        let (stay_tx, stay) = oneshot::channel::<()>();
        let (data, data_rx) = RoomDataOut::channel(DATA_QUEUE);
        let stats = Arc::new(LinkStats::default());
        let ends = LinkEnds {
            audio,
            events,
            mic,
            stay,
            stats: Arc::clone(&stats),
            data: data_rx,
        };
        let start = Session::start(Arc::clone(&self.cfg), self.party, req, ends);
        // Past the deadline the join is dropped with the link's ends: the session sees them
        // closed and leaves the room on its own.
        let result = match tokio::time::timeout(self.cfg.media_timeout(), start).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout(
                "joining the room (signal, peer connections, microphone)",
            )),
        };
        if let Err(e) = result {
            metrics::join(e.label(), began.elapsed());
            return Err(e);
        }
        metrics::join("ok", began.elapsed());
        let output = AgentOutput::new(
            mic_rx,
            self.cfg.encoder(),
            Arc::clone(&stats),
            self.cfg.send_timeout(),
        );
        let link = RoomLink {
            audio: audio_rx,
            events: events_rx,
            output: Box::new(output),
            output_rates: &OPUS_RATES_PREFERRED,
            stay: Some(StayGuard::new(stay_tx)),
            data: Some(data),
        };
        Ok(Joined { link, stats })
    }
}

/// Agent audio is encoded at the TTS's own rate when Opus takes it; otherwise resampled to 48 kHz.
pub static OPUS_RATES_PREFERRED: [u32; 5] = {
    let r = OPUS_RATES;
    [r[4], r[3], r[2], r[1], r[0]]
};

#[async_trait]
impl RoomIo for LiveKitRoom {
    fn name(&self) -> &'static str {
        "livekit-webrtc"
    }

    async fn join(&self, req: JoinRequest) -> Result<RoomLink, RoomError> {
        let room = req.room.clone();
        match self.join_with_stats(req).await {
            Ok(j) => Ok(j.link),
            Err(e) => {
                tracing::warn!(room = %frontdesk_actors::provider::room::room_tag(&room), error = %e, kind = e.label(), "could not join the room");
                Err(e.into_room_error(&room))
            }
        }
    }
}

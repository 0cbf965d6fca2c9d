//! Room media: caller audio in, agent audio out, participant events. One seam for "a joined
//! room": the LiveKit WebRTC transport and the simulated caller both implement [`RoomIo`].

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::audio::{AudioFrame, ROOM_RATE};

/// Participant and connection events of a joined room. They travel on a path of their own
/// ([`RoomLink::events`]), so a hang-up never waits behind queued audio.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomEvent {
    /// The caller (the participant the call is with) is in the room.
    ParticipantJoined { identity: String },
    /// The caller left: the call is over.
    ParticipantLeft { identity: String },
    /// The caller muted or unmuted their microphone.
    CallerMuted { muted: bool },
    /// The caller unpublished their audio track (another may follow).
    TrackUnpublished { identity: String },
    /// No caller audio arrived within the room's timeout: the agent says so and ends the call.
    NoCallerAudio,
    /// The media connection is being recovered (resume, ICE restart, rejoin); audio may pause.
    Reconnecting { reason: String },
    /// The media connection is back.
    Reconnected,
    /// The media connection is gone for good.
    Disconnected { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("could not join room {room}: {reason}")]
    Join { room: String, reason: String },
    #[error("room connection closed")]
    Closed,
    #[error("room transport error: {0}")]
    Transport(String),
}

impl RoomError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, RoomError::Transport(_))
    }
}

/// The agent's audio track.
#[async_trait]
pub trait AgentAudioOut: Send + 'static {
    /// One 20 ms frame, at one of [`RoomLink::output_rates`] (else it is resampled before), sent
    /// when it is due for playout.
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError>;

    /// Playout stopped in the middle of a sound (the caller talked over the agent, the reply
    /// was cancelled, TTS fell behind). A codec transport ends the talkspurt on silence here:
    /// otherwise the far end conceals the missing packets, stretching the last sound for about
    /// 100 ms after the agent went quiet. Nothing to do where frames carry no codec state.
    async fn pause(&mut self) -> Result<(), RoomError> {
        Ok(())
    }
}

/// A joined room: caller audio, events, and the agent's outbound track.
pub struct RoomLink {
    /// Caller audio, any chunk size, at the rate the transport delivers (LiveKit decodes Opus
    /// straight to the pipeline's 16 kHz).
    pub audio: mpsc::Receiver<AudioFrame>,
    /// Participant and connection events, on their own path.
    pub events: mpsc::Receiver<RoomEvent>,
    pub output: Box<dyn AgentAudioOut>,
    /// Rates the output takes as they are, preferred first: agent audio at another rate is
    /// resampled to the first. An Opus track takes the TTS's own rate, saving a resampler.
    pub output_rates: &'static [u32],
    /// Keeps the agent in the room after the call ends, until dropped: whoever reports the
    /// call's end (the worker's job status) takes it out and drops it after reporting, so the
    /// server does not see the agent leave first. Left in the link, it goes with the call.
    pub stay: Option<StayGuard>,
    /// Transcript and turn metrics for the room's other participants (the playground, any
    /// LiveKit client); `None` where nobody can see them (doubles, simulation).
    pub data: Option<RoomDataOut>,
}

/// Who spoke a transcript segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker {
    Caller,
    Agent,
}

/// One transcript segment. Its text is patient data: `Debug` shows its length only.
#[derive(Clone, PartialEq)]
pub struct Segment {
    pub speaker: Speaker,
    /// Unique within the call (`turn-3-caller`, `turn-3-agent`).
    pub id: String,
    pub text: String,
    pub is_final: bool,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("speaker", &self.speaker)
            .field("id", &self.id)
            .field("chars", &self.text.chars().count())
            .field("is_final", &self.is_final)
            .finish()
    }
}

/// One agent reply's latencies (no patient data), published as JSON on `frontdesk.turn`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TurnMetrics {
    pub turn: u32,
    pub latency_ms: Option<f64>,
    pub llm_ttft_ms: Option<f64>,
    pub tts_ttfb_ms: Option<f64>,
    pub interrupted: bool,
}

/// What the agent publishes into the room besides audio.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomData {
    Transcript(Segment),
    Turn(TurnMetrics),
}

/// Edge name of the call → transport data queue (in `frontdesk_edge_dropped_items_total`).
pub const EDGE_ROOM_DATA: &str = "room_data";

/// The call's end of the room data queue: bounded, and never awaited (a full queue drops the
/// newest item, counted), so publishing can never hold up a turn or the audio.
#[derive(Clone, Debug)]
pub struct RoomDataOut {
    tx: mpsc::Sender<RoomData>,
}

impl RoomDataOut {
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<RoomData>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    pub fn publish(&self, item: RoomData) {
        use crate::edge::DropReason;
        let reason = match self.tx.try_send(item) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => DropReason::Overflow,
            Err(mpsc::error::TrySendError::Closed(_)) => DropReason::Closed,
        };
        crate::metrics::edge_dropped(EDGE_ROOM_DATA, reason, 1);
    }
}

/// See [`RoomLink::stay`].
pub struct StayGuard {
    /// Dropped with the guard: that is the signal.
    _held: Box<dyn Send + Sync>,
}

impl StayGuard {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for StayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StayGuard")
    }
}

impl std::fmt::Debug for RoomLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomLink")
            .field("output_rates", &self.output_rates)
            .finish_non_exhaustive()
    }
}

/// The room output's rate for agent audio synthesised at `rate`.
pub fn output_rate(rates: &[u32], rate: u32) -> u32 {
    if rates.contains(&rate) {
        rate
    } else {
        rates.first().copied().unwrap_or(ROOM_RATE)
    }
}

/// How logs name a room: a keyed hash, stable within the process so lines of one room correlate.
/// Not the name: phone rooms are usually named after the caller's number (patient data), and an
/// unkeyed hash of a phone number is reversed by trying every number.
pub fn room_tag(room: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEY
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    h.write(room.as_bytes());
    format!("r-{:08x}", h.finish() as u32)
}

/// What joining a room takes.
#[derive(Clone, Default)]
pub struct JoinRequest {
    /// Server URL (ws(s):// or http(s)://).
    pub url: String,
    /// Room join token (a secret: never logged).
    pub token: String,
    pub room: String,
    /// The participant the call is with, when the job names one; otherwise the first remote
    /// participant that publishes audio.
    pub caller: Option<String>,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .field("room", &room_tag(&self.room))
            .field("caller", &self.caller.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Joins rooms: the LiveKit WebRTC transport in production, a simulated caller in simulation
/// and tests.
#[async_trait]
pub trait RoomIo: Send + Sync + 'static {
    /// For logs and `/worker`.
    fn name(&self) -> &'static str;
    async fn join(&self, req: JoinRequest) -> Result<RoomLink, RoomError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_data_never_waits_and_a_full_queue_drops_the_newest() {
        let (out, mut rx) = RoomDataOut::channel(1);
        let seg = |id: &str| {
            RoomData::Transcript(Segment {
                speaker: Speaker::Caller,
                id: id.into(),
                text: "my birthday is 1 May 1970".into(),
                is_final: true,
            })
        };
        out.publish(seg("a"));
        out.publish(seg("b"));
        match rx.try_recv() {
            Ok(RoomData::Transcript(s)) => assert_eq!(s.id, "a"),
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err(), "the newest was dropped");
        let shown = format!("{:?}", seg("c"));
        assert!(!shown.contains("1970"), "{shown}");
        drop(rx);
        out.publish(seg("d"));
    }

    #[test]
    fn room_tags_correlate_without_naming_the_room() {
        let phone_room = "call-_+15551234567_aBcD";
        let tag = room_tag(phone_room);
        assert_eq!(tag, room_tag(phone_room), "stable within the process");
        assert_ne!(tag, room_tag("call-_+15551234568_aBcD"));
        assert!(
            tag.starts_with("r-") && !tag.contains("5551234567"),
            "{tag}"
        );
        let req = JoinRequest {
            room: phone_room.into(),
            caller: Some("sip_+15551234567".into()),
            ..Default::default()
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("5551234567"), "{shown}");
    }
}

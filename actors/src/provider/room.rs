//! Room media: caller audio in, agent audio out, participant events.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::audio::AudioFrame;

#[derive(Clone, Debug, PartialEq)]
pub enum RoomEvent {
    /// Caller audio, any chunk size, at the room rate (48 kHz for LiveKit).
    CallerAudio(AudioFrame),
    ParticipantJoined {
        identity: String,
    },
    ParticipantLeft {
        identity: String,
    },
    /// The media connection is gone.
    Disconnected {
        reason: String,
    },
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
    /// One 20 ms frame at the room rate, sent when it is due for playout.
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError>;
}

/// A joined room: inbound events and the agent's outbound track.
pub struct RoomLink {
    pub events: mpsc::Receiver<RoomEvent>,
    pub output: Box<dyn AgentAudioOut>,
}

impl std::fmt::Debug for RoomLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomLink").finish_non_exhaustive()
    }
}

/// Joins rooms. LiveKit in production; a simulated caller in simulation and tests.
#[async_trait]
pub trait RoomIo: Send + Sync + 'static {
    async fn join(&self, room: &str) -> Result<RoomLink, RoomError>;
}

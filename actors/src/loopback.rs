//! A room made of channels: the console, the simulated callers and tests push caller audio and
//! events and read the agent's frames, with no network in between. A real transport (the console
//! and `simulate` run calls on it), so it lives beside the traits and not among the test doubles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::audio::{AudioFrame, ROOM_RATE};
use crate::provider::{AgentAudioOut, RoomError, RoomEvent, RoomLink};

/// The caller's end of a loopback room.
#[derive(Debug)]
pub struct RoomEnd {
    /// Caller audio to the agent.
    pub audio: mpsc::Sender<AudioFrame>,
    /// Participant events to the agent (their own path: never behind audio).
    pub events: mpsc::Sender<RoomEvent>,
    pub from_agent: mpsc::Receiver<AudioFrame>,
    /// Times the agent's playout stopped mid-sound (where a codec transport ends the sound on
    /// silence); frames carry no codec state here, so nothing else happens.
    pub pauses: Arc<AtomicU64>,
}

impl RoomEnd {
    /// The caller hangs up.
    pub async fn leave(&self, identity: &str) {
        let left = RoomEvent::ParticipantLeft {
            identity: identity.to_owned(),
        };
        let _ = self.events.send(left).await;
    }
}

struct ChannelOut {
    frames: mpsc::Sender<AudioFrame>,
    pauses: Arc<AtomicU64>,
}

#[async_trait]
impl AgentAudioOut for ChannelOut {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError> {
        self.frames.send(frame).await.map_err(|_| RoomError::Closed)
    }

    async fn pause(&mut self) -> Result<(), RoomError> {
        self.pauses.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

pub struct LoopbackRoom;

impl LoopbackRoom {
    /// A connected pair. `capacity` bounds the audio in each direction (in frames).
    pub fn pair(capacity: usize) -> (RoomEnd, RoomLink) {
        let (audio, audio_rx) = mpsc::channel(capacity);
        let (events, events_rx) = mpsc::channel(16);
        let (out_tx, from_agent) = mpsc::channel(capacity);
        let pauses = Arc::new(AtomicU64::new(0));
        let output = ChannelOut {
            frames: out_tx,
            pauses: Arc::clone(&pauses),
        };
        let link = RoomLink {
            audio: audio_rx,
            events: events_rx,
            output: Box::new(output),
            output_rates: &[ROOM_RATE],
            stay: None,
            data: None,
        };
        (
            RoomEnd {
                audio,
                events,
                from_agent,
                pauses,
            },
            link,
        )
    }
}

//! A room made of channels: the test (or simulated caller) pushes caller events and reads the
//! agent's frames.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::audio::AudioFrame;
use crate::provider::{AgentAudioOut, RoomError, RoomEvent, RoomLink};

/// The caller's end of a loopback room.
#[derive(Debug)]
pub struct RoomEnd {
    pub to_agent: mpsc::Sender<RoomEvent>,
    pub from_agent: mpsc::Receiver<AudioFrame>,
}

struct ChannelOut(mpsc::Sender<AudioFrame>);

#[async_trait]
impl AgentAudioOut for ChannelOut {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError> {
        self.0.send(frame).await.map_err(|_| RoomError::Closed)
    }
}

pub struct LoopbackRoom;

impl LoopbackRoom {
    /// A connected pair. `capacity` bounds both directions (in frames).
    pub fn pair(capacity: usize) -> (RoomEnd, RoomLink) {
        let (to_agent, events) = mpsc::channel(capacity);
        let (out_tx, from_agent) = mpsc::channel(capacity);
        let link = RoomLink {
            events,
            output: Box::new(ChannelOut(out_tx)),
        };
        (
            RoomEnd {
                to_agent,
                from_agent,
            },
            link,
        )
    }
}

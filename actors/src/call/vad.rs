//! VadActor: webrtc-vad over the room→vad edge. Speech start/end go to dialogue as events; the
//! frames of each utterance (with pre-roll) go on the vad→stt edge, closed by an end-of-speech mark.
//! Stateless across restarts by design: a new detector starts in silence.

use std::time::Duration;

use tokio::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};

pub use super::msg::VadMsg;
use super::msg::{Arrived, DialogueMsg, SttInput};
use super::ports::VadPorts;
use super::pump::{spawn_pump, TaskGuard};
use crate::vad::{VadDetector, VadEvent};

pub struct VadActor {
    pub ports: VadPorts,
}

pub struct VadState {
    _pump: TaskGuard,
}

impl Actor for VadActor {
    type Msg = VadMsg;
    type State = VadState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<VadMsg>,
        _: (),
    ) -> Result<VadState, ActorProcessingErr> {
        let detector = VadDetector::new(&self.ports.vad)?;
        Ok(VadState {
            _pump: spawn_pump(
                &myself,
                self.ports.call.media_key(),
                VadMsg::PumpExited,
                // No span around the per-frame loop (see room.rs); its lines name the call.
                run(self.ports.clone(), detector),
            ),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<VadMsg>,
        msg: VadMsg,
        _state: &mut VadState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // The edge closed: the call is ending.
            VadMsg::PumpExited(Ok(())) => {
                myself.stop(None);
                Ok(())
            }
            VadMsg::PumpExited(Err(e)) => Err(e.into()),
        }
    }
}

async fn run(ports: VadPorts, mut detector: VadDetector) -> Result<(), String> {
    let mut forward = Vec::with_capacity(32);
    let mut endpoint = Endpoint::new(ports.endpointing_delay);
    while let Some(Arrived { frame, arrived }) = ports.from_room.recv().await {
        if endpoint.frame(frame.duration()) {
            ports
                .dialogue
                .send(DialogueMsg::EndpointElapsed { at: Instant::now() });
        }
        let event = match detector.process(frame, &mut forward) {
            Ok(ev) => ev,
            Err(e) => {
                crate::metrics::input_rejected("vad", "bad_frame");
                tracing::debug!(call_id = %ports.call.call_id(), turn = ports.call.turn(), error = %e, "frame rejected by vad");
                continue;
            }
        };
        // Dialogue hears of speech before STT gets its audio, so barge-in timing starts early.
        if let Some(ev @ VadEvent::SpeechStarted { .. }) = &event {
            endpoint.cancel();
            ports.dialogue.send(DialogueMsg::Vad {
                ev: ev.clone(),
                at: arrived,
                lag: arrived.elapsed(),
            });
        }
        for f in forward.drain(..) {
            let _ = ports.to_stt.push(SttInput::Audio(f));
        }
        if let Some(ev @ VadEvent::SpeechEnded { .. }) = event {
            let _ = ports.to_stt.push(SttInput::EndOfSpeech);
            ports.dialogue.send(DialogueMsg::Vad {
                ev,
                at: arrived,
                lag: arrived.elapsed(),
            });
            if endpoint.start() {
                ports
                    .dialogue
                    .send(DialogueMsg::EndpointElapsed { at: Instant::now() });
            }
        }
    }
    Ok(())
}

/// Counts the endpointing delay on the audio clock: silence after a speech end, frame by frame, like
/// the hangover. The turn can then end on the frame that completes the delay, not on a timer tick.
struct Endpoint {
    delay: Duration,
    silence: Option<Duration>,
}

impl Endpoint {
    fn new(delay: Duration) -> Self {
        Self {
            delay,
            silence: None,
        }
    }

    /// Speech ended: start counting. True if the delay is zero (elapsed at once).
    fn start(&mut self) -> bool {
        if self.delay.is_zero() {
            return true;
        }
        self.silence = Some(Duration::ZERO);
        false
    }

    fn cancel(&mut self) {
        self.silence = None;
    }

    /// A frame went by; true on the frame that completes the delay.
    fn frame(&mut self, d: Duration) -> bool {
        let Some(s) = self.silence.as_mut() else {
            return false;
        };
        *s += d;
        if *s >= self.delay {
            self.silence = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;
    use std::time::Duration;

    #[test]
    fn endpoint_fires_once_on_the_completing_frame() {
        let f = Duration::from_millis(20);
        let mut e = Endpoint::new(Duration::from_millis(200));
        assert!(!e.frame(f), "not counting before a speech end");
        assert!(!e.start());
        let fired: Vec<bool> = (0..12).map(|_| e.frame(f)).collect();
        assert_eq!(fired.iter().position(|&x| x), Some(9));
        assert_eq!(fired.iter().filter(|&&x| x).count(), 1);
        e.start();
        e.frame(f);
        e.cancel();
        assert!((0..20).all(|_| !e.frame(f)), "new speech cancels the count");
        assert!(Endpoint::new(Duration::ZERO).start());
    }
}

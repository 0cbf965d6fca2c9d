//! VadActor: webrtc-vad over the room→vad edge. Speech start/end go to dialogue as events; the
//! frames of each utterance (with pre-roll) go on the vad→stt edge, closed by an end-of-speech mark.
//! Stateless across restarts by design: a new detector starts in silence.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::dialogue::DialogueMsg;
use super::pump::{spawn_pump, TaskGuard};
use super::replay::SttInput;
use super::room::Arrived;
use super::shared::CallShared;
use crate::vad::{VadDetector, VadEvent};

pub struct VadActor {
    pub shared: Arc<CallShared>,
}

pub struct VadState {
    _pump: TaskGuard,
}

#[derive(Debug)]
pub enum VadMsg {
    PumpExited(Result<(), String>),
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
        let detector = VadDetector::new(&self.shared.cfg.vad)?;
        Ok(VadState {
            _pump: spawn_pump(
                &myself,
                VadMsg::PumpExited,
                // No span around the per-frame loop (see room.rs); its lines name the call.
                run(Arc::clone(&self.shared), detector),
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

async fn run(shared: Arc<CallShared>, mut detector: VadDetector) -> Result<(), String> {
    let mut forward = Vec::with_capacity(32);
    let mut endpoint = Endpoint::new(shared.cfg.turn.endpointing_delay());
    while let Some(Arrived { frame, arrived }) = shared.room_to_vad.recv().await {
        if endpoint.frame(frame.duration()) {
            shared.to_dialogue(DialogueMsg::EndpointElapsed { at: Instant::now() });
        }
        let event = match detector.process(frame, &mut forward) {
            Ok(ev) => ev,
            Err(e) => {
                crate::metrics::input_rejected("vad", "bad_frame");
                tracing::debug!(call_id = %shared.call_id(), turn = shared.turn(), error = %e, "frame rejected by vad");
                continue;
            }
        };
        // Dialogue hears of speech before STT gets its audio, so barge-in timing starts early.
        if let Some(ev @ VadEvent::SpeechStarted { .. }) = &event {
            endpoint.cancel();
            shared.to_dialogue(DialogueMsg::Vad {
                ev: ev.clone(),
                at: arrived,
                lag: arrived.elapsed(),
            });
        }
        for f in forward.drain(..) {
            let _ = shared.vad_to_stt.push(SttInput::Audio(f));
        }
        if let Some(ev @ VadEvent::SpeechEnded { .. }) = event {
            let _ = shared.vad_to_stt.push(SttInput::EndOfSpeech);
            shared.to_dialogue(DialogueMsg::Vad {
                ev,
                at: arrived,
                lag: arrived.elapsed(),
            });
            if endpoint.start() {
                shared.to_dialogue(DialogueMsg::EndpointElapsed { at: Instant::now() });
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

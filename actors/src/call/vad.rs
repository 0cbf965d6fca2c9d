//! VadActor: webrtc-vad over the room→vad edge. Speech start/end go to dialogue as events; the
//! frames of each utterance (with pre-roll) go on the vad→stt edge, closed by an end-of-speech mark.
//! Stateless across restarts by design: a new detector starts in silence.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use super::dialogue::DialogueMsg;
use super::pump::{spawn_pump, TaskGuard};
use super::replay::SttInput;
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
                run(Arc::clone(&self.shared), detector).instrument(self.shared.span.clone()),
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
    while let Some(frame) = shared.room_to_vad.recv().await {
        let event = match detector.process(frame, &mut forward) {
            Ok(ev) => ev,
            Err(e) => {
                crate::metrics::input_rejected("vad", "bad_frame");
                tracing::debug!(call_id = %shared.call_id(), error = %e, "frame rejected by vad");
                continue;
            }
        };
        // Dialogue hears of speech before STT gets its audio, so barge-in timing starts early.
        if let Some(ev @ VadEvent::SpeechStarted { .. }) = &event {
            shared.to_dialogue(DialogueMsg::Vad(ev.clone()));
        }
        for f in forward.drain(..) {
            let _ = shared.vad_to_stt.push(SttInput::Audio(f));
        }
        if let Some(ev @ VadEvent::SpeechEnded { .. }) = event {
            let _ = shared.vad_to_stt.push(SttInput::EndOfSpeech);
            shared.to_dialogue(DialogueMsg::Vad(ev));
        }
    }
    Ok(())
}

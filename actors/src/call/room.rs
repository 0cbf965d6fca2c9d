//! RoomActor: caller audio in (any rate) → resample to 16 kHz → room→vad edge; agent audio from the
//! tts→room edge out to the room at playout pace, so a barge-in flush silences the agent at once.
//! The pumps run outside the call's span: entering a span per frame cost ~5 % of all CPU at 500
//! calls, and every log line here names the call itself.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::{sleep_until, Instant};

use super::dialogue::DialogueMsg;
use super::pump::{spawn_pump, TaskGuard};
use super::shared::{lock, CallShared};
use super::supervisor::SupervisorMsg;
use super::EndReason;
use crate::audio::resample::Resampler;
use crate::audio::{AudioFrame, FRAME_DURATION, PIPELINE_RATE};
use crate::edge::DropReason;
use crate::provider::{AgentAudioOut, RoomEvent, RoomLink};

/// What flows on the room → vad edge: a 16 kHz frame and when the room delivered it, so the VAD
/// can see how long audio queued before it (the turn's clock starts at the arrival).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrived {
    pub frame: AudioFrame,
    pub arrived: Instant,
}

/// What flows on the tts → room edge.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentOut {
    /// One 20 ms frame at the room rate.
    Audio { reply_id: u64, frame: AudioFrame },
    /// The reply's last frame has been queued.
    EndOfReply { reply_id: u64 },
}

pub struct RoomActor {
    pub shared: Arc<CallShared>,
}

pub struct RoomState {
    _ingress: TaskGuard,
    _egress: TaskGuard,
}

#[derive(Debug)]
pub enum RoomMsg {
    PumpExited(Result<(), String>),
}

impl Actor for RoomActor {
    type Msg = RoomMsg;
    type State = RoomState;
    type Arguments = RoomLink;

    async fn pre_start(
        &self,
        myself: ActorRef<RoomMsg>,
        link: RoomLink,
    ) -> Result<RoomState, ActorProcessingErr> {
        let RoomLink {
            audio,
            events,
            output,
            ..
        } = link;
        Ok(RoomState {
            _ingress: spawn_pump(
                &myself,
                RoomMsg::PumpExited,
                ingress(Arc::clone(&self.shared), audio, events),
            ),
            _egress: spawn_pump(
                &myself,
                RoomMsg::PumpExited,
                egress(Arc::clone(&self.shared), output),
            ),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RoomMsg>,
        msg: RoomMsg,
        _state: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RoomMsg::PumpExited(Ok(())) => Ok(()),
            RoomMsg::PumpExited(Err(e)) => Err(e.into()),
        }
    }
}

/// Resamples caller audio of whatever rate the room delivers; a rate change rebuilds it.
struct Inbound {
    rate: u32,
    resampler: Option<Resampler>,
    out: Vec<AudioFrame>,
}

impl Inbound {
    /// `arrived`: when the room handed the frame over, for the input lag at the VAD.
    fn push(&mut self, shared: &CallShared, frame: &AudioFrame, arrived: Instant) {
        if frame.sample_rate == 0 || frame.is_empty() {
            crate::metrics::input_rejected("room", "empty_frame");
            return;
        }
        if self.resampler.is_none() || self.rate != frame.sample_rate {
            match Resampler::new(frame.sample_rate, PIPELINE_RATE) {
                Ok(r) => {
                    self.resampler = Some(r);
                    self.rate = frame.sample_rate;
                }
                Err(e) => {
                    crate::metrics::input_rejected("room", "unsupported_rate");
                    tracing::warn!(call_id = %shared.call_id(), turn = shared.turn(), error = %e, "caller audio rejected");
                    return;
                }
            }
        }
        if let Some(r) = self.resampler.as_mut() {
            r.push_frame(frame, &mut self.out);
        }
        for f in self.out.drain(..) {
            // drop-oldest: never blocks the room, counted by the edge.
            let _ = shared.room_to_vad.push(Arrived { frame: f, arrived });
        }
    }
}

async fn ingress(
    shared: Arc<CallShared>,
    mut audio: tokio::sync::mpsc::Receiver<AudioFrame>,
    mut events: tokio::sync::mpsc::Receiver<RoomEvent>,
) -> Result<(), String> {
    let mut inbound = Inbound {
        rate: 0,
        resampler: None,
        out: Vec::with_capacity(8),
    };
    let mut audio_open = true;
    let reason = loop {
        // Events first: a hang-up never waits behind queued audio.
        tokio::select! {
            biased;
            ev = events.recv() => match ev {
                None => break EndReason::CallerHungUp,
                Some(ev) => {
                    if let Some(reason) = on_event(&shared, ev) {
                        break reason;
                    }
                }
            },
            frame = audio.recv(), if audio_open => match frame {
                Some(frame) => inbound.push(&shared, &frame, Instant::now()),
                None => audio_open = false,
            },
        }
    };
    shared.to_supervisor(SupervisorMsg::RoomClosed(reason));
    Ok(())
}

/// What a room event means for the call: `Some` ends it.
fn on_event(shared: &CallShared, ev: RoomEvent) -> Option<EndReason> {
    let (call_id, turn) = (shared.call_id(), shared.turn());
    match ev {
        RoomEvent::ParticipantLeft { .. } => Some(EndReason::CallerHungUp),
        RoomEvent::Disconnected { reason } => Some(EndReason::RoomFailed(reason)),
        RoomEvent::NoCallerAudio => {
            tracing::warn!(%call_id, turn, "no caller audio in the room: saying so, then ending the call");
            let text = shared.cfg.dialogue.no_audio_prompt.clone();
            shared.to_dialogue(DialogueMsg::Farewell {
                text,
                reason: EndReason::NoCallerAudio,
            });
            None
        }
        RoomEvent::Reconnecting { reason } => {
            tracing::warn!(%call_id, turn, %reason, "room media reconnecting");
            None
        }
        RoomEvent::Reconnected => {
            tracing::info!(%call_id, turn, "room media reconnected");
            None
        }
        RoomEvent::CallerMuted { muted } => {
            tracing::info!(%call_id, turn, muted, "caller microphone");
            None
        }
        RoomEvent::TrackUnpublished { .. } => {
            tracing::info!(%call_id, turn, "caller unpublished their audio track");
            None
        }
        RoomEvent::ParticipantJoined { .. } => None,
    }
}

/// How often a held playout looks again (the dialogue decides within the barge-in window, or
/// after the false-interruption timeout).
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Wait while the caller's speech holds this reply's playout.
async fn hold(shared: &CallShared, reply_id: u64) {
    while lock(&shared.ledger).is_held(reply_id) {
        tokio::time::sleep(HOLD_POLL).await;
    }
}

/// The room must take each frame within the progress deadline: a stalled output ends the call
/// with that reason rather than leaving the caller in silence.
async fn send_within(
    shared: &CallShared,
    out: &mut dyn AgentAudioOut,
    frame: AudioFrame,
) -> Result<(), String> {
    let deadline = shared.cfg.supervision.progress_deadline();
    match tokio::time::timeout(deadline, out.send(frame)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            crate::metrics::stalled("room");
            Err(format!(
                "room output made no progress for {} ms",
                deadline.as_millis()
            ))
        }
    }
}

async fn egress(shared: Arc<CallShared>, mut out: Box<dyn AgentAudioOut>) -> Result<(), String> {
    let mut next_due = Instant::now();
    while let Some(item) = shared.tts_to_room.recv().await {
        match item {
            AgentOut::Audio { reply_id, frame } => {
                let segment = {
                    let l = lock(&shared.ledger);
                    l.is_current(reply_id).then(|| l.segment())
                };
                let Some(segment) = segment else {
                    crate::metrics::edge_dropped("tts_to_room", DropReason::Flush, 1);
                    continue;
                };
                hold(&shared, reply_id).await;
                let now = Instant::now();
                if next_due > now {
                    sleep_until(next_due).await;
                } else {
                    next_due = now;
                }
                // A barge-in may have cancelled the reply while we waited for the frame's slot,
                // or a TTS restart (its edge flushed) re-speaks from before this frame.
                let stale = {
                    let l = lock(&shared.ledger);
                    !l.is_current(reply_id) || l.segment() != segment
                };
                if stale {
                    crate::metrics::edge_dropped("tts_to_room", DropReason::Flush, 1);
                    continue;
                }
                let d = frame.duration();
                send_within(&shared, out.as_mut(), frame).await?;
                next_due += FRAME_DURATION;
                if lock(&shared.ledger).audio_played(reply_id, d, Instant::now()) {
                    shared.to_dialogue(DialogueMsg::PlayoutStarted { reply_id });
                }
            }
            AgentOut::EndOfReply { reply_id } => {
                shared.to_dialogue(DialogueMsg::PlayoutFinished { reply_id });
            }
        }
    }
    Ok(())
}

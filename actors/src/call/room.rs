//! RoomActor: caller audio in (any rate) → resample to 16 kHz → room→vad edge; agent audio from the
//! tts→room edge out to the room at playout pace, so a barge-in flush silences the agent at once.
//! The pumps run outside the call's span: entering a span per frame cost ~5 % of all CPU at 500
//! calls, and every log line here names the call itself.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

pub use super::msg::{AgentOut, Arrived, RoomMsg};
use super::msg::{DialogueMsg, SupervisorMsg};
use super::ports::RoomPorts;
use super::pump::{spawn_pump, TaskGuard};
use super::shared::lock;
use super::tick::{self, Ticker};
use super::EndReason;
use crate::audio::resample::Resampler;
use crate::audio::{AudioFrame, FRAME_DURATION, PIPELINE_RATE};
use crate::edge::DropReason;
use crate::provider::{AgentAudioOut, RoomEvent, RoomLink};

pub struct RoomActor {
    pub ports: RoomPorts,
}

pub struct RoomState {
    _ingress: TaskGuard,
    _egress: TaskGuard,
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
                self.ports.call.media_key(),
                RoomMsg::PumpExited,
                ingress(self.ports.clone(), audio, events),
            ),
            _egress: spawn_pump(
                &myself,
                self.ports.call.media_key(),
                RoomMsg::PumpExited,
                egress(self.ports.clone(), output),
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
    fn push(&mut self, ports: &RoomPorts, frame: &AudioFrame, arrived: Instant) {
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
                    tracing::warn!(call_id = %ports.call.call_id(), turn = ports.call.turn(), error = %e, "caller audio rejected");
                    return;
                }
            }
        }
        if let Some(r) = self.resampler.as_mut() {
            r.push_frame(frame, &mut self.out);
        }
        for f in self.out.drain(..) {
            // drop-oldest: never blocks the room, counted by the edge.
            let _ = ports.to_vad.push(Arrived { frame: f, arrived });
        }
    }
}

async fn ingress(
    ports: RoomPorts,
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
                    if let Some(reason) = on_event(&ports, ev) {
                        break reason;
                    }
                }
            },
            frame = audio.recv(), if audio_open => match frame {
                Some(frame) => inbound.push(&ports, &frame, Instant::now()),
                None => audio_open = false,
            },
        }
    };
    ports.supervisor.send(SupervisorMsg::RoomClosed(reason));
    Ok(())
}

/// What a room event means for the call: `Some` ends it.
fn on_event(ports: &RoomPorts, ev: RoomEvent) -> Option<EndReason> {
    let (call_id, turn) = (ports.call.call_id(), ports.call.turn());
    match ev {
        RoomEvent::ParticipantLeft { .. } => Some(EndReason::CallerHungUp),
        RoomEvent::Disconnected { reason } => Some(EndReason::RoomFailed(reason)),
        RoomEvent::NoCallerAudio => {
            tracing::warn!(%call_id, turn, "no caller audio in the room: saying so, then ending the call");
            let text = ports.no_audio_prompt.clone();
            ports.dialogue.send(DialogueMsg::Farewell {
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

/// The room must take each frame within the progress deadline: a stalled output ends the call
/// with that reason rather than leaving the caller in silence.
async fn within<F>(deadline: std::time::Duration, what: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), crate::provider::RoomError>>,
{
    match tokio::time::timeout(deadline, what).await {
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

/// The agent's side of the room: frames from the tts→room edge played at their pace.
struct Playout {
    ports: RoomPorts,
    out: Box<dyn AgentAudioOut>,
    next_due: Instant,
    /// A frame was played and the output has not paused since: stopping now cuts a sound.
    sounding: bool,
    /// The media runtime's shared tick, looked up once (see `tick`).
    ticker: Option<std::sync::Arc<Ticker>>,
}

impl Playout {
    /// Playout stops mid-sound: the output ends it on silence, so the caller hears the agent
    /// stop now and not the concealment of packets that stopped coming.
    async fn pause(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.sounding) {
            return Ok(());
        }
        within(self.ports.progress_deadline, self.out.pause()).await
    }

    /// The next item on the edge. While sounding, an edge still empty a frame after the next
    /// frame was due (a cancel flushed it, or TTS fell behind) pauses the output first.
    async fn next(&mut self) -> Result<Option<AgentOut>, String> {
        if let Some(item) = self.ports.from_tts.try_recv() {
            return Ok(Some(item));
        }
        if self.sounding {
            let late = self.next_due + FRAME_DURATION;
            match tokio::time::timeout_at(late, self.ports.from_tts.recv()).await {
                Ok(item) => return Ok(item),
                Err(_) => self.pause().await?,
            }
        }
        Ok(self.ports.from_tts.recv().await)
    }

    /// Wait while the caller's speech holds this reply's playout, paused.
    async fn hold(&mut self, reply_id: u64) -> Result<(), String> {
        self.pause().await?;
        while lock(&self.ports.ledger).is_held(reply_id) {
            tokio::time::sleep(HOLD_POLL).await;
        }
        Ok(())
    }

    /// The TTS session of `reply_id` whose audio plays now and whether the caller's speech holds
    /// it; `None` once the reply is cancelled (barge-in). A TTS restart (its edge flushed) starts
    /// a new session, re-speaking from before.
    fn look(&self, reply_id: u64) -> Option<(u32, bool)> {
        let l = lock(&self.ports.ledger);
        l.is_current(reply_id).then(|| (l.segment(), l.held))
    }

    /// Wait for the frame's slot; returns about when it came. A talkspurt's first frame goes at
    /// once; later ones on the runtime's shared tick, and one more than a frame late starts a new
    /// grid instead of catching up in a burst.
    async fn pace(&mut self) -> Instant {
        if !self.sounding {
            let now = Instant::now();
            if self.next_due <= now {
                self.next_due = now;
                return now;
            }
        }
        let now = tick::sleep_until(self.ticker.as_deref(), self.next_due).await;
        if now > self.next_due + FRAME_DURATION {
            self.next_due = now;
        }
        now
    }

    async fn play(&mut self, reply_id: u64, frame: AudioFrame) -> Result<(), String> {
        let Some((segment, held)) = self.look(reply_id) else {
            return self.stale().await;
        };
        if held {
            self.hold(reply_id).await?;
        }
        let now = self.pace().await;
        let d = frame.duration();
        // Still this session's turn (a barge-in or restart may have come while waiting); the
        // frame counts as played under the same lock.
        let first = {
            let mut l = lock(&self.ports.ledger);
            (l.is_current(reply_id) && l.segment() == segment)
                .then(|| l.audio_played(reply_id, d, now))
        };
        let Some(first) = first else {
            return self.stale().await;
        };
        within(self.ports.progress_deadline, self.out.send(frame)).await?;
        self.sounding = true;
        self.next_due += FRAME_DURATION;
        if first {
            let started = DialogueMsg::PlayoutStarted { reply_id };
            self.ports.dialogue.send(started);
        }
        Ok(())
    }

    /// A frame of a cancelled reply or an older TTS session: dropped, counted, and the output
    /// paused if it was sounding.
    async fn stale(&mut self) -> Result<(), String> {
        crate::metrics::edge_dropped(self.ports.from_tts.name(), DropReason::Flush, 1);
        self.pause().await
    }
}

async fn egress(ports: RoomPorts, out: Box<dyn AgentAudioOut>) -> Result<(), String> {
    let mut playout = Playout {
        ports,
        out,
        next_due: Instant::now(),
        sounding: false,
        ticker: Ticker::current(),
    };
    while let Some(item) = playout.next().await? {
        match item {
            AgentOut::Audio { reply_id, frame } => playout.play(reply_id, frame).await?,
            AgentOut::EndOfReply { reply_id } => {
                playout.pause().await?;
                let finished = DialogueMsg::PlayoutFinished { reply_id };
                playout.ports.dialogue.send(finished);
            }
        }
    }
    Ok(())
}

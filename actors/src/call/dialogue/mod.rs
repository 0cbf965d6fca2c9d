//! DialogueActor: turn-taking, barge-in and replies. Events arrive from VAD, STT, the room (playout)
//! and the reply task; the LLM loop runs in its own task (`reply`), so a barge-in is handled at once.

/// The chat context is supervisor-owned state (it outlives a dialogue restart); kept at its old path.
pub use super::context;
pub mod interruption;
mod publish;
pub mod reply;
pub mod sentence;
pub mod turn;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;
use tracing::Instrument;

use self::interruption::{Action, Recovery};
use self::reply::{CancelFlag, Reply};
use self::turn::{Commit, TurnDetector};
pub use super::msg::DialogueMsg;
use super::msg::{SupervisorMsg, TtsMsg};
use super::ports::DialoguePorts;
use super::pump::TaskGuard;
use super::shared::lock;
use super::timeline::TurnTimeline;
use super::EndReason;
use crate::provider::{SttEvent, ToolSpec};
use crate::store::RecordKind;
use crate::vad::VadEvent;

pub struct DialogueActor {
    pub ports: DialoguePorts,
}

/// The reply being generated or spoken.
struct Active {
    reply_id: u64,
    cancel: Arc<CancelFlag>,
    /// The user transcript it answers (empty for the greeting and farewells).
    transcript: String,
    _task: Option<TaskGuard>,
}

pub struct DialogueState {
    turn: TurnDetector,
    speech: u64,
    turn_index: u32,
    active: Option<Active>,
    farewell: Option<(u64, EndReason)>,
    /// Whether caller sound over the reply cancels it or it resumes.
    recovery: Recovery,
    tools: Arc<Vec<ToolSpec>>,
    /// Input lag of the last speech end, for the turn it ends.
    input_lag: Duration,
}

impl Actor for DialogueActor {
    type Msg = DialogueMsg;
    type State = DialogueState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<DialogueMsg>,
        _: (),
    ) -> Result<DialogueState, ActorProcessingErr> {
        let t = &self.ports.cfg.turn;
        // A hold is ended by the incarnation that set it (its timers died with it); a new one
        // lets the reply play on rather than keep it silent for good.
        lock(&self.ports.ledger).held = false;
        Ok(DialogueState {
            turn: TurnDetector::new(t.final_transcript_timeout()),
            speech: 0,
            turn_index: self.ports.call.counters().turns.load(Ordering::Relaxed),
            active: None,
            farewell: None,
            recovery: Recovery::new(t.false_interruption_timeout()),
            tools: Arc::new(crate::tools::tool_specs()),
            input_lag: Duration::ZERO,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<DialogueMsg>,
        state: &mut DialogueState,
    ) -> Result<(), ActorProcessingErr> {
        // Greet once per call, not again after a restart.
        let greet = lock(&self.ports.ledger).reply_id == 0;
        let greeting = self.ports.cfg.dialogue.greeting.clone();
        if greet && !greeting.trim().is_empty() {
            self.say(state, &greeting);
        }
        Ok(())
    }

    /// At hang-up a reply still in progress is recorded too, marked interrupted, so the call
    /// record has every turn the caller took.
    async fn post_stop(
        &self,
        _myself: ActorRef<DialogueMsg>,
        state: &mut DialogueState,
    ) -> Result<(), ActorProcessingErr> {
        self.interrupt(state);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DialogueMsg>,
        msg: DialogueMsg,
        state: &mut DialogueState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DialogueMsg::Vad { ev, at, lag } => {
                if matches!(ev, VadEvent::SpeechEnded { .. }) {
                    state.input_lag = lag;
                }
                self.on_vad(&myself, state, ev, at)
            }
            DialogueMsg::Stt { ev, at } => self.on_stt(&myself, state, ev, at),
            DialogueMsg::EndpointElapsed { at } => {
                state.turn.endpoint_elapsed(at);
                self.check_end_of_turn(state);
            }
            DialogueMsg::EndOfTurnCheck => self.check_end_of_turn(state),
            DialogueMsg::BargeInCheck { speech } => self.on_barge_in_window(&myself, state, speech),
            DialogueMsg::QuietCheck { speech } => {
                let latest = speech == state.speech && !state.turn.is_speaking();
                if state.recovery.quiet_elapsed(latest) == Action::Resume {
                    self.false_interruption(state);
                }
            }
            DialogueMsg::ReplyDone { reply_id } => {
                if let Some(a) = state.active.as_mut().filter(|a| a.reply_id == reply_id) {
                    a._task = None;
                }
            }
            DialogueMsg::PlayoutStarted { reply_id } => self.on_playout_started(reply_id),
            DialogueMsg::PlayoutFinished { reply_id } => self.on_playout_finished(state, reply_id),
            DialogueMsg::Farewell { text, reason } => {
                self.interrupt(state);
                let id = self.say(state, &text);
                state.farewell = Some((id, reason));
            }
        }
        Ok(())
    }
}

impl DialogueActor {
    fn on_vad(
        &self,
        myself: &ActorRef<DialogueMsg>,
        state: &mut DialogueState,
        ev: VadEvent,
        at: Instant,
    ) {
        match ev {
            VadEvent::SpeechStarted { .. } => {
                state.turn.speech_started();
                state.recovery.speech_started();
                state.speech += 1;
                if let Some(active) = state.active.as_ref().filter(|_| state.farewell.is_none()) {
                    // Stop the agent's audio at once; the barge-in check and then the transcript
                    // decide whether the reply is cancelled or resumes (a cough, a short "mm-hm").
                    let mut ledger = lock(&self.ports.ledger);
                    if ledger.reply_id == active.reply_id {
                        ledger.held = true;
                    }
                    drop(ledger);
                    let speech = state.speech;
                    myself.send_after(self.ports.cfg.turn.barge_in_min_speech(), move || {
                        DialogueMsg::BargeInCheck { speech }
                    });
                }
            }
            VadEvent::SpeechEnded { .. } => {
                state.turn.speech_ended(at);
                self.schedule_fallback(myself, state);
                let action = state.recovery.speech_ended();
                self.act(myself, state, action);
            }
        }
    }

    fn on_stt(
        &self,
        myself: &ActorRef<DialogueMsg>,
        state: &mut DialogueState,
        ev: SttEvent,
        at: Instant,
    ) {
        // Words, interim or final, are what tells talking over the agent from a noise.
        if let SttEvent::Interim { text } | SttEvent::Final { text, .. } = &ev {
            let action = state.recovery.transcript(text);
            self.act(myself, state, action);
        }
        if let SttEvent::Final { text, .. } = ev {
            state.turn.final_transcript(&text, at);
            self.check_end_of_turn(state);
        }
    }

    /// The barge-in window has passed since speech `speech` started.
    fn on_barge_in_window(
        &self,
        myself: &ActorRef<DialogueMsg>,
        state: &mut DialogueState,
        speech: u64,
    ) {
        if speech != state.speech {
            return;
        }
        // The reply the caller is still talking over (not a farewell: it is said whatever the
        // caller does).
        let over = state
            .active
            .as_ref()
            .filter(|_| state.turn.is_speaking() && state.farewell.is_none())
            .map(|a| a.reply_id);
        let action = state.recovery.window_passed(over);
        self.act(myself, state, action);
    }

    /// Carry out what the false-interruption recovery decided.
    fn act(&self, myself: &ActorRef<DialogueMsg>, state: &mut DialogueState, action: Action) {
        match action {
            Action::Nothing => {}
            Action::BargeIn => self.barge_in(state),
            // Too short to be a barge-in: the reply plays on from where it paused.
            Action::Resume => lock(&self.ports.ledger).held = false,
            Action::ArmTimer(wait) => {
                let speech = state.speech;
                myself.send_after(wait, move || DialogueMsg::QuietCheck { speech });
            }
        }
    }

    /// The caller's sound was not talk: the paused reply plays on from where it stopped.
    fn false_interruption(&self, state: &DialogueState) {
        let Some(active) = state.active.as_ref() else {
            return;
        };
        {
            let mut ledger = lock(&self.ports.ledger);
            if ledger.reply_id != active.reply_id {
                return;
            }
            ledger.held = false;
        }
        tracing::info!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), "false interruption: reply resumed");
        self.ports
            .call
            .counters()
            .false_interruptions
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::FALSE_INTERRUPTIONS).increment(1);
    }

    /// The fallback for a turn that never gets its final transcript or endpoint; the normal path is
    /// event-driven (final transcript, endpoint), with no timer in it.
    fn schedule_fallback(&self, myself: &ActorRef<DialogueMsg>, state: &DialogueState) {
        if let Some(deadline) = state.turn.deadline() {
            let wait = deadline.saturating_duration_since(Instant::now());
            myself.send_after(wait, || DialogueMsg::EndOfTurnCheck);
        }
    }

    fn check_end_of_turn(&self, state: &mut DialogueState) {
        let now = Instant::now();
        if let Some(commit) = state.turn.poll(now) {
            self.commit_turn(state, commit, now);
        }
    }

    fn commit_turn(&self, state: &mut DialogueState, commit: Commit, now: Instant) {
        if state.farewell.is_some() {
            return;
        }
        // A new caller turn supersedes whatever the agent was still saying.
        self.interrupt(state);
        state.turn_index += 1;
        self.ports
            .call
            .counters()
            .current_turn
            .store(state.turn_index, Ordering::Relaxed);
        let reply_id = self.begin_reply();
        let hangover = self.ports.cfg.vad.hangover();
        let speech_end = commit
            .speech_ended_at
            .checked_sub(hangover)
            .unwrap_or(commit.speech_ended_at);
        {
            let mut tl = lock(&self.ports.timeline);
            *tl = TurnTimeline::new_turn(state.turn_index, speech_end);
            tl.reply_id = reply_id;
            tl.final_at = commit.final_at.or(Some(now));
            // On the fallback path the whole wait was the configured timeout.
            tl.eot_ready_at = Some(commit.ready_at.unwrap_or(now));
            tl.eot_at = Some(now);
            tl.input_lag = Some(state.input_lag);
        }
        // What the caller said is patient data: its words only at debug, and only in development
        // (the call record keeps them).
        tracing::info!(call_id = %self.ports.call.call_id(), turn = state.turn_index, chars = commit.transcript.chars().count(), "turn committed");
        if self.ports.cfg.log_transcripts {
            tracing::debug!(call_id = %self.ports.call.call_id(), turn = state.turn_index, transcript = %commit.transcript, "caller said");
        }
        publish::caller_turn(&self.ports, state.turn_index, &commit.transcript);
        {
            let mut chat = lock(&self.ports.chat);
            chat.push_user(&commit.transcript);
            chat.begin_reply(reply_id);
        }
        let cancel = Arc::new(CancelFlag::default());
        let span = tracing::info_span!(parent: self.ports.call.span(), "turn", turn = state.turn_index, reply_id);
        let task = Reply {
            ports: self.ports.clone(),
            reply_id,
            cancel: Arc::clone(&cancel),
            tools: Arc::clone(&state.tools),
            timed: true,
        };
        state.active = Some(Active {
            reply_id,
            cancel,
            transcript: commit.transcript,
            _task: Some(TaskGuard::spawn(task.run().instrument(span))),
        });
    }

    /// Start a new reply in the ledger; reply ids grow across dialogue restarts.
    fn begin_reply(&self) -> u64 {
        let mut ledger = lock(&self.ports.ledger);
        let id = ledger.reply_id + 1;
        ledger.begin(id);
        id
    }

    /// Speak fixed text (greeting, farewell) without the LLM.
    fn say(&self, state: &mut DialogueState, text: &str) -> u64 {
        let reply_id = self.begin_reply();
        {
            let mut chat = lock(&self.ports.chat);
            chat.begin_reply(reply_id);
            chat.append_assistant_text(reply_id, text);
        }
        {
            let mut ledger = lock(&self.ports.ledger);
            ledger.push_text(reply_id, text);
            ledger.text_ended = true;
            // Fixed text from the configuration: the same for every caller.
            ledger.cacheable = true;
        }
        publish::agent_said(&self.ports, reply_id, text);
        self.ports.tts.send(TtsMsg::TextAvailable { reply_id });
        state.active = Some(Active {
            reply_id,
            cancel: Arc::new(CancelFlag::default()),
            transcript: String::new(),
            _task: None,
        });
        reply_id
    }

    /// The caller talked over the agent long enough: stop the reply and keep only what was heard.
    fn barge_in(&self, state: &mut DialogueState) {
        tracing::info!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), "barge-in");
        self.ports
            .call
            .counters()
            .barge_ins
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::BARGE_INS).increment(1);
        self.interrupt(state);
    }

    /// Cancel the active reply: stop generation, cancel TTS, flush queued audio, and cut the chat
    /// context to the played part.
    fn interrupt(&self, state: &mut DialogueState) {
        state.recovery.clear();
        let Some(active) = state.active.take() else {
            return;
        };
        active.cancel.cancel();
        let (heard, finished) = {
            let mut ledger = lock(&self.ports.ledger);
            if ledger.reply_id != active.reply_id {
                return;
            }
            let finished = ledger.playout_finished;
            ledger.cancelled = true;
            (ledger.played_bytes(), finished)
        };
        if finished {
            return;
        }
        self.ports.playout.flush();
        self.ports.tts.send(TtsMsg::Cancel {
            reply_id: active.reply_id,
        });
        let spoken = {
            let mut chat = lock(&self.ports.chat);
            chat.truncate_reply(active.reply_id, heard);
            chat.reply_text(active.reply_id)
        };
        self.record_turn(&active, spoken, true);
    }

    fn on_playout_started(&self, reply_id: u64) {
        let report = {
            let tl = lock(&self.ports.timeline);
            if tl.reply_id != reply_id {
                return;
            }
            tl.report(&lock(&self.ports.ledger))
        };
        report.record_metrics();
        tracing::debug!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), ?report, "turn latency");
        self.ports
            .observer
            .turn_completed(self.ports.call.call_id(), &report);
    }

    fn on_playout_finished(&self, state: &mut DialogueState, reply_id: u64) {
        {
            let mut ledger = lock(&self.ports.ledger);
            if !ledger.is_current(reply_id) {
                return;
            }
            ledger.playout_finished = true;
        }
        if let Some(active) = state.active.take_if(|a| a.reply_id == reply_id) {
            state.recovery.clear();
            let spoken = lock(&self.ports.chat).reply_text(reply_id);
            self.record_turn(&active, spoken, false);
        }
        if let Some((id, reason)) = state.farewell.take() {
            if id == reply_id {
                self.ports.supervisor.send(SupervisorMsg::EndCall(reason));
            } else {
                state.farewell = Some((id, reason));
            }
        }
    }

    fn record_turn(&self, active: &Active, reply: String, interrupted: bool) {
        if active.transcript.is_empty() {
            return;
        }
        let tl = lock(&self.ports.timeline).clone();
        if tl.reply_id != active.reply_id {
            return;
        }
        self.ports
            .call
            .counters()
            .turns
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::TURNS).increment(1);
        let latencies = tl.report(&lock(&self.ports.ledger)).latencies();
        publish::reply_done(&self.ports, tl.turn, &reply, interrupted, &latencies);
        self.ports.record(RecordKind::Turn {
            index: tl.turn,
            transcript: active.transcript.clone(),
            reply,
            interrupted,
            latencies,
        });
    }
}

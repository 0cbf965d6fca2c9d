//! State owned by the call supervisor and shared with its children: the audio edges, the replay
//! log, the chat context, the reply ledger, the current turn's timeline, the call-record outbox and
//! the routes to the current incarnation of each child. Whatever must survive a child's restart
//! lives here, not in the child.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ractor::ActorRef;

use super::db_gateway::{DbMsg, Outbox};
use super::dialogue::context::ChatContext;
use super::dialogue::DialogueMsg;
use super::ledger::ReplyLedger;
use super::replay::{ReplayLog, SttInput};
use super::room::{AgentOut, Arrived};
use super::supervisor::SupervisorMsg;
use super::timeline::TurnTimeline;
use super::tts::TtsMsg;
use super::{CallDeps, CallSpec};
use crate::config::PipelineConfig;
use crate::edge::{Edge, OverflowPolicy};

/// Lock a mutex, carrying on after a poisoning panic: every critical section here leaves its data
/// consistent, and a call must survive a crashed child.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current incarnation of each child, updated by the supervisor on every (re)start.
#[derive(Default)]
pub struct Routes {
    pub supervisor: Option<ActorRef<SupervisorMsg>>,
    pub dialogue: Option<ActorRef<DialogueMsg>>,
    pub tts: Option<ActorRef<TtsMsg>>,
    pub db: Option<ActorRef<DbMsg>>,
}

/// Usage totals of the call, for cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageTotals {
    pub stt_audio_seconds: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tts_characters: u64,
    pub cache: crate::cache::CacheSavings,
}

/// Per-call counters reported in the outcome.
#[derive(Debug, Default)]
pub struct Counters {
    pub turns: std::sync::atomic::AtomicU32,
    /// The caller turn in progress (0 before the first), for every log line of the call.
    pub current_turn: std::sync::atomic::AtomicU32,
    pub barge_ins: std::sync::atomic::AtomicU32,
    /// Paused replies resumed because the caller's sound carried no words.
    pub false_interruptions: std::sync::atomic::AtomicU32,
}

pub struct CallShared {
    pub spec: CallSpec,
    /// Parent span of everything the call does.
    pub span: tracing::Span,
    pub counters: Counters,
    pub cfg: PipelineConfig,
    pub deps: CallDeps,
    pub room_to_vad: Edge<Arrived>,
    pub vad_to_stt: Edge<SttInput>,
    pub tts_to_room: Edge<AgentOut>,
    pub replay: Mutex<ReplayLog>,
    pub chat: Mutex<ChatContext>,
    pub ledger: Mutex<ReplyLedger>,
    pub timeline: Mutex<TurnTimeline>,
    pub usage: Mutex<UsageTotals>,
    /// When the tree started, for the call's length in the outcome.
    pub started: tokio::time::Instant,
    pub outbox: Mutex<Outbox>,
    pub routes: RwLock<Routes>,
    /// Rates the room output takes as they are (see `RoomLink::output_rates`).
    pub output_rates: &'static [u32],
    /// Transcript and turn metrics into the room, when the link takes them (`RoomLink::data`).
    pub room_data: std::sync::OnceLock<crate::provider::room::RoomDataOut>,
}

impl CallShared {
    pub fn new(
        spec: CallSpec,
        cfg: PipelineConfig,
        deps: CallDeps,
        output_rates: &'static [u32],
    ) -> Arc<Self> {
        let e = &cfg.edges;
        let chat = ChatContext::new(&cfg.dialogue.system_prompt);
        Arc::new(Self {
            room_to_vad: Edge::new(
                "room_to_vad",
                e.room_to_vad_frames,
                OverflowPolicy::DropOldest,
            ),
            vad_to_stt: Edge::new(
                "vad_to_stt",
                e.vad_to_stt_frames,
                OverflowPolicy::DropOldest,
            ),
            tts_to_room: Edge::new("tts_to_room", e.tts_to_room_frames, OverflowPolicy::Wait),
            replay: Mutex::new(ReplayLog::new(std::time::Duration::from_millis(u64::from(
                e.stt_replay_ms,
            )))),
            chat: Mutex::new(chat),
            ledger: Mutex::new(ReplyLedger::default()),
            timeline: Mutex::new(TurnTimeline::default()),
            usage: Mutex::new(UsageTotals::default()),
            started: tokio::time::Instant::now(),
            outbox: Mutex::new(Outbox::new(spec.call_id.clone())),
            routes: RwLock::new(Routes::default()),
            counters: Counters::default(),
            output_rates,
            room_data: std::sync::OnceLock::new(),
            // A root: each call is its own trace (OTLP), whatever span spawned it.
            span: tracing::info_span!(parent: None, "call", call_id = %spec.call_id, room = %crate::provider::room::room_tag(&spec.room)),
            spec,
            cfg,
            deps,
        })
    }

    fn routes(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_routes(&self, f: impl FnOnce(&mut Routes)) {
        let mut r = self.routes.write().unwrap_or_else(|p| p.into_inner());
        f(&mut r);
    }

    pub fn call_id(&self) -> &str {
        &self.spec.call_id
    }

    /// The caller turn in progress, logged with the call id.
    pub fn turn(&self) -> u32 {
        self.counters
            .current_turn
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Send an event to the current dialogue. While it is restarting the event is dropped and
    /// logged: events are low rate and the replay/ledger state lets the next incarnation recover.
    pub fn to_dialogue(&self, msg: DialogueMsg) {
        let target = self.routes().dialogue.clone();
        match target {
            Some(d) if d.cast(msg).is_ok() => {}
            _ => {
                tracing::debug!(call_id = %self.spec.call_id, turn = self.turn(), "dialogue not running; event dropped")
            }
        }
    }

    pub fn to_tts(&self, msg: TtsMsg) {
        let target = self.routes().tts.clone();
        match target {
            Some(t) if t.cast(msg).is_ok() => {}
            _ => {
                tracing::debug!(call_id = %self.spec.call_id, turn = self.turn(), "tts not running; message dropped")
            }
        }
    }

    pub fn to_supervisor(&self, msg: SupervisorMsg) {
        if let Some(s) = self.routes().supervisor.clone() {
            let _ = s.cast(msg);
        }
    }

    pub fn db(&self) -> Option<ActorRef<DbMsg>> {
        self.routes().db.clone()
    }

    /// Queue a call-record write (written behind by the DB gateway).
    pub fn record(&self, kind: crate::store::RecordKind) {
        lock(&self.outbox).push(kind);
    }
}

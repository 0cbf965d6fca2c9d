//! One call = one supervised tree of actors (see `supervisor` and `actors/README.md`). Each child
//! gets typed ports (`ports`) wired by the supervisor (`wiring`): audio travels on bounded edges made
//! from the one queue table (`ports::QUEUES`); control and events travel through mailboxes, with
//! message types in `msg`.

pub mod context;
pub mod db_gateway;
pub mod dialogue;
pub mod handle;
pub mod ledger;
pub mod msg;
pub mod outbox;
pub mod ports;
pub mod pump;
pub mod replay;
pub mod room;
pub mod shared;
pub mod stt;
pub mod supervisor;
pub mod tick;
pub mod timeline;
pub mod tts;
pub mod vad;
pub mod wiring;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::provider::{LlmProvider, SttProvider, TtsProvider};
use crate::store::Store;

pub use handle::{spawn_call, CallHandle};
pub use msg::{CallSnapshot, SupervisorMsg};
pub use supervisor::CallSupervisor;
pub use timeline::TurnReport;

/// What a call needs from outside, injected once.
#[derive(Clone)]
pub struct CallDeps {
    pub stt: Arc<dyn SttProvider>,
    pub llm: Arc<dyn LlmProvider>,
    pub tts: Arc<dyn TtsProvider>,
    pub store: Arc<dyn Store>,
    pub observer: Arc<dyn CallObserver>,
    /// For the cost in the call record.
    pub prices: crate::pricing::Prices,
}

impl std::fmt::Debug for CallDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallDeps")
            .field("stt", &self.stt.name())
            .field("llm", &self.llm.name())
            .field("tts", &self.tts.name())
            .finish_non_exhaustive()
    }
}

/// Who placed the call, and where.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub call_id: String,
    pub room: String,
    pub caller: String,
}

/// The children of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildKind {
    Room,
    Vad,
    Stt,
    Dialogue,
    Tts,
    DbGateway,
}

impl ChildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::Room => "room",
            ChildKind::Vad => "vad",
            ChildKind::Stt => "stt",
            ChildKind::Dialogue => "dialogue",
            ChildKind::Tts => "tts",
            ChildKind::DbGateway => "db_gateway",
        }
    }
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    AgentHungUp,
    RoomFailed(String),
    /// No caller audio reached the room in time (the agent said so first).
    NoCallerAudio,
    BudgetExhausted(ChildKind),
    Shutdown,
}

impl EndReason {
    pub fn label(&self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::AgentHungUp => "agent_hung_up",
            EndReason::RoomFailed(_) => "room_failed",
            EndReason::NoCallerAudio => "no_caller_audio",
            EndReason::BudgetExhausted(_) => "budget_exhausted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::RoomFailed(why) => write!(f, "room_failed: {why}"),
            EndReason::BudgetExhausted(kind) => write!(f, "budget_exhausted: {}", kind.as_str()),
            other => f.write_str(other.label()),
        }
    }
}

/// Drops of one edge over the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    pub pushed: u64,
    pub overflow: u64,
    pub flushed: u64,
}

/// What a finished call reports.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    pub call_id: String,
    pub reason: EndReason,
    pub turns: u32,
    pub barge_ins: u32,
    /// Replies paused by caller sound without words, then resumed where they paused.
    pub false_interruptions: u32,
    pub restarts: BTreeMap<ChildKind, u32>,
    pub edges: BTreeMap<&'static str, EdgeStats>,
    pub records_dropped: u64,
    /// Provider usage and its cost at the configured prices (as in the call record).
    pub usage: shared::UsageTotals,
    pub cost_usd: f64,
    pub duration: std::time::Duration,
}

/// Receives per-turn and per-call reports (simulation statistics, tests). Called from actor code:
/// must not block.
pub trait CallObserver: Send + Sync + 'static {
    fn turn_completed(&self, _call_id: &str, _report: &TurnReport) {}
    fn call_ended(&self, _outcome: &CallOutcome) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoopObserver;
impl CallObserver for NoopObserver {}

//! The small state types every part of a call may hold: who the call is (for logs), its counters
//! and usage totals, and the lock helper. The state that must survive a child's restart is owned by
//! the supervisor (`wiring::CallWiring`) and handed to each child through its ports (`ports`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::CallSpec;

/// Lock a mutex, carrying on after a poisoning panic: every critical section here leaves its data
/// consistent, and a call must survive a crashed child.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// State owned by the supervisor and lent to the children that use it.
pub type Shared<T> = Arc<Mutex<T>>;

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
    pub turns: AtomicU32,
    /// The caller turn in progress (0 before the first), for every log line of the call.
    pub current_turn: AtomicU32,
    pub barge_ins: AtomicU32,
    /// Paused replies resumed because the caller's sound carried no words.
    pub false_interruptions: AtomicU32,
}

struct Info {
    spec: CallSpec,
    span: tracing::Span,
    counters: Counters,
}

/// Who the call is: its id and span for logs and traces, and its counters. Cheap to clone; every
/// port carries one.
#[derive(Clone)]
pub struct CallInfo(Arc<Info>);

impl std::fmt::Debug for CallInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallInfo")
            .field("call_id", &self.call_id())
            .field("turn", &self.turn())
            .finish()
    }
}

impl CallInfo {
    pub fn new(spec: CallSpec) -> Self {
        // A root: each call is its own trace (OTLP), whatever span spawned it.
        let span = tracing::info_span!(parent: None, "call", call_id = %spec.call_id, room = %crate::provider::room::room_tag(&spec.room));
        Self(Arc::new(Info {
            spec,
            span,
            counters: Counters::default(),
        }))
    }

    pub fn spec(&self) -> &CallSpec {
        &self.0.spec
    }

    pub fn call_id(&self) -> &str {
        &self.0.spec.call_id
    }

    /// What keeps the call's frame work on one media thread (`pump::spawn_on_media`): the room
    /// name, which the room transport's reader of that room knows too.
    pub fn media_key(&self) -> &str {
        &self.0.spec.room
    }

    /// Parent span of everything the call does.
    pub fn span(&self) -> &tracing::Span {
        &self.0.span
    }

    pub fn counters(&self) -> &Counters {
        &self.0.counters
    }

    /// The caller turn in progress, logged with the call id.
    pub fn turn(&self) -> u32 {
        self.0.counters.current_turn.load(Ordering::Relaxed)
    }
}

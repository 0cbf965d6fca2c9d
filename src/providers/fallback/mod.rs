//! Fallback between a primary and a secondary provider of one kind.
//!
//! A circuit breaker watches the primary: connect failures, sessions that fail mid-stream and LLM
//! requests that fail before their first token all count; `failure_threshold` consecutive failures
//! open it. While open, new sessions go straight to the secondary and a background probe (a real
//! small request) retries the primary every `cooldown` until it answers; the primary then serves
//! again on probation (half-open) until real work closes the breaker or one failure re-opens it.
//!
//! A call fails over mid-call without losing the turn: a failed STT/TTS child restarts, reconnects
//! (to the secondary when the primary's connect fails or the breaker is open) and replays or
//! re-speaks; an LLM request that fails before its first token is re-issued on the secondary inside
//! the same stream, so the dialogue never sees the failure.

mod llm;
mod media;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use frontdesk_actors::call::shared::lock;
use serde::Deserialize;

pub use llm::FallbackLlm;
pub use media::{FallbackStt, FallbackTts};

const FAILOVERS: &str = "frontdesk_provider_failovers_total";
const PROBES: &str = "frontdesk_provider_probes_total";

/// When to stop trusting a primary and how often to probe it again.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive primary failures (across calls) that open the breaker.
    pub failure_threshold: u32,
    /// Pause between background probes of an unhealthy primary.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 2,
            cooldown_ms: 10_000,
        }
    }
}

impl BreakerConfig {
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.failure_threshold == 0 {
            errors.push("providers.breaker.failure_threshold must be at least 1".into());
        }
        if self.cooldown_ms == 0 {
            errors.push("providers.breaker.cooldown_ms must be positive".into());
        }
    }
}

/// Closed: the primary serves. Open: it is skipped while a background probe retries it.
/// HalfOpen: a probe passed, so the primary serves again, but one more failure re-opens at once
/// and only real work (a final transcript, a finished reply) closes the breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive: u32,
    mode: Mode,
}

/// Health of one primary provider.
#[derive(Debug)]
pub struct Breaker {
    kind: &'static str,
    cfg: BreakerConfig,
    state: Mutex<BreakerState>,
    failovers: AtomicU64,
}

impl Breaker {
    pub fn new(kind: &'static str, cfg: BreakerConfig) -> Arc<Self> {
        Arc::new(Self {
            kind,
            cfg,
            state: Mutex::new(BreakerState::default()),
            failovers: AtomicU64::new(0),
        })
    }

    /// May new sessions use the primary?
    pub fn primary_allowed(&self) -> bool {
        lock(&self.state).mode != Mode::Open
    }

    /// Closed: the primary has been doing real work.
    pub fn is_healthy(&self) -> bool {
        lock(&self.state).mode == Mode::Closed
    }

    /// "stt", "llm" or "tts".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Times the breaker opened.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// Count a primary failure; `true` when this one opened the breaker (start probing then).
    fn record_failure(&self, why: &dyn std::fmt::Display) -> bool {
        let mut s = lock(&self.state);
        s.consecutive = s.consecutive.saturating_add(1);
        let opens = match s.mode {
            Mode::Open => false,
            Mode::HalfOpen => true,
            Mode::Closed => s.consecutive >= self.cfg.failure_threshold,
        };
        if !opens {
            tracing::info!(kind = self.kind, error = %why, failures = s.consecutive, "primary provider failed");
            return false;
        }
        s.mode = Mode::Open;
        drop(s);
        tracing::warn!(kind = self.kind, error = %why, "primary provider unhealthy; failing over");
        self.failovers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILOVERS, "kind" => self.kind).increment(1);
        true
    }

    /// The primary did real work: it is healthy.
    fn record_success(&self) {
        let mut s = lock(&self.state);
        if s.mode != Mode::Closed {
            tracing::info!(kind = self.kind, "primary provider healthy again");
        }
        *s = BreakerState::default();
    }

    /// A probe passed: let the primary serve again, on probation.
    fn probe_passed(&self) {
        let mut s = lock(&self.state);
        if s.mode == Mode::Open {
            tracing::info!(
                kind = self.kind,
                "primary provider answers probes; trying it again"
            );
            s.mode = Mode::HalfOpen;
        }
    }

    /// Probe the primary every cool-down until it answers (then close the breaker). Holds only a
    /// weak reference, so a dropped provider stops its probe.
    fn spawn_probe<F, Fut>(self: &Arc<Self>, probe: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let weak: Weak<Self> = Arc::downgrade(self);
        let pause = Duration::from_millis(self.cfg.cooldown_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(pause).await;
                let Some(breaker) = weak.upgrade() else {
                    return;
                };
                let result = probe().await;
                let outcome = if result.is_ok() { "ok" } else { "failed" };
                metrics::counter!(PROBES, "kind" => breaker.kind, "outcome" => outcome)
                    .increment(1);
                match result {
                    Ok(()) => return breaker.probe_passed(),
                    Err(e) => tracing::debug!(kind = breaker.kind, error = %e, "probe failed"),
                }
            }
        });
    }
}

/// What a session watcher reports to: the breaker, and how to start probing the primary.
#[derive(Clone)]
struct Health {
    breaker: Arc<Breaker>,
    start_probe: Arc<dyn Fn() + Send + Sync>,
}

impl Health {
    fn failed(&self, why: &dyn std::fmt::Display) {
        if self.breaker.record_failure(why) {
            (self.start_probe)();
        }
    }

    fn ok(&self) {
        self.breaker.record_success();
    }
}

type Probe<P> = fn(Arc<P>) -> futures_util::future::BoxFuture<'static, Result<(), String>>;

/// A primary, an optional secondary, and the primary's health.
struct Pair<P: ?Sized + Send + Sync + 'static> {
    primary: Arc<P>,
    secondary: Option<Arc<P>>,
    health: Health,
}

impl<P: ?Sized + Send + Sync + 'static> Pair<P> {
    fn new(
        kind: &'static str,
        primary: Arc<P>,
        secondary: Option<Arc<P>>,
        cfg: BreakerConfig,
        probe: Probe<P>,
    ) -> Self {
        let breaker = Breaker::new(kind, cfg);
        let (weak, target) = (Arc::downgrade(&breaker), Arc::clone(&primary));
        let start_probe = Arc::new(move || {
            if let Some(b) = weak.upgrade() {
                let target = Arc::clone(&target);
                b.spawn_probe(move || probe(Arc::clone(&target)));
            }
        });
        Self {
            primary,
            secondary,
            health: Health {
                breaker,
                start_probe,
            },
        }
    }
}

/// Forward a session's events, reporting to `health`: an error counts as a primary failure (when
/// `counts` says it is the provider's fault), an event `healthy` says proves the provider works
/// counts as a success. The copy keeps the original bound, so back-pressure is unchanged.
fn watch<T, E>(
    mut events: tokio::sync::mpsc::Receiver<Result<T, E>>,
    health: Health,
    healthy: fn(&T) -> bool,
    counts: fn(&E) -> bool,
) -> tokio::sync::mpsc::Receiver<Result<T, E>>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(events.max_capacity().max(1));
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match &ev {
                Ok(t) if healthy(t) => health.ok(),
                Err(e) if counts(e) => health.failed(e),
                _ => {}
            }
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    rx
}

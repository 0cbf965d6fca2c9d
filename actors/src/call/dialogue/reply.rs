//! One reply: the LLM tool loop. Streams the completion, hands each finished sentence to TTS (via
//! the ledger) as it arrives, and runs tool calls through the DB gateway only once the model's step
//! has ended and the reply is still wanted: a tool never runs speculatively.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;

use super::sentence::SentenceSplitter;
use crate::call::msg::{DbMsg, DialogueMsg, TtsMsg};
use crate::call::ports::DialoguePorts;
use crate::call::shared::lock;
use crate::provider::{CacheLookup, LlmError, LlmEvent, ToolCall, ToolSpec};
use crate::store::RecordKind;
use crate::tools::{ToolOutcome, ToolStatus};

/// Spoken when the model produced nothing usable, so the caller never hears dead air.
const FALLBACK: &str = "Sorry, I didn't quite get that. Could you say it again?";

/// Set by barge-in; the reply stops at its next step boundary (tools already running finish).
#[derive(Debug, Default)]
pub struct CancelFlag {
    flag: AtomicBool,
    notify: Notify,
}

impl CancelFlag {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
    async fn cancelled(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

pub struct Reply {
    pub ports: DialoguePorts,
    pub reply_id: u64,
    pub cancel: Arc<CancelFlag>,
    pub tools: Arc<Vec<ToolSpec>>,
    /// True for the first reply of a turn (its timings go into the turn's timeline).
    pub timed: bool,
}

/// Outcome of one LLM step.
struct Step {
    tool_calls: Vec<ToolCall>,
    spoke: bool,
    failed: Option<LlmError>,
    /// Every earlier step of this reply was an answer cache hit.
    prior_hits: bool,
    /// The answer cache's verdict on this step, when a cache is in front of the provider.
    cache: Option<CacheLookup>,
}

impl Reply {
    pub async fn run(self) {
        let max = self.ports.cfg.dialogue.max_tool_steps;
        let mut spoke = false;
        let mut all_hits = true;
        for step in 0..max {
            // Span names as LiveKit Agents' (exported over OTLP when enabled).
            let s = self
                .step(step == 0, all_hits)
                .instrument(tracing::info_span!("llm_node", step))
                .await;
            spoke |= s.spoke;
            all_hits &= matches!(s.cache, Some(CacheLookup::Hit { .. }));
            if let Some(e) = &s.failed {
                tracing::warn!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), error = %e, "llm step failed");
            }
            if s.tool_calls.is_empty() || self.cancel.is_cancelled() {
                break;
            }
            lock(&self.ports.chat).attach_tool_calls(self.reply_id, s.tool_calls.clone());
            for call in &s.tool_calls {
                let span = tracing::info_span!("function_tool", tool = tool_label(&call.name));
                self.run_tool(call).instrument(span).await;
            }
            if self.cancel.is_cancelled() {
                break;
            }
        }
        if !spoke && !self.cancel.is_cancelled() {
            self.speak(FALLBACK);
        }
        self.end_text();
        self.ports.dialogue.send(DialogueMsg::ReplyDone {
            reply_id: self.reply_id,
        });
    }

    async fn step(&self, first: bool, prior_hits: bool) -> Step {
        let mut out = Step {
            tool_calls: vec![],
            spoke: false,
            failed: None,
            prior_hits,
            cache: None,
        };
        let req = lock(&self.ports.chat).request(&self.tools);
        let requested = Instant::now();
        if first {
            self.with_timeline(|t| t.llm_request_at = Some(requested));
        }
        let mut rx = match self.ports.llm.stream(req).await {
            Ok(rx) => rx,
            Err(e) => {
                out.failed = Some(e);
                self.add_wait(requested);
                return out;
            }
        };
        let mut splitter = SentenceSplitter::new();
        let mut first_token = true;
        let mut waited_from = requested;
        loop {
            let ev = tokio::select! {
                _ = self.cancel.cancelled() => return out,
                ev = rx.recv() => ev,
            };
            self.add_wait(waited_from);
            if !self.on_event(ev, first, &mut first_token, &mut splitter, &mut out) {
                break;
            }
            waited_from = Instant::now();
        }
        if let Some(rest) = splitter.finish() {
            out.spoke |= self.speak(&rest);
        }
        out
    }

    /// Handle one stream event; false when the stream is over.
    fn on_event(
        &self,
        ev: Option<Result<LlmEvent, LlmError>>,
        first: bool,
        first_token: &mut bool,
        splitter: &mut SentenceSplitter,
        out: &mut Step,
    ) -> bool {
        match ev {
            Some(Ok(LlmEvent::TextDelta(t))) => {
                if first && *first_token {
                    self.with_timeline(|tl| tl.llm_first_token_at = Some(Instant::now()));
                }
                *first_token = false;
                for s in splitter.push(&t) {
                    out.spoke |= self.speak(&s);
                }
            }
            Some(Ok(LlmEvent::ToolCall(c))) => out.tool_calls.push(c),
            Some(Ok(LlmEvent::Usage(u))) => {
                let mut usage = lock(&self.ports.usage);
                usage.prompt_tokens += u64::from(u.prompt_tokens);
                usage.completion_tokens += u64::from(u.completion_tokens);
            }
            Some(Ok(LlmEvent::Cache(c))) => {
                out.cache = Some(c);
                self.on_cache(c, out.prior_hits);
            }
            Some(Ok(LlmEvent::Done)) | None => return false,
            Some(Err(e)) => {
                out.failed = Some(e);
                return false;
            }
        }
        true
    }

    /// Count the answer cache's verdict. A reply made only of cache hits is caller-independent
    /// from start to end (every step's context passed the cache's rule and no step asked the
    /// provider), so its audio may be kept too: the ledger is marked before its first sentence,
    /// as the verdict precedes the text. Misses leave it unmarked: a later step might still turn
    /// to caller data, and TTS reads the mark when it opens the reply's session.
    fn on_cache(&self, c: CacheLookup, prior_hits: bool) {
        {
            let mut usage = lock(&self.ports.usage);
            match c {
                CacheLookup::Hit { saved, .. } => {
                    let (p, q) = (
                        u64::from(saved.prompt_tokens),
                        u64::from(saved.completion_tokens),
                    );
                    let cache = &mut usage.cache;
                    cache.llm_hits += 1;
                    cache.llm_saved_prompt_tokens += p;
                    cache.llm_saved_completion_tokens += q;
                    cache.saved_cost_usd += self.ports.prices.llm_saved_cost(p, q);
                }
                CacheLookup::Miss => usage.cache.llm_misses += 1,
                CacheLookup::Uncacheable | CacheLookup::Error => {}
            }
        }
        if let CacheLookup::Hit {
            ends_reply: true, ..
        } = c
        {
            let mut ledger = lock(&self.ports.ledger);
            if prior_hits && ledger.is_current(self.reply_id) {
                ledger.cacheable = true;
            }
        }
    }

    /// Provider waiting counts against the turn until the first sentence has gone to TTS.
    fn add_wait(&self, since: Instant) {
        if !self.timed {
            return;
        }
        let mut tl = lock(&self.ports.timeline);
        if tl.reply_id == self.reply_id && tl.first_sentence_at.is_none() {
            tl.provider_wait += since.elapsed();
        }
    }

    fn with_timeline(&self, f: impl FnOnce(&mut crate::call::timeline::TurnTimeline)) {
        if !self.timed {
            return;
        }
        let mut tl = lock(&self.ports.timeline);
        if tl.reply_id == self.reply_id {
            f(&mut tl);
        }
    }

    /// Hand a sentence to TTS. Returns false if the reply was cancelled meanwhile.
    fn speak(&self, text: &str) -> bool {
        {
            let mut ledger = lock(&self.ports.ledger);
            if !ledger.is_current(self.reply_id) || self.cancel.is_cancelled() {
                return false;
            }
            ledger.push_text(self.reply_id, text);
        }
        lock(&self.ports.chat).append_assistant_text(self.reply_id, text);
        super::publish::agent_partial(&self.ports, self.reply_id);
        self.with_timeline(|t| {
            t.first_sentence_at.get_or_insert_with(Instant::now);
        });
        self.ports.tts.send(TtsMsg::TextAvailable {
            reply_id: self.reply_id,
        });
        true
    }

    fn end_text(&self) {
        let mut ledger = lock(&self.ports.ledger);
        if ledger.is_current(self.reply_id) {
            ledger.text_ended = true;
            drop(ledger);
            self.ports.tts.send(TtsMsg::TextAvailable {
                reply_id: self.reply_id,
            });
        }
    }

    async fn run_tool(&self, call: &ToolCall) {
        let started = Instant::now();
        let outcome = call_gateway(&self.ports, call).await;
        let elapsed = started.elapsed();
        self.add_wait(started);
        metrics::counter!(crate::metrics::TOOL_CALLS, "tool" => tool_label(&call.name), "status" => outcome.status.as_str())
            .increment(1);
        lock(&self.ports.chat).push_tool_result(&call.id, &outcome.content);
        self.ports.record(RecordKind::ToolCall {
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            result: outcome.content.clone(),
            error: outcome
                .is_error()
                .then(|| outcome.status.as_str().to_string()),
            duration_ms: elapsed.as_secs_f64() * 1e3,
        });
    }
}

/// Tool names come from the model; only known ones become metric labels.
fn tool_label(name: &str) -> &'static str {
    crate::tools::TOOL_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("unknown")
}

/// Ask the gateway to run a tool, with a deadline; no gateway or no answer means "unavailable".
async fn call_gateway(ports: &DialoguePorts, call: &ToolCall) -> ToolOutcome {
    let Some(db) = ports.db.get() else {
        return ToolOutcome::unavailable();
    };
    // The gateway applies the tool timeout itself; this margin only covers a stuck mailbox.
    let deadline = ports.cfg.dialogue.tool_timeout() + Duration::from_millis(250);
    match db
        .call(
            |reply| DbMsg::Tool {
                call: call.clone(),
                reply,
            },
            Some(deadline),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(outcome)) => outcome,
        _ => ToolOutcome::error(
            ToolStatus::Unavailable,
            "The appointment system did not answer in time.",
        ),
    }
}

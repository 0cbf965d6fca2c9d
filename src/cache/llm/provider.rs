//! The answer cache in front of an LLM provider. Every completion request is judged by `rule`:
//! a hit is replayed without the provider (its text, then its tool calls under fresh ids); a
//! cacheable miss is streamed from the provider as it comes and its answer kept once complete;
//! anything else goes straight through. The verdict is the stream's first event
//! (`LlmEvent::Cache`), so the dialogue counts it and knows a reply is caller-independent before
//! its first sentence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::provider::{
    CacheLookup, ChatRequest, LlmError, LlmEvent, LlmProvider, ToolCall, Usage,
};
use tokio::sync::mpsc;

use super::cache::{AnswerCache, CachedAnswer, Key, Lookup};
use super::metrics;
use super::rule::{self, CALLER_INDEPENDENT_TOOLS};
use super::store::{Answer, CachedCall};

type Events = mpsc::Receiver<Result<LlmEvent, LlmError>>;

/// Events buffered between the provider and the dialogue (as a provider's own stream).
const CHANNEL: usize = 64;

/// Ids of replayed tool calls, unique in the process.
static REPLAYED: AtomicU64 = AtomicU64::new(0);

pub struct CachedLlm {
    inner: Arc<dyn LlmProvider>,
    cache: Arc<AnswerCache>,
}

impl CachedLlm {
    pub fn new(inner: Arc<dyn LlmProvider>, cache: Arc<AnswerCache>) -> Self {
        Self { inner, cache }
    }

    pub fn cache(&self) -> &Arc<AnswerCache> {
        &self.cache
    }
}

#[async_trait]
impl LlmProvider for CachedLlm {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn stream(&self, req: ChatRequest) -> Result<Events, LlmError> {
        let question = match rule::assess(&req) {
            Ok(q) => q,
            Err(_) => {
                metrics::lookup("uncacheable");
                return self.forward(req, CacheLookup::Uncacheable, None).await;
            }
        };
        match self.cache.lookup(&question).await {
            Lookup::Hit(hit) => {
                metrics::lookup("hit");
                Ok(replay(&hit))
            }
            Lookup::Miss(key) => {
                metrics::lookup("miss");
                self.forward(req, CacheLookup::Miss, Some(key)).await
            }
            Lookup::Error(key) => {
                metrics::lookup("error");
                self.forward(req, CacheLookup::Error, key).await
            }
        }
    }
}

impl CachedLlm {
    /// Stream from the provider behind the verdict; with a key, keep the answer if it qualifies.
    async fn forward(
        &self,
        req: ChatRequest,
        verdict: CacheLookup,
        key: Option<Key>,
    ) -> Result<Events, LlmError> {
        let mut upstream = self.inner.stream(req).await?;
        let (tx, rx) = mpsc::channel(CHANNEL);
        // A fresh channel has room: the verdict always goes first.
        let _ = tx.try_send(Ok(LlmEvent::Cache(verdict)));
        let cache = Arc::clone(&self.cache);
        tokio::spawn(async move {
            let mut seen = Seen::default();
            while let Some(ev) = upstream.recv().await {
                seen.note(&ev);
                if tx.send(ev).await.is_err() {
                    // The reply was cancelled: a partial answer is never kept.
                    return;
                }
            }
            let (prompt, completion) = seen.usage;
            if let (Some(key), Some(answer)) = (key, seen.answer()) {
                cache.store(key, answer, prompt, completion);
            }
        });
        Ok(rx)
    }
}

/// What a streamed answer consisted of.
#[derive(Default)]
struct Seen {
    text: String,
    calls: Vec<CachedCall>,
    usage: (u64, u64),
    done: bool,
    failed: bool,
}

impl Seen {
    fn note(&mut self, ev: &Result<LlmEvent, LlmError>) {
        match ev {
            Ok(LlmEvent::TextDelta(t)) => self.text.push_str(t),
            Ok(LlmEvent::ToolCall(c)) => self.calls.push(CachedCall {
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            }),
            Ok(LlmEvent::Usage(u)) => {
                self.usage.0 += u64::from(u.prompt_tokens);
                self.usage.1 += u64::from(u.completion_tokens);
            }
            Ok(LlmEvent::Done) => self.done = true,
            Ok(LlmEvent::Cache(_)) => {}
            Err(_) => self.failed = true,
        }
    }

    /// The answer, if it may be kept: complete, not empty, and asking only caller-independent
    /// tools (an answer that turns to caller data is never stored).
    fn answer(self) -> Option<Answer> {
        let tools_ok = self
            .calls
            .iter()
            .all(|c| CALLER_INDEPENDENT_TOOLS.contains(&c.name.as_str()));
        let empty = self.text.trim().is_empty() && self.calls.is_empty();
        (self.done && !self.failed && tools_ok && !empty).then_some(Answer {
            text: self.text,
            tool_calls: self.calls,
        })
    }
}

/// A hit as a provider stream: the verdict, the text, the tool calls, done.
fn replay(hit: &CachedAnswer) -> Events {
    let a = &hit.answer;
    let (tx, rx) = mpsc::channel(a.tool_calls.len() + 3);
    let saved = Usage {
        prompt_tokens: u32::try_from(hit.prompt_tokens).unwrap_or(u32::MAX),
        completion_tokens: u32::try_from(hit.completion_tokens).unwrap_or(u32::MAX),
    };
    let verdict = CacheLookup::Hit {
        saved,
        ends_reply: a.tool_calls.is_empty(),
    };
    let mut events = vec![LlmEvent::Cache(verdict)];
    if !a.text.is_empty() {
        events.push(LlmEvent::TextDelta(a.text.clone()));
    }
    for c in &a.tool_calls {
        let n = REPLAYED.fetch_add(1, Ordering::Relaxed);
        events.push(LlmEvent::ToolCall(ToolCall {
            id: format!("cached_{n}"),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        }));
    }
    events.push(LlmEvent::Done);
    for ev in events {
        // Sized for every event: never full.
        let _ = tx.try_send(Ok(ev));
    }
    rx
}

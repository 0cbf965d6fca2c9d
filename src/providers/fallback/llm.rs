//! LLM fallback: a request that fails on the primary before its first token is re-issued on the
//! secondary inside the same event stream, so the dialogue sees one slower reply, not a failure.

use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::provider::{ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::{Breaker, BreakerConfig, Health, Pair};

type Events = mpsc::Receiver<Result<LlmEvent, LlmError>>;

pub struct FallbackLlm(Pair<dyn LlmProvider>);

impl FallbackLlm {
    pub fn new(
        primary: Arc<dyn LlmProvider>,
        secondary: Option<Arc<dyn LlmProvider>>,
        cfg: BreakerConfig,
    ) -> Self {
        Self(Pair::new("llm", primary, secondary, cfg, probe_llm))
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.0.health.breaker
    }
}

/// A one-word completion: the cheapest request that proves the whole path works.
fn probe_llm(p: Arc<dyn LlmProvider>) -> BoxFuture<'static, Result<(), String>> {
    async move {
        let req = ChatRequest {
            messages: vec![ChatMessage::user("Reply with the word ok.")],
            tools: vec![],
        };
        let mut rx = p.stream(req).await.map_err(|e| e.to_string())?;
        while let Some(ev) = rx.recv().await {
            match ev {
                Ok(LlmEvent::TextDelta(_) | LlmEvent::Done) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("stream ended without a token".into())
    }
    .boxed()
}

/// Our own bad request fails on every provider alike; everything else is the provider's fault.
fn llm_fault(e: &LlmError) -> bool {
    !matches!(e, LlmError::BadRequest(_))
}

#[async_trait]
impl LlmProvider for FallbackLlm {
    fn name(&self) -> &'static str {
        self.0.primary.name()
    }

    async fn stream(&self, req: ChatRequest) -> Result<Events, LlmError> {
        let pair = &self.0;
        let Some(secondary) = &pair.secondary else {
            return pair.primary.stream(req).await;
        };
        if !pair.health.breaker.primary_allowed() {
            return secondary.stream(req).await;
        }
        match pair.primary.stream(req.clone()).await {
            Ok(first) => {
                let (tx, rx) = mpsc::channel(first.max_capacity().max(1));
                let relay = Relay {
                    health: pair.health.clone(),
                    secondary: Arc::clone(secondary),
                    req,
                    tx,
                };
                tokio::spawn(relay.run(first));
                Ok(rx)
            }
            Err(e) if llm_fault(&e) => {
                pair.health.failed(&e);
                secondary.stream(req).await
            }
            Err(e) => Err(e),
        }
    }
}

/// Forwards the primary's stream; on a provider failure before the first token, switches to the
/// secondary with the same request.
struct Relay {
    health: Health,
    secondary: Arc<dyn LlmProvider>,
    req: ChatRequest,
    tx: mpsc::Sender<Result<LlmEvent, LlmError>>,
}

impl Relay {
    async fn run(self, mut primary: Events) {
        let mut emitted = false;
        while let Some(ev) = primary.recv().await {
            match &ev {
                Err(e) if !emitted && llm_fault(e) => {
                    self.health.failed(e);
                    metrics::counter!("frontdesk_provider_request_failovers_total", "kind" => "llm")
                        .increment(1);
                    return self.switch().await;
                }
                Err(e) if llm_fault(e) => self.health.failed(e),
                Ok(LlmEvent::TextDelta(_) | LlmEvent::ToolCall(_)) => emitted = true,
                Ok(LlmEvent::Done) => self.health.ok(),
                _ => {}
            }
            // A closed receiver is the dialogue cancelling (barge-in): drop the request.
            if self.tx.send(ev).await.is_err() {
                return;
            }
        }
    }

    async fn switch(self) {
        let mut rx = match self.secondary.stream(self.req).await {
            Ok(rx) => rx,
            Err(e) => {
                let _ = self.tx.send(Err(e)).await;
                return;
            }
        };
        while let Some(ev) = rx.recv().await {
            if self.tx.send(ev).await.is_err() {
                return;
            }
        }
    }
}

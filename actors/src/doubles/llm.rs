//! A streaming chat-completion double with a small receptionist policy: it asks for tools when the
//! caller wants a doctor or an appointment, reads tool results back, and otherwise answers from a
//! few canned lines. Time to first token and token rate are configurable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::Latency;
use crate::provider::{ChatRequest, LlmError, LlmEvent, LlmProvider, Role, ToolCall, Usage};

#[derive(Clone, Debug)]
pub struct ScriptedLlmConfig {
    pub ttft: Latency,
    /// Between tokens (words).
    pub token_interval: Duration,
    /// Offer tool calls when tools are available.
    pub use_tools: bool,
    /// The first N requests fail with a server error.
    pub failed_requests: u64,
    /// Decides the replies instead of the built-in canned policy (the simulation plugs in the
    /// OpenAI emulator's receptionist, so both provider modes hold the same conversations).
    pub policy: Option<Policy>,
}

/// What a policy answers: the model's text and its tool calls.
pub type PolicyReply = (String, Vec<ToolCall>);
/// The policy's function: a request and its number in, the reply out.
pub type PolicyFn = dyn Fn(&ChatRequest, u64) -> PolicyReply + Send + Sync;

/// A reply policy: the model's text and tool calls for a request; `n` numbers the requests.
#[derive(Clone)]
pub struct Policy(pub std::sync::Arc<PolicyFn>);

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Policy(..)")
    }
}

impl Default for ScriptedLlmConfig {
    fn default() -> Self {
        Self {
            ttft: Latency::ms(300, 100),
            token_interval: Duration::from_millis(15),
            use_tools: true,
            failed_requests: 0,
            policy: None,
        }
    }
}

pub struct ScriptedLlm {
    cfg: ScriptedLlmConfig,
    requests: AtomicU64,
    log: std::sync::Mutex<Vec<ChatRequest>>,
    keep_log: bool,
}

impl ScriptedLlm {
    pub fn new(cfg: ScriptedLlmConfig) -> Self {
        Self {
            cfg,
            requests: AtomicU64::new(0),
            log: Default::default(),
            keep_log: false,
        }
    }

    /// Keep every request (tests read the chat context the model saw).
    pub fn recording(mut self) -> Self {
        self.keep_log = true;
        self
    }

    pub fn request_log(&self) -> Vec<ChatRequest> {
        crate::call::shared::lock(&self.log).clone()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

const SPECIALTIES: &[(&str, &str)] = &[
    ("heart", "cardiology"),
    ("cardio", "cardiology"),
    ("skin", "dermatology"),
    ("derma", "dermatology"),
    ("child", "paediatrics"),
    ("bone", "orthopaedics"),
    ("knee", "orthopaedics"),
    ("head", "neurology"),
];

const CANNED: &[&str] = &[
    "Of course. Could you give me your full name and date of birth, please?",
    "Thank you. Is there anything else I can help you with today?",
    "I understand. Let me make a note of that for the doctor.",
    "Certainly. Our clinic is open from nine to five on weekdays.",
];

/// What the policy says next: text and/or tool calls.
pub fn respond(req: &ChatRequest, use_tools: bool, n: u64) -> (String, Vec<ToolCall>) {
    let Some(last) = req.messages.last() else {
        return (CANNED[0].into(), vec![]);
    };
    match last.role {
        Role::Tool => (summarise(&last.content), vec![]),
        Role::User => {
            let t = last.content.to_lowercase();
            let wants = ["doctor", "appointment", "book", "see someone", "specialist"]
                .iter()
                .any(|w| t.contains(w));
            if use_tools && wants && !req.tools.is_empty() {
                let specialty = SPECIALTIES
                    .iter()
                    .find(|(k, _)| t.contains(k))
                    .map(|(_, s)| *s);
                let args = match specialty {
                    Some(s) => json!({ "specialty": s }),
                    None => json!({}),
                };
                let call = ToolCall {
                    id: format!("call_{n}"),
                    name: "list_doctors".into(),
                    arguments: args.to_string(),
                };
                ("Let me check who is available. ".into(), vec![call])
            } else {
                let i = t.bytes().map(u64::from).sum::<u64>() as usize % CANNED.len();
                (CANNED[i].into(), vec![])
            }
        }
        _ => (CANNED[1].into(), vec![]),
    }
}

fn summarise(content: &str) -> String {
    let v: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return format!("I'm sorry, I couldn't do that: {e} Can I help with something else?");
    }
    match v.get("result") {
        Some(Value::Array(items)) if items.is_empty() => {
            "I'm sorry, I found nothing for that. Would another day work?".into()
        }
        Some(Value::Array(items)) => {
            let first = items[0]
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("the first option");
            format!(
                "I found {} options. {first} is available. Would you like me to book that?",
                items.len()
            )
        }
        _ => "That's done. Is there anything else I can help with?".into(),
    }
}

#[async_trait]
impl LlmProvider for ScriptedLlm {
    fn name(&self) -> &'static str {
        "scripted-llm"
    }

    async fn stream(
        &self,
        req: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if n < self.cfg.failed_requests {
            return Err(LlmError::Server("injected 500".into()));
        }
        if self.keep_log {
            crate::call::shared::lock(&self.log).push(req.clone());
        }
        let (text, calls) = match &self.cfg.policy {
            Some(p) => (p.0)(&req, n),
            None => respond(&req, self.cfg.use_tools, n),
        };
        let prompt_tokens = req
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32 + 4)
            .sum();
        let ttft = self.cfg.ttft.sample(n);
        let interval = self.cfg.token_interval;
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(async move {
            tokio::time::sleep(ttft).await;
            let mut completion = 0u32;
            for (i, word) in text.split_inclusive(' ').enumerate() {
                if i > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                completion += 1;
                if tx
                    .send(Ok(LlmEvent::TextDelta(word.to_string())))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            for c in calls {
                completion += 8;
                let _ = tx.send(Ok(LlmEvent::ToolCall(c))).await;
            }
            let _ = tx
                .send(Ok(LlmEvent::Usage(Usage {
                    prompt_tokens,
                    completion_tokens: completion,
                })))
                .await;
            let _ = tx.send(Ok(LlmEvent::Done)).await;
        });
        Ok(rx)
    }
}

//! Rendering one answer as the API would: the SSE chunk sequence (role, word-by-word content,
//! tool-call fragments by index with arguments in pieces, finish, usage, `[DONE]`) with timing and
//! in-stream faults, or the plain `chat.completion` object.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use frontdesk_actors::provider::ToolCall;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::emulators::faults::FaultKind;

/// What the "model" answers.
pub struct Answer {
    pub model: String,
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub prompt_tokens: u32,
    /// The text was cut at `max_completion_tokens` (finish reason `length`).
    pub cut: bool,
}

/// Something to go wrong inside the stream.
#[derive(Clone, Copy, Debug)]
pub enum Trouble {
    Fault(FaultKind),
    ErrorEvent,
}

pub struct Plan {
    pub ttft: Duration,
    pub interval: Duration,
    pub include_usage: bool,
    pub mischief: Option<Trouble>,
    /// In-stream faults strike after this many events.
    pub after: usize,
}

const ID: &str = "chatcmpl-emulated";
const CREATED: u64 = 1_764_000_000;
const FINGERPRINT: &str = "fp_emulated";

impl Answer {
    fn completion_tokens(&self) -> u32 {
        self.text.split_whitespace().count() as u32 + 10 * self.calls.len() as u32
    }

    fn usage(&self) -> Value {
        let c = self.completion_tokens();
        json!({ "prompt_tokens": self.prompt_tokens, "completion_tokens": c, "total_tokens": self.prompt_tokens + c,
            "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
            "completion_tokens_details": { "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0 } })
    }

    fn finish_reason(&self) -> &'static str {
        if self.cut {
            "length"
        } else if self.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    /// The non-streaming `chat.completion` object.
    pub fn completion(&self) -> Value {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|c| {
                json!({ "id": c.id, "type": "function",
            "function": { "name": c.name, "arguments": c.arguments } })
            })
            .collect();
        let mut message = json!({ "role": "assistant", "content": (!self.text.is_empty()).then_some(&self.text), "refusal": null });
        if !calls.is_empty() {
            message["tool_calls"] = json!(calls);
        }
        json!({ "id": ID, "object": "chat.completion", "created": CREATED, "model": self.model,
            "service_tier": "default", "system_fingerprint": FINGERPRINT,
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": self.finish_reason() }],
            "usage": self.usage() })
    }

    /// One `data:` event; with `include_usage` every chunk but the last carries `"usage": null`.
    fn chunk(&self, delta: Value, finish: Option<&str>, include_usage: bool) -> String {
        let mut c = json!({ "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": self.model,
            "service_tier": "default", "system_fingerprint": FINGERPRINT,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }] });
        if include_usage {
            c["usage"] = Value::Null;
        }
        format!("data: {c}\n\n")
    }

    /// Every event of the stream after the role chunk, `[DONE]` included.
    fn events(&self, include_usage: bool) -> Vec<String> {
        let chunk = |delta: Value| self.chunk(delta, None, include_usage);
        let mut out: Vec<String> = self
            .text
            .split_inclusive(' ')
            .map(|w| chunk(json!({ "content": w })))
            .collect();
        for (i, c) in self.calls.iter().enumerate() {
            let first = json!({ "tool_calls": [{ "index": i, "id": c.id, "type": "function",
                "function": { "name": c.name, "arguments": "" } }] });
            out.push(chunk(first));
            for piece in pieces(&c.arguments, 3) {
                out.push(chunk(
                    json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] }),
                ));
            }
        }
        out.push(self.chunk(json!({}), Some(self.finish_reason()), include_usage));
        if include_usage {
            let u = json!({ "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": self.model,
                "service_tier": "default", "system_fingerprint": FINGERPRINT,
                "choices": [], "usage": self.usage() });
            out.push(format!("data: {u}\n\n"));
        }
        out.push("data: [DONE]\n\n".into());
        out
    }
}

/// `s` cut into about `n` pieces on character boundaries.
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A `text/event-stream` response fed by a task that paces the events and injects faults.
pub fn sse_response(answer: Answer, plan: Plan) -> Response {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(feed(answer, plan, tx));
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("x-request-id", "req_emulated")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn feed(answer: Answer, plan: Plan, tx: Tx) {
    let role = answer.chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
        None,
        plan.include_usage,
    );
    if let Some(Trouble::Fault(FaultKind::Stall)) = plan.mischief {
        // Headers and the role chunk, then silence until the client gives up.
        let _ = tx.send(Ok(Bytes::from(role))).await;
        tx.closed().await;
        return;
    }
    tokio::time::sleep(plan.ttft).await;
    let mut events = vec![role];
    events.extend(answer.events(plan.include_usage));
    // A short answer still gets its fault: at the latest just before `[DONE]`.
    let at = plan.after.min(events.len().saturating_sub(1));
    for (i, ev) in events.into_iter().enumerate() {
        if i > 1 && !plan.interval.is_zero() {
            tokio::time::sleep(plan.interval).await;
        }
        if i == at && !strike(plan.mischief, &tx).await {
            return;
        }
        if tx.send(Ok(Bytes::from(ev))).await.is_err() {
            return;
        }
    }
}

/// Inject the in-stream fault; false when the stream must end here.
async fn strike(m: Option<Trouble>, tx: &Tx) -> bool {
    match m {
        Some(Trouble::Fault(FaultKind::DropSocket)) => {
            // An errored body makes the server abort the connection mid-response.
            let _ = tx
                .send(Err(std::io::Error::other("emulated connection drop")))
                .await;
            false
        }
        Some(Trouble::Fault(FaultKind::MalformedJson)) => {
            let garbage = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\n\n";
            tx.send(Ok(Bytes::from_static(garbage.as_bytes())))
                .await
                .is_ok()
        }
        Some(Trouble::ErrorEvent) => {
            let e = json!({ "error": { "message": "The server had an error while processing your request.",
                "type": "server_error", "param": null, "code": null } });
            let _ = tx.send(Ok(Bytes::from(format!("data: {e}\n\n")))).await;
            false
        }
        _ => true,
    }
}

/// How long a stalled plain request is held before its connection is dropped: the client gave up
/// long before; this only bounds what a stall keeps in the emulator.
const STALL_HOLD: Duration = Duration::from_secs(300);

/// The plain `chat.completion` response, or what a connection fault makes of it: a stall holds
/// the request unanswered, a drop aborts the connection halfway through the body, malformed JSON
/// is a 200 whose body is cut in half.
pub async fn plain_response(answer: &Answer, fault: Option<FaultKind>) -> Response {
    let body = answer.completion().to_string();
    match fault {
        Some(FaultKind::Stall) => {
            tokio::time::sleep(STALL_HOLD).await;
            aborted(String::new())
        }
        Some(FaultKind::DropSocket) => aborted(half(&body)),
        Some(FaultKind::MalformedJson) => json_body(Body::from(half(&body))),
        _ => json_body(Body::from(body)),
    }
}

fn json_body(body: Body) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .header("x-request-id", "req_emulated")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A 200 whose body breaks off after `prefix`: the server aborts the connection.
fn aborted(prefix: String) -> Response {
    let parts: [Result<Bytes, std::io::Error>; 2] = [
        Ok(Bytes::from(prefix)),
        Err(std::io::Error::other("emulated connection drop")),
    ];
    json_body(Body::from_stream(futures_util::stream::iter(parts)))
}

/// The first half of `s`, cut on a character boundary.
fn half(s: &str) -> String {
    let n = s.chars().count() / 2;
    s.chars().take(n).collect()
}

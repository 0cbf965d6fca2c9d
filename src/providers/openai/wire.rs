//! The pure half of the OpenAI client: request body, chunk decoding, tool-call accumulation and
//! HTTP error classification. No I/O here, so all of it is unit- and property-tested.

use std::collections::BTreeMap;

use frontdesk_actors::provider::{
    ChatMessage, ChatRequest, LlmError, LlmEvent, Role, ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Model parameters that go into every request body.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyParams<'a> {
    pub model: &'a str,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// The JSON body of one streaming chat-completions request.
pub fn build_body(p: &BodyParams<'_>, req: &ChatRequest) -> Value {
    let mut body = json!({
        "model": p.model,
        "stream": true,
        "stream_options": { "include_usage": true },
        "messages": req.messages.iter().map(message).collect::<Vec<_>>(),
    });
    if let Some(t) = p.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = p.max_tokens {
        body["max_completion_tokens"] = json!(m);
    }
    // The API rejects tool_choice / parallel_tool_calls when no tools are offered.
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({ "type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters } })
            })
            .collect();
        body["tools"] = json!(tools);
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(true);
    }
    body
}

fn message(m: &ChatMessage) -> Value {
    match m.role {
        Role::Assistant if !m.tool_calls.is_empty() => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({ "id": c.id, "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments } })
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.as_deref().unwrap_or_default(),
            "content": m.content,
        }),
        role => json!({ "role": role, "content": m.content }),
    }
}

// ---- chunk decoding -------------------------------------------------------------------------

#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    index: Option<u64>,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolDelta>>,
}

#[derive(Deserialize)]
struct ToolDelta {
    index: usize,
    id: Option<String>,
    function: Option<FnDelta>,
}

#[derive(Deserialize)]
struct FnDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

/// What one `data:` payload says.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    Text(String),
    ToolFragment {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish(String),
    Usage(Usage),
    /// `{"error": {...}}` in the stream.
    Error(String),
    Done,
}

/// Decode one event's data. `Err` means the payload is not a chunk (the caller counts and skips it).
pub fn decode(data: &str) -> Result<Vec<Decoded>, serde_json::Error> {
    if data.trim() == "[DONE]" {
        return Ok(vec![Decoded::Done]);
    }
    let chunk: Chunk = serde_json::from_str(data)?;
    let mut out = Vec::new();
    if let Some(e) = chunk.error {
        out.push(Decoded::Error(describe_error(&e)));
        return Ok(out);
    }
    // Only the first choice is ours (we never ask for n > 1).
    for choice in chunk.choices.unwrap_or_default() {
        if choice.index.unwrap_or(0) != 0 {
            continue;
        }
        if let Some(delta) = choice.delta {
            if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                out.push(Decoded::Text(t));
            }
            for tc in delta.tool_calls.unwrap_or_default() {
                let (name, arguments) = tc
                    .function
                    .map(|f| (f.name, f.arguments.unwrap_or_default()))
                    .unwrap_or_default();
                out.push(Decoded::ToolFragment {
                    index: tc.index,
                    id: tc.id,
                    name,
                    arguments,
                });
            }
        }
        if let Some(r) = choice.finish_reason {
            out.push(Decoded::Finish(r));
        }
    }
    if let Some(u) = chunk.usage {
        out.push(Decoded::Usage(Usage {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
        }));
    }
    Ok(out)
}

/// "type/code: message" of an OpenAI error object (never echoes anything but the error fields).
pub fn describe_error(e: &Value) -> String {
    let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = [field("type"), field("code")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    let msg = field("message");
    match (kind.is_empty(), msg.is_empty()) {
        (true, true) => "unspecified error".into(),
        (true, false) => msg.into(),
        (false, true) => kind,
        (false, false) => format!("{kind}: {msg}"),
    }
}

// ---- tool-call accumulation -----------------------------------------------------------------

#[derive(Debug, Default)]
struct Partial {
    id: String,
    name: String,
    arguments: String,
}

/// Tool calls arrive in fragments keyed by `index`: the first carries id and name, the rest only
/// argument pieces. Complete calls come out in index order.
#[derive(Debug, Default)]
pub struct ToolAccumulator {
    calls: BTreeMap<usize, Partial>,
}

impl ToolAccumulator {
    pub fn push(&mut self, index: usize, id: Option<String>, name: Option<String>, args: &str) {
        let p = self.calls.entry(index).or_default();
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            p.id = id;
        }
        if let Some(name) = name.filter(|s| !s.is_empty()) {
            p.name = name;
        }
        p.arguments.push_str(args);
    }

    /// Every accumulated call; nameless ones are dropped (the model cannot be answered for them).
    pub fn drain(&mut self) -> (Vec<ToolCall>, usize) {
        let mut dropped = 0;
        let calls = std::mem::take(&mut self.calls)
            .into_iter()
            .filter_map(|(i, p)| {
                if p.name.is_empty() {
                    dropped += 1;
                    return None;
                }
                let id = if p.id.is_empty() {
                    format!("call_{i}")
                } else {
                    p.id
                };
                Some(ToolCall {
                    id,
                    name: p.name,
                    arguments: p.arguments,
                })
            })
            .collect();
        (calls, dropped)
    }
}

// ---- the stream as a whole ------------------------------------------------------------------

/// Turns event payloads into `LlmEvent`s: text right away, tool calls once complete.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    tools: ToolAccumulator,
    /// Payloads that could not be used (bad JSON, nameless tool calls).
    pub bad_messages: u64,
    pub done: bool,
    /// A finish_reason was seen.
    pub finished: bool,
}

impl StreamDecoder {
    /// Events produced by one `data:` payload.
    pub fn on_data(&mut self, data: &str) -> Vec<Result<LlmEvent, LlmError>> {
        let Ok(items) = decode(data) else {
            self.bad_messages += 1;
            return vec![];
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Decoded::Text(t) => out.push(Ok(LlmEvent::TextDelta(t))),
                Decoded::ToolFragment {
                    index,
                    id,
                    name,
                    arguments,
                } => self.tools.push(index, id, name, &arguments),
                Decoded::Finish(_) => {
                    self.finished = true;
                    self.flush(&mut out)
                }
                Decoded::Usage(u) => out.push(Ok(LlmEvent::Usage(u))),
                Decoded::Error(e) => {
                    out.push(Err(LlmError::Server(format!("error in stream: {e}"))))
                }
                Decoded::Done => {
                    self.flush(&mut out);
                    self.done = true;
                    out.push(Ok(LlmEvent::Done));
                }
            }
        }
        out
    }

    /// Complete tool calls still held (stream ended without finish_reason).
    pub fn flush(&mut self, out: &mut Vec<Result<LlmEvent, LlmError>>) {
        let (calls, dropped) = self.tools.drain();
        self.bad_messages += dropped as u64;
        out.extend(calls.into_iter().map(|c| Ok(LlmEvent::ToolCall(c))));
    }
}

// ---- HTTP errors ----------------------------------------------------------------------------

/// What to do about a non-2xx answer.
#[derive(Debug)]
pub struct HttpFailure {
    pub error: LlmError,
    pub retry: bool,
}

/// Classify a failed response from its status, `x-should-retry` header and body.
pub fn classify(status: u16, should_retry: Option<bool>, body: &str) -> HttpFailure {
    let err = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let code = err
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str);
    let desc = err
        .as_ref()
        .map(describe_error)
        .unwrap_or_else(|| format!("http {status}"));
    let desc = format!("{status} {desc}");
    let (error, default_retry) = match status {
        401 | 403 => (LlmError::Auth(desc), false),
        429 if code == Some("insufficient_quota") => {
            return HttpFailure {
                error: LlmError::Quota(desc),
                retry: false,
            }
        }
        429 => (LlmError::RateLimited(desc), true),
        408 => (LlmError::Timeout(desc), true),
        409 | 500.. => (LlmError::Server(desc), true),
        _ => (LlmError::BadRequest(desc), false),
    };
    HttpFailure {
        error,
        retry: should_retry.unwrap_or(default_retry),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

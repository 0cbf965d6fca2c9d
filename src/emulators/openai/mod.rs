//! An OpenAI chat-completions emulator (protocols.md §5): SSE streaming with tool-call fragments,
//! usage chunk, `[DONE]`, the plain JSON form, auth, and fault injection. Its answers come from a
//! scripted receptionist (`policy`) so real booking flows can run through the real client.

pub mod parse;
pub mod policy;
mod stream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use frontdesk_actors::call::shared::lock;
use frontdesk_actors::doubles::Latency;
use frontdesk_actors::provider::{ChatMessage, ChatRequest, Role, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::faults::{FaultConfig, FaultKind, Faults};
use super::Emulator;

const NAME: &str = "openai";
/// Faults this emulator knows how to inject.
const SUPPORTED: &[FaultKind] = &[
    FaultKind::RateLimited,
    FaultKind::ServerError,
    FaultKind::DropSocket,
    FaultKind::Stall,
    FaultKind::MalformedJson,
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiEmulatorConfig {
    /// Required bearer key; `None` accepts any.
    pub api_key: Option<String>,
    pub ttft: Latency,
    pub token_interval_ms: u64,
    pub faults: FaultConfig,
    /// Rate-limit faults answer 429 `insufficient_quota` (final) instead of a retryable 429.
    pub insufficient_quota: bool,
    /// `retry-after-ms` sent with retryable 429s.
    pub retry_after_ms: u64,
}

impl Default for OpenAiEmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            ttft: Latency::ms(250, 100),
            token_interval_ms: 20,
            faults: FaultConfig::default(),
            insufficient_quota: false,
            retry_after_ms: 200,
        }
    }
}

/// Misbehaviours a test can force that are not generic `FaultKind`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forced {
    /// 429 with code `insufficient_quota`.
    Quota,
    /// 503 with `x-should-retry: false`.
    ServerErrorNoRetry,
    /// `data: {"error":{...}}` after a few chunks.
    ErrorEvent,
}

/// Test hooks: forced misbehaviours and a request counter.
#[derive(Debug, Default)]
pub struct OpenAiControls {
    forced: Mutex<VecDeque<Forced>>,
    requests: AtomicU64,
}

impl OpenAiControls {
    /// The next request gets `f` (before any `Faults` draw).
    pub fn force_next(&self, f: Forced) {
        lock(&self.forced).push_back(f);
    }

    /// Chat-completion requests received so far (authorised or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<Forced> {
        lock(&self.forced).pop_front()
    }
}

struct AppState {
    cfg: OpenAiEmulatorConfig,
    faults: Arc<Faults>,
    controls: Arc<OpenAiControls>,
}

/// The emulator's routes.
pub fn router(
    cfg: OpenAiEmulatorConfig,
    faults: Arc<Faults>,
    controls: Arc<OpenAiControls>,
) -> Router {
    let state = Arc::new(AppState {
        cfg,
        faults,
        controls,
    });
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(state)
}

pub async fn start(cfg: OpenAiEmulatorConfig, addr: SocketAddr) -> anyhow::Result<Emulator> {
    Ok(start_with_controls(cfg, addr).await?.0)
}

/// Like [`start`], also returning the test hooks.
pub async fn start_with_controls(
    cfg: OpenAiEmulatorConfig,
    addr: SocketAddr,
) -> anyhow::Result<(Emulator, Arc<OpenAiControls>)> {
    let faults = Arc::new(Faults::new(cfg.faults.clone()));
    let controls = Arc::new(OpenAiControls::default());
    let app = router(cfg, faults.clone(), controls.clone());
    Ok((Emulator::serve(NAME, addr, app, faults).await?, controls))
}

/// What happens to one request, decided before answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mischief {
    None,
    Fault(FaultKind),
    Forced(Forced),
}

async fn completions(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let n = st.controls.requests.fetch_add(1, Ordering::Relaxed);
    let (wire, req) = match admit(&st.cfg, &headers, &body) {
        Ok(ok) => ok,
        Err(resp) => return *resp,
    };
    let mischief = match st.controls.take() {
        Some(f) => Mischief::Forced(f),
        None => st
            .faults
            .draw(SUPPORTED)
            .map_or(Mischief::None, Mischief::Fault),
    };
    if let Some(resp) = refuse(&st, mischief, n) {
        return resp;
    }
    let answer = answer(&req, &wire);
    if wire["stream"] != true {
        return Json(answer.completion()).into_response();
    }
    if let Mischief::Fault(k) = mischief {
        st.faults.count(NAME, k);
    }
    let plan = stream::Plan {
        ttft: st.cfg.ttft.sample(n),
        interval: std::time::Duration::from_millis(st.cfg.token_interval_ms),
        include_usage: wire["stream_options"]["include_usage"] == true,
        mischief: match mischief {
            Mischief::Fault(k) => Some(stream::Trouble::Fault(k)),
            Mischief::Forced(Forced::ErrorEvent) => Some(stream::Trouble::ErrorEvent),
            _ => None,
        },
        after: st.cfg.faults.after_messages as usize,
    };
    stream::sse_response(answer, plan)
}

/// Auth and body checks; the parsed body and conversation, or the API's error response.
fn admit(
    cfg: &OpenAiEmulatorConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, ChatRequest), Box<Response>> {
    if let Some(key) = &cfg.api_key {
        let got = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got.strip_prefix("Bearer ") != Some(key.as_str()) {
            let msg = "Incorrect API key provided.";
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                msg,
                "invalid_request_error",
                "invalid_api_key",
            )));
        }
    }
    let bad = |msg: &str, code: &str| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            msg,
            "invalid_request_error",
            code,
        ))
    };
    let wire = serde_json::from_slice::<Value>(body).map_err(|_| {
        bad(
            "We could not parse the JSON body of your request.",
            "invalid_json",
        )
    })?;
    let req = chat_request(&wire)
        .ok_or_else(|| bad("'messages' is a required property.", "invalid_request"))?;
    Ok((wire, req))
}

/// The policy's reply to the conversation, as the model's answer.
fn answer(req: &ChatRequest, wire: &Value) -> stream::Answer {
    let reply = policy::respond(req, parse::Date::today());
    // Ids must be unique within the conversation; its length only grows.
    let calls = reply
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("call_{}_{i}", req.messages.len()),
            name: name.clone(),
            arguments: args.to_string(),
        })
        .collect();
    let prompt_tokens = req
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count() as u32 + 4)
        .sum();
    stream::Answer {
        model: wire["model"].as_str().unwrap_or("gpt-4o-mini").to_string(),
        text: reply.text,
        calls,
        prompt_tokens,
    }
}

/// HTTP-level faults: answer with an error instead of a completion.
fn refuse(st: &AppState, m: Mischief, n: u64) -> Option<Response> {
    let quota = || {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    };
    let resp = match m {
        Mischief::Forced(Forced::Quota) => quota(),
        Mischief::Forced(Forced::ServerErrorNoRetry) => with_headers(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is overloaded.",
                "server_error",
                "overloaded",
            ),
            &[("x-should-retry", "false".into())],
        ),
        Mischief::Fault(FaultKind::RateLimited) if st.cfg.insufficient_quota => quota(),
        Mischief::Fault(FaultKind::RateLimited) => rate_limited(st.cfg.retry_after_ms),
        Mischief::Fault(FaultKind::ServerError) => {
            let status = if n.is_multiple_of(2) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            with_headers(
                error(
                    status,
                    "The server had an error while processing your request.",
                    "server_error",
                    "server_error",
                ),
                &[("x-should-retry", "true".into())],
            )
        }
        _ => return None,
    };
    if let Mischief::Fault(k) = m {
        st.faults.count(NAME, k);
    }
    Some(resp)
}

/// A retryable 429 telling the client when to come back.
fn rate_limited(retry_after_ms: u64) -> Response {
    let msg = "Rate limit reached for requests.";
    with_headers(
        error(
            StatusCode::TOO_MANY_REQUESTS,
            msg,
            "requests",
            "rate_limit_exceeded",
        ),
        &[
            ("retry-after-ms", retry_after_ms.to_string()),
            ("retry-after", retry_after_ms.div_ceil(1000).to_string()),
            ("x-ratelimit-remaining-requests", "0".into()),
        ],
    )
}

fn with_headers(mut r: Response, hs: &[(&'static str, String)]) -> Response {
    for (k, v) in hs {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// The API's error body `{"error":{message,type,param,code}}`.
fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = "req_emulated".parse() {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

/// The wire messages as the policy's `ChatRequest` (tools are not needed to decide).
fn chat_request(wire: &Value) -> Option<ChatRequest> {
    let messages = wire
        .get("messages")?
        .as_array()?
        .iter()
        .filter_map(message)
        .collect();
    Some(ChatRequest {
        messages,
        tools: vec![],
    })
}

fn message(m: &Value) -> Option<ChatMessage> {
    let role = match m["role"].as_str()? {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    };
    // Content is a string, null, or an array of text parts.
    let content = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let tool_calls = m["tool_calls"].as_array().map_or_else(Vec::new, |cs| {
        cs.iter()
            .map(|c| ToolCall {
                id: c["id"].as_str().unwrap_or_default().into(),
                name: c["function"]["name"].as_str().unwrap_or_default().into(),
                arguments: c["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            })
            .collect()
    });
    let tool_call_id = m["tool_call_id"].as_str().map(String::from);
    Some(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

//! An OpenAI chat-completions emulator (protocols.md §5): SSE streaming with tool-call fragments,
//! usage chunk, `[DONE]`, the plain JSON form, auth, and fault injection in both forms. Its
//! answers come from a scripted receptionist (`policy`) so real booking flows can run through the
//! real client; the request decides what it may do (`choice`: declared tools, `tool_choice`,
//! `parallel_tool_calls`) and is checked as the API checks it (`request`: the API's 400s), so the
//! official SDK's requests (tests/support/sdk/test_openai.py) are answered as the API would.

mod choice;
pub mod parse;
pub mod policy;
mod request;
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
use frontdesk_actors::latency::Latency;
use frontdesk_actors::provider::ToolCall;
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
    FaultKind::ErrorEvent,
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
    let req = match admit(&st.cfg, &headers, &body) {
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
    // Every supported kind reaches both modes; one forced from outside that HTTP has no use for
    // (a websocket close code) is ignored and not counted.
    if let Mischief::Fault(k) = mischief {
        if SUPPORTED.contains(&k) {
            st.faults.count(NAME, k);
        }
    }
    if let Some(resp) = refuse(&st.cfg, mischief, n, req.stream) {
        return resp;
    }
    let answer = answer(&req);
    if !req.stream {
        let fault = match mischief {
            Mischief::Fault(k) => Some(k),
            _ => None,
        };
        return stream::plain_response(&answer, fault).await;
    }
    let plan = stream::Plan {
        ttft: st.cfg.ttft.sample(n),
        interval: std::time::Duration::from_millis(st.cfg.token_interval_ms),
        include_usage: req.include_usage,
        mischief: match mischief {
            Mischief::Fault(FaultKind::ErrorEvent) | Mischief::Forced(Forced::ErrorEvent) => {
                Some(stream::Trouble::ErrorEvent)
            }
            Mischief::Fault(k) => Some(stream::Trouble::Fault(k)),
            _ => None,
        },
        after: st.cfg.faults.after_messages as usize,
    };
    stream::sse_response(answer, plan)
}

/// Auth and body checks; the checked request, or the API's error response.
fn admit(
    cfg: &OpenAiEmulatorConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<request::Request, Box<Response>> {
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
    let wire = serde_json::from_slice::<Value>(body).map_err(|_| {
        let msg = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)";
        Box::new(invalid(&request::Invalid {
            message: msg.into(),
            param: None,
            code: None,
        }))
    })?;
    request::parse(&wire).map_err(|e| Box::new(invalid(&e)))
}

/// The policy's reply to the conversation, cut to the request's tools and token limit.
fn answer(req: &request::Request) -> stream::Answer {
    let reply = req
        .tools
        .apply(policy::respond(&req.chat, parse::Date::today()));
    // Ids must be unique within the conversation; its length only grows.
    let turn = req.chat.messages.len();
    let mut calls: Vec<ToolCall> = reply
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("call_{turn}_{i}"),
            name: name.clone(),
            arguments: args.to_string(),
        })
        .collect();
    let prompt_tokens = req
        .chat
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count() as u32 + 4)
        .sum();
    let (text, ended) = limited(req, reply.text);
    if ended != Ended::Whole {
        calls.clear();
    }
    stream::Answer {
        model: req.model.clone(),
        text,
        calls,
        prompt_tokens,
        cut: ended == Ended::Length,
    }
}

/// Where generation of the text ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Whole,
    /// At a stop sequence (not returned).
    Stop,
    /// At the token limit.
    Length,
}

/// The text as the request's stop sequences and token limit leave it (one word is one token).
/// Either ends generation before any tool call.
fn limited(req: &request::Request, mut text: String) -> (String, Ended) {
    let mut ended = Ended::Whole;
    if let Some(before) = req.stop.iter().find_map(|s| {
        let mut parts = text.split(s.as_str());
        parts.next().filter(|_| parts.next().is_some())
    }) {
        text = before.to_string();
        ended = Ended::Stop;
    }
    let limit = req.max_tokens.map_or(usize::MAX, |m| m as usize);
    if text.split_whitespace().count() > limit {
        text = text
            .split_inclusive(' ')
            .take(limit)
            .collect::<String>()
            .trim_end()
            .to_string();
        ended = Ended::Length;
    }
    (text, ended)
}

/// HTTP-level faults: answer with an error instead of a completion. The in-band error event has
/// no place in a plain response: there the API reports the same failure as a 500 `server_error`.
fn refuse(cfg: &OpenAiEmulatorConfig, m: Mischief, n: u64, stream: bool) -> Option<Response> {
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
        Mischief::Fault(FaultKind::RateLimited) if cfg.insufficient_quota => quota(),
        Mischief::Fault(FaultKind::RateLimited) => rate_limited(cfg.retry_after_ms),
        Mischief::Fault(FaultKind::ServerError) => server_error(n),
        Mischief::Fault(FaultKind::ErrorEvent) | Mischief::Forced(Forced::ErrorEvent)
            if !stream =>
        {
            server_error(0)
        }
        _ => return None,
    };
    Some(resp)
}

/// A retryable 500 or 503 (alternating with `n`).
fn server_error(n: u64) -> Response {
    let status = if n.is_multiple_of(2) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    with_headers(
        error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            "server_error",
        ),
        &[("x-should-retry", "true".into())],
    )
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

/// The API's 400 for a request it refuses.
fn invalid(e: &request::Invalid) -> Response {
    let body = json!({ "error": { "message": e.message, "type": "invalid_request_error",
        "param": e.param, "code": e.code } });
    let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    if let Ok(v) = "req_emulated".parse() {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

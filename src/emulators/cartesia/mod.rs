//! Cartesia TTS websocket emulator (protocols.md §4): `/tts/websocket` with key auth, API version
//! from query or header (it picks the error shape), many contexts per socket, continue/flush/cancel,
//! voice-like audio whose length follows the text in any raw output format, word and phoneme
//! timestamps, and per-connection and per-context fault injection.

mod formats;
mod request;
mod synth;
mod timestamps;
#[cfg(test)]
mod wire_tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_actors::latency::Latency;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::faults::{FaultConfig, FaultKind, Faults};
use super::Emulator;
use request::{error_json, http_error_json, parse_request, Request};
use synth::{Context, Input, Out, Pace};
use timestamps::Stamps;

const NAME: &str = "cartesia";
/// Versions from this date on get the new error shape (status_code/error_code/title/message).
const NEW_ERROR_SHAPE_FROM: &str = "2026-03-01";
/// The transport faults plus the API's in-band `error` message for a context.
const KINDS: [FaultKind; 7] = FaultKind::EVERY;
/// Server messages queued for one socket's writer (every context's audio, timestamps, errors).
/// Contexts wait for room, so a slow client slows generation, as TCP would a real server.
const OUT_QUEUE: usize = 256;
/// Requests queued for one context while it generates. A client streaming an LLM reply word by
/// word sends a few hundred; past this the context fails with a 429 error (counted).
const INPUT_QUEUE: usize = 1_024;
/// `frontdesk_edge_dropped_items_total` labels of the emulator's queues.
const OUT_EDGE: &str = "cartesia_emulator_out";
const INPUT_EDGE: &str = "cartesia_emulator_input";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartesiaEmulatorConfig {
    /// `None`: any key (or none) is accepted.
    pub api_key: Option<String>,
    /// Delay before a context's first audio.
    pub ttfb: Latency,
    /// Audio length: characters / this = seconds.
    pub chars_per_second: f64,
    /// Chunks go out this many times faster than real time.
    pub realtime_factor: f64,
    pub chunk_ms: u32,
    /// A context expires this long after its last audio.
    pub context_expiry_ms: u32,
    pub faults: FaultConfig,
}

impl Default for CartesiaEmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            ttfb: Latency::ms(150, 50),
            chars_per_second: 15.0,
            realtime_factor: 4.0,
            chunk_ms: 40,
            context_expiry_ms: 1_000,
            faults: FaultConfig::default(),
        }
    }
}

struct Shared {
    cfg: CartesiaEmulatorConfig,
    faults: Arc<Faults>,
    contexts: AtomicU64,
}

pub fn router(cfg: CartesiaEmulatorConfig, faults: Arc<Faults>) -> Router {
    let shared = Arc::new(Shared {
        cfg,
        faults,
        contexts: AtomicU64::new(0),
    });
    Router::new()
        .route("/tts/websocket", get(handshake))
        .with_state(shared)
}

pub async fn start(cfg: CartesiaEmulatorConfig, addr: SocketAddr) -> anyhow::Result<Emulator> {
    let faults = Arc::new(Faults::new(cfg.faults.clone()));
    Emulator::serve(NAME, addr, router(cfg, Arc::clone(&faults)), faults).await
}

fn authorised(
    cfg: &CartesiaEmulatorConfig,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> bool {
    let Some(key) = cfg.api_key.as_deref() else {
        return true;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-api-key") == Some(key)
        || header("authorization").and_then(|v| v.strip_prefix("Bearer ")) == Some(key)
        || q.get("api_key").map(String::as_str) == Some(key)
}

/// The client's API version: the query parameter wins over the header (the API's conventions).
fn version_of(headers: &HeaderMap, q: &HashMap<String, String>) -> Option<String> {
    q.get("cartesia_version").cloned().or_else(|| {
        let header = headers.get("cartesia-version")?.to_str().ok()?;
        Some(header.to_string())
    })
}

/// A refused handshake, its body in the version's error shape.
fn refuse(new_shape: bool, status: StatusCode, code: &str, msg: &str) -> Response {
    let body = http_error_json(new_shape, status.as_u16(), code, msg);
    (status, Json(body)).into_response()
}

/// Count a connection's fault; 429 and 500 refuse the handshake.
fn handshake_fault(shared: &Shared, fault: Option<FaultKind>, new_shape: bool) -> Option<Response> {
    let kind = fault?;
    let (status, code, msg) = match kind {
        FaultKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "concurrency_limited",
            "You have exceeded your plan's concurrency limit.",
        ),
        FaultKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        ),
        FaultKind::Stall => {
            shared.faults.count(NAME, kind);
            return None;
        }
        // Counted when they strike, later on the socket.
        _ => return None,
    };
    shared.faults.count(NAME, kind);
    Some(refuse(new_shape, status, code, msg))
}

async fn handshake(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let version = version_of(&headers, &q);
    let new_shape = version
        .as_deref()
        .is_some_and(|v| v >= NEW_ERROR_SHAPE_FROM);
    if !authorised(&shared.cfg, &headers, &q) {
        let msg = "Invalid API key";
        return refuse(new_shape, StatusCode::UNAUTHORIZED, "invalid_api_key", msg);
    }
    if version.is_none() {
        let msg = "missing Cartesia-Version header or cartesia_version query parameter";
        return refuse(new_shape, StatusCode::BAD_REQUEST, "missing_version", msg);
    }
    let fault = shared.faults.draw(&KINDS);
    if let Some(refused) = handshake_fault(&shared, fault, new_shape) {
        return refused;
    }
    super::small_buffers(ws).on_upgrade(move |socket| async move {
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let session = Session {
            ws: socket,
            shared,
            new_shape,
            fault,
            sent: 0,
            out,
            contexts: HashMap::new(),
        };
        session.run(out_rx).await;
    })
}

struct Ctx {
    input: mpsc::Sender<Input>,
    fields: Value,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

struct Session {
    ws: WebSocket,
    shared: Arc<Shared>,
    new_shape: bool,
    fault: Option<FaultKind>,
    /// Server messages written so far (faults strike after `after_messages`).
    sent: u32,
    out: mpsc::Sender<Out>,
    contexts: HashMap<String, Ctx>,
}

fn dropped(edge: &'static str) {
    frontdesk_actors::metrics::edge_dropped(edge, frontdesk_actors::edge::DropReason::Overflow, 1);
}

impl Session {
    async fn run(mut self, mut out_rx: mpsc::Receiver<Out>) {
        loop {
            tokio::select! {
                msg = self.ws.recv() => match msg {
                    Some(Ok(Message::Text(t))) => self.on_text(&t),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                Some(out) = out_rx.recv() => match out {
                    Out::Json(v) if self.is_stale(&v) => {}
                    Out::Json(v) => if !self.write(v).await { break },
                    Out::Ended { id, generation } => {
                        if self.contexts.get(&id).is_some_and(|c| c.generation == generation) {
                            self.contexts.remove(&id);
                        }
                    }
                },
            }
        }
        for (_, ctx) in self.contexts.drain() {
            ctx.task.abort();
        }
    }

    /// Audio already queued for a context that was cancelled since: never sent.
    fn is_stale(&self, v: &Value) -> bool {
        let is_error = v.get("type").and_then(Value::as_str) == Some("error");
        match v.get("context_id").and_then(Value::as_str) {
            Some(id) if !is_error => !self.contexts.contains_key(id),
            _ => false,
        }
    }

    /// Write one message, injecting this connection's fault; `false` ends the connection.
    async fn write(&mut self, v: Value) -> bool {
        self.sent += 1;
        let strike = self.sent > self.shared.faults.config().after_messages;
        match self.fault.filter(|_| strike) {
            Some(k @ FaultKind::DropSocket) => {
                self.shared.faults.count(NAME, k);
                // No close frame: once the client has read what was sent, TCP just goes.
                super::drop_after_linger(&mut self.ws).await;
                return false;
            }
            Some(k @ FaultKind::WrongCloseCode) => {
                self.shared.faults.count(NAME, k);
                let frame = CloseFrame {
                    code: 1011,
                    reason: "internal error".into(),
                };
                let _ = self.ws.send(Message::Close(Some(frame))).await;
                return false;
            }
            Some(k @ FaultKind::MalformedJson) => {
                self.shared.faults.count(NAME, k);
                self.fault = None;
                let garbage = Message::Text("{\"type\":\"chunk\",\"data\":".into());
                if self.ws.send(garbage).await.is_err() {
                    return false;
                }
            }
            _ => {}
        }
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    fn reply_error(&self, context_id: Option<&str>, code: &str, msg: &str) {
        self.reply_status(context_id, 400, code, msg);
    }

    fn reply_status(&self, context_id: Option<&str>, status: u16, code: &str, msg: &str) {
        let v = error_json(self.new_shape, context_id, status, code, msg);
        // The reader must not wait on its own writer's queue: a reply that does not fit is lost.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.out.try_send(Out::Json(v)) {
            dropped(OUT_EDGE);
        }
    }

    /// Faults are also drawn per context, because a client multiplexes every reply of a process
    /// over one socket: a per-connection draw alone would almost never strike in a long run.
    /// `None`: the context was refused with an error; otherwise how it misbehaves, if at all.
    fn context_fault(&mut self, id: &str) -> Option<CtxFault> {
        let faults = Arc::clone(&self.shared.faults);
        let after = faults.config().after_messages;
        if self.fault == Some(FaultKind::ErrorEvent) {
            // The connection's error event strikes its first context, once.
            self.fault = None;
            faults.count(NAME, FaultKind::ErrorEvent);
            return Some(CtxFault::error_after(after));
        }
        if self.fault.is_some() {
            return Some(CtxFault::default());
        }
        match faults.draw_inner(&KINDS) {
            None => Some(CtxFault::default()),
            Some(k @ FaultKind::Stall) => {
                faults.count(NAME, k);
                Some(CtxFault {
                    stall: true,
                    error_after: None,
                })
            }
            Some(k @ FaultKind::ErrorEvent) => {
                faults.count(NAME, k);
                Some(CtxFault::error_after(after))
            }
            Some(k @ FaultKind::RateLimited) => {
                faults.count(NAME, k);
                let msg = "You have exceeded your plan's concurrency limit.";
                self.reply_status(Some(id), 429, "concurrency_limited", msg);
                None
            }
            Some(k @ FaultKind::ServerError) => {
                faults.count(NAME, k);
                self.reply_status(Some(id), 500, "internal_error", "internal error");
                None
            }
            // Socket-level faults strike after `after_messages` more messages on this socket.
            Some(k) => {
                self.fault = Some(k);
                self.sent = 0;
                Some(CtxFault::default())
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.reply_error(None, "invalid_json", &e.to_string()),
        };
        let Some(id) = v
            .get("context_id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return self.reply_error(None, "missing_context_id", "missing context_id");
        };
        if v.get("cancel").and_then(Value::as_bool) == Some(true) {
            if let Some(ctx) = self.contexts.remove(&id) {
                ctx.task.abort();
            }
            return;
        }
        let req = match parse_request(&v) {
            Ok(req) => req,
            Err(msg) => return self.reply_error(Some(&id), "invalid_request", &msg),
        };
        let changed = |c: &Ctx| c.fields != req.fields && !req.only_ends();
        if self.contexts.get(&id).is_some_and(changed) {
            if let Some(ctx) = self.contexts.remove(&id) {
                ctx.task.abort();
            }
            let msg = "fields other than transcript/continue changed within the context";
            return self.reply_error(Some(&id), "context_mismatch", msg);
        }
        if !self.contexts.contains_key(&id) {
            let Some(fault) = self.context_fault(&id) else {
                return;
            };
            let ctx = self.spawn_context(&id, &req, fault);
            self.contexts.insert(id.clone(), ctx);
        }
        let mut inputs = vec![Input::Text {
            text: req.transcript,
            flush: req.flush,
        }];
        if !req.cont {
            inputs.push(Input::End);
        }
        let full = self.contexts.get(&id).is_some_and(|ctx| {
            inputs.into_iter().any(|i| {
                matches!(
                    ctx.input.try_send(i),
                    Err(mpsc::error::TrySendError::Full(_))
                )
            })
        });
        if full {
            dropped(INPUT_EDGE);
            if let Some(ctx) = self.contexts.remove(&id) {
                ctx.task.abort();
            }
            let msg = "too many requests queued for this context";
            self.reply_status(Some(&id), 429, "context_queue_full", msg);
        }
    }

    fn spawn_context(&self, id: &str, req: &Request, fault: CtxFault) -> Ctx {
        let cfg = &self.shared.cfg;
        let generation = self.shared.contexts.fetch_add(1, Ordering::Relaxed);
        let pace = Pace {
            ttfb: cfg.ttfb.sample(generation),
            chars_per_second: cfg.chars_per_second,
            realtime_factor: cfg.realtime_factor,
            chunk_ms: cfg.chunk_ms,
            expiry: Duration::from_millis(u64::from(cfg.context_expiry_ms)),
            stall: fault.stall || self.fault == Some(FaultKind::Stall),
        };
        let (input, rx) = mpsc::channel(INPUT_QUEUE);
        let context = Context {
            id: id.to_string(),
            generation,
            format: req.format,
            pace,
            stamps: Stamps::new(req.add_timestamps, req.add_phoneme_timestamps),
            new_shape: self.new_shape,
            error_after: fault.error_after,
            out: self.out.clone(),
        };
        Ctx {
            input,
            fields: req.fields.clone(),
            generation,
            task: tokio::spawn(context.run(rx)),
        }
    }
}

/// How one context misbehaves (a fault drawn for it or its connection).
#[derive(Clone, Copy, Debug, Default)]
struct CtxFault {
    stall: bool,
    /// An in-band `error` after this many chunks.
    error_after: Option<u32>,
}

impl CtxFault {
    fn error_after(n: u32) -> Self {
        Self {
            stall: false,
            error_after: Some(n),
        }
    }
}

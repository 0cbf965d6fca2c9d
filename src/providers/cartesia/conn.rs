//! One pooled Cartesia websocket: a task owns the socket, writes its sessions' requests and routes
//! each server message to its context's events by `context_id`. The reader never waits on a
//! context: audio that does not fit the context's bounded queue fails that context alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::provider::{TtsError, TtsEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::queue::{self, ContextTx, Refused};
use super::wire::{self, ServerMsg};
use super::CartesiaConfig;

pub(super) type Event = Result<TtsEvent, TtsError>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Commands queued for one socket's task. A session sends a handful per reply (register, a text
/// per sentence, finish, cancel) and the task writes each straight to the socket, so this only
/// fills when the socket's writes stall; senders then wait (`Drop` cannot, and counts the drop).
pub(super) const CMD_QUEUE: usize = frontdesk_actors::call::ports::CARTESIA_CMD.fixed_bound();
/// Metric label of the command queue in `frontdesk_edge_dropped_items_total`.
pub(super) const CMD_EDGE: &str = frontdesk_actors::call::ports::CARTESIA_CMD.name;

/// What a session asks of the connection task.
pub(super) enum Cmd {
    Register {
        id: String,
        events: ContextTx,
    },
    /// A request for the context; `text` arms the first-chunk timer on the context's first text.
    Send {
        id: String,
        json: String,
        text: bool,
    },
    /// Forget the context and tell the server to stop it.
    Cancel {
        id: String,
    },
}

/// A handle on a running connection task; dead once the task has exited.
#[derive(Clone)]
pub(super) struct Handle {
    pub cmds: mpsc::Sender<Cmd>,
    /// Contexts currently leased on this socket.
    active: Arc<AtomicUsize>,
}

impl Handle {
    pub fn is_alive(&self) -> bool {
        !self.cmds.is_closed()
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Count one more context on this socket until the lease is dropped.
    pub fn lease(&self) -> Lease {
        self.active.fetch_add(1, Ordering::Relaxed);
        Lease(self.clone())
    }
}

/// One context's claim on a socket.
pub(super) struct Lease(Handle);

impl Lease {
    pub fn cmds(&self) -> &mpsc::Sender<Cmd> {
        &self.0.cmds
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open the websocket (handshake errors mapped for the supervisor) and start its task.
/// `overflows` counts the contexts failed for a full queue (tests, besides the metric).
pub(super) async fn connect(
    cfg: &CartesiaConfig,
    overflows: Arc<AtomicU64>,
) -> Result<Handle, TtsError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = cfg
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| TtsError::Connect(format!("bad url: {e}")))?;
    let header = |v: &str| {
        HeaderValue::from_str(v).map_err(|_| TtsError::Connect("bad header value".into()))
    };
    req.headers_mut()
        .insert("X-API-Key", header(cfg.api_key.expose())?);
    req.headers_mut()
        .insert("Cartesia-Version", header(&cfg.version)?);
    let handshake = tokio_tungstenite::connect_async_with_config(
        req,
        Some(crate::providers::ws_config()),
        true,
    );
    let (ws, _) = tokio::time::timeout(cfg.connect_timeout(), handshake)
        .await
        .map_err(|_| TtsError::Timeout("websocket handshake".into()))?
        .map_err(handshake_error)?;
    let (cmds, rx) = mpsc::channel(CMD_QUEUE);
    let conn = Conn {
        ws,
        cmds: rx,
        contexts: HashMap::new(),
        first_chunk: cfg.first_chunk_timeout(),
        sample_rate: cfg.sample_rate,
        buffer_ms: cfg.context_buffer_ms,
        last_rx: Instant::now(),
        to_cancel: Vec::new(),
        overflows,
    };
    tokio::spawn(conn.run());
    Ok(Handle {
        cmds,
        active: Arc::default(),
    })
}

/// 401/403: wrong key, do not retry; 429: over the concurrency limit, retry later.
fn handshake_error(e: tungstenite::Error) -> TtsError {
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            s @ (401 | 403) => TtsError::Auth(format!("handshake HTTP {s}")),
            s => TtsError::Connect(format!("handshake HTTP {s}")),
        },
        other => TtsError::Connect(other.to_string()),
    }
}

struct Ctx {
    events: ContextTx,
    /// When the first text went out, while no audio has come back yet.
    armed_at: Option<Instant>,
    got_audio: bool,
}

/// Why the connection task stopped; every open context gets the matching error.
enum Exit {
    Closed(String),
    /// Nothing at all arrived since a context's first text, past its deadline.
    Stalled,
}

impl Exit {
    fn error(&self) -> TtsError {
        match self {
            Exit::Closed(why) => TtsError::Closed(why.clone()),
            Exit::Stalled => TtsError::Timeout("no audio from a stalled socket".into()),
        }
    }
}

struct Conn {
    ws: Ws,
    cmds: mpsc::Receiver<Cmd>,
    contexts: HashMap<String, Ctx>,
    first_chunk: Duration,
    sample_rate: u32,
    /// Bound of each context's queue, in milliseconds of audio.
    buffer_ms: u32,
    last_rx: Instant,
    /// Contexts dropped while reading (overflowed, or their session is gone): the server is told
    /// to stop them once the message is handled.
    to_cancel: Vec<String>,
    overflows: Arc<AtomicU64>,
}

impl Conn {
    async fn run(mut self) {
        let exit = loop {
            let deadline = self.next_deadline();
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => if let Err(exit) = self.command(cmd).await { break exit },
                    None => break Exit::Closed("provider dropped".into()),
                },
                msg = self.ws.next() => match msg {
                    Some(Ok(msg)) => {
                        if let Some(exit) = self.incoming(msg) { break exit }
                        if let Err(exit) = self.cancel_dropped().await { break exit }
                    }
                    Some(Err(e)) => break Exit::Closed(e.to_string()),
                    None => break Exit::Closed("socket closed".into()),
                },
                () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    if let Some(exit) = self.expire().await { break exit }
                }
            }
        };
        self.shutdown(exit).await;
    }

    async fn command(&mut self, cmd: Cmd) -> Result<(), Exit> {
        match cmd {
            Cmd::Register { id, events } => {
                let ctx = Ctx {
                    events,
                    armed_at: None,
                    got_audio: false,
                };
                self.contexts.insert(id, ctx);
                Ok(())
            }
            Cmd::Send { id, json, text } => {
                let Some(ctx) = self.contexts.get_mut(&id) else {
                    return Ok(()); // already failed, done or cancelled
                };
                if text && !ctx.got_audio && ctx.armed_at.is_none() {
                    ctx.armed_at = Some(Instant::now());
                }
                self.send(json).await
            }
            Cmd::Cancel { id } => {
                if self.contexts.remove(&id).is_some() {
                    self.send(wire::cancel(&id)).await?;
                }
                Ok(())
            }
        }
    }

    async fn cancel_dropped(&mut self) -> Result<(), Exit> {
        for id in std::mem::take(&mut self.to_cancel) {
            self.send(wire::cancel(&id)).await?;
        }
        Ok(())
    }

    async fn send(&mut self, json: String) -> Result<(), Exit> {
        self.ws
            .send(Message::text(json))
            .await
            .map_err(|e| Exit::Closed(format!("send failed: {e}")))
    }

    fn incoming(&mut self, msg: Message) -> Option<Exit> {
        self.last_rx = Instant::now();
        match msg {
            Message::Text(text) => match wire::decode(&text) {
                Ok(msg) => self.dispatch(msg),
                Err(e) => bad_message(&e.to_string()),
            },
            Message::Binary(_) => bad_message("unexpected binary frame"),
            Message::Close(frame) => {
                return Some(Exit::Closed(match frame {
                    Some(f) => format!("closed by server: {} {}", f.code, f.reason),
                    None => "closed by server".into(),
                }))
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        None
    }

    fn dispatch(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Chunk {
                context_id,
                samples,
            } => {
                let Some(ctx) = self.contexts.get_mut(&context_id) else {
                    return; // cancelled or unknown: drop
                };
                ctx.got_audio = true;
                ctx.armed_at = None;
                match ctx.events.audio(samples, self.sample_rate) {
                    Ok(()) => {}
                    Err(Refused::Closed) => self.drop_context(context_id, None),
                    Err(Refused::Overflow) => {
                        self.overflows.fetch_add(1, Ordering::Relaxed);
                        frontdesk_actors::metrics::edge_dropped(
                            queue::EDGE,
                            frontdesk_actors::edge::DropReason::Overflow,
                            1,
                        );
                        tracing::warn!(%context_id, buffer_ms = self.buffer_ms, "cartesia context queue full; context failed");
                        let why = format!(
                            "context queue overflow: more than {} ms of audio not yet played",
                            self.buffer_ms
                        );
                        self.drop_context(context_id, Some(TtsError::Closed(why)));
                    }
                }
            }
            ServerMsg::Done { context_id } => {
                if let Some(ctx) = self.contexts.remove(&context_id) {
                    ctx.events.end(Ok(TtsEvent::Done));
                }
            }
            ServerMsg::Error {
                context_id: Some(id),
                error,
            } => {
                tracing::warn!(context_id = %id, error = ?error, "cartesia error for context");
                if let Some(ctx) = self.contexts.remove(&id) {
                    ctx.events.end(Err(error.to_tts_error()));
                }
            }
            ServerMsg::Error {
                context_id: None,
                error,
            } => {
                tracing::warn!(error = ?error, "cartesia error for the whole socket");
                for (_, ctx) in self.contexts.drain() {
                    ctx.events.end(Err(error.to_tts_error()));
                }
            }
            ServerMsg::Timestamps | ServerMsg::FlushDone => {}
        }
    }

    /// Forget a context the server is still generating for, ending its events with `error`, and
    /// have the server stop it.
    fn drop_context(&mut self, id: String, error: Option<TtsError>) {
        if let Some(ctx) = self.contexts.remove(&id) {
            if let Some(e) = error {
                ctx.events.end(Err(e));
            }
        }
        self.to_cancel.push(id);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.contexts
            .values()
            .filter_map(|c| c.armed_at)
            .min()
            .map(|t| t + self.first_chunk)
    }

    /// Fail contexts past their first-chunk deadline, so the TTS actor restarts rather than leave
    /// dead air. If the socket has been silent since such a context began, the socket is stalled:
    /// drop it so the next `open` reconnects.
    async fn expire(&mut self) -> Option<Exit> {
        let now = Instant::now();
        let late: Vec<(String, Instant)> = self
            .contexts
            .iter()
            .filter_map(|(id, c)| c.armed_at.map(|t| (id.clone(), t)))
            .filter(|(_, t)| *t + self.first_chunk <= now)
            .collect();
        if late.iter().any(|(_, t)| self.last_rx < *t) {
            return Some(Exit::Stalled);
        }
        for (id, _) in late {
            if let Some(ctx) = self.contexts.remove(&id) {
                let why = format!("no audio within {:?}", self.first_chunk);
                ctx.events.end(Err(TtsError::Timeout(why)));
            }
            if let Err(exit) = self.send(wire::cancel(&id)).await {
                return Some(exit);
            }
        }
        None
    }

    /// Fail every open context (and any registration still queued), then close the socket.
    async fn shutdown(mut self, exit: Exit) {
        tracing::info!(contexts = self.contexts.len(), error = %exit.error(), "cartesia socket ended");
        for (_, ctx) in self.contexts.drain() {
            ctx.events.end(Err(exit.error()));
        }
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            if let Cmd::Register { events, .. } = cmd {
                events.end(Err(exit.error()));
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), self.ws.close(None)).await;
    }
}

fn bad_message(why: &str) {
    metrics::counter!("frontdesk_provider_bad_messages_total", "provider" => "cartesia")
        .increment(1);
    tracing::warn!(error = why, "skipping bad cartesia message");
}

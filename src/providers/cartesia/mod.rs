//! Cartesia streaming TTS over its websocket (protocols.md §4). Each reply is a Cartesia *context*
//! on a pooled socket. A socket carries at most `contexts_per_socket` contexts at a time (1 by
//! default, as LiveKit's plugin does): a socket failure then fails only the replies on it, not every
//! call in the process, and a socket freed by a finished reply is reused without a handshake.
//!
//! Queues (each bounded; drops counted in `frontdesk_edge_dropped_items_total{edge,reason}`):
//!
//! | queue | carries | bound | when full |
//! |---|---|---|---|
//! | `cartesia_cmd` (sessions → socket task) | register, text, finish, cancel | `conn::CMD_QUEUE` (64) | sender waits; a dropped session's cancel is dropped, counted `overflow` (the socket cancels the context on its next chunk) |
//! | `cartesia_context` (socket task → session) | one reply's audio, ahead of playout | `context_buffer_ms` of audio (and 100 chunks a second of it) | the context fails (`overflow`, counted; depth in `frontdesk_edge_depth`); the TTS actor restarts and re-speaks the unplayed part. The socket's reader never waits, so other contexts are untouched |
//! | session events (forwarder → TTS pump) | the same audio, at playout pace | `SESSION_QUEUE` (4) chunks | forwarder waits (only it is held up) |

mod conn;
mod queue;
pub mod wire;
#[cfg(test)]
mod wire_tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::provider::{TtsError, TtsInput, TtsProvider, TtsRequest, TtsSession};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::secret::Secret;
use conn::{Cmd, Handle, Lease};
use frontdesk_actors::call::pump::spawn_on_media;
use frontdesk_actors::call::shared::lock;
use queue::ContextRx;
use wire::ContextTemplate;

/// Cartesia settings (`[tts.cartesia]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartesiaConfig {
    pub url: String,
    pub api_key: Secret,
    /// Sent as `Cartesia-Version`; ≥ 2026-03-01 switches the server's error shape, ≥ 2026-08-14
    /// the voice's (the official SDK's version and our default).
    pub version: String,
    pub model_id: String,
    pub voice_id: String,
    pub language: String,
    /// One of `wire::SAMPLE_RATES`.
    pub sample_rate: u32,
    /// A context with no audio this long after its first text fails (retriable), so the call
    /// re-speaks instead of leaving dead air.
    pub first_chunk_timeout_ms: u32,
    pub connect_timeout_ms: u32,
    /// Concurrent contexts per pooled socket (the blast radius of one socket failure).
    pub contexts_per_socket: usize,
    /// Audio a context may buffer ahead of playout. Cartesia generates faster than real time, so
    /// a reply's audio piles up here while the call plays it; past this the context fails and
    /// the call re-speaks the unplayed rest in a new one. 30 s holds any reply a receptionist
    /// should give in one breath (about 2.9 MB at 24 kHz, only while a reply is that far ahead).
    pub context_buffer_ms: u32,
}

impl Default for CartesiaConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.cartesia.ai/tts/websocket".into(),
            api_key: Secret::default(),
            version: wire::API_VERSION.into(),
            model_id: "sonic-3".into(),
            // LiveKit's Cartesia plugin default voice.
            voice_id: "794f9389-aac1-45b6-b726-9d9369183238".into(),
            language: "en".into(),
            sample_rate: 24_000,
            first_chunk_timeout_ms: 600,
            connect_timeout_ms: 3_000,
            contexts_per_socket: 1,
            context_buffer_ms: 30_000,
        }
    }
}

impl CartesiaConfig {
    pub fn first_chunk_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.first_chunk_timeout_ms))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.connect_timeout_ms))
    }

    pub fn validate(&self) -> Result<(), CartesiaConfigError> {
        if !wire::SAMPLE_RATES.contains(&self.sample_rate) {
            return Err(CartesiaConfigError::SampleRate(self.sample_rate));
        }
        let url = url::Url::parse(&self.url)
            .map_err(|e| CartesiaConfigError::Url(format!("{}: {e}", self.url)))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(CartesiaConfigError::Url(format!(
                "{}: scheme must be ws or wss",
                self.url
            )));
        }
        for (name, value) in [
            ("version", &self.version),
            ("model_id", &self.model_id),
            ("voice_id", &self.voice_id),
        ] {
            if value.trim().is_empty() {
                return Err(CartesiaConfigError::Empty(name));
            }
        }
        if self.first_chunk_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(CartesiaConfigError::Empty("timeout"));
        }
        if self.contexts_per_socket == 0 {
            return Err(CartesiaConfigError::Empty("contexts_per_socket"));
        }
        if self.context_buffer_ms == 0 {
            return Err(CartesiaConfigError::Empty("context_buffer_ms"));
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CartesiaConfigError {
    #[error("cartesia sample_rate {rate} is not one of {allowed:?}", rate = .0, allowed = wire::SAMPLE_RATES)]
    SampleRate(u32),
    #[error("cartesia url {0}")]
    Url(String),
    #[error("cartesia {0} must be set")]
    Empty(&'static str),
}

/// The Cartesia TTS client.
pub struct CartesiaTts {
    cfg: Arc<CartesiaConfig>,
    pool: Mutex<Vec<Handle>>,
    contexts: AtomicU64,
    overflows: Arc<AtomicU64>,
}

/// Chunks between a context's forwarder and the TTS pump: the context queue is the buffer, this
/// only decouples the two tasks.
const SESSION_QUEUE: usize = 4;

impl CartesiaTts {
    pub fn new(cfg: CartesiaConfig) -> Result<Self, CartesiaConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg: Arc::new(cfg),
            pool: Mutex::new(Vec::new()),
            contexts: AtomicU64::new(0),
            overflows: Arc::default(),
        })
    }

    /// Contexts failed because their queue overflowed (tests; the metric has them too).
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// The bound of one context's queue in samples.
    fn buffer_samples(&self) -> usize {
        let ms = u64::from(self.cfg.context_buffer_ms);
        (ms * u64::from(self.cfg.sample_rate) / 1000) as usize
    }

    /// Live sockets in the pool (tests, metrics).
    pub fn sockets(&self) -> usize {
        let mut pool = lock(&self.pool);
        pool.retain(Handle::is_alive);
        pool.len()
    }

    /// A socket with room for one more context: the least busy live one, or a new one. The pool
    /// lock is not held across the handshake, so a burst of replies connects in parallel.
    async fn connection(&self) -> Result<Lease, TtsError> {
        {
            let mut pool = lock(&self.pool);
            pool.retain(Handle::is_alive);
            let free = pool
                .iter()
                .filter(|h| h.active() < self.cfg.contexts_per_socket)
                .min_by_key(|h| h.active());
            if let Some(h) = free {
                return Ok(h.lease());
            }
        }
        let (cfg, overflows) = (self.cfg.clone(), Arc::clone(&self.overflows));
        // The socket streams every call's audio: media work, on the media runtime (and its I/O
        // driver), off the one running dialogues and replies.
        let handle = spawn_on_media(None, async move { conn::connect(&cfg, overflows).await })
            .await
            .map_err(|e| TtsError::Connect(format!("connect task failed: {e}")))??;
        let lease = handle.lease();
        lock(&self.pool).push(handle);
        Ok(lease)
    }

    /// Register a context on a socket; one retry covers a socket that died just now.
    async fn register(&self, id: &str) -> Result<(Lease, ContextRx), TtsError> {
        let mut last = TtsError::Closed("not connected".into());
        for _ in 0..2 {
            let lease = self.connection().await?;
            let (tx, rx) = queue::context_queue(self.buffer_samples(), self.cfg.sample_rate);
            let cmd = Cmd::Register {
                id: id.to_string(),
                events: tx,
            };
            match lease.cmds().send(cmd).await {
                Ok(()) => return Ok((lease, rx)),
                Err(_) => last = TtsError::Closed("socket ended while opening".into()),
            }
        }
        Err(last)
    }
}

#[async_trait]
impl TtsProvider for CartesiaTts {
    fn name(&self) -> &'static str {
        "cartesia"
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        let n = self.contexts.fetch_add(1, Ordering::Relaxed);
        let context_id = format!("{}-{}-{n}", req.call_id, req.reply_id);
        let (lease, queue) = self.register(&context_id).await?;
        let (tx, events) = mpsc::channel(SESSION_QUEUE);
        let forwarder = spawn_on_media(None, forward(queue, tx));
        let template = ContextTemplate {
            context_id,
            model_id: self.cfg.model_id.clone(),
            voice_id: self.cfg.voice_id.clone(),
            language: self.cfg.language.clone(),
            sample_rate: self.cfg.sample_rate,
            version: self.cfg.version.clone(),
        };
        let input = Input {
            template,
            lease,
            forwarder: forwarder.abort_handle(),
            ended: false,
        };
        Ok(TtsSession {
            input: Box::new(input),
            events,
        })
    }
}

/// Decouples the shared socket from each session's pace: the call's pump reads audio at playout
/// speed, and one slow reader must not hold up the other contexts' messages.
async fn forward(mut queue: ContextRx, tx: mpsc::Sender<conn::Event>) {
    while let Some(event) = queue.recv().await {
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

struct Input {
    template: ContextTemplate,
    /// Held until the session is dropped: the socket is busy until then.
    lease: Lease,
    forwarder: tokio::task::AbortHandle,
    /// Finished or cancelled: nothing more to send.
    ended: bool,
}

impl Input {
    async fn send(&self, json: String, text: bool) -> Result<(), TtsError> {
        let cmd = Cmd::Send {
            id: self.template.context_id.clone(),
            json,
            text,
        };
        self.lease
            .cmds()
            .send(cmd)
            .await
            .map_err(|_| TtsError::Closed("cartesia socket ended".into()))
    }
}

#[async_trait]
impl TtsInput for Input {
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError> {
        if self.ended {
            return Err(TtsError::Closed("context already ended".into()));
        }
        self.send(self.template.request(text, true), true).await
    }

    async fn finish(&mut self) -> Result<(), TtsError> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        self.send(self.template.finish(), false).await
    }

    async fn cancel(&mut self) -> Result<(), TtsError> {
        self.ended = true;
        self.forwarder.abort();
        // A dead socket has nothing left to cancel.
        let _ = self
            .lease
            .cmds()
            .send(Cmd::Cancel {
                id: self.template.context_id.clone(),
            })
            .await;
        Ok(())
    }
}

impl Drop for Input {
    /// A session dropped mid-reply (its actor died) must not keep generating on the shared socket.
    fn drop(&mut self) {
        if !self.ended {
            let cancel = Cmd::Cancel {
                id: self.template.context_id.clone(),
            };
            // Cannot wait here. Without the cancel the socket still stops the context: its next
            // chunk finds the session gone.
            if let Err(mpsc::error::TrySendError::Full(_)) = self.lease.cmds().try_send(cancel) {
                frontdesk_actors::metrics::edge_dropped(
                    conn::CMD_EDGE,
                    frontdesk_actors::edge::DropReason::Overflow,
                    1,
                );
            }
        }
    }
}

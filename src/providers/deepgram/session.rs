//! One live session: the sink (audio batching, controls) feeds a writer task that owns the socket's
//! write half and sends `KeepAlive` when idle; a reader task turns server messages into events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::provider::{SttError, SttEvent, SttSession, SttSink};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::wire::{self, Inbound};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for the server's close reply to go out after its close frame.
const CLOSE_DRAIN: Duration = Duration::from_millis(500);

/// The session's timers (zero disables one).
pub(super) struct Timers {
    pub keepalive: Duration,
    pub result: Duration,
}

pub(super) fn start(ws: Ws, timeouts: Timers, sample_rate: u32) -> SttSession {
    let (write, read) = ws.split();
    let (events_tx, events) = mpsc::channel(64);
    let (cmd_tx, cmd_rx) = mpsc::channel(32);
    let close_sent = Arc::new(AtomicBool::new(false));
    tokio::spawn(writer(write, cmd_rx, timeouts.keepalive));
    let awaiting = Arc::new(watch::channel(None).0);
    let reader = Reader {
        read,
        tx: events_tx,
        close_sent: Arc::clone(&close_sent),
        awaiting: Arc::clone(&awaiting),
        result_timeout: timeouts.result,
    };
    tokio::spawn(reader.run());
    SttSession {
        sink: Box::new(DeepgramSink {
            cmds: cmd_tx,
            buf: Vec::new(),
            // Deepgram (and LiveKit's plugin) work in 50 ms chunks.
            chunk: (sample_rate / 20).max(1) as usize,
            sample_rate,
            close_sent,
            awaiting,
        }),
        events,
    }
}

struct DeepgramSink {
    cmds: mpsc::Sender<Message>,
    buf: Vec<i16>,
    chunk: usize,
    sample_rate: u32,
    close_sent: Arc<AtomicBool>,
    /// Since when a final is owed (set by `finalize`, cleared by the reader on a final).
    awaiting: Arc<watch::Sender<Option<Instant>>>,
}

impl DeepgramSink {
    async fn push(&self, msg: Message) -> Result<(), SttError> {
        self.cmds
            .send(msg)
            .await
            .map_err(|_| SttError::Closed("deepgram connection writer stopped".into()))
    }

    /// Send whatever is buffered (never an empty frame: Deepgram reads that as end of stream).
    async fn flush(&mut self) -> Result<(), SttError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = wire::encode_pcm(&self.buf);
        self.buf.clear();
        self.push(Message::Binary(bytes.into())).await
    }
}

#[async_trait]
impl SttSink for DeepgramSink {
    async fn send_audio(&mut self, frame: &AudioFrame) -> Result<(), SttError> {
        if frame.sample_rate != self.sample_rate {
            return Err(SttError::Protocol(format!(
                "frame at {} Hz on a {} Hz session",
                frame.sample_rate, self.sample_rate
            )));
        }
        self.buf.extend_from_slice(&frame.samples);
        while self.buf.len() >= self.chunk {
            let bytes = wire::encode_pcm(&self.buf[..self.chunk]);
            self.buf.drain(..self.chunk);
            self.push(Message::Binary(bytes.into())).await?;
        }
        Ok(())
    }

    async fn finalize(&mut self) -> Result<(), SttError> {
        self.flush().await?;
        self.push(Message::text(wire::FINALIZE)).await?;
        self.awaiting.send_if_modified(|since| {
            let unset = since.is_none();
            if unset {
                *since = Some(Instant::now());
            }
            unset
        });
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SttError> {
        if self.close_sent.load(Ordering::Acquire) {
            return Ok(());
        }
        self.flush().await?;
        // Set before sending so the reader never sees the server's 1000 without it.
        self.close_sent.store(true, Ordering::Release);
        self.push(Message::text(wire::CLOSE_STREAM)).await
    }
}

async fn writer(
    mut write: SplitSink<Ws, Message>,
    mut cmds: mpsc::Receiver<Message>,
    keepalive: Duration,
) {
    let mut last_audio = Instant::now();
    loop {
        let tick = async {
            if keepalive.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(last_audio + keepalive).await;
        };
        let msg = tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(msg) => msg,
                // Sink dropped without close: still end the stream properly.
                None => Message::text(wire::CLOSE_STREAM),
            },
            () = tick => Message::text(wire::KEEPALIVE),
        };
        let is_close = matches!(&msg, Message::Text(t) if t.as_str() == wire::CLOSE_STREAM);
        if matches!(&msg, Message::Binary(_))
            || matches!(&msg, Message::Text(t) if t.as_str() == wire::KEEPALIVE)
        {
            last_audio = Instant::now();
        }
        if let Err(e) = write.send(msg).await {
            tracing::debug!(error = %e, "deepgram write failed");
            return;
        }
        if is_close {
            return;
        }
    }
}

/// Reads server messages until the session ends; owns the result-timeout watch.
struct Reader {
    read: SplitStream<Ws>,
    tx: mpsc::Sender<Result<SttEvent, SttError>>,
    close_sent: Arc<AtomicBool>,
    awaiting: Arc<watch::Sender<Option<Instant>>>,
    result_timeout: Duration,
}

impl Reader {
    async fn run(mut self) {
        let mut waiting = self.awaiting.subscribe();
        let failure = loop {
            let deadline = (*waiting.borrow_and_update())
                .filter(|_| !self.result_timeout.is_zero())
                .map(|since| since + self.result_timeout);
            let msg = tokio::select! {
                msg = self.read.next() => msg,
                // Nobody listens any more: drop the socket.
                () = self.tx.closed() => return,
                _ = waiting.changed() => continue,
                () = sleep_until_opt(deadline) => break Some(SttError::Timeout(format!(
                    "no final within {:?} of Finalize", self.result_timeout
                ))),
            };
            match self.on_message(msg).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(outcome) => break outcome,
            }
        };
        if let Some(e) = failure {
            tracing::warn!(error = %e, "deepgram session failed");
            let _ = self.tx.send(Err(e)).await;
        }
    }

    /// `Ok(true)`: go on; `Ok(false)`: the receiver is gone; `Err(outcome)`: the stream ended
    /// (`None` cleanly).
    async fn on_message(
        &mut self,
        msg: Option<Result<Message, WsError>>,
    ) -> Result<bool, Option<SttError>> {
        match msg {
            Some(Ok(Message::Text(text))) => {
                let Some(ev) = on_text(&text) else {
                    return Ok(true);
                };
                if matches!(ev, SttEvent::Final { .. }) {
                    self.awaiting.send_replace(None);
                }
                Ok(self.tx.send(Ok(ev)).await.is_ok())
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                let sent = self.close_sent.load(Ordering::Acquire);
                // Keep polling so our close reply is flushed before the socket goes.
                let read = &mut self.read;
                let drain = async { while read.next().await.is_some() {} };
                let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
                Err(wire::close_outcome(code, &reason, sent))
            }
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(Some(SttError::Closed(format!("connection lost: {e}")))),
            None => Err(Some(SttError::Closed(
                "connection ended without a close frame".into(),
            ))),
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn on_text(text: &str) -> Option<SttEvent> {
    match wire::classify(text) {
        Ok(Inbound::Event(ev)) => Some(ev),
        Ok(Inbound::Ignored) => None,
        Ok(Inbound::ServerError {
            variant,
            description,
        }) => {
            // Server text about the stream, not transcript words.
            tracing::warn!(%variant, %description, "deepgram: error message");
            None
        }
        Ok(Inbound::Unknown) => {
            metrics::counter!("frontdesk_provider_unknown_messages_total", "provider" => "deepgram")
                .increment(1);
            // Its text may hold transcript words (patient data): never logged.
            tracing::debug!(bytes = text.len(), "deepgram: unknown message type skipped");
            None
        }
        Err(e) => {
            metrics::counter!("frontdesk_provider_bad_messages_total", "provider" => "deepgram")
                .increment(1);
            // The message may hold transcript words (patient data): never its text, at any level.
            tracing::warn!(error = %e, bytes = text.len(), "deepgram: bad message skipped");
            None
        }
    }
}

//! One emulated `/v1/listen` connection: audio in, endpointing, scheduled results out, controls,
//! idle timeout and the connection's fault (if any).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::time::{sleep_until, Instant};

use super::msgs::{self, Meta};
use super::speech::{Endpointer, Heard, Span};
use super::{Params, Shared, NAME};
use crate::emulators::faults::FaultKind;

/// What the garbage frame of a `MalformedJson` fault looks like: truncated mid-message.
const GARBAGE: &str = r#"{"type":"Results","channel_index":[0,1],"is_final":tr"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Conn {
    shared: Arc<Shared>,
    params: Params,
    fault: Option<FaultKind>,
    struck: bool,
    stalled: bool,
    meta: Meta,
    ep: Endpointer,
    /// Messages to send, in order, each not before its time.
    outbox: VecDeque<(Instant, String)>,
    sent: u32,
    finals: u64,
    last_client: Instant,
}

pub(super) async fn run(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    params: Params,
    fault: Option<FaultKind>,
    request_id: String,
) {
    let cfg = &shared.cfg;
    let ep = Endpointer::new(
        params.sample_rate,
        cfg.energy_threshold_dbfs,
        cfg.endpointing_ms,
        cfg.interim_every_ms,
    )
    .with_utterance_end(params.utterance_end_ms);
    let meta = Meta {
        request_id,
        model: params.model.clone(),
    };
    let mut conn = Conn {
        shared: Arc::clone(&shared),
        params,
        fault,
        struck: false,
        stalled: false,
        meta,
        ep,
        outbox: VecDeque::new(),
        sent: 0,
        finals: 0,
        last_client: Instant::now(),
    };
    conn.serve(&mut socket).await;
}

impl Conn {
    async fn serve(&mut self, socket: &mut WebSocket) {
        if self.strike(socket).await == Flow::Stop {
            return;
        }
        loop {
            let due = self.outbox.front().map(|(t, _)| *t);
            let idle_at = self.last_client + self.shared.cfg.idle_timeout;
            let flow = tokio::select! {
                msg = socket.recv() => match msg {
                    Some(Ok(msg)) => {
                        self.last_client = Instant::now();
                        self.on_client(socket, msg).await
                    }
                    _ => Flow::Stop,
                },
                () = sleep_until(due.unwrap_or(idle_at)), if due.is_some() => self.send_due(socket).await,
                () = sleep_until(idle_at), if !self.stalled => {
                    close(socket, 1011, "NET-0001").await;
                    Flow::Stop
                }
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }

    async fn on_client(&mut self, socket: &mut WebSocket, msg: Message) -> Flow {
        if self.stalled {
            return if matches!(msg, Message::Close(_)) {
                Flow::Stop
            } else {
                Flow::Go
            };
        }
        match msg {
            Message::Binary(b) if b.is_empty() => {
                close(socket, 1008, "DATA-0000").await;
                Flow::Stop
            }
            Message::Binary(b) => {
                let mut heard = vec![];
                self.ep.push(&b, &mut heard);
                heard.into_iter().for_each(|h| self.on_heard(h));
                Flow::Go
            }
            Message::Text(t) => match control_type(&t).as_deref() {
                Some("Finalize") => {
                    let span = self.ep.finalize(false, true);
                    self.schedule_final(span);
                    Flow::Go
                }
                Some("CloseStream") => self.close_stream(socket).await,
                // KeepAlive only resets the idle timer (done for every frame).
                _ => Flow::Go,
            },
            Message::Close(_) => Flow::Stop,
            Message::Ping(_) | Message::Pong(_) => Flow::Go,
        }
    }

    fn on_heard(&mut self, heard: Heard) {
        let now = Instant::now();
        match heard {
            Heard::SpeechStarted { at } if self.params.vad_events => {
                self.enqueue(now, msgs::speech_started(at));
            }
            Heard::SpeechStarted { .. } => {}
            Heard::Interim {
                start,
                duration,
                words,
            } if self.params.interim_results => {
                let line = self.shared.peek_line(&self.params.tag);
                let text = line
                    .split_whitespace()
                    .take(words)
                    .collect::<Vec<_>>()
                    .join(" ");
                let span = Span {
                    start,
                    duration,
                    speech_final: false,
                    from_finalize: false,
                    voiced: true,
                };
                self.enqueue(now, msgs::results(&self.meta, &span, false, &text));
            }
            Heard::Interim { .. } => {}
            Heard::Final(span) => self.schedule_final(span),
            Heard::UtteranceEnd { last_word_end } => {
                self.enqueue(now, msgs::utterance_end(last_word_end));
            }
        }
    }

    /// The final takes the tag's next line only if voice was heard since the previous final.
    fn schedule_final(&mut self, span: Span) {
        let text = if span.voiced {
            self.shared.next_line(&self.params.tag)
        } else {
            String::new()
        };
        self.finals += 1;
        let due = Instant::now() + self.shared.cfg.latency.sample(self.finals);
        self.enqueue(due, msgs::results(&self.meta, &span, true, &text));
    }

    /// Keep order: nothing goes out before what was queued earlier.
    fn enqueue(&mut self, due: Instant, text: String) {
        let due = self.outbox.back().map_or(due, |(last, _)| due.max(*last));
        self.outbox.push_back((due, text));
    }

    async fn send_due(&mut self, socket: &mut WebSocket) -> Flow {
        let now = Instant::now();
        while self.outbox.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, text)) = self.outbox.pop_front() else {
                break;
            };
            if self.send(socket, text).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Go
    }

    /// CloseStream: transcribe what is left, send the queued results, `Metadata`, close 1000.
    async fn close_stream(&mut self, socket: &mut WebSocket) -> Flow {
        if self.ep.has_pending_audio() {
            let span = self.ep.finalize(false, false);
            self.schedule_final(span);
        }
        while let Some((due, text)) = self.outbox.pop_front() {
            sleep_until(due).await;
            if self.send(socket, text).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        let meta = msgs::metadata(&self.meta, self.ep.now());
        if self.send(socket, meta).await == Flow::Go && !self.stalled {
            close(socket, 1000, "").await;
        }
        Flow::Stop
    }

    async fn send(&mut self, socket: &mut WebSocket, text: String) -> Flow {
        if self.stalled {
            return Flow::Go;
        }
        if socket.send(Message::Text(text.into())).await.is_err() {
            return Flow::Stop;
        }
        self.sent += 1;
        self.strike(socket).await
    }

    /// Inject this connection's fault once `after_messages` server messages have gone out.
    async fn strike(&mut self, socket: &mut WebSocket) -> Flow {
        let Some(kind) = self.fault else {
            return Flow::Go;
        };
        if self.struck || self.sent < self.shared.faults.config().after_messages {
            return Flow::Go;
        }
        self.struck = true;
        self.shared.faults.count(NAME, kind);
        tracing::debug!(
            fault = kind.as_str(),
            sent = self.sent,
            "deepgram emulator: injecting fault"
        );
        match kind {
            // Returning drops the socket: no close frame, the TCP connection just goes.
            FaultKind::DropSocket => Flow::Stop,
            FaultKind::Stall => {
                self.stalled = true;
                Flow::Go
            }
            FaultKind::MalformedJson => match socket.send(Message::Text(GARBAGE.into())).await {
                Ok(()) => Flow::Go,
                Err(_) => Flow::Stop,
            },
            FaultKind::WrongCloseCode => {
                close(socket, 1011, "NET-0000").await;
                Flow::Stop
            }
            FaultKind::RateLimited | FaultKind::ServerError | FaultKind::ErrorEvent => Flow::Go,
        }
    }
}

fn control_type(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("type")?.as_str().map(str::to_string)
}

/// Send a close frame, then give the client a moment to answer before the socket is dropped.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
        let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    }
}

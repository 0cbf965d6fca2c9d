//! One emulated `/v1/listen` connection: audio in (per channel, or mixed), endpointing,
//! scheduled results out, controls, idle timeout and the connection's fault (if any).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::time::{sleep_until, Instant};

use super::configure::{self, Configure, Control};
use super::msgs::{self, ChannelIndex, Meta};
use super::params::Params;
use super::script::{Format, Utterance};
use super::speech::{Endpointer, Heard, Segmenting, Span};
use super::{Shared, NAME};
use crate::emulators::faults::FaultKind;

/// What the garbage frame of a `MalformedJson` fault looks like: truncated mid-message.
const GARBAGE: &str = r#"{"type":"Results","channel_index":[0,1],"is_final":tr"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// One transcribed stream: a channel with `multichannel`, else the channels mixed.
struct Stream {
    ep: Endpointer,
    line: Utterance,
}

struct Conn {
    shared: Arc<Shared>,
    params: Params,
    fault: Option<FaultKind>,
    struck: bool,
    stalled: bool,
    meta: Meta,
    streams: Vec<Stream>,
    /// Bytes of an incomplete sample frame, waiting for the rest.
    carry: Vec<u8>,
    format: Format,
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
    let seg = Segmenting {
        threshold_dbfs: cfg.energy_threshold_dbfs,
        endpointing_ms: params.endpointing_ms,
        interim_every_ms: if params.interim_results {
            cfg.interim_every_ms
        } else {
            0
        },
        utterance_end_ms: params.utterance_end_ms,
        line_gap_ms: params.utterance_end_ms.unwrap_or(cfg.line_gap_ms),
    };
    let streams = (0..params.streams())
        .map(|_| Stream {
            ep: Endpointer::new(params.sample_rate, seg),
            line: Utterance::default(),
        })
        .collect();
    let meta = Meta {
        request_id,
        model: params.model.clone(),
    };
    let mut conn = Conn {
        shared: Arc::clone(&shared),
        format: params.format,
        params,
        fault,
        struck: false,
        stalled: false,
        meta,
        streams,
        carry: Vec::new(),
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
                self.on_audio(&b);
                Flow::Go
            }
            Message::Text(t) => self.on_control(socket, t.as_str()).await,
            Message::Close(_) => Flow::Stop,
            Message::Ping(_) | Message::Pong(_) => Flow::Go,
        }
    }

    async fn on_control(&mut self, socket: &mut WebSocket, text: &str) -> Flow {
        match configure::parse(text) {
            Control::Finalize => {
                for i in 0..self.streams.len() {
                    let span = self.streams[i].ep.finalize(false, true);
                    self.schedule_final(i, span, true);
                }
            }
            Control::CloseStream => return self.close_stream(socket).await,
            Control::Configure(c) => self.configure(&c),
            Control::Schema(why) => {
                let msg = msgs::error("SchemaError", &why, Some(text));
                self.enqueue(Instant::now(), msg);
            }
            // KeepAlive only resets the idle timer (done for every frame).
            Control::KeepAlive => {}
        }
        Flow::Go
    }

    /// Frames of `channels` interleaved samples (linear16 little-endian, or G.711), split per
    /// stream (or mixed).
    fn on_audio(&mut self, bytes: &[u8]) {
        let channels = usize::from(self.params.channels.max(1));
        let encoding = self.params.encoding;
        let frame = encoding.bytes_per_sample() * channels;
        self.carry.extend_from_slice(bytes);
        let whole = self.carry.len() / frame * frame;
        let data: Vec<u8> = self.carry.drain(..whole).collect();
        let samples = data
            .chunks_exact(encoding.bytes_per_sample())
            .map(|b| encoding.decode(b));
        let mut per: Vec<Vec<i16>> = vec![Vec::new(); self.streams.len()];
        if per.len() > 1 {
            for (n, s) in samples.enumerate() {
                if let Some(stream) = per.get_mut(n % channels) {
                    stream.push(s);
                }
            }
        } else if let Some(mono) = per.first_mut() {
            let all: Vec<i32> = samples.map(i32::from).collect();
            mono.extend(all.chunks(channels).map(|f| {
                let mean = f.iter().sum::<i32>() / channels as i32;
                i16::try_from(mean).unwrap_or_default()
            }));
        }
        for (i, samples) in per.iter().enumerate() {
            let mut heard = vec![];
            if let Some(stream) = self.streams.get_mut(i) {
                stream.ep.push(samples, &mut heard);
            }
            heard.into_iter().for_each(|h| self.on_heard(i, h));
        }
    }

    fn channel(&self, i: usize) -> ChannelIndex {
        if self.params.multichannel {
            [u16::try_from(i).unwrap_or_default(), self.params.channels]
        } else {
            [0, 1]
        }
    }

    fn on_heard(&mut self, i: usize, heard: Heard) {
        let now = Instant::now();
        let ch = self.channel(i);
        match heard {
            Heard::SpeechStarted { at } if self.params.vad_events => {
                self.enqueue(now, msgs::speech_started(ch, at));
            }
            Heard::SpeechStarted { .. } => {}
            Heard::Interim(span) => {
                self.open_line(i, &span);
                let Some(stream) = self.streams.get(i) else {
                    return;
                };
                let t = stream.line.interim(&span, self.format);
                self.enqueue(now, msgs::results(&self.meta, ch, &span, false, &t));
            }
            Heard::Final(span) => self.schedule_final(i, span, false),
            Heard::UtteranceEnd { last_word_end } => {
                self.enqueue(now, msgs::utterance_end(ch, last_word_end));
            }
            Heard::LineEnd => {
                if let Some(stream) = self.streams.get_mut(i) {
                    stream.line.close();
                }
            }
        }
    }

    /// Voice with no line open starts the tag's next line (one line per utterance).
    fn open_line(&mut self, i: usize, span: &Span) {
        let open = self.streams.get(i).is_none_or(|s| s.line.is_open());
        if span.voice.is_some() && !open {
            let line = self.shared.next_line(&self.params.tag);
            if let Some(stream) = self.streams.get_mut(i) {
                stream.line.open(&line);
            }
        }
    }

    /// A final carries the words heard in its span; `rest` (Finalize, CloseStream) ends the
    /// utterance with all its words left.
    fn schedule_final(&mut self, i: usize, span: Span, rest: bool) {
        self.open_line(i, &span);
        let fmt = self.format;
        let Some(stream) = self.streams.get_mut(i) else {
            return;
        };
        let t = stream.line.take(&span, rest, fmt);
        if rest {
            stream.line.close();
        }
        self.finals += 1;
        let due = Instant::now() + self.shared.cfg.latency.sample(self.finals);
        let msg = msgs::results(&self.meta, self.channel(i), &span, true, &t);
        self.enqueue(due, msg);
    }

    /// `Configure`: all of it applies or none, and the reply says which.
    fn configure(&mut self, c: &Configure) {
        let reply = match c.check(&self.params.model) {
            Ok(()) => {
                self.format = c.apply(self.format);
                msgs::configure_success(&self.meta, c.keyterms.as_deref())
            }
            Err(e) => msgs::configure_failure(&self.meta, e.code(), &e.to_string()),
        };
        self.enqueue(Instant::now(), reply);
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
        for i in 0..self.streams.len() {
            if self.streams[i].ep.has_pending_audio() {
                let span = self.streams[i].ep.finalize(false, false);
                self.schedule_final(i, span, true);
            }
        }
        while let Some((due, text)) = self.outbox.pop_front() {
            sleep_until(due).await;
            if self.send(socket, text).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        let duration = self.streams.first().map_or(0.0, |s| s.ep.now());
        let meta = msgs::metadata(&self.meta, duration, self.params.channels);
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
            // No close frame: once the client has read what was sent, the TCP connection just goes.
            FaultKind::DropSocket => {
                crate::emulators::drop_after_linger(socket).await;
                Flow::Stop
            }
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
            // Deepgram's in-band error frame; the stream goes on.
            FaultKind::ErrorEvent => {
                let msg = msgs::error("InternalServerError", "Injected server error.", None);
                match socket.send(Message::Text(msg.into())).await {
                    Ok(()) => Flow::Go,
                    Err(_) => Flow::Stop,
                }
            }
            FaultKind::RateLimited | FaultKind::ServerError => Flow::Go,
        }
    }
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

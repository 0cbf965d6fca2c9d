//! One connection to LiveKit: connect with the worker token, register, then serve offers,
//! assignments and terminations and report status until the connection ends or the worker stops.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as lk;
use livekit_protocol::server_message::Message as In;
use livekit_protocol::WorkerMessage;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::dispatch;
use super::error::WorkerError;
use super::state::{Outbox, Shared, Stop};
use super::wire;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's own register timeout: a reply later than this will not come.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings every 10 s; three missed pings mean a dead (half-open) connection.
const READ_IDLE: Duration = Duration::from_secs(30);
/// Protocol version this worker speaks (ServerInfo.agent_protocol when the server sends none).
pub(crate) const AGENT_PROTOCOL: i32 = 1;

/// Why a registered connection ended without an error.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The worker is stopping.
    Stopped,
    /// The server closed or asked us to go away: reconnect.
    Closed(String),
}

/// Connect and send the worker token as a Bearer header.
pub(crate) async fn connect(sh: &Shared) -> Result<Ws, WorkerError> {
    let url = wire::agent_url(&sh.cfg.url)?;
    let token = wire::worker_token(&sh.cfg)?;
    // rustls needs a process-wide crypto provider; a second install is a harmless no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = url.as_str().into_client_request().map_err(|e| {
        WorkerError::Config(format!("worker.url (LIVEKIT_URL) is not a usable URL: {e}"))
    })?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| WorkerError::Token("token is not a valid header value".into()))?;
    req.headers_mut().insert(AUTHORIZATION, bearer);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(req)).await {
        Err(_) => Err(connect_error(
            &url,
            format!("timed out after {CONNECT_TIMEOUT:?}"),
        )),
        Ok(Err(tungstenite::Error::Http(resp))) if resp.status() == StatusCode::UNAUTHORIZED => {
            Err(WorkerError::Unauthorized { url })
        }
        Ok(Err(tungstenite::Error::Http(resp))) => {
            Err(connect_error(&url, format!("HTTP {}", resp.status())))
        }
        Ok(Err(e)) => Err(connect_error(&url, e.to_string())),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

fn connect_error(url: &str, reason: String) -> WorkerError {
    WorkerError::Connect {
        url: url.to_owned(),
        reason,
    }
}

/// Register and wait for the server's reply: the worker id and the agent protocol version.
pub(crate) async fn register(ws: &mut Ws, sh: &Shared) -> Result<(String, i32), WorkerError> {
    let msg = wire::register(&sh.cfg.agent_name, env!("CARGO_PKG_VERSION"));
    send(ws, &msg).await?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| WorkerError::Protocol("no registration reply within 10 s".into()))?;
        let bytes = match frame {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(f))) => return Err(closed_before_register(f)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(WorkerError::Closed(e.to_string())),
            None => return Err(closed_before_register(None)),
        };
        match wire::decode(&bytes)?.message {
            Some(In::Register(r)) => {
                let protocol = r
                    .server_info
                    .map(|i| i.agent_protocol)
                    .filter(|p| *p > 0)
                    .unwrap_or(AGENT_PROTOCOL);
                return Ok((r.worker_id, protocol));
            }
            Some(In::Pong(_)) => continue,
            other => {
                return Err(WorkerError::Protocol(format!(
                    "expected the registration reply first, got {other:?}"
                )))
            }
        }
    }
}

fn closed_before_register(frame: Option<tungstenite::protocol::CloseFrame>) -> WorkerError {
    let why = frame.map_or_else(|| "no reason".to_owned(), |f| f.reason.to_string());
    WorkerError::Protocol(format!("connection closed before registration: {why}"))
}

async fn send(ws: &mut Ws, msg: &WorkerMessage) -> Result<(), WorkerError> {
    ws.send(Message::Binary(wire::encode(msg).into()))
        .await
        .map_err(|e| WorkerError::Closed(format!("send failed: {e}")))
}

/// Send a message from the outbox, keeping it for the next connection if this one fails.
async fn send_queued(
    ws: &mut Ws,
    outbox: &mut Outbox,
    msg: WorkerMessage,
) -> Result<(), WorkerError> {
    let sent = send(ws, &msg).await;
    if sent.is_err() {
        outbox.keep(msg);
    }
    sent
}

/// Resolves once the worker is told to stop, with how. The guard is not held across awaits.
pub(crate) async fn stopping(stop: &mut watch::Receiver<Stop>) -> Stop {
    match stop.wait_for(|s| *s != Stop::Run).await {
        Ok(s) => *s,
        Err(_) => Stop::Now,
    }
}

/// A registered connection, served until it ends.
pub(crate) struct Session<'a> {
    pub sh: &'a Arc<Shared>,
    pub ws: Ws,
    /// Status reports on this registration, so the server can drop a stale one.
    pub seq: u64,
    pub last_rx: Instant,
}

impl Session<'_> {
    pub async fn run(mut self, outbox: &mut Outbox) -> Result<SessionEnd, WorkerError> {
        let sh = Arc::clone(self.sh);
        let mut stop = sh.stop.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(sh.cfg.status_interval_ms));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                how = stopping(&mut stop) => return self.stop(how, outbox).await,
                frame = self.ws.next() => {
                    if let Some(end) = self.on_frame(frame).await? {
                        return Ok(end);
                    }
                }
                Some(msg) = outbox.next() => send_queued(&mut self.ws, outbox, msg).await?,
                _ = tick.tick() => self.on_tick().await?,
                _ = sh.nudge.notified() => self.send_status().await?,
            }
        }
    }

    async fn on_tick(&mut self) -> Result<(), WorkerError> {
        if self.last_rx.elapsed() > READ_IDLE {
            return Err(WorkerError::Closed(format!(
                "nothing from the server for {READ_IDLE:?}"
            )));
        }
        self.send_status().await
    }

    async fn send_status(&mut self) -> Result<(), WorkerError> {
        self.seq += 1;
        let sh = self.sh;
        let load = sh.load();
        sh.load_reported(load);
        let msg = wire::worker_status(sh.full(), load, sh.jobs.len(), sh.draining(), self.seq);
        send(&mut self.ws, &msg).await
    }

    async fn stop(mut self, how: Stop, outbox: &mut Outbox) -> Result<SessionEnd, WorkerError> {
        if how == Stop::Flush {
            // The final job statuses: the server ends those jobs on them.
            while let Some(msg) = outbox.try_next() {
                send_queued(&mut self.ws, outbox, msg).await?;
            }
            self.send_status().await?;
        }
        let _ = self.ws.close(None).await;
        Ok(SessionEnd::Stopped)
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Option<SessionEnd>, WorkerError> {
        self.last_rx = Instant::now();
        let bytes = match frame {
            None => return Ok(Some(SessionEnd::Closed("connection closed".into()))),
            Some(Err(e)) => return Err(WorkerError::Closed(e.to_string())),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(f))) => {
                let why = f.map_or_else(String::new, |f| f.reason.to_string());
                return Ok(Some(SessionEnd::Closed(format!("server closed: {why}"))));
            }
            Some(Ok(Message::Text(_))) => {
                // We only send binary frames, so a text reply is a server fault, not a protojson
                // switch we asked for.
                tracing::warn!("text frame from LiveKit ignored");
                frontdesk_actors::metrics::input_rejected("livekit", "text_frame");
                return Ok(None);
            }
            // Websocket pings are answered by tungstenite itself.
            Some(Ok(_)) => return Ok(None),
        };
        self.on_message(wire::decode(&bytes)?).await
    }

    async fn on_message(
        &mut self,
        msg: lk::ServerMessage,
    ) -> Result<Option<SessionEnd>, WorkerError> {
        match msg.message {
            Some(In::Availability(req)) => {
                let reply = dispatch::on_availability(self.sh, req);
                send(&mut self.ws, &reply).await?;
            }
            Some(In::Assignment(a)) => dispatch::on_assignment(self.sh, a),
            Some(In::Termination(t)) => dispatch::on_termination(self.sh, t),
            Some(In::GoAway(_)) => {
                return Ok(Some(SessionEnd::Closed(
                    "server asked the worker to go away".into(),
                )))
            }
            Some(In::Register(_)) => tracing::warn!("second registration reply ignored"),
            Some(In::Pong(_)) => {}
            None => tracing::debug!("empty server message ignored"),
        }
        Ok(None)
    }
}

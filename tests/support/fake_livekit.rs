//! A fake LiveKit agent endpoint, faithful to protocols.md §1–2 on what the worker relies on:
//! Bearer token checked with `TokenVerifier` (401 without a valid token carrying `video.agent`),
//! 404 for a non-websocket request, register first (anything else but a ping drops the
//! connection) within a register timeout, `AW_` worker ids, pongs, websocket pings every 10 s,
//! offers, assignments with a minted job token, terminations, and dropping every connection on
//! demand. Every `WorkerMessage` received is recorded for assertions.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use livekit_api::access_token::{AccessToken, TokenVerifier, VideoGrants};
use livekit_protocol as lk;
use livekit_protocol::server_message::Message as Out;
use livekit_protocol::worker_message::Message as In;
use prost::Message as _;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

pub const API_KEY: &str = "APItestkey";
pub const API_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// One message from a worker, with the connection it came on (numbered from 1).
#[derive(Clone, Debug)]
pub struct Received {
    pub conn: u64,
    pub msg: In,
}

enum Cmd {
    Send(Box<lk::ServerMessage>),
    Drop,
}

struct Conn {
    tx: mpsc::UnboundedSender<Cmd>,
    registered: bool,
}

struct Shared {
    verifier: TokenVerifier,
    register_timeout: Duration,
    ping_every: Duration,
    received: Mutex<Vec<Received>>,
    conns: Mutex<HashMap<u64, Conn>>,
    changed: Notify,
    next_conn: AtomicU64,
    unauthorized: AtomicU32,
    /// Answer new connections 503, like a server that is down or restarting.
    refuse: AtomicBool,
}

pub struct FakeLiveKit {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeLiveKit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLiveKit {
    pub async fn start() -> Self {
        Self::start_with(Duration::from_secs(10)).await
    }

    pub async fn start_with(register_timeout: Duration) -> Self {
        let shared = Arc::new(Shared {
            verifier: TokenVerifier::with_api_key(API_KEY, API_SECRET),
            register_timeout,
            ping_every: Duration::from_secs(10),
            received: Mutex::new(vec![]),
            conns: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            next_conn: AtomicU64::new(1),
            unauthorized: AtomicU32::new(0),
            refuse: AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .route("/agent", axum::routing::get(agent))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://`, as LIVEKIT_URL usually is: the worker must turn it into `ws://.../agent`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn unauthorized(&self) -> u32 {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }

    /// Connections that registered, ever.
    pub fn registrations(&self) -> usize {
        self.count(|m| matches!(m, In::Register(_)))
    }

    pub fn count(&self, f: impl Fn(&In) -> bool) -> usize {
        self.received().iter().filter(|r| f(&r.msg)).count()
    }

    /// Wait until `cond` holds over the messages received so far; panics after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            if cond(&self.received()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; received: {:#?}",
                    self.received()
                );
            }
        }
    }

    /// The registered connection opened last.
    fn current(&self) -> u64 {
        let conns = self.shared.conns.lock().unwrap();
        conns
            .iter()
            .filter(|(_, c)| c.registered)
            .map(|(id, _)| *id)
            .max()
            .expect("no registered worker")
    }

    fn send(&self, msg: Out) {
        let conn = self.current();
        let conns = self.shared.conns.lock().unwrap();
        let c = conns.get(&conn).unwrap();
        let _ = c.tx.send(Cmd::Send(Box::new(lk::ServerMessage {
            message: Some(msg),
        })));
    }

    /// Offer a job to the worker (AvailabilityRequest) without waiting for the answer.
    pub fn offer(&self, job_id: &str, room: &str) {
        let req = lk::AvailabilityRequest {
            job: Some(job(job_id, room)),
            resuming: false,
        };
        self.send(Out::Availability(req));
    }

    /// The worker's answer to the offer of `job_id`.
    pub async fn availability(&self, job_id: &str) -> lk::AvailabilityResponse {
        let id = job_id.to_owned();
        self.wait_for("availability response", Duration::from_secs(5), |rs| {
            rs.iter()
                .any(|r| matches!(&r.msg, In::Availability(a) if a.job_id == id))
        })
        .await;
        self.received()
            .into_iter()
            .find_map(|r| match r.msg {
                In::Availability(a) if a.job_id == job_id => Some(a),
                _ => None,
            })
            .unwrap()
    }

    /// Dispatch as the server does: offer, wait for the answer, assign if accepted.
    pub async fn dispatch(&self, job_id: &str, room: &str) -> lk::AvailabilityResponse {
        self.offer(job_id, room);
        let resp = self.availability(job_id).await;
        if resp.available {
            self.assign(job_id, room, &resp.participant_identity);
        }
        resp
    }

    /// JobAssignment with a job token like the server's (no URL: the worker uses its own).
    pub fn assign(&self, job_id: &str, room: &str, identity: &str) {
        let token = job_token(room, identity);
        let mut j = job(job_id, room);
        if let Some(s) = j.state.as_mut() {
            s.participant_identity = identity.to_owned();
        }
        self.send(Out::Assignment(lk::JobAssignment {
            job: Some(j),
            url: None,
            token,
        }));
    }

    pub fn terminate(&self, job_id: &str) {
        self.send(Out::Termination(lk::JobTermination {
            job_id: job_id.to_owned(),
        }));
    }

    /// Ask the worker to move to another connection (newer servers' GoAway).
    pub fn go_away(&self) {
        self.send(Out::GoAway(lk::agent_http::GoAway {
            reason: "node draining".into(),
        }));
    }

    /// Refuse (503) or accept new connections.
    pub fn refuse_connections(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Close every worker connection, as a server drain or restart does.
    pub fn drop_all(&self) {
        let mut conns = self.shared.conns.lock().unwrap();
        for c in conns.values() {
            let _ = c.tx.send(Cmd::Drop);
        }
        conns.clear();
    }

    /// Job statuses reported for `job_id`, in order.
    pub fn job_statuses(&self, job_id: &str) -> Vec<(lk::JobStatus, String)> {
        self.received()
            .into_iter()
            .filter_map(|r| match r.msg {
                In::UpdateJob(u) if u.job_id == job_id => {
                    Some((lk::JobStatus::try_from(u.status).unwrap(), u.error))
                }
                _ => None,
            })
            .collect()
    }

    pub async fn wait_job_status(&self, job_id: &str, status: lk::JobStatus) {
        let id = job_id.to_owned();
        self.wait_for(
            &format!("{job_id} {status:?}"),
            Duration::from_secs(10),
            |rs| {
                rs.iter().any(|r| {
                matches!(&r.msg, In::UpdateJob(u) if u.job_id == id && u.status == status as i32)
            })
            },
        )
        .await;
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn job(id: &str, room: &str) -> lk::Job {
    lk::Job {
        id: id.to_owned(),
        dispatch_id: format!("AD_{id}"),
        r#type: lk::JobType::JtRoom as i32,
        room: Some(lk::Room {
            sid: format!("RM_{room}"),
            name: room.to_owned(),
            ..Default::default()
        }),
        agent_name: "frontdesk-test".into(),
        state: Some(lk::JobState {
            status: lk::JobStatus::JsRunning as i32,
            started_at: now_ns(),
            updated_at: now_ns(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The token the server mints for an accepted job (protocols.md §2).
pub fn job_token(room: &str, identity: &str) -> String {
    AccessToken::with_api_key(API_KEY, API_SECRET)
        .with_identity(identity)
        .with_kind("agent")
        .with_grants(VideoGrants {
            room_join: true,
            agent: true,
            room: room.to_owned(),
            can_subscribe: Some(true),
            can_publish: Some(true),
            can_publish_data: Some(true),
            can_update_own_metadata: Some(true),
            hidden: true,
            ..Default::default()
        })
        .with_ttl(Duration::from_secs(3600))
        .to_jwt()
        .unwrap()
}

async fn agent(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if sh.refuse.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|jwt| sh.verifier.verify(jwt).ok())
        .is_some_and(|claims| claims.video.agent);
    if !authorized {
        sh.unauthorized.fetch_add(1, Ordering::SeqCst);
        sh.changed.notify_waiters();
        return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
    }
    let Ok(ws) = ws else {
        return StatusCode::NOT_FOUND.into_response();
    };
    ws.on_upgrade(move |socket| serve(sh, socket))
}

async fn serve(sh: Arc<Shared>, mut socket: WebSocket) {
    let id = sh.next_conn.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel();
    sh.conns.lock().unwrap().insert(
        id,
        Conn {
            tx,
            registered: false,
        },
    );
    let register_by = tokio::time::Instant::now() + sh.register_timeout;
    let mut ping = tokio::time::interval(sh.ping_every);
    loop {
        let registered = is_registered(&sh, id);
        tokio::select! {
            _ = tokio::time::sleep_until(register_by), if !registered => {
                close(socket, "register timeout").await;
                break;
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() { break; }
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(m)) => {
                    if socket.send(Message::Binary(m.encode_to_vec().into())).await.is_err() { break; }
                }
                Some(Cmd::Drop) | None => break,
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(why) = on_message(&sh, id, &mut socket, &b).await {
                        close(socket, &why).await;
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    sh.conns.lock().unwrap().remove(&id);
    sh.changed.notify_waiters();
}

fn is_registered(sh: &Shared, id: u64) -> bool {
    sh.conns
        .lock()
        .unwrap()
        .get(&id)
        .is_some_and(|c| c.registered)
}

async fn close(mut socket: WebSocket, why: &str) {
    let frame = CloseFrame {
        code: 1008,
        reason: why.to_owned().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Record and answer one worker message; Err drops the connection.
async fn on_message(
    sh: &Shared,
    id: u64,
    socket: &mut WebSocket,
    bytes: &[u8],
) -> Result<(), String> {
    let msg = lk::WorkerMessage::decode(bytes)
        .map_err(|e| format!("bad message: {e}"))?
        .message
        .ok_or("empty message")?;
    // Recorded after the connection's state changes (registration), so a test that saw the
    // message can act on that state at once.
    let reply = match &msg {
        In::Ping(p) => Ok(Some(Out::Pong(lk::WorkerPong {
            last_timestamp: p.timestamp,
            timestamp: now_ns() / 1_000_000,
        }))),
        In::Register(r) => register(sh, id, r).map(Some),
        _ if !is_registered(sh, id) => Err("worker not registered".into()),
        _ => Ok(None),
    };
    sh.received.lock().unwrap().push(Received { conn: id, msg });
    sh.changed.notify_waiters();
    let Some(reply) = reply? else { return Ok(()) };
    let frame = lk::ServerMessage {
        message: Some(reply),
    };
    socket
        .send(Message::Binary(frame.encode_to_vec().into()))
        .await
        .map_err(|e| e.to_string())
}

fn register(sh: &Shared, id: u64, r: &lk::RegisterWorkerRequest) -> Result<Out, String> {
    lk::JobType::try_from(r.r#type).map_err(|_| "unknown job type".to_owned())?;
    if r.deployment.len() > 64 || r.deployment.contains(['_', ' ']) {
        return Err("invalid deployment".into());
    }
    if let Some(c) = sh.conns.lock().unwrap().get_mut(&id) {
        c.registered = true;
    }
    Ok(Out::Register(lk::RegisterWorkerResponse {
        worker_id: format!("AW_test{id}"),
        server_info: Some(lk::ServerInfo {
            version: "1.9.0-fake".into(),
            protocol: 16,
            agent_protocol: 1,
            region: "local".into(),
            node_id: "ND_fake".into(),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

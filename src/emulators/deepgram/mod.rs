//! Deepgram live STT emulator (protocols.md §3): `/v1/listen` websocket with token auth, its own
//! energy endpointing, scripted transcripts per `tag`, latency and fault injection.

mod conn;
mod msgs;
mod speech;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use frontdesk_actors::call::shared::lock;
use frontdesk_actors::doubles::Latency;
use serde::Deserialize;

use super::faults::{FaultConfig, FaultKind, Faults};
use super::Emulator;
use crate::providers::deepgram::duration_str;

pub const NAME: &str = "deepgram";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepgramEmulatorConfig {
    /// `None`: any key is accepted; `Some`: `Authorization: Token <it>` is required.
    pub api_key: Option<String>,
    /// Transcript lines per `tag` (the call id); each final takes the next line.
    pub scripts: BTreeMap<String, Vec<String>>,
    /// Lines for tags without a script.
    pub default_script: Vec<String>,
    /// Delay of a final after its endpoint (or `Finalize`).
    pub latency: Latency,
    /// Interim results every this many ms of speech (0: none).
    pub interim_every_ms: u32,
    /// Silence that ends speech.
    pub endpointing_ms: u32,
    /// 20 ms chunks louder than this are voice.
    pub energy_threshold_dbfs: f64,
    /// No client frame for this long: close 1011 `NET-0001`.
    #[serde(deserialize_with = "duration_str")]
    pub idle_timeout: Duration,
    pub faults: FaultConfig,
}

impl Default for DeepgramEmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            scripts: BTreeMap::new(),
            default_script: vec![],
            latency: Latency::ms(150, 50),
            interim_every_ms: 250,
            endpointing_ms: 300,
            energy_threshold_dbfs: -45.0,
            idle_timeout: Duration::from_secs(10),
            faults: FaultConfig::default(),
        }
    }
}

/// Every fault this emulator can inject.
const SUPPORTED: [FaultKind; 6] = FaultKind::ALL;

pub(super) struct Shared {
    cfg: DeepgramEmulatorConfig,
    faults: Arc<Faults>,
    /// Script position per tag, kept across connections so a reconnect continues the script.
    cursors: Mutex<BTreeMap<String, usize>>,
    requests: AtomicU64,
}

impl Shared {
    fn script(&self, tag: &str) -> &[String] {
        self.cfg
            .scripts
            .get(tag)
            .unwrap_or(&self.cfg.default_script)
    }

    /// The line the next final for `tag` will carry (interims show its first words).
    fn peek_line(&self, tag: &str) -> String {
        let at = self.lock_cursors().get(tag).copied().unwrap_or(0);
        self.script(tag).get(at).cloned().unwrap_or_default()
    }

    /// Take the next line for `tag` (empty once the script is exhausted).
    fn next_line(&self, tag: &str) -> String {
        let mut cursors = self.lock_cursors();
        let at = cursors.entry(tag.to_string()).or_default();
        let line = self.script(tag).get(*at).cloned().unwrap_or_default();
        *at += 1;
        line
    }

    fn lock_cursors(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        lock(&self.cursors)
    }
}

/// Serve the emulator on `addr` (port 0: any free port).
pub async fn start(cfg: DeepgramEmulatorConfig, addr: SocketAddr) -> anyhow::Result<Emulator> {
    let faults = Arc::new(Faults::new(cfg.faults.clone()));
    Emulator::serve(NAME, addr, router(cfg, Arc::clone(&faults)), faults).await
}

pub fn router(cfg: DeepgramEmulatorConfig, faults: Arc<Faults>) -> axum::Router {
    let shared = Arc::new(Shared {
        cfg,
        faults,
        cursors: Mutex::new(BTreeMap::new()),
        requests: AtomicU64::new(0),
    });
    axum::Router::new()
        .route("/v1/listen", axum::routing::get(listen))
        .with_state(shared)
}

/// Query parameters the emulator acts on.
pub(super) struct Params {
    sample_rate: u32,
    tag: String,
    model: String,
    interim_results: bool,
    vad_events: bool,
    utterance_end_ms: Option<u32>,
}

impl Params {
    fn parse(q: &HashMap<String, String>) -> Result<Self, String> {
        if q.get("encoding").map(String::as_str) != Some("linear16") {
            return Err("this emulator needs encoding=linear16".into());
        }
        let sample_rate = q
            .get("sample_rate")
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|r| *r >= 8_000)
            .ok_or("sample_rate is required for raw audio")?;
        let flag = |k: &str| q.get(k).map(String::as_str) == Some("true");
        Ok(Self {
            sample_rate,
            tag: q.get("tag").cloned().unwrap_or_default(),
            model: q.get("model").cloned().unwrap_or_else(|| "nova-3".into()),
            interim_results: flag("interim_results"),
            vad_events: flag("vad_events"),
            // Deepgram only honours it with interim results.
            utterance_end_ms: q
                .get("utterance_end_ms")
                .and_then(|s| s.parse().ok())
                .filter(|_| flag("interim_results")),
        })
    }
}

async fn listen(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("00000000-0000-4000-8000-{n:012x}");
    if let Some(want) = &shared.cfg.api_key {
        let got = headers.get("authorization").and_then(|v| v.to_str().ok());
        if got != Some(format!("Token {want}").as_str()) {
            let msg = "Invalid credentials.";
            return refuse(StatusCode::UNAUTHORIZED, "INVALID_AUTH", msg, &request_id);
        }
    }
    let params = match Params::parse(&query) {
        Ok(p) => p,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, "Bad Request", &msg, &request_id),
    };
    let fault = shared.faults.draw(&SUPPORTED);
    if let Some(refusal) = handshake_fault(&shared, fault, n, &request_id) {
        return refusal;
    }
    super::small_buffers(ws)
        .on_upgrade(move |socket| conn::run(socket, shared, params, fault, request_id))
}

/// Faults that strike at the handshake: 429, or 500/503 (alternating by request).
fn handshake_fault(
    shared: &Shared,
    fault: Option<FaultKind>,
    n: u64,
    request_id: &str,
) -> Option<Response> {
    let (status, code, msg) = match fault? {
        FaultKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Too many requests.",
        ),
        FaultKind::ServerError if n.is_multiple_of(2) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "Injected server error.",
        ),
        FaultKind::ServerError => (
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "Injected server error.",
        ),
        _ => return None,
    };
    shared.faults.count(NAME, fault?);
    Some(refuse(status, code, msg, request_id))
}

/// A handshake refusal the way Deepgram sends it: `dg-error`/`dg-request-id` headers and a JSON body.
fn refuse(status: StatusCode, code: &str, msg: &str, request_id: &str) -> Response {
    let headers = [
        ("dg-error", msg.to_string()),
        ("dg-request-id", request_id.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    (status, headers, msgs::error_body(code, msg, request_id)).into_response()
}

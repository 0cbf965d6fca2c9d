//! Deepgram live STT emulator (protocols.md §3): `/v1/listen` websocket with token auth, its own
//! energy endpointing honouring the query (`endpointing`, `interim_results`, `vad_events`,
//! `utterance_end_ms`, `punctuate`/`smart_format`, `channels`/`multichannel`), `Configure`,
//! scripted transcripts per `tag` (one line per utterance, words timed over the voice heard),
//! latency and fault injection.

mod configure;
mod conn;
mod msgs;
mod params;
mod script;
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
use frontdesk_actors::latency::Latency;
use serde::Deserialize;

use self::params::Params;
use super::faults::{FaultConfig, FaultKind, Faults};
use super::Emulator;
use crate::providers::deepgram::duration_str;

pub const NAME: &str = "deepgram";

/// The caller lines of the bundled speech fixtures (tests/fixtures/speech), in order: the
/// standalone emulator's transcripts unless it is given others.
pub const FIXTURE_LINES: &str = include_str!("../../../tests/fixtures/speech/lines.txt");

/// The lines of a transcript file: one utterance a line, blank lines skipped.
pub fn script_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepgramEmulatorConfig {
    /// `None`: any key is accepted; `Some`: `Authorization: Token <it>` is required.
    pub api_key: Option<String>,
    /// Transcript lines per `tag` (the call id); each utterance takes the next line.
    pub scripts: BTreeMap<String, Vec<String>>,
    /// Lines for tags without a script.
    pub default_script: Vec<String>,
    /// Start a script again once it is used up (standalone); else utterances past it are empty.
    pub repeat_script: bool,
    /// Delay of a final after its endpoint (or `Finalize`).
    pub latency: Latency,
    /// Interim results every this many ms of speech (0: none).
    pub interim_every_ms: u32,
    /// Silence that ends speech when the query has no `endpointing` (Deepgram's default: 10).
    pub endpointing_ms: u32,
    /// Silence that ends an utterance (a script line) when `utterance_end_ms` is not set.
    pub line_gap_ms: u32,
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
            repeat_script: false,
            latency: Latency::ms(150, 50),
            interim_every_ms: 250,
            endpointing_ms: params::DEFAULT_ENDPOINTING_MS,
            line_gap_ms: 1_000,
            energy_threshold_dbfs: -45.0,
            idle_timeout: Duration::from_secs(10),
            faults: FaultConfig::default(),
        }
    }
}

/// Every fault this emulator can inject (`ErrorEvent`: Deepgram's in-band `Error` frame).
const SUPPORTED: [FaultKind; 7] = FaultKind::EVERY;

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

    /// Take the next line for `tag` (empty once the script is used up, unless it repeats).
    fn next_line(&self, tag: &str) -> String {
        let script = self.script(tag);
        let mut cursors = self.lock_cursors();
        let at = cursors.entry(tag.to_string()).or_default();
        let i = match script.len() {
            n if self.cfg.repeat_script && n > 0 => *at % n,
            _ => *at,
        };
        *at += 1;
        script.get(i).cloned().unwrap_or_default()
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
    let params = match Params::parse(&query, shared.cfg.endpointing_ms) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            return refuse(StatusCode::BAD_REQUEST, "Bad Request", &msg, &request_id);
        }
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

#[cfg(test)]
mod wire_tests;

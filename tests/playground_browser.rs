//! The web playground in a real headless browser: Debian's Chromium, driven by `playwright-core`
//! (tests/playground/drive.mjs, launched with `executablePath`, no browser download), against the
//! real worker (`frontdesk dev`, which serves the playground) and the real livekit-server.
//!
//! - Chromium's fake microphone plays a booking request: the page gets a token, connects, the
//!   dispatched agent answers, and the page shows agent audio (WebAudio level), a transcript of
//!   both sides and a turn with its latency; a screenshot is written (its path printed), hang-up
//!   ends the call and the call record is in the database.
//! - Opened while the LiveKit server is down, the page says so in `#status` (the worker logs a
//!   WARN, no stack trace); too many token requests show the rate-limit sentence.
//!
//! Without chromium, node (with tests/playground's `npm ci`) or a livekit-server binary each test
//! prints `SKIPPED: ...`; under FRONTDESK_REQUIRE_E2E=1 (CI) it fails instead.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // a test: blocking file IO is fine

#[path = "support/agent_proc.rs"]
mod agent_proc;
#[path = "support/livekit.rs"]
mod livekit;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent_proc::{Agent, Records};
use livekit::LiveKitServer;
use serde_json::{json, Value};

const REGISTER: Duration = Duration::from_secs(60);
/// Seconds of silence before the request (the agent greets first) and after it (Chromium loops
/// the file; the pause ends the caller's turn and leaves the agent time to answer).
const LEAD_SILENCE_S: u32 = 8;
const TAIL_SILENCE_S: u32 = 25;

/// The browser: `FRONTDESK_CHROMIUM`, else Debian's binary itself (its `/usr/bin/chromium` is a
/// wrapper script), else one on PATH.
fn browser() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FRONTDESK_CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!(
            "FRONTDESK_CHROMIUM={} is not a file",
            path.display()
        ));
    }
    let debian = PathBuf::from("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return Ok(debian);
    }
    on_path(&["chromium", "chromium-browser", "google-chrome"])
        .ok_or_else(|| "no chromium (apt-get install chromium)".to_owned())
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn driver_dir() -> PathBuf {
    livekit::repo_root().join("tests/playground")
}

/// node, with playwright-core installed next to the driver (`npm ci` there, offline-friendly,
/// when it is missing and npm exists).
fn node() -> Result<PathBuf, String> {
    let node = on_path(&["node"]).ok_or("no node (apt-get install nodejs npm)")?;
    let dir = driver_dir();
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Ok(node);
    }
    let npm =
        on_path(&["npm"]).ok_or("tests/playground has no node_modules and there is no npm")?;
    let out = std::process::Command::new(npm)
        .args([
            "ci",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running npm ci: {e}"))?;
    if out.status.success() {
        return Ok(node);
    }
    Err(format!(
        "npm ci in tests/playground failed: {}",
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Chromium and node, or None after printing why the test is skipped (a failure under
/// FRONTDESK_REQUIRE_E2E=1).
fn browser_and_node() -> Option<(PathBuf, PathBuf)> {
    let found = browser().and_then(|b| node().map(|n| (b, n)));
    match found {
        Ok(pair) => Some(pair),
        Err(reason) => livekit::skip_or_fail(
            livekit::require_e2e(),
            &livekit::test_name(),
            "no headless browser",
            &reason,
            &mut std::io::stderr(),
        ),
    }
}

/// The caller's microphone: silence, "Hello, I would like to book an appointment with a heart
/// doctor.", silence.
fn booking_wav(dir: &Path) -> PathBuf {
    let src = livekit::repo_root().join("tests/fixtures/speech/line01.wav");
    let mut reader = hound::WavReader::open(src).unwrap();
    let spec = reader.spec();
    let speech: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let path = dir.join("booking.wav");
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    let silence = |s: u32| (0..s * spec.sample_rate * u32::from(spec.channels)).map(|_| 0i16);
    for sample in silence(LEAD_SILENCE_S)
        .chain(speech)
        .chain(silence(TAIL_SILENCE_S))
    {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
    path
}

/// Runs the driver with `config`; its JSON report.
async fn drive(node: &Path, config: Value, timeout: Duration) -> Value {
    let child = tokio::process::Command::new(node)
        .arg(driver_dir().join("drive.mjs"))
        .arg(config.to_string())
        .current_dir(driver_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .expect("the browser driver finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    match last.and_then(|l| serde_json::from_str(l).ok()) {
        Some(report) => report,
        None => panic!(
            "the driver printed no report ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Poll until `f` holds (or panic after `timeout` with `what`).
async fn until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_calls_the_agent_and_the_call_is_recorded() {
    let _serial = livekit::serial().await;
    let Some((browser, node)) = browser_and_node() else {
        return;
    };
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let agent = Agent::start(
        &server.ws_url(),
        server.api_key(),
        server.api_secret(),
        "fd-playground",
    );
    agent.registered(REGISTER).await;
    // Kept after the test: the screenshot is there to look at.
    let dir = tempfile::Builder::new()
        .prefix("playground-browser-")
        .tempdir()
        .unwrap()
        .keep();
    let wav = booking_wav(&dir);
    let shot = dir.join("playground.png");
    let config = json!({
        "browser": browser,
        "url": format!("http://127.0.0.1:{}/playground", agent.http_port),
        "mode": "call",
        "wav": wav,
        "screenshot": shot,
        "timeout_ms": 90_000,
    });
    let report = drive(&node, config, Duration::from_secs(240)).await;
    let _ = std::fs::remove_file(&wav);
    let pretty = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(
        report["ok"], true,
        "the page did not finish the call:\n{pretty}"
    );

    assert_eq!(report["http_status"], 200, "{pretty}");
    assert_eq!(report["initial"]["status"], "idle", "{pretty}");
    // No CDN: the page loads from the worker alone and opens only LiveKit's signal socket.
    let origin = format!("http://127.0.0.1:{}/", agent.http_port);
    let requests = strings(&report["requests"]);
    assert!(
        requests.iter().all(|u| u.starts_with(&origin)),
        "{requests:?}"
    );
    let sockets = strings(&report["websockets"]);
    assert!(
        !sockets.is_empty() && sockets.iter().all(|u| u.starts_with(&server.ws_url())),
        "{sockets:?}"
    );
    let states = strings(&report["states"]);
    for state in ["connecting", "in call", "ended"] {
        assert!(states.iter().any(|s| s == state), "{state}: {states:?}");
    }
    let page = &report["in_call"];
    // The agent's audio reached the page's WebAudio analyser, and the fake microphone was heard.
    assert!(page["agent_peak"].as_f64().unwrap() > 0.0, "{pretty}");
    assert!(page["mic_peak"].as_f64().unwrap() > 0.0, "{pretty}");
    // Both sides of the conversation in the transcript, as the page shows them.
    let caller = strings(&page["caller_lines"]);
    let agent_lines = strings(&page["agent_lines"]);
    assert!(
        caller
            .iter()
            .any(|l| l.to_lowercase().contains("appointment")),
        "the caller's request in the transcript: {caller:?}"
    );
    assert!(agent_lines.iter().any(|l| !l.is_empty()), "{agent_lines:?}");
    // A turn row with a latency in milliseconds.
    let rows = page["turn_rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r[1].as_str().is_some_and(|ms| ms.parse::<u64>().is_ok())),
        "a turn with a latency: {rows:?}"
    );
    // The screenshot is a PNG of the page.
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    say(&format!("playground screenshot: {}", shot.display()));
    // Hang-up ended the call on the page and on the worker; the record is in the database.
    assert_eq!(report["final"]["status"], "ended", "{pretty}");
    until(Duration::from_secs(30), "call ended", || async {
        agent.active_calls().await == 0
    })
    .await;
    let room = page["room"].as_str().unwrap();
    let db = Records::open(&agent.db);
    let calls = db.calls_in(room);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (call, reason) = &calls[0];
    assert_eq!(reason.as_deref(), Some("caller_hung_up"));
    assert!(!db.turns(call).is_empty(), "the turn is in the record");
    assert!(
        !agent.log_text().contains("panicked"),
        "{}",
        agent.log_tail(60)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_clearly_when_the_livekit_server_is_down() {
    let _serial = livekit::serial().await;
    let Some((browser, node)) = browser_and_node() else {
        return;
    };
    // Nothing listens on the LiveKit port the worker is given.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let agent = Agent::start(&url, "devkey", "secret", "fd-playground-down");
    until(
        Duration::from_secs(60),
        "the worker's HTTP server",
        || async { agent.worker().await.is_some() },
    )
    .await;
    let config = json!({
        "browser": browser,
        "url": format!("http://127.0.0.1:{}/playground", agent.http_port),
        "mode": "down",
        "timeout_ms": 60_000,
    });
    let report = drive(&node, config, Duration::from_secs(180)).await;
    let pretty = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report["ok"], true, "{pretty}");

    let down = &report["down"];
    let status = down["status"].as_str().unwrap();
    assert!(
        status.starts_with("Cannot reach the LiveKit server at") && status.contains(&url),
        "{status}"
    );
    assert_eq!(down["status_is_error"], true, "{pretty}");
    assert_eq!(down["call_disabled"], false, "the caller can try again");
    // The page's own token requests ran into the rate limit; the page says when to retry.
    let codes: Vec<u64> = report["token_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 503 || *c == 429), "{codes:?}");
    let limited = report["limited"]["status"].as_str().unwrap();
    assert!(
        limited.starts_with("Too many token requests") && limited.contains("try again in"),
        "{limited}"
    );
    // The worker logged the refusals at WARN, one clear line each, no stack trace.
    let refused = agent.log_lines("playground token refused");
    assert!(
        refused
            .iter()
            .any(|l| l["level"] == "WARN"
                && l.to_string().contains("cannot reach the LiveKit server")),
        "{}",
        agent.log_tail(20)
    );
    let log = agent.log_text();
    for trace in ["panicked", "stack backtrace", "Backtrace", "\n   0: "] {
        assert!(
            !log.contains(trace),
            "{trace:?} in the log:\n{}",
            agent.log_tail(40)
        );
    }
}

//! A real LiveKit server and a real caller, for tests that run calls over WebRTC.
//!
//! - [`LiveKitServer`]: livekit-server v1.13.5 on free loopback ports (its YAML config and log in a
//!   temp dir), restartable on the same ports, killed on drop.
//! - [`caller_python`] and [`CallerOptions`]: `tests/support/caller/caller.py`, a participant on
//!   the official LiveKit Python SDK, run as a child process from a JSON script; it returns a
//!   [`CallerReport`] and a stereo WAV read by [`Recording`] (channel 0: what the caller sent;
//!   channel 1: what it heard; both on the caller's clock, in ms since it joined).
//!
//! The binary: `LIVEKIT_SERVER_BIN`, else `${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}/
//! livekit-server-v1.13.5/livekit-server`, else `.ci/livekit-server.sh` builds it there when `go`
//! exists. The caller's python: `FRONTDESK_CALLER_PYTHON`, else `.ci/caller-venv.sh` (reuses or
//! rebuilds the cached venv) when `python3` exists, else the cached venv. Without them a test
//! prints `SKIPPED: <test>: ...` and returns early, unless `FRONTDESK_REQUIRE_E2E=1` (CI), where it
//! fails instead.
//!
//! ```ignore
//! #[path = "support/livekit.rs"]
//! mod livekit;
//!
//! let Some(server) = livekit::LiveKitServer::start().await else { return };
//! let Some(python) = livekit::caller_python() else { return };
//! let run = server
//!     .caller("room-1", "caller-1", json!([{"say": "tests/fixtures/speech/line01.wav"}]))
//!     .dispatch("frontdesk")
//!     .run(&python)
//!     .await;
//! run.assert_ok();
//! ```
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(dead_code, clippy::unwrap_used, clippy::string_slice)] // slices at char_indices

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub const SERVER_VERSION: &str = "v1.13.5";
/// The keys `livekit-server --dev` uses; the config written here has the same.
pub const API_KEY: &str = "devkey";
pub const API_SECRET: &str = "secret";

/// Analysis defaults, the same as caller.py's: a 20 ms window is active above -45 dBFS; speech
/// segments merge across gaps shorter than 300 ms.
pub const THRESHOLD_DBFS: f64 = -45.0;
pub const WINDOW_MS: f64 = 20.0;
pub const HANGOVER_MS: f64 = 300.0;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- skip / require

/// Whether e2e prerequisites are mandatory (`FRONTDESK_REQUIRE_E2E=1`, set by CI).
pub fn require_e2e() -> bool {
    matches!(
        std::env::var("FRONTDESK_REQUIRE_E2E").as_deref(),
        Ok("1" | "true" | "yes")
    )
}

/// The running test's name (libtest names each test's thread after it).
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "<test>".to_owned(),
    }
}

/// The skip rule: without `require`, writes `SKIPPED: <test>: <what> (<reason>)` to `out` and
/// returns None; with it, panics with the same words.
pub fn skip_or_fail<T>(
    require: bool,
    test: &str,
    what: &str,
    reason: &str,
    out: &mut dyn std::io::Write,
) -> Option<T> {
    if require {
        panic!("{test}: {what} ({reason}); FRONTDESK_REQUIRE_E2E=1 forbids skipping");
    }
    let _ = writeln!(out, "SKIPPED: {test}: {what} ({reason})");
    None
}

/// [`skip_or_fail`] for the current test, straight to the process's stderr: libtest would swallow
/// eprintln! in a passing test.
fn unavailable<T>(what: &str, reason: &str) -> Option<T> {
    skip_or_fail(
        require_e2e(),
        &test_name(),
        what,
        reason,
        &mut std::io::stderr(),
    )
}

// ---------------------------------------------------------------- finding the pieces

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}`, as the `.ci/` scripts use it.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("FRONTDESK_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/frontdesk"),
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether `name` is an executable on PATH (or one of `extra` exists).
fn on_path(name: &str, extra: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name)))
        || extra.iter().any(|p| is_executable(Path::new(p)))
}

/// Runs one of the `.ci/` scripts; its last stdout line is an executable's path. Its stderr (build
/// progress) goes to the test's stderr.
fn run_ci_script(script: &str, cache: &Path) -> Result<PathBuf, String> {
    let path = repo_root().join(script);
    let out = std::process::Command::new("bash")
        .arg(&path)
        .env("FRONTDESK_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed ({}); its error is above",
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let bin = PathBuf::from(last.unwrap_or_default().trim());
    if is_executable(&bin) {
        Ok(bin)
    } else {
        Err(format!("{script} printed {bin:?}, not an executable"))
    }
}

/// Where the livekit-server binary comes from: `from_env` (LIVEKIT_SERVER_BIN), else the cache,
/// else `.ci/livekit-server.sh` when `can_build` (go exists).
pub fn find_server_binary(
    from_env: Option<PathBuf>,
    cache: &Path,
    can_build: bool,
) -> Result<PathBuf, String> {
    if let Some(bin) = from_env {
        return if is_executable(&bin) {
            Ok(bin)
        } else {
            Err(format!(
                "LIVEKIT_SERVER_BIN={} is not an executable file",
                bin.display()
            ))
        };
    }
    let cached = cache.join(format!("livekit-server-{SERVER_VERSION}/livekit-server"));
    if is_executable(&cached) {
        return Ok(cached);
    }
    if !can_build {
        return Err(format!(
            "LIVEKIT_SERVER_BIN unset, {} missing, and no `go` to build it with .ci/livekit-server.sh",
            cached.display()
        ));
    }
    run_ci_script(".ci/livekit-server.sh", cache)
}

/// The binary for this process (looked up, and built if need be, once).
pub fn server_binary() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        find_server_binary(
            env_path("LIVEKIT_SERVER_BIN"),
            &cache_dir(),
            on_path("go", &["/usr/local/go/bin/go"]),
        )
    })
    .clone()
}

/// Where the caller's python comes from: `from_env` (FRONTDESK_CALLER_PYTHON), else
/// `.ci/caller-venv.sh` when `can_build` (python3 exists; it reuses the cached venv while the
/// requirements are unchanged), else the cached venv as it is.
pub fn find_caller_python(
    from_env: Option<PathBuf>,
    cache: &Path,
    can_build: bool,
) -> Result<PathBuf, String> {
    if let Some(python) = from_env {
        return if is_executable(&python) {
            Ok(python)
        } else {
            Err(format!(
                "FRONTDESK_CALLER_PYTHON={} is not an executable file",
                python.display()
            ))
        };
    }
    if can_build {
        return run_ci_script(".ci/caller-venv.sh", cache);
    }
    let cached = cache.join("caller-venv/bin/python");
    if is_executable(&cached) {
        return Ok(cached);
    }
    Err(format!(
        "FRONTDESK_CALLER_PYTHON unset, no python3 to run .ci/caller-venv.sh, and no venv at {}",
        cached.display()
    ))
}

/// The python that runs caller.py, or None after printing why the test is skipped (panics
/// instead under FRONTDESK_REQUIRE_E2E=1).
pub fn caller_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let can_build = on_path("python3", &[]) || std::env::var_os("PYTHON").is_some();
        find_caller_python(env_path("FRONTDESK_CALLER_PYTHON"), &cache_dir(), can_build)
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(reason) => unavailable("no caller venv", reason),
    }
}

/// The python of the SDK conformance venv (the vendors' official SDKs, `.ci/sdk-venv.sh`):
/// `FRONTDESK_SDK_PYTHON`, else the script when python3 exists, else the cached venv; None after
/// printing why the test is skipped (panics instead under FRONTDESK_REQUIRE_E2E=1).
pub fn sdk_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        if let Some(python) = env_path("FRONTDESK_SDK_PYTHON") {
            return if is_executable(&python) {
                Ok(python)
            } else {
                Err(format!(
                    "FRONTDESK_SDK_PYTHON={} is not executable",
                    python.display()
                ))
            };
        }
        if on_path("python3", &[]) || std::env::var_os("PYTHON").is_some() {
            return run_ci_script(".ci/sdk-venv.sh", &cache_dir());
        }
        let cached = cache_dir().join("sdk-venv/bin/python");
        if is_executable(&cached) {
            Ok(cached)
        } else {
            Err("FRONTDESK_SDK_PYTHON unset, no python3, no cached sdk-venv".into())
        }
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(reason) => unavailable("no SDK venv", reason),
    }
}

/// E2E tests of one binary take this in turn: on 2 cores, two calls at once would measure the
/// machine rather than the code.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

// ---------------------------------------------------------------- the server

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// HTTP and WebSocket (signalling, the twirp API, `GET /`).
    pub http: u16,
    /// ICE over TCP (the server listens on every interface for it).
    pub rtc_tcp: u16,
    /// ICE over UDP, one muxed port.
    pub rtc_udp: u16,
}

impl Ports {
    /// Free ports, from the OS. A port another process takes between here and the server's start
    /// makes the start fail; [`LiveKitServer::start`] then tries fresh ones.
    fn pick() -> std::io::Result<Ports> {
        let http = std::net::TcpListener::bind("127.0.0.1:0")?;
        let tcp = std::net::TcpListener::bind("0.0.0.0:0")?;
        let udp = std::net::UdpSocket::bind("0.0.0.0:0")?;
        Ok(Ports {
            http: http.local_addr()?.port(),
            rtc_tcp: tcp.local_addr()?.port(),
            rtc_udp: udp.local_addr()?.port(),
        })
    }
}

/// How to stop the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM twice (the second forces it): rooms are closed and participants told
    /// (SERVER_SHUTDOWN), unless the signal socket closes first; then the SDKs reconnect.
    Graceful,
    /// SIGKILL, a crash: clients see the connection drop and reconnect once it is back.
    Kill,
}

/// A livekit-server child process on loopback. Killed on drop; when a test panics, its log's tail
/// is printed and its directory kept.
pub struct LiveKitServer {
    bin: PathBuf,
    dir: TempDir,
    ports: Ports,
    child: Option<Child>,
    starts: u32,
}

impl LiveKitServer {
    /// Starts a server, or returns None after printing why the test is skipped (no binary and no
    /// way to build one; panics instead under FRONTDESK_REQUIRE_E2E=1). A binary that does not
    /// start is a failure, not a skip.
    pub async fn start() -> Option<LiveKitServer> {
        let bin = match server_binary() {
            Ok(bin) => bin,
            Err(reason) => return unavailable("no livekit-server binary", &reason),
        };
        match Self::start_with(bin).await {
            Ok(server) => Some(server),
            Err(e) => panic!("{}: livekit-server did not start: {e}", test_name()),
        }
    }

    /// Starts `bin` on free ports (fresh ones if the first pick was taken meanwhile).
    pub async fn start_with(bin: PathBuf) -> Result<LiveKitServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("livekit-server-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut server = LiveKitServer {
            bin,
            dir,
            ports: Ports::pick().map_err(|e| format!("picking ports: {e}"))?,
            child: None,
            starts: 0,
        };
        let mut attempt = 1;
        loop {
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) if attempt < 3 && e.contains("address already in use") => {
                    attempt += 1;
                    server.ports = Ports::pick().map_err(|e| format!("picking ports: {e}"))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ports.http)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    pub fn api_key(&self) -> &'static str {
        API_KEY
    }

    pub fn api_secret(&self) -> &'static str {
        API_SECRET
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The server's stdout and stderr, every start appended (each after a `=== start N` line).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("livekit-server.log")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("livekit.yaml")
    }

    /// The last `lines` lines of the log, each cut at 400 characters (SDPs are long).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| match l.char_indices().nth(400) {
                Some((cut, _)) => format!("{}...", &l[..cut]),
                None => (*l).to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Whether the HTTP port answers `GET /` with 200 "OK".
    pub async fn is_up(&self) -> bool {
        http_ok(self.ports.http).await
    }

    fn write_config(&self) -> std::io::Result<()> {
        let Ports {
            http,
            rtc_tcp,
            rtc_udp,
        } = self.ports;
        let level = std::env::var("FRONTDESK_LIVEKIT_LOG_LEVEL").unwrap_or_else(|_| "info".into());
        // development: the --dev behaviour (short dev keys accepted quietly, single UDP port);
        // node_ip and the loopback candidate keep ICE on 127.0.0.1 whatever the machine's
        // interfaces are (otherwise the UDP mux binds only non-loopback addresses).
        let config = format!(
            "# Written by tests/support/livekit.rs for one test's server.\n\
             port: {http}\n\
             bind_addresses: [\"127.0.0.1\"]\n\
             development: true\n\
             keys:\n  {API_KEY}: {API_SECRET}\n\
             logging:\n  level: {level}\n\
             rtc:\n  tcp_port: {rtc_tcp}\n  udp_port: {rtc_udp}\n  node_ip: 127.0.0.1\n  \
             use_external_ip: false\n  enable_loopback_candidate: true\n"
        );
        std::fs::write(self.config_path(), config)
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        self.write_config()
            .map_err(|e| format!("writing config: {e}"))?;
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("opening log: {e}"))?;
        let _ = writeln!(
            log,
            "=== start {} of {} on {:?}",
            self.starts,
            self.bin.display(),
            self.ports
        );
        let stderr = log.try_clone().map_err(|e| format!("log: {e}"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true);
        // The server reads these over its config; none of the machine's must leak in.
        for var in [
            "LIVEKIT_CONFIG",
            "LIVEKIT_KEYS",
            "NODE_IP",
            "UDP_PORT",
            "REDIS_HOST",
            "REDIS_PASSWORD",
            "LIVEKIT_REGION",
            "LIVEKIT_TURN_CERT",
            "LIVEKIT_TURN_KEY",
        ] {
            cmd.env_remove(var);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = started + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "exited with {status} before answering; log:\n{}",
                    self.log_tail(30)
                ));
            }
            if http_ok(self.ports.http).await {
                let _ = writeln!(
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(self.log_path())
                        .map_err(|e| e.to_string())?,
                    "=== up after {} ms",
                    started.elapsed().as_millis()
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no answer on port {} within {READY_TIMEOUT:?}; log:\n{}",
                    self.ports.http,
                    self.log_tail(30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (see [`Stop`]) and waits for the process to end.
    pub async fn stop_with(&mut self, how: Stop) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if how == Stop::Graceful {
            if let Some(pid) = child.id() {
                // The first SIGTERM waits for participants to leave; the second closes the rooms.
                signal(pid, "TERM");
                tokio::time::sleep(Duration::from_millis(100)).await;
                signal(pid, "TERM");
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_ok()
            {
                return;
            }
            eprintln!("livekit-server ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }

    /// Graceful stop (rooms closed, participants told).
    pub async fn stop(&mut self) {
        self.stop_with(Stop::Graceful).await;
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        self.stop_with(Stop::Kill).await;
    }

    /// Starts the stopped server again on the same ports. Panics (with the log) when it cannot.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: the server is running");
        let mut attempt = 1;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return,
                // A just-closed port can take a moment to be free again.
                Err(e) if attempt < 10 && e.contains("address already in use") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("livekit-server did not come back on {:?}: {e}", self.ports),
            }
        }
    }

    /// Stops (gracefully) and starts again on the same ports: the "server restarted mid-call"
    /// case. Clients in rooms are usually disconnected (SERVER_SHUTDOWN); when the Leave loses
    /// the race with the socket closing they reconnect instead (see [`Self::crash_restart`]).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// SIGKILL and start again on the same ports: clients see the connection drop, and the SDKs
    /// reconnect (a full reconnect: the new server has no state) once it is back.
    pub async fn crash_restart(&mut self) {
        self.kill().await;
        self.start_again().await;
    }

    /// A server API token (room admin and room create, every room).
    pub fn admin_token(&self, room: &str) -> String {
        use livekit_api::access_token::{AccessToken, VideoGrants};
        AccessToken::with_api_key(API_KEY, API_SECRET)
            .with_identity("frontdesk-test-admin")
            .with_grants(VideoGrants {
                room_admin: true,
                room_create: true,
                room_list: true,
                room: room.to_owned(),
                ..Default::default()
            })
            .to_jwt()
            .unwrap()
    }

    /// A server API call (twirp, JSON), e.g. `("RoomService", "ListParticipants",
    /// json!({"room": "r"}))`. Err on transport errors and non-200 answers.
    pub async fn twirp(&self, service: &str, method: &str, body: Value) -> Result<Value, String> {
        let room = body["room"].as_str().unwrap_or_default().to_owned();
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/twirp/livekit.{service}/{method}",
                self.http_url()
            ))
            .bearer_auth(self.admin_token(&room))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("{service}/{method}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{service}/{method}: {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{service}/{method}: {e}: {text}"))
    }

    /// The participants in `room` now, as the server lists them (`identity`, `kind` ("AGENT",
    /// "STANDARD"), `state`, `tracks`, ...); empty when the room does not exist.
    pub async fn participants_info(&self, room: &str) -> Vec<Value> {
        match self
            .twirp("RoomService", "ListParticipants", json!({ "room": room }))
            .await
        {
            Ok(mut v) => match v["participants"].take() {
                Value::Array(ps) => ps,
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        }
    }

    /// The identities in `room` now.
    pub async fn participants(&self, room: &str) -> Vec<String> {
        self.participants_info(room)
            .await
            .iter()
            .filter_map(|p| p["identity"].as_str().map(str::to_owned))
            .collect()
    }

    async fn wait_until_listed(
        &self,
        room: &str,
        identity: &str,
        timeout: Duration,
        with_track: bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found = self.participants_info(room).await.into_iter().any(|p| {
                p["identity"] == identity
                    && (!with_track || p["tracks"].as_array().is_some_and(|t| !t.is_empty()))
            });
            if found {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    /// Waits until `identity` is in `room`; false after `timeout`.
    pub async fn wait_for_participant(
        &self,
        room: &str,
        identity: &str,
        timeout: Duration,
    ) -> bool {
        self.wait_until_listed(room, identity, timeout, false).await
    }

    /// Waits until `identity` is in `room` with a published track: its call is set up. (The
    /// Python SDK does not recover from a server crash while its first publish is in flight.)
    pub async fn wait_for_publisher(&self, room: &str, identity: &str, timeout: Duration) -> bool {
        self.wait_until_listed(room, identity, timeout, true).await
    }

    /// A caller for this server (see [`CallerOptions`]).
    pub fn caller(&self, room: &str, identity: &str, script: Value) -> CallerOptions {
        CallerOptions {
            url: self.ws_url(),
            api_key: API_KEY.into(),
            api_secret: API_SECRET.into(),
            room: room.into(),
            identity: identity.into(),
            dispatch: None,
            script,
            timeout: Duration::from_secs(120),
            listen_any: false,
            extra_args: Vec::new(),
        }
    }
}

impl Drop for LiveKitServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "--- livekit-server log ({}), last 40 lines:\n{}\n---",
                self.log_path().display(),
                self.log_tail(40)
            );
        }
    }
}

/// `kill -SIG pid` through the shell's builtin (no signal crate here, and Debian's base image has
/// no /bin/kill).
fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {pid}"))
        .stderr(Stdio::null())
        .status();
}

/// `GET /` answered 200 "OK" (the server's health check).
async fn http_ok(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        Some(head.starts_with("HTTP/1.") && head.contains(" 200 ") && body.trim() == "OK")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}

// ---------------------------------------------------------------- the caller

/// One run of caller.py. Paths in the script's `say` (and `barge_in.say`) that are relative are
/// taken from the crate root, e.g. `"tests/fixtures/speech/line01.wav"`.
#[derive(Clone, Debug)]
pub struct CallerOptions {
    pub url: String,
    pub api_key: String,
    pub api_secret: String,
    pub room: String,
    pub identity: String,
    pub dispatch: Option<String>,
    pub script: Value,
    /// The caller's --timeout; the child is killed if it outlives this by a minute.
    pub timeout: Duration,
    pub listen_any: bool,
    pub extra_args: Vec<String>,
}

impl CallerOptions {
    /// Create an explicit dispatch of `agent_name` into the room right after joining.
    pub fn dispatch(mut self, agent_name: &str) -> Self {
        self.dispatch = Some(agent_name.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Record the first remote participant with audio, agent or not.
    pub fn listen_any(mut self) -> Self {
        self.listen_any = true;
        self
    }

    /// Any other caller.py flag (`--keep-going`, `--threshold-dbfs -50`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Starts the caller now.
    pub fn spawn(self, python: &Path) -> RunningCaller {
        let dir = tempfile::Builder::new()
            .prefix(&format!("caller-{}-", self.identity))
            .tempdir()
            .unwrap();
        let script_path = dir.path().join("script.json");
        let script = absolute_paths(self.script.clone());
        std::fs::write(&script_path, serde_json::to_vec_pretty(&script).unwrap()).unwrap();
        let wav_path = dir.path().join("call.wav");
        let report_path = dir.path().join("report.json");
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("tests/support/caller/caller.py"))
            .args(["--url", &self.url])
            .args(["--api-key", &self.api_key])
            .args(["--api-secret", &self.api_secret])
            .args(["--room", &self.room])
            .args(["--identity", &self.identity])
            .arg("--script")
            .arg(&script_path)
            .arg("--record")
            .arg(&wav_path)
            .arg("--report")
            .arg(&report_path)
            .args(["--timeout", &format!("{}", self.timeout.as_secs_f64())]);
        if let Some(agent) = &self.dispatch {
            cmd.args(["--dispatch", agent]);
        }
        if self.listen_any {
            cmd.arg("--listen-any");
        }
        cmd.args(&self.extra_args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", python.display()));
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        RunningCaller {
            child,
            dir,
            stderr,
            wav_path,
            report_path,
            deadline: self.timeout + Duration::from_secs(60),
        }
    }

    /// Runs the caller to its end.
    pub async fn run(self, python: &Path) -> CallerRun {
        self.spawn(python).wait().await
    }
}

/// `say` paths made absolute (relative ones are from the crate root).
fn absolute_paths(mut script: Value) -> Value {
    fn fix(v: &mut Value) {
        if let Some(p) = v.as_str() {
            if !Path::new(p).is_absolute() {
                *v = Value::String(repo_root().join(p).to_string_lossy().into_owned());
            }
        }
    }
    if let Some(steps) = script.as_array_mut() {
        for step in steps {
            if let Some(say) = step.get_mut("say") {
                fix(say);
            }
            if let Some(say) = step.get_mut("barge_in").and_then(|b| b.get_mut("say")) {
                fix(say);
            }
        }
    }
    script
}

/// A caller process.
pub struct RunningCaller {
    child: Child,
    dir: TempDir,
    stderr: tokio::task::JoinHandle<String>,
    wav_path: PathBuf,
    report_path: PathBuf,
    deadline: Duration,
}

impl RunningCaller {
    /// Ctrl-C: the caller hangs up, writes its report and exits 130.
    pub fn interrupt(&self) {
        if let Some(pid) = self.child.id() {
            signal(pid, "INT");
        }
    }

    /// Waits for the caller to end (killing it a minute past its own --timeout) and reads its
    /// report.
    pub async fn wait(mut self) -> CallerRun {
        let mut notes = Vec::new();
        let status = match tokio::time::timeout(self.deadline, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                notes.push(format!("killed: still running after {:?}", self.deadline));
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        };
        if let Some(sig) = status.and_then(|s| terminating_signal(&s)) {
            notes.push(format!("the caller process died of signal {sig}"));
        }
        let stderr = self.stderr.await.unwrap_or_default();
        let raw_report = std::fs::read_to_string(&self.report_path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
        let (report, raw_report) = match raw_report {
            Ok(raw) => match serde_json::from_value::<CallerReport>(raw.clone()) {
                Ok(report) => (report, raw),
                Err(e) => (CallerReport::failed(format!("bad report: {e}")), raw),
            },
            Err(e) => (
                CallerReport::failed(format!("no report ({e})")),
                Value::Null,
            ),
        };
        let mut report = report;
        report.errors.extend(notes);
        CallerRun {
            report,
            raw_report,
            wav_path: self.wav_path,
            report_path: self.report_path,
            exit_code: status.and_then(|s| s.code()),
            stderr,
            dir: self.dir,
        }
    }
}

/// The convenience form of [`LiveKitServer::caller`] + [`CallerOptions::run`].
pub async fn run_caller(
    server: &LiveKitServer,
    python: &Path,
    room: &str,
    identity: &str,
    dispatch: Option<&str>,
    script: Value,
    timeout: Duration,
) -> CallerRun {
    let mut options = server.caller(room, identity, script).timeout(timeout);
    options.dispatch = dispatch.map(str::to_owned);
    options.run(python).await
}

#[cfg(unix)]
fn terminating_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn terminating_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// What a caller run left: its report, recording, exit code and log.
pub struct CallerRun {
    pub report: CallerReport,
    pub raw_report: Value,
    pub wav_path: PathBuf,
    pub report_path: PathBuf,
    /// None when killed by a signal.
    pub exit_code: Option<i32>,
    pub stderr: String,
    dir: TempDir,
}

impl CallerRun {
    /// The stereo recording.
    pub fn recording(&self) -> Recording {
        Recording::open(&self.wav_path)
    }

    /// Panics, with the caller's errors and log, unless it exited 0.
    pub fn assert_ok(&self) {
        assert!(
            self.exit_code == Some(0) && self.report.ok,
            "caller failed: exit {:?}, errors {:?}\n--- caller log:\n{}",
            self.exit_code,
            self.report.errors,
            self.stderr
        );
    }

    /// Keeps the run's files (script, WAV, report) after the test; returns their directory.
    pub fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_owned()
    }
}

impl Drop for CallerRun {
    /// A failing test keeps the caller's files for a look.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("caller files kept in {}", self.keep().display());
        }
    }
}

/// caller.py's report (see the module doc of caller.py). Unknown fields are ignored; the whole
/// JSON is in [`CallerRun::raw_report`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallerReport {
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub errors: Vec<String>,
    pub room: Option<String>,
    pub identity: Option<String>,
    pub agent_identity: Option<String>,
    pub dispatch_id: Option<String>,
    pub joined_at_ms: f64,
    /// Wall clock at joining, to line up two callers' timelines (to the millisecond).
    pub joined_at_unix_ms: Option<i64>,
    pub rate: Option<u32>,
    pub steps: Vec<StepResult>,
    pub events: Vec<CallerEvent>,
    pub turns: Vec<Turn>,
    pub agent_audio: AgentAudio,
    pub frames_received: u64,
    pub frames_sent: u64,
    pub disconnect_reason: Option<String>,
}

impl CallerReport {
    fn failed(error: String) -> Self {
        CallerReport {
            errors: vec![error],
            ..Default::default()
        }
    }

    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a CallerEvent> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// The time of the first event of `kind`.
    pub fn first(&self, kind: &str) -> Option<f64> {
        self.events_of(kind).next().map(|e| e.t_ms)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallerEvent {
    /// ms since the caller joined (the WAV's clock).
    pub t_ms: f64,
    /// joined, published, dispatch_created, say_start, say_end, agent_speech_start,
    /// agent_speech_end, agent_joined, agent_left, agent_track_subscribed,
    /// agent_track_unsubscribed, reconnecting, reconnected, disconnected, caller_left,
    /// step_timeout, timeout.
    pub kind: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct StepResult {
    pub index: usize,
    pub step: Value,
    pub ok: bool,
    pub start_ms: f64,
    pub end_ms: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Turn {
    pub say_end_ms: f64,
    pub first_agent_audio_ms: Option<f64>,
    pub voice_to_voice_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AgentAudio {
    /// Seconds of audio received from the agent (silence included).
    pub heard_s: f64,
    /// Seconds of 20 ms windows above the threshold.
    pub active_s: f64,
    /// Level of those active windows.
    pub rms_dbfs: Option<f64>,
}

// ---------------------------------------------------------------- the recording

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Channel 0: what the caller sent.
    Sent,
    /// Channel 1: what the caller heard from the agent.
    Heard,
}

/// A caller's stereo WAV, with energy analysis on 20 ms windows. Times are ms on the caller's
/// timeline.
pub struct Recording {
    pub rate: u32,
    sent: Vec<i16>,
    heard: Vec<i16>,
}

impl Recording {
    pub fn open(path: &Path) -> Recording {
        let mut reader = hound::WavReader::open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.bits_per_sample),
            (2, 16),
            "{}",
            path.display()
        );
        let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        let sent = samples.iter().step_by(2).copied().collect();
        let heard = samples.iter().skip(1).step_by(2).copied().collect();
        Recording {
            rate: spec.sample_rate,
            sent,
            heard,
        }
    }

    pub fn from_samples(rate: u32, sent: Vec<i16>, heard: Vec<i16>) -> Recording {
        Recording { rate, sent, heard }
    }

    pub fn samples(&self, channel: Channel) -> &[i16] {
        match channel {
            Channel::Sent => &self.sent,
            Channel::Heard => &self.heard,
        }
    }

    pub fn duration_ms(&self) -> f64 {
        self.sent.len().max(self.heard.len()) as f64 * 1000.0 / self.rate as f64
    }

    fn window_len(&self) -> usize {
        (self.rate as f64 * WINDOW_MS / 1000.0) as usize
    }

    /// RMS in dBFS of each whole 20 ms window (window i starts at i × 20 ms); -inf for silence.
    pub fn window_dbfs(&self, channel: Channel) -> Vec<f64> {
        self.samples(channel)
            .chunks_exact(self.window_len())
            .map(dbfs)
            .collect()
    }

    /// Whether each 20 ms window is above [`THRESHOLD_DBFS`].
    pub fn active_windows(&self, channel: Channel) -> Vec<bool> {
        self.window_dbfs(channel)
            .into_iter()
            .map(|db| db > THRESHOLD_DBFS)
            .collect()
    }

    /// RMS in dBFS of `[from_ms, to_ms)` (-inf when silent or empty).
    pub fn rms_dbfs(&self, channel: Channel, from_ms: f64, to_ms: f64) -> f64 {
        let s = self.samples(channel);
        let at = |ms: f64| ((ms.max(0.0) * self.rate as f64 / 1000.0) as usize).min(s.len());
        let (a, b) = (at(from_ms), at(to_ms));
        dbfs(&s[a..b.max(a)])
    }

    /// Total ms of active windows.
    pub fn active_ms(&self, channel: Channel) -> f64 {
        self.active_windows(channel).iter().filter(|a| **a).count() as f64 * WINDOW_MS
    }

    /// `(start_ms, end_ms)` of speech: active windows merged across gaps < [`HANGOVER_MS`].
    pub fn speech_segments(&self, channel: Channel) -> Vec<(f64, f64)> {
        let mut segments: Vec<(f64, f64)> = Vec::new();
        for (i, active) in self.active_windows(channel).into_iter().enumerate() {
            if !active {
                continue;
            }
            let (start, end) = (i as f64 * WINDOW_MS, (i + 1) as f64 * WINDOW_MS);
            match segments.last_mut() {
                Some(last) if start - last.1 < HANGOVER_MS => last.1 = end,
                _ => segments.push((start, end)),
            }
        }
        segments
    }

    /// Where speech starts (each segment's start).
    pub fn speech_onsets(&self, channel: Channel) -> Vec<f64> {
        self.speech_segments(channel)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    /// The first time at or after `t_ms` from which `channel` stays below the threshold for
    /// `quiet_ms` (None if the recording ends first).
    pub fn quiet_after(&self, channel: Channel, t_ms: f64, quiet_ms: f64) -> Option<f64> {
        let active = self.active_windows(channel);
        let need = (quiet_ms / WINDOW_MS).ceil().max(1.0) as usize;
        let first = (t_ms.max(0.0) / WINDOW_MS) as usize;
        let mut run = 0;
        for (i, a) in active.iter().enumerate().skip(first) {
            if *a {
                run = 0;
                continue;
            }
            run += 1;
            if run == need {
                let start = (i + 1 - need) as f64 * WINDOW_MS;
                return Some(start.max(t_ms));
            }
        }
        None
    }

    /// When the agent's audio stopped after `t_ms`: the first time from which channel 1 stays
    /// quiet for 100 ms (`t_ms` itself if it was already quiet).
    pub fn agent_audio_stop_after(&self, t_ms: f64) -> Option<f64> {
        self.quiet_after(Channel::Heard, t_ms, 100.0)
    }
}

fn dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let mean_square =
        samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    if mean_square == 0.0 {
        return f64::NEG_INFINITY;
    }
    20.0 * (mean_square.sqrt() / 32768.0).log10()
}

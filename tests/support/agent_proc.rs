//! The real worker binary (`frontdesk dev`) as a child process against a LiveKit server: its own
//! agent name, HTTP port and SQLite database in a temp dir, its log kept and printed when a test
//! fails. Provider keys are left out, so calls run on the local provider emulators.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

pub struct Agent {
    child: Option<Child>,
    pub name: String,
    pub http_port: u16,
    pub db: PathBuf,
    pub log: PathBuf,
    dir: TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Agent {
    /// Start `frontdesk dev` registered as `name` with LiveKit at `ws_url`.
    pub fn start(ws_url: &str, key: &str, secret: &str, name: &str) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix(&format!("agent-{name}-"))
            .tempdir()
            .unwrap();
        Self::start_in(dir, ws_url, key, secret, name, None)
    }

    /// As `start`, taking at most `max_calls` at a time.
    pub fn start_limited(
        ws_url: &str,
        key: &str,
        secret: &str,
        name: &str,
        max_calls: u32,
    ) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix(&format!("agent-{name}-"))
            .tempdir()
            .unwrap();
        Self::start_in(dir, ws_url, key, secret, name, Some(max_calls))
    }

    fn start_in(
        dir: TempDir,
        ws_url: &str,
        key: &str,
        secret: &str,
        name: &str,
        max_calls: Option<u32>,
    ) -> Agent {
        let http_port = free_port();
        let db = dir.path().join("calls.db");
        let log = dir.path().join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("dev")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LIVEKIT_URL", ws_url)
            .env("LIVEKIT_API_KEY", key)
            .env("LIVEKIT_API_SECRET", secret)
            .env("FRONTDESK_AGENT_NAME", name)
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("FRONTDESK_HTTP_PORT", http_port.to_string())
            .env("FRONTDESK_MAX_CALLS", max_calls.unwrap_or(10).to_string())
            .env("FRONTDESK_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,frontdesk=debug,frontdesk_actors=debug,rtc=error,rtc_sctp=error,webrtc=warn,livekit_signaling=warn")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Agent {
            child: Some(child),
            name: name.into(),
            http_port,
            db,
            log,
            dir,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `GET /worker` as JSON (None while the server is not up).
    pub async fn worker(&self) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/worker", self.http_port);
        let resp = reqwest::get(url).await.ok()?;
        resp.json().await.ok()
    }

    /// Wait until the worker has registered with LiveKit.
    pub async fn registered(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(w) = self.worker().await {
                if w["connected"] == true && w["worker_id"].is_string() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent {} did not register within {timeout:?}:\n{}",
                self.name,
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Active calls as `/worker` reports them.
    pub async fn active_calls(&self) -> u64 {
        self.worker()
            .await
            .and_then(|w| w["active_calls"].as_u64())
            .unwrap_or(0)
    }

    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("kill -TERM {pid}"))
                .status();
        }
    }

    /// Wait for the process to exit; its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => None,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines (JSON) whose message contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle)
                    || v["message"].as_str().unwrap_or("").contains(needle)
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "--- agent {} log ({}), last 60 lines:\n{}\n---",
                self.name,
                self.log.display(),
                self.log_tail(60)
            );
        }
    }
}

/// The call records in an agent's SQLite database.
pub struct Records {
    conn: rusqlite::Connection,
}

impl Records {
    pub fn open(db: &std::path::Path) -> Records {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        Records { conn }
    }

    /// (call id, end reason) of the calls in `room`.
    pub fn calls_in(&self, room: &str) -> Vec<(String, Option<String>)> {
        let mut st = self
            .conn
            .prepare("SELECT id, end_reason FROM calls WHERE room = ?1 ORDER BY started_at")
            .unwrap();
        st.query_map([room], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn turns(&self, call: &str) -> Vec<(i64, String, String)> {
        let mut st = self
            .conn
            .prepare("SELECT turn_index, transcript, reply FROM turns WHERE call_id = ?1 ORDER BY turn_index")
            .unwrap();
        st.query_map([call], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn tool_calls(&self, call: &str) -> Vec<(String, Option<String>)> {
        let mut st = self
            .conn
            .prepare("SELECT name, error FROM tool_calls WHERE call_id = ?1 ORDER BY seq")
            .unwrap();
        st.query_map([call], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// (stt seconds, prompt tokens, completion tokens, tts characters, cost).
    pub fn usage(&self, call: &str) -> Option<(f64, i64, i64, i64, f64)> {
        self.conn
            .query_row(
                "SELECT stt_audio_seconds, prompt_tokens, completion_tokens, tts_characters, cost_usd FROM usage WHERE call_id = ?1",
                [call],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .ok()
    }

    /// Scheduled appointments of a patient: (doctor id, starts at).
    pub fn appointments_of(&self, patient: i64) -> Vec<(i64, String)> {
        let mut st = self
            .conn
            .prepare("SELECT doctor_id, starts_at FROM appointments WHERE patient_id = ?1 AND status = 'scheduled'")
            .unwrap();
        st.query_map([patient], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

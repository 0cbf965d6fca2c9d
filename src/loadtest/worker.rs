//! The agent worker under test: spawned by the load test (`frontdesk dev` as a child process with
//! its own agent name, HTTP port and SQLite database, killed at the end) or already running
//! (`--worker external`). Also reads the worker's transport counters from its `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::LoadtestError;
use crate::config::AppConfig;
use crate::store::DatabaseConfig;

const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The worker as the load test sees it.
pub struct Worker {
    pub pid: Option<u32>,
    /// Where its call records are.
    pub records: Option<DatabaseConfig>,
    /// Its `/metrics`, for the caller → agent packet counters.
    pub metrics_url: Option<String>,
    child: Option<Child>,
    pub log: Option<PathBuf>,
}

/// What spawning needs.
pub struct SpawnSpec<'a> {
    pub cfg: &'a AppConfig,
    pub agent_name: &'a str,
    /// Calls the run makes at most at once.
    pub calls: usize,
    pub dir: &'a Path,
    pub log_level: &'a str,
}

impl Worker {
    /// A worker someone else runs.
    pub fn external(
        pid: Option<u32>,
        records: Option<DatabaseConfig>,
        metrics: Option<String>,
    ) -> Self {
        Self {
            pid,
            records,
            metrics_url: metrics,
            child: None,
            log: None,
        }
    }

    /// `current_exe() dev`, registered with the server before this returns.
    #[allow(clippy::disallowed_methods)] // the child's log file, once per spawned worker before any call
    pub async fn spawn(spec: SpawnSpec<'_>) -> Result<Self, LoadtestError> {
        let exe = std::env::current_exe().map_err(|e| worker_err(format!("own binary: {e}")))?;
        let port = free_port()?;
        let db = spec.dir.join("calls.db");
        let log = spec.dir.join("worker.log");
        let stderr = std::fs::File::create(&log)?;
        let w = &spec.cfg.worker;
        let child = Command::new(exe)
            .arg("dev")
            .env("LIVEKIT_URL", &w.url)
            .env("LIVEKIT_API_KEY", w.api_key.expose())
            .env("LIVEKIT_API_SECRET", w.api_secret.expose())
            .env("FRONTDESK_AGENT_NAME", spec.agent_name)
            .env("FRONTDESK_MAX_CALLS", max_calls_for(spec.calls).to_string())
            .env("FRONTDESK_HTTP_BIND", "127.0.0.1")
            .env("FRONTDESK_HTTP_PORT", port.to_string())
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("RUST_LOG", spec.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| worker_err(format!("starting the worker: {e}")))?;
        let records = DatabaseConfig {
            url: crate::secret::Secret::new(format!("sqlite://{}", db.display())),
            ..spec.cfg.database.clone()
        };
        let mut worker = Self {
            pid: child.id(),
            records: Some(records),
            metrics_url: Some(format!("http://127.0.0.1:{port}/metrics")),
            child: Some(child),
            log: Some(log),
        };
        worker
            .wait_registered(&format!("http://127.0.0.1:{port}/worker"))
            .await?;
        Ok(worker)
    }

    /// Until `/worker` says it is connected and has a worker id from the server.
    async fn wait_registered(&mut self, url: &str) -> Result<(), LoadtestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| worker_err(e.to_string()))?;
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(worker_err(format!(
                        "the worker exited ({status}){}",
                        self.log_hint()
                    )));
                }
            }
            if registered(&http, url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(worker_err(format!(
                    "not registered with the server after {REGISTER_TIMEOUT:?}{}",
                    self.log_hint()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_hint(&self) -> String {
        self.log
            .as_ref()
            .map(|l| format!("; its log: {}", l.display()))
            .unwrap_or_default()
    }

    /// SIGTERM (the worker drains; its calls are over by now), SIGKILL if it is still there.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            tracing::warn!("the worker did not stop after SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }

    /// The worker's transport counters now (all its calls), if it serves metrics.
    pub async fn packet_counters(&self) -> Option<PacketCounters> {
        let url = self.metrics_url.as_ref()?;
        let text = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(PacketCounters {
            received: metric_sum(&text, crate::room::metrics::PACKETS_RECEIVED),
            lost: metric_sum(&text, crate::room::metrics::PACKETS_LOST),
            sent: metric_sum(&text, crate::room::metrics::PACKETS_SENT),
        })
    }
}

async fn registered(http: &reqwest::Client, url: &str) -> bool {
    let Ok(resp) = http.get(url).send().await else {
        return false;
    };
    let Ok(v) = resp.json::<serde_json::Value>().await else {
        return false;
    };
    v["connected"].as_bool() == Some(true) && v["worker_id"].is_string()
}

/// The worker's packet counters: the callers' audio as it received it, and the agent's it sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketCounters {
    pub received: u64,
    pub lost: u64,
    pub sent: u64,
}

/// Sum of a counter's samples (every label set) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let metric = key.split('{').next()?;
            (metric == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .sum::<f64>() as u64
}

/// The worker's max_calls for `calls` at once. It reports load as running calls / max_calls, and
/// LiveKit offers a job only to a worker whose load is below the server's agent target load (0.7
/// by default; otherwise the dispatch is dropped): twice the calls keeps the load at 0.5.
pub fn max_calls_for(calls: usize) -> usize {
    calls.max(1) * 2
}

fn free_port() -> Result<u16, LoadtestError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn worker_err(reason: String) -> LoadtestError {
    LoadtestError::Worker(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_counters_over_labels() {
        let text = "# TYPE frontdesk_room_packets_lost_total counter\n\
                    frontdesk_room_packets_lost_total 3\n\
                    frontdesk_room_packets_received_total{a=\"x\"} 10\n\
                    frontdesk_room_packets_received_total{a=\"y\"} 5\n\
                    frontdesk_room_packets_received_totalx 99\n";
        assert_eq!(
            metric_sum(text, "frontdesk_room_packets_received_total"),
            15
        );
        assert_eq!(metric_sum(text, "frontdesk_room_packets_lost_total"), 3);
        assert_eq!(metric_sum(text, "nothing"), 0);
    }
}

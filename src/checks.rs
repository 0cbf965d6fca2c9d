//! Dependency checks: the database (a connection and `SELECT 1`), LiveKit and each provider (TCP
//! reachability of the configured host and port). Run once by `frontdesk check`, and in the
//! background by the service, where each result lands in `ServiceStatus` for `/health`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::AppConfig;
use crate::status::{DepState, ServiceStatus};
use crate::store::postgres::pool as pg;
use crate::store::DatabaseConfig;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("not configured")]
    NotConfigured,
    /// The configured URL has no host (or does not parse). Holds no URL: it may carry a secret.
    #[error("bad url: {0}")]
    Url(String),
    #[error("{target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("{0}: timed out")]
    Timeout(String),
    #[error("database: {0}")]
    Database(String),
}

impl CheckError {
    /// A network failure may clear; a configuration problem will not.
    pub fn is_retriable(&self) -> bool {
        !matches!(self, CheckError::NotConfigured | CheckError::Url(_))
    }
}

/// How one dependency is probed.
#[derive(Clone, Debug)]
pub enum Probe {
    /// The embedded SQLite store: in this process, up while the process is.
    EmbeddedStore,
    Database(DatabaseConfig),
    /// TCP connect to the URL's host and port.
    Reach(String),
    NotConfigured,
}

#[derive(Clone, Debug)]
pub struct Target {
    /// "database", "livekit", "deepgram", "openai", "cartesia".
    pub name: &'static str,
    /// Down makes `/health` 503: without the database or LiveKit no call can be taken. Providers
    /// are reported but not critical: a provider outage is shared by every instance, so taking
    /// them all out of rotation would not help, and the fallback may still cover it.
    pub critical: bool,
    pub probe: Probe,
}

/// What `cfg` says to check.
pub fn targets(cfg: &AppConfig) -> Vec<Target> {
    let db = match cfg.database.backend() {
        crate::store::Backend::Sqlite(_) => Probe::EmbeddedStore,
        crate::store::Backend::Postgres => Probe::Database(cfg.database.clone()),
    };
    let livekit = if cfg.worker.url.is_empty() {
        Probe::NotConfigured
    } else {
        Probe::Reach(cfg.worker.url.clone())
    };
    let p = &cfg.providers;
    vec![
        target("database", true, db),
        target("livekit", !cfg.worker.url.is_empty(), livekit),
        target("deepgram", false, Probe::Reach(p.deepgram.url.clone())),
        target("openai", false, Probe::Reach(p.openai.base_url.clone())),
        target("cartesia", false, Probe::Reach(p.cartesia.url.clone())),
    ]
}

fn target(name: &'static str, critical: bool, probe: Probe) -> Target {
    Target {
        name,
        critical,
        probe,
    }
}

/// Probe one dependency, bounded by `timeout`.
pub async fn probe(t: &Target, timeout: Duration) -> Result<(), CheckError> {
    match &t.probe {
        Probe::EmbeddedStore => Ok(()),
        Probe::NotConfigured => Err(CheckError::NotConfigured),
        Probe::Database(cfg) => database(cfg, timeout).await,
        Probe::Reach(url) => reach(url, timeout).await,
    }
}

/// A fresh one-connection pool per check: a pooled connection could look alive after the server
/// went away, and a check must see what a new call would see.
async fn database(cfg: &DatabaseConfig, timeout: Duration) -> Result<(), CheckError> {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let cfg = DatabaseConfig {
        pool_max_size: 1,
        pool_wait_timeout_ms: ms,
        pool_create_timeout_ms: ms,
        ..cfg.clone()
    };
    let pool = pg::build(&cfg).map_err(|e| CheckError::Database(e.to_string()))?;
    let work = async {
        // The pool directly, not `pool::get`: this throwaway pool must not feed the store's gauges.
        let conn = pool
            .get()
            .await
            .map_err(|e| CheckError::Database(pg::describe_pool(&e)))?;
        conn.simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| CheckError::Database(pg::describe(&e)))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CheckError::Timeout("database".into()))?
}

/// The `host:port` a URL points at (default port by scheme); never the path, query or user info,
/// which may hold credentials.
pub fn host_port(url: &str) -> Result<String, CheckError> {
    let u = url::Url::parse(url).map_err(|e| CheckError::Url(e.to_string()))?;
    let host = u
        .host_str()
        .ok_or_else(|| CheckError::Url("no host".into()))?;
    let port = u
        .port_or_known_default()
        .ok_or_else(|| CheckError::Url(format!("no port for scheme {}", u.scheme())))?;
    Ok(format!("{host}:{port}"))
}

async fn reach(url: &str, timeout: Duration) -> Result<(), CheckError> {
    let target = host_port(url)?;
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CheckError::Unreachable {
            target,
            reason: e.to_string(),
        }),
        Err(_) => Err(CheckError::Timeout(target)),
    }
}

/// Probe every target concurrently; results in target order.
pub async fn run_once(targets: &[Target], timeout: Duration) -> Vec<Result<(), CheckError>> {
    futures_util::future::join_all(targets.iter().map(|t| probe(t, timeout))).await
}

/// Probe every target and record the results in `status`.
pub async fn update(targets: &[Target], timeout: Duration, status: &ServiceStatus) {
    for (t, result) in targets.iter().zip(run_once(targets, timeout).await) {
        let state = match result {
            Ok(()) => DepState::Up,
            Err(e) => DepState::Down(e.to_string()),
        };
        let before = status.deps().get(t.name).map(|d| d.state.clone());
        // Each change once (the first result included), not every round.
        if before.as_ref() != Some(&state) {
            match &state {
                DepState::Down(why) => {
                    tracing::warn!(dependency = t.name, critical = t.critical, reason = %why, "dependency down")
                }
                _ => tracing::info!(dependency = t.name, "dependency up"),
            }
        }
        status.set_dep(t.name, state, t.critical);
    }
}

/// Re-check every `interval` until the task is aborted. The first round runs at once.
pub fn spawn(
    targets: Vec<Target>,
    interval: Duration,
    timeout: Duration,
    status: Arc<ServiceStatus>,
) -> tokio::task::JoinHandle<()> {
    for t in &targets {
        status.set_dep(t.name, DepState::Unknown, t.critical);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            update(&targets, timeout, &status).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_keeps_no_credentials() {
        let hp = |u: &str| host_port(u).unwrap();
        assert_eq!(
            hp("wss://api.deepgram.com/v1/listen?token=x"),
            "api.deepgram.com:443"
        );
        assert_eq!(hp("https://u:pw@api.openai.com/v1"), "api.openai.com:443");
        assert_eq!(hp("ws://127.0.0.1:7880"), "127.0.0.1:7880");
        assert!(host_port("not a url").is_err());
    }

    #[tokio::test]
    async fn embedded_store_is_up_and_a_closed_port_is_down() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let up = target("database", true, Probe::EmbeddedStore);
        let down = target("livekit", true, Probe::Reach(format!("ws://{closed}")));
        let missing = target("openai", false, Probe::NotConfigured);
        let status = ServiceStatus::new();
        update(&[up, down, missing], Duration::from_secs(2), &status).await;
        let deps = status.deps();
        assert_eq!(deps["database"].state, DepState::Up);
        assert!(matches!(deps["livekit"].state, DepState::Down(_)));
        assert!(matches!(deps["openai"].state, DepState::Down(_)));
        assert!(!status.healthy(), "livekit is critical");
    }
}

// Slices here are at indices from find/match_indices/char_indices: always char boundaries.
#![allow(clippy::string_slice)]
//! The HTTP server over a real socket: `/health` follows the database (down on a closed port, back
//! when a proxy in front of the real PostgreSQL comes back), `/worker` shows the snapshot, and
//! `/metrics` is valid Prometheus text.
#![allow(clippy::unwrap_used)]

#[path = "support/worker_runner.rs"]
mod worker_runner;

use std::sync::Arc;
use std::time::Duration;

use frontdesk::checks::{self, Target};
use frontdesk::config::AppConfig;
use frontdesk::secret::Secret;
use frontdesk::status::ServiceStatus;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

const TIMEOUT: Duration = Duration::from_secs(3);

/// The server on a free loopback port; dropping the sender stops it.
async fn serve(
    status: Arc<ServiceStatus>,
    metrics: PrometheusHandle,
) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(frontdesk::http::serve(
        listener,
        status,
        metrics,
        async move {
            let _ = stopped.await;
        },
    ));
    (base, stop)
}

fn local_metrics() -> PrometheusHandle {
    PrometheusBuilder::new().build_recorder().handle()
}

/// Only the database target of a config pointing at `url`.
fn database_target(url: &str) -> Vec<Target> {
    let mut cfg = AppConfig::default();
    cfg.database.url = Secret::new(url);
    checks::targets(&cfg)
        .into_iter()
        .filter(|t| t.name == "database")
        .collect()
}

async fn health(base: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{base}/health")).await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn health_is_503_while_the_database_is_down() {
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        closed_port()
    );
    let targets = database_target(&url);
    let status = Arc::new(ServiceStatus::new());
    let (base, _stop) = serve(Arc::clone(&status), local_metrics()).await;
    checks::update(&targets, TIMEOUT, &status).await;
    let (code, body) = health(&base).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["dependencies"]["database"]["state"], "down", "{body}");
    assert_eq!(body["dependencies"]["database"]["critical"], true);
    let (code, _) = {
        let r = reqwest::get(format!("{base}/")).await.unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(code, 503, "/ is /health");
}

/// LiveKit unreachable: the check (critical) says down, and the agent worker retrying its
/// connection all the while must not turn that back into a 200.
#[tokio::test]
async fn health_is_503_while_livekit_is_unreachable() {
    let mut cfg = AppConfig::default();
    cfg.worker.url = format!("ws://127.0.0.1:{}", closed_port());
    cfg.worker.api_key = Secret::new("devkey");
    cfg.worker.api_secret = Secret::new("a-secret-of-at-least-thirty-two-chars");
    cfg.worker.reconnect_max_delay_ms = 20;
    cfg.worker.max_reconnect_attempts = 10_000;
    let targets: Vec<Target> = checks::targets(&cfg)
        .into_iter()
        .filter(|t| t.name == "livekit")
        .collect();
    let status = Arc::new(ServiceStatus::new());
    let (base, _stop) = serve(Arc::clone(&status), local_metrics()).await;
    let runner = Arc::new(worker_runner::TestRunner::default());
    let worker = frontdesk::worker::start(cfg.worker.clone(), runner, Arc::clone(&status)).unwrap();
    checks::update(&targets, TIMEOUT, &status).await;
    // Several reconnect attempts (20 ms apart) after the check.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = health(&base).await;
    worker.abort();
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["dependencies"]["livekit"]["state"], "down", "{body}");
    assert_eq!(body["dependencies"]["livekit"]["critical"], true, "{body}");
}

/// A TCP proxy on a fixed port; stopping it closes the listener and every connection.
struct Proxy {
    port: u16,
    upstream: String,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(port: u16, upstream: String) -> Self {
        let mut p = Self {
            port,
            upstream,
            task: None,
        };
        p.resume().await;
        p
    }

    async fn resume(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Owned by the accept loop: aborting it drops (closes) every proxied connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                while conns.try_join_next().is_some() {}
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn health_follows_the_database_down_and_back() {
    let Some(real) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "\n*** SKIPPED: DATABASE_URL unset; /health database recovery test did not run ***\n"
        );
        return;
    };
    let mut url = url::Url::parse(&real).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let mut proxy = Proxy::start(0, upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    let targets = database_target(url.as_str());
    let status = Arc::new(ServiceStatus::new());
    let (base, _stop) = serve(Arc::clone(&status), local_metrics()).await;

    checks::update(&targets, TIMEOUT, &status).await;
    let (code, body) = health(&base).await;
    assert_eq!(code, 200, "through the proxy: {body}");
    assert_eq!(body["dependencies"]["database"]["state"], "up");

    proxy.stop().await;
    checks::update(&targets, TIMEOUT, &status).await;
    let (code, body) = health(&base).await;
    assert_eq!(code, 503, "proxy stopped: {body}");

    proxy.resume().await;
    checks::update(&targets, TIMEOUT, &status).await;
    let (code, body) = health(&base).await;
    assert_eq!(code, 200, "proxy back: {body}");
    proxy.stop().await;
}

#[tokio::test]
async fn worker_shows_the_snapshot() {
    let status = Arc::new(ServiceStatus::new());
    status.update_worker(|w| {
        w.agent_name = "frontdesk-test".into();
        w.active_calls = 3;
        w.max_calls = 10;
        w.load = 0.3;
        w.protocol_version = 16;
    });
    let (base, _stop) = serve(Arc::clone(&status), local_metrics()).await;
    let body: serde_json::Value = reqwest::get(format!("{base}/worker"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["agent_name"], "frontdesk-test");
    assert_eq!(body["active_calls"], 3);
    assert_eq!(body["protocol_version"], 16);
    assert!((body["load"].as_f64().unwrap() - 0.3).abs() < 1e-6);
}

/// `name{labels} value [timestamp]`, with a valid name, well-formed labels and a number.
fn check_sample(line: &str) -> Result<(), String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    let valid_name = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid_name {
        return Err(format!("bad name {name:?}"));
    }
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let close = labels.rfind('}').ok_or("unclosed labels")?;
        for pair in split_labels(&labels[..close]) {
            let (k, v) = pair.split_once('=').ok_or(format!("bad label {pair:?}"))?;
            if k.is_empty() || !(v.starts_with('"') && v.ends_with('"') && v.len() >= 2) {
                return Err(format!("bad label {pair:?}"));
            }
        }
        rest = &labels[close + 1..];
    }
    let mut parts = rest.split_whitespace();
    let value = parts.next().ok_or("no value")?;
    value
        .parse::<f64>()
        .map_err(|_| format!("value {value:?} is not a number"))?;
    match parts.next() {
        None => Ok(()),
        Some(ts) => ts
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("bad timestamp {ts:?}")),
    }
}

/// Split `a="x",b="y,z"` on the commas outside quotes.
fn split_labels(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (vec![], 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let handle = frontdesk::telemetry::init_metrics().unwrap();
    metrics::counter!("frontdesk_test_requests_total", "route" => "health, \"quoted\"")
        .increment(3);
    metrics::gauge!(frontdesk_actors::metrics::ACTIVE_CALLS).set(2.0);
    metrics::histogram!(frontdesk_actors::metrics::TURN_LATENCY).record(0.42);
    let (base, _stop) = serve(Arc::new(ServiceStatus::new()), handle).await;
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("frontdesk_test_requests_total{route="),
        "{body}"
    );
    assert!(
        body.contains("frontdesk_turn_latency_seconds_bucket"),
        "{body}"
    );
    let mut samples = 0;
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        check_sample(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        samples += 1;
    }
    assert!(samples >= 3, "{body}");
}

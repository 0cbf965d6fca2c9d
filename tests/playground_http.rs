//! The web playground's HTTP side over a real socket: the page and its script, and
//! `POST /playground/token` — a valid request gets a join token for that room only that dispatches
//! the agent and holds no secret; bad names, oversized bodies, too many requests and an unreachable
//! LiveKit server get a clear JSON error with the right status; with the playground off every
//! route is a 404.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use frontdesk::config::HttpConfig;
use frontdesk::playground::Playground;
use frontdesk::secret::Secret;
use frontdesk::status::ServiceStatus;
use frontdesk::worker::WorkerConfig;
use livekit_api::access_token::TokenVerifier;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const KEY: &str = "APIplaygroundtest";
const SECRET: &str = "playground-test-secret-0123456789abcdef";
const AGENT: &str = "fd-playground-test";
/// A well-formed request body.
const ROOM: &str = r#"{"room":"playground-test"}"#;

/// A stand-in LiveKit server: anything answering HTTP is "up" to the probe.
async fn fake_livekit() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "OK" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("ws://{addr}")
}

/// A loopback URL nothing listens on.
async fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}")
}

fn worker(url: &str) -> WorkerConfig {
    WorkerConfig {
        url: url.into(),
        api_key: Secret::new(KEY),
        api_secret: Secret::new(SECRET),
        agent_name: AGENT.into(),
        ..Default::default()
    }
}

fn http_cfg(per_minute: u32) -> HttpConfig {
    HttpConfig {
        playground: true,
        playground_requests_per_minute: per_minute,
        ..Default::default()
    }
}

/// The service's HTTP server on a free port, with `playground` when given.
async fn serve(playground: Option<Playground>) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = PrometheusBuilder::new().build_recorder().handle();
    tokio::spawn(frontdesk::http::serve_with(
        listener,
        Arc::new(ServiceStatus::new()),
        metrics,
        playground,
        async move {
            let _ = stopped.await;
        },
    ));
    (format!("http://{addr}"), stop)
}

async fn playground(livekit_url: &str, per_minute: u32) -> (String, oneshot::Sender<()>) {
    let pg = Playground::from_config(&http_cfg(per_minute), &worker(livekit_url));
    assert!(pg.is_some(), "http.playground = true serves it");
    serve(pg).await
}

async fn post(
    base: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/playground/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"))
        .to_owned()
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "the API secret leaked: {text}");
}

#[tokio::test]
async fn a_valid_request_gets_a_token_for_that_room_only_that_dispatches_the_agent() {
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 20).await;
    let (status, _, body) = post(&base, r#"{"room":"front-desk-1","identity":"alice"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_no_secret(&body);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["url"], json!(lk));
    assert_eq!(v["room"], json!("front-desk-1"));
    assert_eq!(v["identity"], json!("alice"));
    assert_eq!(v["expires_in_s"], json!(600));
    let jwt = v["token"].as_str().unwrap();
    // The claims themselves, as the browser could read them: no secret there either.
    let payload = jwt.split('.').nth(1).unwrap();
    let claims_json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    assert_no_secret(&String::from_utf8(claims_json).unwrap());
    let claims = TokenVerifier::with_api_key(KEY, SECRET)
        .verify(jwt)
        .unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.video.room, "front-desk-1");
    assert!(claims.video.room_join);
    assert!(!claims.video.room_admin && !claims.video.room_create && !claims.video.room_list);
    assert!(claims.exp - claims.nbf <= 601, "short-lived");
    let agents = claims.room_config.expect("a room configuration").agents;
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent_name, AGENT);

    // No identity: a random, well-formed one.
    let (status, _, body) = post(&base, r#"{"room":"r2"}"#).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["room"], "r2", "{v}");
    assert!(
        v["identity"].as_str().unwrap().starts_with("caller-"),
        "{v}"
    );
}

#[tokio::test]
async fn bad_names_are_400_with_a_clear_message() {
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 100).await;
    let long = "r".repeat(65);
    let cases = [
        (json!({"room": ""}).to_string(), "room must not be empty"),
        ("{}".to_owned(), "room is required"),
        (json!({"identity": "alice"}).to_string(), "room is required"),
        (
            json!({"room": "r", "identity": ""}).to_string(),
            "identity must not be empty",
        ),
        (json!({"room": long}).to_string(), "at most 64"),
        (json!({"room": "a/b"}).to_string(), "room may only hold"),
        (
            json!({"room": "<script>"}).to_string(),
            "room may only hold",
        ),
        (
            json!({"room": "r", "identity": "x y"}).to_string(),
            "identity may only hold",
        ),
        ("{\"room\":".to_owned(), "must be JSON"),
        (json!({"room": 5}).to_string(), "must be JSON"),
        (json!(["room"]).to_string(), "must be JSON"),
    ];
    for (body, expected) in cases {
        let (status, _, reply) = post(&base, body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        let error = error_of(&reply);
        assert!(error.contains(expected), "{body}: {error}");
        assert!(
            !error.contains("panicked") && !error.contains("backtrace"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_unread() {
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 100).await;
    let huge = json!({"room": "r".repeat(5000)}).to_string();
    let (status, _, reply) = post(&base, huge).await;
    assert_eq!(status, 413, "{reply}");
    assert!(error_of(&reply).contains("larger than"), "{reply}");
}

#[tokio::test]
async fn too_many_requests_get_429_with_retry_after() {
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 2).await;
    for _ in 0..2 {
        let (status, _, body) = post(&base, ROOM).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = post(&base, ROOM).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        error_of(&body).contains("too many token requests"),
        "{body}"
    );
    // Bad input is limited too: a client cannot probe names without limit.
    let (status, _, _) = post(&base, r#"{"room":""}"#).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn an_unreachable_livekit_server_is_503_naming_it() {
    let down = closed_url().await;
    let (base, _stop) = playground(&down, 20).await;
    let (status, _, body) = post(&base, ROOM).await;
    assert_eq!(status, 503, "{body}");
    let error = error_of(&body);
    assert!(
        error.contains("cannot reach the LiveKit server") && error.contains(&down),
        "{error}"
    );
    assert!(
        !body.contains("token\""),
        "no token when it could not be used: {body}"
    );
}

#[tokio::test]
async fn the_page_and_its_script_are_served() {
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 20).await;
    let page = reqwest::get(format!("{base}/playground")).await.unwrap();
    assert_eq!(page.status(), 200);
    let ct = page.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<html") || html.contains("<!doctype") || html.contains("<!DOCTYPE"));
    let js = reqwest::get(format!("{base}/playground/app.js"))
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let ct = js.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/javascript"), "{ct}");
    assert!(!js.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn with_the_playground_off_every_route_is_404() {
    let lk = fake_livekit().await;
    let off = HttpConfig::default();
    assert!(!off.playground, "off by default");
    let pg = Playground::from_config(&off, &worker(&lk));
    assert!(pg.is_none());
    let (base, _stop) = serve(pg).await;
    for path in ["/playground", "/playground/app.js"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let (status, _, _) = post(&base, ROOM).await;
    assert_eq!(status, 404);
    // The rest of the server is there.
    let r = reqwest::get(format!("{base}/worker")).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, from the first call on: a global subscriber, since a
/// scoped one misses events whose callsites other tests' threads registered first.
fn captured_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
}

#[tokio::test]
async fn logs_name_the_outcome_and_never_the_secret_or_the_token() {
    let logs = captured_logs();
    let lk = fake_livekit().await;
    let (base, _stop) = playground(&lk, 20).await;
    let (status, _, body) = post(&base, r#"{"room":"logged-room","identity":"bob"}"#).await;
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let (status, _, _) = post(&base, r#"{"room":""}"#).await;
    assert_eq!(status, 400);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The room is named by its tag only, as every room in the logs.
    let tag = frontdesk_actors::provider::room::room_tag("logged-room");
    assert!(
        text.lines().any(|l| l.contains("INFO")
            && l.contains("playground token issued")
            && l.contains(&tag)),
        "{text}"
    );
    assert!(!text.contains("logged-room"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("room must not be empty")),
        "{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("stack backtrace"),
        "{text}"
    );
    assert_no_secret(&text);
    assert!(!text.contains(token["token"].as_str().unwrap()), "{text}");
}

//! The web playground (issue 15): a page that calls the agent from a browser, and the token
//! endpoint it uses. Served on the service's HTTP server only when `http.playground` is on (`dev`
//! turns it on; `start` only when configured), so production never exposes it by accident.
//!
//! `POST /playground/token` takes an optional room and identity, checks them, rate-limits per
//! client IP (GCRA via `governor`), probes the LiveKit server (an unreachable one is a 503 with a
//! clear sentence, not a token the page cannot use) and returns a short-lived join token whose room
//! configuration dispatches the agent. The API secret never leaves the process: it signs, nothing
//! else.

pub mod error;
pub mod request;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::HttpConfig;
use crate::token::{TokenArgs, TokenError};
use crate::worker::WorkerConfig;
pub use error::PlaygroundError;
use request::{TokenRequest, MAX_BODY};

pub const REQUESTS: &str = "frontdesk_playground_requests_total";
const OUTCOMES: [&str; 6] = [
    "ok",
    "bad_request",
    "too_large",
    "rate_limited",
    "livekit_down",
    "not_configured",
];
/// How long the LiveKit server may take to answer the probe before the page is told it is down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Client IPs remembered by the limiter before idle ones are forgotten.
const LIMITER_KEYS: usize = 10_000;

static PAGE: &str = include_str!("../../web/playground/index.html");
static SCRIPT: &[u8] = include_bytes!("../../web/playground/dist/playground.js");

/// Every problem with the `[http]` playground keys.
pub fn validate(http: &HttpConfig) -> Vec<String> {
    let mut errors = vec![];
    if http.playground_token_ttl_s == 0 || http.playground_token_ttl_s > 24 * 3600 {
        errors.push(format!(
            "http.playground_token_ttl_s must be between 1 and 86400 (got {})",
            http.playground_token_ttl_s
        ));
    }
    if http.playground_requests_per_minute == 0 {
        errors.push("http.playground_requests_per_minute must be positive".into());
    }
    let url = &http.playground_livekit_url;
    if !url.is_empty() {
        let scheme_ok = url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "ws" | "wss" | "http" | "https") && u.host_str().is_some()
        });
        if !scheme_ok {
            errors.push(format!(
                "http.playground_livekit_url: {url:?} is not a ws(s):// or http(s):// URL"
            ));
        }
    }
    errors
}

/// Metric descriptions and zeroed series (called once at start, with the service's catalogue).
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "Playground token requests, by outcome.");
    for outcome in OUTCOMES {
        metrics::counter!(REQUESTS, "outcome" => outcome).absolute(0);
    }
}

/// The playground's state: what it signs with, where the browser connects, the limiter.
#[derive(Clone)]
pub struct Playground {
    inner: Arc<Inner>,
}

struct Inner {
    worker: WorkerConfig,
    browser_url: String,
    ttl: Duration,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    http: reqwest::Client,
}

#[derive(Debug, serde::Serialize)]
struct TokenResponse {
    url: String,
    token: String,
    room: String,
    identity: String,
    expires_in_s: u64,
}

impl Playground {
    /// The playground when `http.playground` is on.
    pub fn from_config(http: &HttpConfig, worker: &WorkerConfig) -> Option<Self> {
        http.playground.then(|| Self::new(http, worker))
    }

    pub fn new(http: &HttpConfig, worker: &WorkerConfig) -> Self {
        let per_minute =
            NonZeroU32::new(http.playground_requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let browser_url = if http.playground_livekit_url.is_empty() {
            worker.url.clone()
        } else {
            http.playground_livekit_url.clone()
        };
        Self {
            inner: Arc::new(Inner {
                worker: worker.clone(),
                browser_url,
                ttl: Duration::from_secs(http.playground_token_ttl_s),
                limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
                // As the worker's own signal connection: straight, not through HTTP_PROXY.
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    /// `/playground`, `/playground/app.js`, `POST /playground/token`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/playground", get(page))
            .route("/playground/", get(page))
            .route("/playground/app.js", get(script))
            .route("/playground/token", post(token))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }

    fn check_rate(&self, ip: IpAddr) -> Result<(), PlaygroundError> {
        let limiter = &self.inner.limiter;
        if limiter.len() > LIMITER_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            PlaygroundError::RateLimited {
                retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// The LiveKit server answers HTTP on its signal port; anything back means it is up.
    async fn probe(&self) -> Result<(), PlaygroundError> {
        let worker_url = &self.inner.worker.url;
        let down = || PlaygroundError::LiveKitDown {
            url: shown_url(&self.inner.browser_url),
        };
        let probe_url = http_url(worker_url).ok_or_else(down)?;
        let sent = self.inner.http.get(probe_url).timeout(PROBE_TIMEOUT).send();
        match sent.await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "LiveKit probe failed");
                Err(down())
            }
        }
    }

    async fn mint(&self, body: &[u8], ip: IpAddr) -> Result<TokenResponse, PlaygroundError> {
        self.check_rate(ip)?;
        let req = TokenRequest::parse(body)?;
        if self.inner.worker.url.is_empty() || self.inner.browser_url.is_empty() {
            return Err(PlaygroundError::NotConfigured(
                "no LiveKit server is configured (LIVEKIT_URL)".into(),
            ));
        }
        self.probe().await?;
        let args = TokenArgs {
            room: req.room.clone(),
            identity: req.identity.clone(),
            ttl: self.inner.ttl,
        };
        let token =
            crate::token::mint_playground(&self.inner.worker, &args).map_err(|e| match e {
                TokenError::EmptyClaim => PlaygroundError::BadRequest(e.to_string()),
                other => PlaygroundError::NotConfigured(other.to_string()),
            })?;
        Ok(TokenResponse {
            url: self.inner.browser_url.clone(),
            token,
            room: req.room,
            identity: req.identity,
            expires_in_s: self.inner.ttl.as_secs(),
        })
    }
}

async fn page() -> Response {
    let html = "text/html; charset=utf-8";
    ([(header::CONTENT_TYPE, html)], PAGE).into_response()
}

async fn script() -> Response {
    let js = "text/javascript; charset=utf-8";
    ([(header::CONTENT_TYPE, js)], SCRIPT).into_response()
}

async fn token(
    State(pg): State<Playground>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = match body {
        Ok(body) => pg.mint(&body, peer.ip()).await,
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(PlaygroundError::TooLarge { limit: MAX_BODY })
        }
        Err(rejection) => Err(PlaygroundError::BadRequest(format!(
            "unreadable request body: {}",
            rejection.body_text()
        ))),
    };
    match result {
        Ok(minted) => {
            metrics::counter!(REQUESTS, "outcome" => "ok").increment(1);
            // The room name is the caller's choice: hashed, as every room in the logs.
            tracing::info!(room = %frontdesk_actors::provider::room::room_tag(&minted.room), "playground token issued");
            Json(minted).into_response()
        }
        Err(e) => {
            metrics::counter!(REQUESTS, "outcome" => e.outcome()).increment(1);
            tracing::warn!(outcome = e.outcome(), error = %e, "playground token refused");
            e.into_response()
        }
    }
}

/// `ws(s)://` as `http(s)://`, for the probe.
fn http_url(url: &str) -> Option<url::Url> {
    let mut u = url::Url::parse(url).ok()?;
    let scheme = match u.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    u.set_scheme(scheme).ok()?;
    Some(u)
}

/// The URL as a message may show it: scheme, host and port only (never user info or a query).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "(unparsable URL)".into(),
        },
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_named() {
        let http = HttpConfig {
            playground_token_ttl_s: 0,
            playground_requests_per_minute: 0,
            playground_livekit_url: "ftp://x".into(),
            ..Default::default()
        };
        let errors = validate(&http).join("\n");
        for key in [
            "playground_token_ttl_s",
            "playground_requests_per_minute",
            "playground_livekit_url",
        ] {
            assert!(errors.contains(key), "{errors}");
        }
        assert!(validate(&HttpConfig::default()).is_empty());
    }

    #[test]
    fn probe_and_shown_urls() {
        assert_eq!(
            http_url("ws://127.0.0.1:7880").map(|u| u.to_string()),
            Some("http://127.0.0.1:7880/".into())
        );
        assert_eq!(
            http_url("wss://x.livekit.cloud").map(|u| u.scheme().to_owned()),
            Some("https".into())
        );
        assert_eq!(http_url("tcp://x"), None);
        assert_eq!(
            shown_url("wss://user:pw@lk.example:443/x?token=s"),
            "wss://lk.example"
        );
        assert_eq!(shown_url("ws://127.0.0.1:7880"), "ws://127.0.0.1:7880");
    }
}

//! OpenAI(-compatible) chat completions, streamed with function tools (protocols.md §5). The pure
//! pieces (SSE splitting, chunk decoding, tool-call accumulation, request body) live in `sse` and
//! `wire`; this file is the I/O: sending, retrying, time-to-first-token, and feeding the channel.

pub mod sse;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::backoff::Backoff;
use frontdesk_actors::provider::{ChatRequest, LlmError, LlmEvent, LlmProvider};
use futures_util::StreamExt;
use serde::{Deserialize, Deserializer};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::sse::SseSplitter;
use self::wire::{build_body, classify, BodyParams, StreamDecoder};
use crate::secret::Secret;

const PROVIDER: &str = "openai";
/// Longest server-requested wait we accept on a live call; beyond it failing fast is kinder.
const MAX_LIVE_WAIT: Duration = Duration::from_secs(2);
/// Backoff base and cap (the SDK's 0.5 s·2ⁿ, capped lower because a caller is waiting).
const RETRY: Backoff = Backoff::new(300, 1_000);

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// Requests go to `{base_url}/v1/chat/completions`.
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// From sending a request to the first content or tool-call delta ("3s", "800ms").
    #[serde(deserialize_with = "duration")]
    pub ttft_timeout: Duration,
    /// Whole request, body included.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// Immediate retries after a first-token timeout (a stalled backend is often one bad
    /// connection); set 0 when a secondary provider should take over at once.
    pub ttft_retries: u32,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com".into(),
            api_key: Secret::default(),
            model: "gpt-4o-mini".into(),
            temperature: None,
            max_tokens: None,
            ttft_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(60),
            max_retries: 2,
            ttft_retries: 1,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiSetupError {
    #[error("openai: bad base_url: {0}")]
    BaseUrl(#[from] url::ParseError),
    #[error("openai: building the http client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The streaming chat-completions client.
pub struct OpenAiLlm {
    cfg: OpenAiConfig,
    url: url::Url,
    http: reqwest::Client,
}

impl OpenAiLlm {
    pub fn new(cfg: OpenAiConfig) -> Result<Self, OpenAiSetupError> {
        // Several crates may try to pick the process-wide TLS provider; first one wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url =
            url::Url::parse(cfg.base_url.trim_end_matches('/'))?.join("/v1/chat/completions")?;
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.ttft_timeout)
            .build()?;
        Ok(Self { cfg, url, http })
    }
}

#[async_trait]
impl LlmProvider for OpenAiLlm {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(
        &self,
        req: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError> {
        let params = BodyParams {
            model: &self.cfg.model,
            temperature: self.cfg.temperature,
            max_tokens: self.cfg.max_tokens,
        };
        let attempt = Attempt {
            http: self.http.clone(),
            url: self.url.clone(),
            key: self.cfg.api_key.clone(),
            body: build_body(&params, &req),
            ttft: self.cfg.ttft_timeout,
        };
        // Errors (HTTP, timeout, stream) arrive on the channel, so `stream` itself never fails.
        let (tx, rx) = mpsc::channel(64);
        let budget = Retries {
            max: self.cfg.max_retries,
            ttft: self.cfg.ttft_retries,
        };
        tokio::spawn(run(attempt, budget, tx));
        Ok(rx)
    }
}

/// Everything one HTTP attempt needs (cloned into the streaming task).
struct Attempt {
    http: reqwest::Client,
    url: url::Url,
    key: Secret,
    body: serde_json::Value,
    ttft: Duration,
}

/// Why an attempt ended early.
struct Failure {
    error: LlmError,
    retry: bool,
    /// Server-requested wait before retrying.
    wait: Option<Duration>,
    /// No first token in time (retried under its own budget).
    ttft_expired: bool,
}

impl Failure {
    fn new(error: LlmError, retry: bool) -> Self {
        Self {
            error,
            retry,
            wait: None,
            ttft_expired: false,
        }
    }
}

/// Retry budgets of one request.
#[derive(Clone, Copy)]
struct Retries {
    /// Retries after retriable HTTP/stream errors.
    max: u32,
    /// Immediate retries after a first-token timeout.
    ttft: u32,
}

/// The retry loop: an attempt is retried only if it failed before any token reached the caller.
async fn run(a: Attempt, mut budget: Retries, tx: mpsc::Sender<Result<LlmEvent, LlmError>>) {
    let mut n = 0;
    loop {
        let mut emitted = false;
        let Err(mut f) = a.once(&tx, &mut emitted).await else {
            return;
        };
        if f.ttft_expired {
            // The caller already waited the whole budget: retry at once, or give up.
            f.retry = budget.ttft > 0;
            f.wait = Some(Duration::ZERO);
            budget.ttft = budget.ttft.saturating_sub(1);
            budget.max += 1; // not counted against the error budget
        }
        let wait = f.wait.unwrap_or_else(|| backoff(n));
        if emitted || !f.retry || n >= budget.max || wait > MAX_LIVE_WAIT {
            tracing::warn!(provider = PROVIDER, error = %f.error, attempts = n + 1, "llm request failed");
            let _ = tx.send(Err(f.error)).await;
            return;
        }
        metrics::counter!("frontdesk_provider_retries_total", "provider" => PROVIDER).increment(1);
        tracing::info!(provider = PROVIDER, error = %f.error, ?wait, "retrying llm request");
        tokio::time::sleep(wait).await;
        n += 1;
    }
}

/// 0.3 s·2ⁿ plus jitter, capped at 1 s (2 s with jitter): a caller is waiting on the line.
fn backoff(n: u32) -> Duration {
    RETRY.delay(n)
}

impl Attempt {
    async fn once(
        &self,
        tx: &mpsc::Sender<Result<LlmEvent, LlmError>>,
        emitted: &mut bool,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + self.ttft;
        let send = self
            .http
            .post(self.url.clone())
            .bearer_auth(self.key.expose())
            .json(&self.body)
            .send();
        let resp = match tokio::time::timeout_at(deadline, send).await {
            Err(_) => return Err(ttft_expired(self.ttft)),
            Ok(Err(e)) => {
                return Err(Failure::new(
                    LlmError::Stream(format!("sending request: {}", e.without_url())),
                    true,
                ))
            }
            Ok(Ok(r)) => r,
        };
        if !resp.status().is_success() {
            return Err(http_failure(resp).await);
        }
        self.read_body(resp, deadline, tx, emitted).await
    }

    async fn read_body(
        &self,
        resp: reqwest::Response,
        deadline: Instant,
        tx: &mpsc::Sender<Result<LlmEvent, LlmError>>,
        emitted: &mut bool,
    ) -> Result<(), Failure> {
        let mut body = resp.bytes_stream();
        let mut sse = SseSplitter::new();
        let mut dec = StreamDecoder::default();
        loop {
            // The deadline only guards the first token; afterwards a slow stream is fine.
            let read = async {
                if *emitted {
                    Ok(body.next().await)
                } else {
                    tokio::time::timeout_at(deadline, body.next()).await
                }
            };
            // A caller that hung up (barge-in) must not keep the connection open.
            let next = tokio::select! {
                r = read => r.map_err(|_| ttft_expired(self.ttft))?,
                _ = tx.closed() => return Ok(()),
            };
            let ended = next.is_none();
            let events = match next {
                Some(Ok(bytes)) => sse.push(&bytes),
                Some(Err(e)) => {
                    let msg = format!("reading stream: {}", e.without_url());
                    return Err(Failure::new(LlmError::Stream(msg), true));
                }
                None => sse.finish().into_iter().collect(),
            };
            for data in events {
                forward(&mut dec, &data, tx, emitted).await?;
                if dec.done {
                    return Ok(());
                }
            }
            if ended && dec.finished {
                // Some compatible servers omit [DONE]; a finished choice is complete enough.
                return forward(&mut dec, "[DONE]", tx, emitted).await;
            }
            if ended {
                return Err(Failure::new(
                    LlmError::Stream("stream ended before [DONE]".into()),
                    true,
                ));
            }
        }
    }
}

/// Decode one event and pass its events on; a closed channel (caller gone) ends the attempt quietly.
async fn forward(
    dec: &mut StreamDecoder,
    data: &str,
    tx: &mpsc::Sender<Result<LlmEvent, LlmError>>,
    emitted: &mut bool,
) -> Result<(), Failure> {
    let bad_before = dec.bad_messages;
    let events = dec.on_data(data);
    if dec.bad_messages > bad_before {
        metrics::counter!("frontdesk_provider_bad_messages_total", "provider" => PROVIDER)
            .increment(dec.bad_messages - bad_before);
        tracing::debug!(provider = PROVIDER, "skipped an unusable stream event");
    }
    for ev in events {
        let ev = ev.map_err(|e| Failure::new(e, true))?;
        if matches!(ev, LlmEvent::TextDelta(_) | LlmEvent::ToolCall(_)) {
            *emitted = true;
        }
        if tx.send(Ok(ev)).await.is_err() {
            dec.done = true;
            return Ok(());
        }
    }
    Ok(())
}

fn ttft_expired(t: Duration) -> Failure {
    Failure {
        ttft_expired: true,
        ..Failure::new(LlmError::Timeout(format!("no token within {t:?}")), false)
    }
}

async fn http_failure(resp: reqwest::Response) -> Failure {
    let status = resp.status().as_u16();
    let h = resp.headers();
    let should_retry = h
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.eq_ignore_ascii_case("true"));
    let wait = retry_after(h);
    let body = resp.text().await.unwrap_or_default();
    let f = classify(status, should_retry, &body);
    Failure {
        wait,
        ..Failure::new(f.error, f.retry)
    }
}

/// `retry-after-ms` (float ms) or `retry-after` (seconds); the SDK ignores values beyond 120 s.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let num = |k: &str| h.get(k)?.to_str().ok()?.trim().parse::<f64>().ok();
    let d = num("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| num("retry-after"))
        .filter(|s| s.is_finite() && (0.0..=120.0).contains(s))?;
    Some(Duration::from_secs_f64(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_durations_and_redaction() {
        let cfg: OpenAiConfig =
            toml::from_str("api_key = \"sk-live-123\"\nttft_timeout = \"800ms\"").unwrap();
        assert_eq!(cfg.ttft_timeout, Duration::from_millis(800));
        assert_eq!(cfg.model, "gpt-4o-mini");
        assert_eq!(cfg.max_retries, 2);
        assert!(!format!("{cfg:?}").contains("sk-live"));
        assert!(toml::from_str::<OpenAiConfig>("apikey = \"x\"").is_err());
        let llm = OpenAiLlm::new(OpenAiConfig::default()).unwrap();
        assert_eq!(
            llm.url.as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", "500000".parse().unwrap());
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        let first = backoff(0);
        assert!(first >= Duration::from_millis(300) && first <= Duration::from_millis(600));
        assert!(backoff(5) <= MAX_LIVE_WAIT);
    }
}

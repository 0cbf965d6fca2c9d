//! Fallback between a primary and a secondary provider of one kind. A primary that fails is marked
//! unhealthy for a cool-down; meanwhile new sessions go to the secondary, and after the cool-down the
//! primary is tried again (half-open). A call fails over mid-call through the tree's own recovery: a
//! failed STT/TTS child restarts and reconnects (to whichever provider is healthy) and replays or
//! re-speaks; a failed LLM request is retried on the secondary before any token was produced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::call::shared::lock;
use frontdesk_actors::provider::{
    ChatRequest, LlmError, LlmEvent, LlmProvider, SttError, SttProvider, SttSession,
    SttSessionConfig, TtsError, TtsProvider, TtsRequest, TtsSession,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Health of a primary: healthy, or unhealthy until a time.
#[derive(Debug)]
pub struct Breaker {
    kind: &'static str,
    cooldown: Duration,
    down_until: Mutex<Option<Instant>>,
    failovers: AtomicU64,
}

impl Breaker {
    pub fn new(kind: &'static str, cooldown: Duration) -> Self {
        Self {
            kind,
            cooldown,
            down_until: Mutex::new(None),
            failovers: AtomicU64::new(0),
        }
    }

    /// May the primary be tried now? (After the cool-down it gets one more chance.)
    pub fn primary_allowed(&self) -> bool {
        let down = lock(&self.down_until);
        down.is_none_or(|until| Instant::now() >= until)
    }

    pub fn primary_failed(&self, why: &dyn std::fmt::Display) {
        tracing::warn!(kind = self.kind, error = %why, cooldown = ?self.cooldown, "primary provider unhealthy; failing over");
        *lock(&self.down_until) = Some(Instant::now() + self.cooldown);
        self.failovers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("frontdesk_provider_failovers_total", "kind" => self.kind).increment(1);
    }

    pub fn primary_ok(&self) {
        *lock(&self.down_until) = None;
    }

    pub fn is_healthy(&self) -> bool {
        lock(&self.down_until).is_none()
    }

    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }
}

/// Try the primary unless its breaker is open, then the secondary.
async fn with_fallback<P: ?Sized, T, E, F, Fut>(
    breaker: &Breaker,
    primary: &Arc<P>,
    secondary: Option<&Arc<P>>,
    call: F,
) -> Result<T, E>
where
    F: Fn(Arc<P>) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let Some(secondary) = secondary else {
        return call(Arc::clone(primary)).await;
    };
    if breaker.primary_allowed() {
        match call(Arc::clone(primary)).await {
            Ok(v) => {
                breaker.primary_ok();
                return Ok(v);
            }
            Err(e) => breaker.primary_failed(&e),
        }
    }
    call(Arc::clone(secondary)).await
}

pub struct FallbackStt {
    pub primary: Arc<dyn SttProvider>,
    pub secondary: Option<Arc<dyn SttProvider>>,
    pub breaker: Breaker,
}

#[async_trait]
impl SttProvider for FallbackStt {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
        with_fallback(
            &self.breaker,
            &self.primary,
            self.secondary.as_ref(),
            |p| async move { p.connect(cfg).await },
        )
        .await
    }
}

pub struct FallbackTts {
    pub primary: Arc<dyn TtsProvider>,
    pub secondary: Option<Arc<dyn TtsProvider>>,
    pub breaker: Breaker,
}

#[async_trait]
impl TtsProvider for FallbackTts {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        with_fallback(
            &self.breaker,
            &self.primary,
            self.secondary.as_ref(),
            |p| async move { p.open(req).await },
        )
        .await
    }
}

pub struct FallbackLlm {
    pub primary: Arc<dyn LlmProvider>,
    pub secondary: Option<Arc<dyn LlmProvider>>,
    pub breaker: Breaker,
}

#[async_trait]
impl LlmProvider for FallbackLlm {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    async fn stream(
        &self,
        req: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError> {
        with_fallback(&self.breaker, &self.primary, self.secondary.as_ref(), |p| {
            let req = req.clone();
            async move { p.stream(req).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_actors::doubles::*;

    struct DownStt;

    #[async_trait]
    impl SttProvider for DownStt {
        fn name(&self) -> &'static str {
            "down"
        }
        async fn connect(&self, _: &SttSessionConfig) -> Result<SttSession, SttError> {
            Err(SttError::Connect("connection refused".into()))
        }
    }

    fn cfg() -> SttSessionConfig {
        SttSessionConfig {
            call_id: "c".into(),
            sample_rate: 16_000,
            language: "en".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fails_over_then_retries_primary_after_cooldown() {
        let secondary = Arc::new(ScriptedStt::new(ScriptedSttConfig::default()));
        let f = FallbackStt {
            primary: Arc::new(DownStt),
            secondary: Some(secondary.clone()),
            breaker: Breaker::new("stt", Duration::from_secs(10)),
        };
        assert!(f.connect(&cfg()).await.is_ok());
        assert_eq!((secondary.sessions(), f.breaker.failovers()), (1, 1));
        assert!(!f.breaker.primary_allowed());
        // While the breaker is open the primary is not even tried.
        assert!(f.connect(&cfg()).await.is_ok());
        assert_eq!((secondary.sessions(), f.breaker.failovers()), (2, 1));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(f.breaker.primary_allowed());
        assert!(f.connect(&cfg()).await.is_ok());
        assert_eq!(
            f.breaker.failovers(),
            2,
            "primary retried after the cool-down"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_primary_is_used_and_errors_pass_through_without_secondary() {
        let primary = Arc::new(ScriptedStt::new(ScriptedSttConfig::default()));
        let f = FallbackStt {
            primary: primary.clone(),
            secondary: None,
            breaker: Breaker::new("stt", Duration::from_secs(1)),
        };
        assert!(f.connect(&cfg()).await.is_ok());
        assert_eq!(primary.sessions(), 1);
        let down = FallbackStt {
            primary: Arc::new(DownStt),
            secondary: None,
            breaker: Breaker::new("stt", Duration::from_secs(1)),
        };
        assert!(matches!(
            down.connect(&cfg()).await,
            Err(SttError::Connect(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn llm_request_goes_to_secondary_when_primary_errors() {
        let primary = Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
            failed_requests: 1,
            ..Default::default()
        }));
        let secondary = Arc::new(ScriptedLlm::new(ScriptedLlmConfig::default()));
        let f = FallbackLlm {
            primary: primary.clone(),
            secondary: Some(secondary.clone()),
            breaker: Breaker::new("llm", Duration::from_secs(5)),
        };
        let mut rx = f.stream(ChatRequest::default()).await.unwrap();
        let mut text = String::new();
        while let Some(Ok(ev)) = rx.recv().await {
            if let LlmEvent::TextDelta(t) = ev {
                text.push_str(&t);
            }
        }
        assert!(!text.is_empty());
        assert_eq!((primary.requests(), secondary.requests()), (1, 1));
    }
}

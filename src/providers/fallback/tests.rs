use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::*;
use tokio::sync::mpsc;

use super::*;

fn cfg(threshold: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        cooldown_ms: 10_000,
    }
}

/// An STT whose connects fail while `down` is above zero (each failure decrements it).
struct FlakyStt {
    down: AtomicU32,
    connects: AtomicU32,
}

impl FlakyStt {
    fn new(down: u32) -> Arc<Self> {
        Arc::new(Self {
            down: AtomicU32::new(down),
            connects: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl SttProvider for FlakyStt {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn connect(&self, c: &SttSessionConfig) -> Result<SttSession, SttError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let left = self.down.load(Ordering::SeqCst);
        if left > 0 {
            self.down.store(left - 1, Ordering::SeqCst);
            return Err(SttError::Connect("connection refused".into()));
        }
        ScriptedStt::new(ScriptedSttConfig::default())
            .connect(c)
            .await
    }
}

fn session_cfg() -> SttSessionConfig {
    SttSessionConfig {
        call_id: "c".into(),
        sample_rate: 16_000,
        language: "en".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn connect_failures_open_the_breaker_and_a_probe_closes_it() {
    let primary = FlakyStt::new(3);
    let secondary = Arc::new(ScriptedStt::new(ScriptedSttConfig::default()));
    let f = FallbackStt::new(primary.clone(), Some(secondary.clone()), cfg(2));
    // Each failed connect still gets this call a session, from the secondary.
    assert!(f.connect(&session_cfg()).await.is_ok());
    assert!(
        f.breaker().is_healthy(),
        "one failure is below the threshold"
    );
    assert!(f.connect(&session_cfg()).await.is_ok());
    assert!(!f.breaker().is_healthy());
    assert_eq!((secondary.sessions(), f.breaker().failovers()), (2, 1));
    // While open, the primary is not even tried.
    assert!(f.connect(&session_cfg()).await.is_ok());
    assert_eq!(primary.connects.load(Ordering::SeqCst), 2);
    // The first probe still fails (one failure left), the second one passes: the primary serves
    // again on probation (half-open), and one more failure would re-open at once.
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    assert!(!f.breaker().primary_allowed());
    // The probe itself takes the STT's latency to answer the Finalize.
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    assert!(f.breaker().primary_allowed() && !f.breaker().is_healthy());
    let mut s = f.connect(&session_cfg()).await.unwrap();
    assert_eq!(secondary.sessions(), 3, "the primary serves again");
    // Real work (a final transcript) closes the breaker.
    send_speech_and_finalize(&mut s).await;
    while let Some(Ok(ev)) = s.events.recv().await {
        if matches!(ev, SttEvent::Final { .. }) {
            break;
        }
    }
    assert!(f.breaker().is_healthy());
}

async fn send_speech_and_finalize(s: &mut SttSession) {
    for i in 0..25u64 {
        let frame = AudioFrame::silence(16_000, 320, Duration::from_millis(i * 20));
        s.sink.send_audio(&frame).await.unwrap();
    }
    s.sink.finalize().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn half_open_primary_reopens_on_its_first_failure() {
    // Fails twice (opens), then the probe connect passes, then fails again.
    let primary = FlakyStt::new(2);
    let secondary = Arc::new(ScriptedStt::new(ScriptedSttConfig::default()));
    let f = FallbackStt::new(primary.clone(), Some(secondary.clone()), cfg(2));
    f.connect(&session_cfg()).await.unwrap();
    f.connect(&session_cfg()).await.unwrap();
    assert!(!f.breaker().primary_allowed());
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    assert!(f.breaker().primary_allowed(), "probe passed");
    primary.down.store(1, Ordering::SeqCst);
    f.connect(&session_cfg()).await.unwrap();
    assert!(!f.breaker().primary_allowed(), "one failure re-opened it");
    assert_eq!(f.breaker().failovers(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_a_secondary_errors_pass_through() {
    let f = FallbackStt::new(FlakyStt::new(1), None, cfg(1));
    assert!(matches!(
        f.connect(&session_cfg()).await,
        Err(SttError::Connect(_))
    ));
    assert!(f.connect(&session_cfg()).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn tts_sessions_failing_mid_stream_count_against_the_primary() {
    let primary = Arc::new(ScriptedTts::new(ScriptedTtsConfig {
        failing_sessions: 1,
        ..Default::default()
    }));
    let secondary = Arc::new(ScriptedTts::new(ScriptedTtsConfig::default()));
    let f = FallbackTts::new(primary.clone(), Some(secondary.clone()), cfg(1));
    let req = TtsRequest {
        call_id: "c".into(),
        reply_id: 1,
        cacheable: false,
    };
    let mut s = f.open(&req).await.unwrap();
    s.input.push_text("Hello there. ").await.unwrap();
    s.input.finish().await.unwrap();
    let mut failed = false;
    while let Some(ev) = s.events.recv().await {
        failed |= ev.is_err();
    }
    assert!(failed, "the primary's session failed after its first chunk");
    assert!(!f.breaker().is_healthy());
    // The re-spoken reply goes to the secondary.
    let mut s = f.open(&req).await.unwrap();
    s.input.push_text("Hello again. ").await.unwrap();
    s.input.finish().await.unwrap();
    let mut done = false;
    while let Some(ev) = s.events.recv().await {
        done |= matches!(ev, Ok(TtsEvent::Done));
    }
    assert!(done);
    assert_eq!(secondary.spoken(), vec!["Hello again. ".to_string()]);
}

/// An LLM whose requests fail on the stream (as the HTTP client's do) after `tokens` tokens.
struct StreamFailLlm {
    tokens: usize,
    error: fn() -> LlmError,
}

#[async_trait]
impl LlmProvider for StreamFailLlm {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn stream(
        &self,
        _: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError> {
        let (tx, rx) = mpsc::channel(8);
        for _ in 0..self.tokens {
            let _ = tx.send(Ok(LlmEvent::TextDelta("partial ".into()))).await;
        }
        let _ = tx.send(Err((self.error)())).await;
        Ok(rx)
    }
}

async fn collect(mut rx: mpsc::Receiver<Result<LlmEvent, LlmError>>) -> (String, Option<LlmError>) {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Ok(LlmEvent::TextDelta(t)) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => return (text, Some(e)),
        }
    }
    (text, None)
}

fn llm_pair(tokens: usize, error: fn() -> LlmError) -> (FallbackLlm, Arc<ScriptedLlm>) {
    let secondary = Arc::new(ScriptedLlm::new(ScriptedLlmConfig::default()));
    let primary = Arc::new(StreamFailLlm { tokens, error });
    let f = FallbackLlm::new(primary, Some(secondary.clone()), cfg(1));
    (f, secondary)
}

fn ask() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("What are your opening hours?")],
        tools: vec![],
    }
}

#[tokio::test(start_paused = true)]
async fn llm_failure_before_the_first_token_is_answered_by_the_secondary() {
    let (f, secondary) = llm_pair(0, || LlmError::Timeout("no token within 1.5s".into()));
    let (text, err) = collect(f.stream(ask()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!text.is_empty() && !text.contains("partial"), "{text}");
    assert_eq!(secondary.requests(), 1);
    assert!(!f.breaker().is_healthy());
}

#[tokio::test(start_paused = true)]
async fn llm_failure_after_tokens_reaches_the_dialogue() {
    let (f, secondary) = llm_pair(2, || LlmError::Stream("connection reset".into()));
    let (text, err) = collect(f.stream(ask()).await.unwrap()).await;
    assert_eq!(text, "partial partial ");
    assert!(matches!(err, Some(LlmError::Stream(_))), "{err:?}");
    assert_eq!(secondary.requests(), 0, "a started reply is not re-issued");
}

#[tokio::test(start_paused = true)]
async fn our_own_bad_request_is_not_a_provider_failure() {
    let (f, secondary) = llm_pair(0, || LlmError::BadRequest("context too long".into()));
    let (_, err) = collect(f.stream(ask()).await.unwrap()).await;
    assert!(matches!(err, Some(LlmError::BadRequest(_))), "{err:?}");
    assert_eq!(secondary.requests(), 0);
    assert!(f.breaker().is_healthy());
}

#[tokio::test(start_paused = true)]
async fn synchronous_llm_errors_fail_over_too() {
    let primary = Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
        failed_requests: 1,
        ..Default::default()
    }));
    let secondary = Arc::new(ScriptedLlm::new(ScriptedLlmConfig::default()));
    let f = FallbackLlm::new(primary.clone(), Some(secondary.clone()), cfg(3));
    let (text, err) = collect(f.stream(ask()).await.unwrap()).await;
    assert!(err.is_none() && !text.is_empty());
    assert_eq!((primary.requests(), secondary.requests()), (1, 1));
    // Below the threshold the next request tries the primary again.
    let _ = collect(f.stream(ask()).await.unwrap()).await;
    assert_eq!((primary.requests(), secondary.requests()), (2, 1));
}

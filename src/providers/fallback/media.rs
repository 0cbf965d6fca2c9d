//! STT and TTS fallback: sessions are opened on the primary unless its breaker is open or its
//! connect fails, and primary sessions are watched so mid-stream failures count too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::provider::{
    SttError, SttEvent, SttProvider, SttSession, SttSessionConfig, TtsError, TtsEvent, TtsProvider,
    TtsRequest, TtsSession,
};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{watch, Breaker, BreakerConfig, Pair};

pub struct FallbackStt(Pair<dyn SttProvider>);

impl FallbackStt {
    pub fn new(
        primary: Arc<dyn SttProvider>,
        secondary: Option<Arc<dyn SttProvider>>,
        cfg: BreakerConfig,
    ) -> Self {
        Self(Pair::new("stt", primary, secondary, cfg, probe_stt))
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.0.health.breaker
    }
}

/// Longest a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Half a second of silence and a Finalize must come back as a final result: the whole path works,
/// not just the handshake.
fn probe_stt(p: Arc<dyn SttProvider>) -> BoxFuture<'static, Result<(), String>> {
    let probe = async move {
        let cfg = SttSessionConfig {
            call_id: "health-probe".into(),
            sample_rate: 16_000,
            language: "en".into(),
        };
        let mut s = p.connect(&cfg).await.map_err(|e| e.to_string())?;
        for i in 0..25u32 {
            let at = Duration::from_millis(u64::from(i) * 20);
            let frame = AudioFrame::silence(16_000, 320, at);
            s.sink.send_audio(&frame).await.map_err(|e| e.to_string())?;
        }
        s.sink.finalize().await.map_err(|e| e.to_string())?;
        loop {
            match s.events.recv().await {
                Some(Ok(SttEvent::Final { .. })) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream ended before a final result".into()),
            }
        }
        s.sink.close().await.map_err(|e| e.to_string())
    };
    with_timeout(probe)
}

fn with_timeout(
    probe: impl std::future::Future<Output = Result<(), String>> + Send + 'static,
) -> BoxFuture<'static, Result<(), String>> {
    async move {
        tokio::time::timeout(PROBE_TIMEOUT, probe)
            .await
            .unwrap_or_else(|_| Err("probe timed out".into()))
    }
    .boxed()
}

#[async_trait]
impl SttProvider for FallbackStt {
    fn name(&self) -> &'static str {
        self.0.primary.name()
    }

    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
        let pair = &self.0;
        let Some(secondary) = &pair.secondary else {
            return pair.primary.connect(cfg).await;
        };
        if pair.health.breaker.primary_allowed() {
            match pair.primary.connect(cfg).await {
                Ok(mut s) => {
                    let healthy = |e: &SttEvent| matches!(e, SttEvent::Final { .. });
                    s.events = watch(s.events, pair.health.clone(), healthy, |_| true);
                    return Ok(s);
                }
                Err(e) => pair.health.failed(&e),
            }
        }
        secondary.connect(cfg).await
    }
}

pub struct FallbackTts(Pair<dyn TtsProvider>);

impl FallbackTts {
    pub fn new(
        primary: Arc<dyn TtsProvider>,
        secondary: Option<Arc<dyn TtsProvider>>,
        cfg: BreakerConfig,
    ) -> Self {
        Self(Pair::new("tts", primary, secondary, cfg, probe_tts))
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.0.health.breaker
    }
}

/// One short word synthesised to the end: a few characters of cost for a real answer.
fn probe_tts(p: Arc<dyn TtsProvider>) -> BoxFuture<'static, Result<(), String>> {
    with_timeout(async move {
        let req = TtsRequest {
            call_id: "health-probe".into(),
            reply_id: 0,
            cacheable: false,
        };
        let mut s = p.open(&req).await.map_err(|e| e.to_string())?;
        s.input
            .push_text("Okay.")
            .await
            .map_err(|e| e.to_string())?;
        s.input.finish().await.map_err(|e| e.to_string())?;
        loop {
            match s.events.recv().await {
                Some(Ok(TtsEvent::Done)) => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream ended before done".into()),
            }
        }
    })
}

/// A rejected request (bad voice, bad text) is ours to fix, not a sign the provider is down.
fn tts_fault(e: &TtsError) -> bool {
    !matches!(e, TtsError::Rejected(_))
}

#[async_trait]
impl TtsProvider for FallbackTts {
    fn name(&self) -> &'static str {
        self.0.primary.name()
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        let pair = &self.0;
        let Some(secondary) = &pair.secondary else {
            return pair.primary.open(req).await;
        };
        if pair.health.breaker.primary_allowed() {
            match pair.primary.open(req).await {
                Ok(mut s) => {
                    let healthy = |e: &TtsEvent| matches!(e, TtsEvent::Done);
                    s.events = watch(s.events, pair.health.clone(), healthy, tts_fault);
                    return Ok(s);
                }
                Err(e) if tts_fault(&e) => pair.health.failed(&e),
                Err(e) => return Err(e),
            }
        }
        secondary.open(req).await
    }
}

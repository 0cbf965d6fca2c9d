//! The whole call tree with in-process doubles (paused time): a second caller asking the
//! same question hears the answer without an LLM request.
use super::*;
use frontdesk::cache::llm::LlmCacheConfig;
use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::call::{spawn_call, CallDeps, CallOutcome, CallSpec, NoopObserver};
use frontdesk_actors::doubles::signal::speechlike;
use frontdesk_actors::doubles::{
    Latency, LoopbackRoom, ScriptedLlm, ScriptedLlmConfig, ScriptedStt, ScriptedSttConfig,
    ScriptedTts, ScriptedTtsConfig, TranscriptMode,
};

const QUESTION: &str = "What are your opening hours?";

async fn one_call(id: &str, llm: Arc<dyn LlmProvider>, tts: Arc<ScriptedTts>) -> CallOutcome {
    let mut cfg = frontdesk_actors::PipelineConfig::default();
    cfg.dialogue.greeting = String::new();
    let stt = ScriptedStt::new(ScriptedSttConfig {
        mode: TranscriptMode::Script(vec![QUESTION.into()]),
        latency: Latency::ms(50, 0),
        ..Default::default()
    });
    let deps = CallDeps {
        stt: Arc::new(stt),
        llm,
        tts,
        store: hospital(),
        observer: Arc::new(NoopObserver),
        prices: Default::default(),
    };
    let (mut end, link) = LoopbackRoom::pair(64);
    let spec = CallSpec {
        call_id: id.into(),
        room: id.into(),
        caller: "caller".into(),
    };
    let call = spawn_call(spec, cfg, deps, link).await.unwrap();
    let n = ROOM_RATE as usize / 50;
    // One second of speech, then silence while the agent answers.
    for i in 0..400u32 {
        let samples = if i < 50 {
            speechlike(ROOM_RATE, FRAME_DURATION, u64::from(i) * n as u64)
        } else {
            vec![0; n]
        };
        let _ = end
            .audio
            .send(AudioFrame::new(samples, ROOM_RATE, FRAME_DURATION * i))
            .await;
        tokio::time::sleep(FRAME_DURATION).await;
        while end.from_agent.try_recv().is_ok() {}
    }
    end.leave("caller").await;
    call.wait().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hit_is_spoken_without_calling_the_llm() {
    let scripted = Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
        ttft: Latency::ms(100, 0),
        ..Default::default()
    }));
    let cache = Arc::new(AnswerCache::new(
        &LlmCacheConfig::default(),
        "scripted",
        None,
        hospital(),
    ));
    let llm: Arc<dyn LlmProvider> = Arc::new(CachedLlm::new(scripted.clone(), cache));
    let tts = Arc::new(ScriptedTts::new(ScriptedTtsConfig {
        ttfb: Latency::ms(80, 0),
        ..Default::default()
    }));

    let first = one_call("first", Arc::clone(&llm), Arc::clone(&tts)).await;
    let asked = scripted.requests();
    let spoken_first = tts.spoken().concat();
    assert_eq!(asked, 1);
    assert!(!spoken_first.trim().is_empty());
    assert_eq!(first.turns, 1);
    assert_eq!(
        (first.usage.cache.llm_misses, first.usage.cache.llm_hits),
        (1, 0)
    );
    assert!(first.usage.prompt_tokens > 0);

    let second = one_call("second", llm, Arc::clone(&tts)).await;
    assert_eq!(scripted.requests(), asked, "no LLM request for the hit");
    let all = tts.spoken().concat();
    assert_eq!(
        all,
        format!("{spoken_first}{spoken_first}"),
        "the answer is spoken"
    );
    assert_eq!(second.turns, 1);
    let saved = second.usage.cache;
    assert_eq!((saved.llm_hits, saved.llm_misses), (1, 0));
    assert_eq!(saved.llm_saved_prompt_tokens, first.usage.prompt_tokens);
    assert_eq!(
        saved.llm_saved_completion_tokens,
        first.usage.completion_tokens
    );
    assert!(saved.saved_cost_usd > 0.0);
    assert_eq!(second.usage.prompt_tokens, 0, "no tokens spent");
}

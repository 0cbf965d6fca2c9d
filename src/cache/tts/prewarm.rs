//! Before the first call: the fixed prompts (greeting, apology, no-audio prompt) are loaded from
//! the database layer or synthesised, so even the first caller hears the greeting from the cache.

use std::time::Duration;

use frontdesk_actors::config::DialogueConfig;
use frontdesk_actors::provider::{TtsEvent, TtsProvider, TtsRequest};

use super::provider::CachedTts;

/// A prompt that takes longer is left to the first call that needs it.
const PER_PROMPT: Duration = Duration::from_secs(5);

/// The fixed texts of `dialogue`, each spoken once through the cache (hits cost nothing).
/// Returns how many were made ready; failures are logged, never fatal.
pub async fn prewarm(tts: &CachedTts, dialogue: &DialogueConfig) -> usize {
    let texts = [
        &dialogue.greeting,
        &dialogue.apology,
        &dialogue.no_audio_prompt,
    ];
    let mut ready = 0;
    for (i, text) in texts.into_iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        match tokio::time::timeout(PER_PROMPT, speak(tts, i as u64, text)).await {
            Ok(Ok(())) => ready += 1,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "tts phrase cache: a prompt was not pre-warmed")
            }
            Err(_) => tracing::warn!("tts phrase cache: pre-warming a prompt timed out"),
        }
    }
    tts.cache().flush_writes().await;
    tracing::info!(
        ready,
        bytes = tts.cache().memory_bytes(),
        "tts phrase cache pre-warmed"
    );
    ready
}

async fn speak(tts: &CachedTts, reply_id: u64, text: &str) -> Result<(), String> {
    let req = TtsRequest {
        call_id: "prewarm".into(),
        reply_id,
        cacheable: true,
    };
    let mut s = tts.open(&req).await.map_err(|e| e.to_string())?;
    s.input.push_text(text).await.map_err(|e| e.to_string())?;
    s.input.finish().await.map_err(|e| e.to_string())?;
    loop {
        match s.events.recv().await {
            Some(Ok(TtsEvent::Done)) => return Ok(()),
            Some(Ok(TtsEvent::Audio { .. })) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("stream ended before done".into()),
        }
    }
}

//! The per-call actor tree end to end, on paused tokio time with in-process doubles.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use frontdesk_actors::call::{ChildKind, EndReason};
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::Role;
use frontdesk_actors::store::RecordKind;

const S: fn(u64) -> Duration = Duration::from_millis;

#[tokio::test(start_paused = true)]
async fn caller_turn_gets_a_spoken_reply_and_a_record() {
    let mut h = start(quiet_config(), Providers::fast()).await;
    h.caller.silence(S(200)).await;
    h.caller.speak(S(1_000)).await;
    assert!(
        h.caller.wait_for_reply(S(10_000), S(600)).await,
        "agent never replied"
    );
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.reason, EndReason::CallerHungUp);
    assert_eq!(outcome.turns, 1);
    assert_eq!(outcome.edges["room_to_vad"].overflow, 0);
    let turns = h.recorder.turns.lock().unwrap().clone();
    assert_eq!(turns.len(), 1);
    let t = &turns[0];
    assert!(t.turn_latency.unwrap() >= t.end_of_turn_delay.unwrap());
    assert!(t.pipeline_overhead.unwrap() < t.turn_latency.unwrap());
    let records = h.store.records();
    assert!(records.iter().any(|r| matches!(&r.kind, RecordKind::Turn { transcript, .. } if transcript.starts_with("heard"))));
    assert!(records.iter().any(
        |r| matches!(&r.kind, RecordKind::CallEnded { reason } if reason == "caller_hung_up")
    ));
    // Usage with its cost at the configured prices: audio went to STT, tokens to the LLM,
    // characters to TTS, and each is priced.
    let usage = records.iter().find_map(|r| match r.kind {
        RecordKind::Usage {
            stt_audio_seconds,
            prompt_tokens,
            completion_tokens,
            tts_characters,
            cost_usd,
            ..
        } => Some((
            stt_audio_seconds,
            prompt_tokens,
            completion_tokens,
            tts_characters,
            cost_usd,
        )),
        _ => None,
    });
    let (audio, prompt, completion, chars, cost) = usage.expect("usage recorded");
    assert!(
        audio > 0.5 && prompt > 0 && completion > 0 && chars > 0,
        "{usage:?}"
    );
    let prices = frontdesk_actors::pricing::Prices::default();
    let expected = audio / 60.0 * prices.stt_per_minute
        + prompt as f64 / 1e6 * prices.llm_prompt_per_million_tokens
        + completion as f64 / 1e6 * prices.llm_completion_per_million_tokens
        + chars as f64 / 1e3 * prices.tts_per_thousand_chars;
    assert!(
        cost > 0.0 && (cost - expected).abs() < 1e-12,
        "{cost} vs {expected}"
    );
}

#[tokio::test(start_paused = true)]
async fn stt_panic_mid_utterance_still_yields_the_utterance() {
    let llm = Arc::new(
        ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(50, 0),
            ..Default::default()
        })
        .recording(),
    );
    let stt = Arc::new(ScriptedStt::new(ScriptedSttConfig {
        latency: Latency::ms(50, 0),
        crash_sessions: 1,
        // Pre-roll and onset are 15 frames: this crashes half-way through the utterance.
        panic_after_frames: 30,
        ..Default::default()
    }));
    let p = Providers {
        stt: stt.clone(),
        llm: llm.clone(),
        tts: Providers::fast().tts,
    };
    let mut h = start(quiet_config(), p).await;
    h.caller.silence(S(200)).await;
    h.caller.speak(S(1_000)).await;
    assert!(
        h.caller.wait_for_reply(S(10_000), S(600)).await,
        "agent never replied"
    );
    let snap = h.call.snapshot().await.unwrap();
    assert_eq!(snap.restarts.get(&ChildKind::Stt), Some(&1));
    assert_eq!(stt.sessions(), 2);
    h.caller.hang_up().await;
    h.call.wait().await.unwrap();
    let user: Vec<String> = llm
        .request_log()
        .iter()
        .filter_map(|r| r.messages.last())
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(user.len(), 1, "{user:?}");
    let heard: u64 = user[0]
        .trim_start_matches("heard ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    // The whole second of speech reached the new session (pre-roll included), not just the tail.
    assert!(
        heard >= 1_000,
        "only {heard} ms of the utterance was transcribed"
    );
}

#[tokio::test(start_paused = true)]
async fn stt_budget_exhausted_ends_the_call_with_a_reason() {
    let stt = Arc::new(ScriptedStt::new(ScriptedSttConfig {
        crash_sessions: u32::MAX,
        panic_after_frames: 5,
        ..Default::default()
    }));
    let p = Providers {
        stt,
        ..Providers::fast()
    };
    let mut h = start(quiet_config(), p).await;
    for _ in 0..6 {
        h.caller.speak(S(400)).await;
        h.caller.silence(S(600)).await;
    }
    h.caller.silence(S(8_000)).await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.reason, EndReason::BudgetExhausted(ChildKind::Stt));
    assert_eq!(outcome.restarts.get(&ChildKind::Stt), Some(&3));
    let records = h.store.records();
    assert!(records.iter().any(|r| matches!(&r.kind, RecordKind::CallEnded { reason } if reason == "budget_exhausted: stt")), "{records:?}");
    // The apology was spoken before hanging up.
    assert!(!h.caller.agent_frames.is_empty());
}

#[tokio::test(start_paused = true)]
async fn barge_in_cancels_tts_flushes_and_truncates_context() {
    let greeting = "Thank you for calling Saint Mary's hospital. Our opening hours are nine to five on weekdays and nine to one on Saturdays. How can I help you today?";
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = greeting.into();
    let llm = Arc::new(
        ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(50, 0),
            ..Default::default()
        })
        .recording(),
    );
    let tts = Arc::new(ScriptedTts::new(ScriptedTtsConfig {
        ttfb: Latency::ms(50, 0),
        ..Default::default()
    }));
    let p = Providers {
        llm: llm.clone(),
        tts: tts.clone(),
        ..Providers::fast()
    };
    let mut h = start(cfg, p).await;
    // Two seconds into the ~10 s greeting the caller talks over it.
    h.caller.silence(S(2_000)).await;
    let heard_before = h.caller.agent_frames.len();
    assert!(
        heard_before > 50,
        "greeting should be playing ({heard_before} frames)"
    );
    h.caller.speak(S(1_000)).await;
    let during = h.caller.agent_frames.len();
    // The paused greeting is cancelled once the caller's words are transcribed (this STT sends
    // only finals: after the speech end).
    h.caller.silence(S(1_000)).await;
    let snap = h.call.snapshot().await.unwrap();
    assert!(
        snap.edges["tts_to_room"].2.flushed > 0,
        "edge was not flushed"
    );
    // Greeting audio stopped: only the next reply (after the turn) may add frames.
    let greeting_frames = during - heard_before;
    assert!(
        greeting_frames < 40,
        "agent kept talking for {greeting_frames} frames over the caller"
    );
    assert!(h.caller.wait_for_reply(S(10_000), S(600)).await);
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.barge_ins, 1);
    // The model saw only the part of the greeting that was played.
    let req = llm.request_log().into_iter().next().unwrap();
    let said = req
        .messages
        .iter()
        .find(|m| m.role == Role::Assistant)
        .unwrap()
        .content
        .clone();
    assert!(greeting.starts_with(&said) && !said.is_empty(), "{said:?}");
    assert!(
        said.len() < greeting.len() / 2,
        "context kept {} of {} chars",
        said.len(),
        greeting.len()
    );
    assert!(said.len() >= 20, "context kept too little: {said:?}");
}

/// The agent's audio stops as soon as the VAD hears the caller, not when the barge-in window
/// (300 ms) has passed: what the caller hears of the agent after starting to talk is the VAD's
/// detection time plus the frames already in flight.
#[tokio::test(start_paused = true)]
async fn agent_audio_stops_at_the_callers_speech_start() {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = "Thank you for calling Saint Mary's hospital. Our opening hours are nine to five on weekdays and nine to one on Saturdays. How can I help you today?".into();
    let mut h = start(cfg.clone(), Providers::fast()).await;
    h.caller.silence(S(1_500)).await;
    assert!(h.caller.agent_frames.len() > 30, "greeting playing");
    let before = h.caller.agent_frames.len();
    assert_eq!(h.caller.pauses(), 0, "nothing has stopped the greeting yet");
    h.caller.speak(S(600)).await;
    let over = h.caller.agent_frames.len() - before;
    // VAD min speech (100 ms) + a frame or two in flight; the barge-in window is 300 ms.
    let limit = (cfg.vad.min_speech_ms / 20 + 3) as usize;
    assert!(
        over <= limit,
        "agent played {over} frames over the caller (limit {limit})"
    );
    // The output was told the sound stopped (a codec room ends it on silence, not concealment).
    assert_eq!(h.caller.pauses(), 1);
    // The caller's final transcript turns the pause into a barge-in.
    h.caller.silence(S(1_000)).await;
    h.caller.hang_up().await;
    assert_eq!(h.call.wait().await.unwrap().barge_ins, 1);
}

/// Caller speech that ends before the barge-in window closes was a false start: the paused reply
/// plays on from where it stopped and is not cancelled.
#[tokio::test(start_paused = true)]
async fn a_false_start_resumes_the_paused_reply() {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = "Thank you for calling Saint Mary's hospital. Our opening hours are nine to five on weekdays and nine to one on Saturdays. How can I help you today?".into();
    // A window longer than the short burst plus the VAD's hangover.
    cfg.turn.barge_in_min_speech_ms = 2_000;
    let mut h = start(cfg, Providers::fast()).await;
    h.caller.silence(S(1_500)).await;
    let before = h.caller.agent_frames.len();
    h.caller.speak(S(200)).await;
    h.caller.silence(S(600)).await;
    let paused = h.caller.agent_frames.len() - before;
    assert!(paused < 15, "playout did not pause ({paused} frames)");
    assert_eq!(h.caller.pauses(), 1, "the output was paused mid-sound");
    h.caller.silence(S(3_000)).await;
    let after = h.caller.agent_frames.len() - before;
    assert!(
        after > paused + 50,
        "the greeting did not resume ({after} frames)"
    );
    h.caller.hang_up().await;
    assert_eq!(h.call.wait().await.unwrap().barge_ins, 0);
}

/// The room reports that no caller audio arrived: the agent says so, then ends the call with
/// that reason (the worker reports such a job failed).
#[tokio::test(start_paused = true)]
async fn no_caller_audio_is_said_then_the_call_ends_with_that_reason() {
    let mut h = start(quiet_config(), Providers::fast()).await;
    h.caller
        .room_event(frontdesk_actors::provider::RoomEvent::NoCallerAudio)
        .await;
    h.caller.silence(S(8_000)).await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.reason, EndReason::NoCallerAudio);
    assert!(h.caller.agent_frames.len() > 25, "the prompt was spoken");
    let records = h.store.records();
    assert!(
        records.iter().any(
            |r| matches!(&r.kind, RecordKind::CallEnded { reason } if reason == "no_caller_audio")
        ),
        "{records:?}"
    );
}

//! Bounded edges under stalled consumers, and restarts of the other children.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use frontdesk_actors::audio::{AudioFrame, ROOM_RATE};
use frontdesk_actors::call::room::RoomActor;
use frontdesk_actors::call::wiring::CallWiring;
use frontdesk_actors::call::{CallDeps, CallSpec, ChildKind, EndReason};
use frontdesk_actors::doubles::signal::{frames, speechlike};
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::*;
use frontdesk_actors::store::Store;
use ractor::Actor;

const S: fn(u64) -> Duration = Duration::from_millis;

/// An STT whose socket accepts nothing: `send_audio` never completes.
struct StalledStt;
/// Holds the event sender so the session stays open.
struct StalledSink(#[allow(dead_code)] tokio::sync::mpsc::Sender<Result<SttEvent, SttError>>);

#[async_trait]
impl SttSink for StalledSink {
    async fn send_audio(&mut self, _: &AudioFrame) -> Result<(), SttError> {
        std::future::pending().await
    }
    async fn finalize(&mut self) -> Result<(), SttError> {
        std::future::pending().await
    }
    async fn close(&mut self) -> Result<(), SttError> {
        Ok(())
    }
}

#[async_trait]
impl SttProvider for StalledStt {
    fn name(&self) -> &'static str {
        "stalled"
    }
    async fn connect(&self, _: &SttSessionConfig) -> Result<SttSession, SttError> {
        let (tx, events) = tokio::sync::mpsc::channel(1);
        Ok(SttSession {
            sink: Box::new(StalledSink(tx)),
            events,
        })
    }
}

fn deps(stt: Arc<dyn SttProvider>) -> CallDeps {
    let p = Providers::fast();
    CallDeps {
        stt,
        llm: p.llm,
        tts: p.tts,
        store: Arc::new(MemoryStore::seeded()) as Arc<dyn Store>,
        observer: Arc::new(Recorder::default()) as _,
        prices: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn room_to_vad_stays_at_its_bound_when_vad_stalls() {
    // The room actor alone: nobody consumes its edge.
    let spec = CallSpec {
        call_id: "c".into(),
        room: "r".into(),
        caller: "x".into(),
    };
    let call = CallWiring::new(
        spec,
        quiet_config(),
        deps(Arc::new(StalledStt)),
        &[frontdesk_actors::audio::ROOM_RATE],
        None,
    )
    .unwrap();
    let (end, link) = LoopbackRoom::pair(256);
    let (room, _) = Actor::spawn(None, RoomActor { ports: call.room() }, link)
        .await
        .unwrap();
    for f in frames(
        &speechlike(ROOM_RATE, S(2_000), 0),
        ROOM_RATE,
        Duration::ZERO,
    ) {
        end.audio.send(f).await.unwrap();
    }
    tokio::time::sleep(S(100)).await;
    let e = &call.edges.room_to_vad;
    assert_eq!(e.len(), e.capacity());
    // 100 frames in, the resampler holds back at most one; everything else is queued or counted.
    assert!(e.pushed() >= 99);
    assert_eq!(e.overflow_drops(), e.pushed() - e.capacity() as u64);
    room.stop(None);
}

#[tokio::test(start_paused = true)]
async fn vad_to_stt_stays_at_its_bound_when_stt_stalls() {
    let p = Providers {
        stt: Arc::new(StalledStt),
        ..Providers::fast()
    };
    let mut h = start(quiet_config(), p).await;
    h.caller.speak(S(5_000)).await;
    let snap = h.call.snapshot().await.unwrap();
    let (len, cap, stats) = snap.edges["vad_to_stt"];
    assert_eq!(len, cap);
    assert!(stats.overflow > 100, "{stats:?}");
    // The stall does not reach back to the caller's side.
    assert_eq!(snap.edges["room_to_vad"].2.overflow, 0);
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.reason, EndReason::CallerHungUp);
}

#[tokio::test(start_paused = true)]
async fn tts_to_room_stays_at_its_bound_when_the_room_stalls() {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = "This is a long greeting that takes many seconds to say, so the room has plenty to stall on. ".repeat(4);
    let mut h = start(cfg, Providers::fast()).await;
    h.caller.listening = false;
    h.caller.silence(S(3_000)).await;
    let snap = h.call.snapshot().await.unwrap();
    let (len, cap, stats) = snap.edges["tts_to_room"];
    assert_eq!(len, cap);
    // Playout edges make the producer wait: nothing is dropped.
    assert_eq!(stats.overflow, 0);
    assert_eq!(stats.flushed, 0);
    h.caller.hang_up().await;
    assert_eq!(h.call.wait().await.unwrap().reason, EndReason::CallerHungUp);
}

const GREETING: &str = "Good morning, you have reached the front desk. How may I help you?";

/// The greeting spoken through a TTS built from `cfg`: waits for the reply, checks the TTS child
/// was restarted once and the caller heard (about) the whole greeting (15 chars/s), hangs up and
/// returns what was pushed to the TTS.
async fn greet_through_faulty_tts(cfg: ScriptedTtsConfig) -> Vec<String> {
    let mut pipeline = quiet_config();
    pipeline.dialogue.greeting = GREETING.into();
    let tts = Arc::new(ScriptedTts::new(cfg));
    let p = Providers {
        tts: tts.clone(),
        ..Providers::fast()
    };
    let mut h = start(pipeline, p).await;
    assert!(h.caller.wait_for_reply(S(15_000), S(600)).await);
    let snap = h.call.snapshot().await.unwrap();
    assert_eq!(snap.restarts.get(&ChildKind::Tts), Some(&1));
    let heard = h.caller.agent_frames.len() as f64 * 0.02;
    let expected = GREETING.len() as f64 / 15.0;
    assert!(
        heard > expected * 0.8,
        "heard {heard:.2}s of {expected:.2}s"
    );
    h.caller.hang_up().await;
    h.call.wait().await.unwrap();
    tts.spoken()
}

#[tokio::test(start_paused = true)]
async fn tts_failure_mid_reply_re_speaks_the_unplayed_part() {
    let spoken = greet_through_faulty_tts(ScriptedTtsConfig {
        failing_sessions: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(spoken.len(), 2, "{spoken:?}");
    assert!(
        GREETING.ends_with(&spoken[1]),
        "re-spoken text {:?} is not the rest of the greeting",
        spoken[1]
    );
}

#[tokio::test(start_paused = true)]
async fn database_outage_becomes_a_spoken_answer_and_the_record_is_written_later() {
    let llm = Arc::new(
        ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(50, 0),
            ..Default::default()
        })
        .recording(),
    );
    let script = TranscriptMode::Script(vec!["I need to see a heart doctor.".into()]);
    let stt = Arc::new(ScriptedStt::new(ScriptedSttConfig {
        mode: script,
        latency: Latency::ms(50, 0),
        ..Default::default()
    }));
    let p = Providers {
        llm: llm.clone(),
        stt,
        ..Providers::fast()
    };
    let mut h = start(quiet_config(), p).await;
    h.store.set_available(false);
    h.caller.speak(S(1_000)).await;
    assert!(h.caller.wait_for_reply(S(30_000), S(800)).await);
    // The tool ran, failed, and the model was told the system is unavailable (and said so).
    let log = llm.request_log();
    let tool_msg = log
        .iter()
        .flat_map(|r| r.messages.iter())
        .find(|m| m.role == Role::Tool)
        .expect("no tool result");
    assert!(
        tool_msg.content.contains("unavailable"),
        "{}",
        tool_msg.content
    );
    h.caller.silence(S(3_000)).await;
    assert!(h.store.records().is_empty());
    h.store.set_available(true);
    h.caller.silence(S(2_000)).await;
    h.caller.hang_up().await;
    h.call.wait().await.unwrap();
    let records = h.store.records();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(seqs, dedup, "records duplicated");
    assert!(records.iter().any(|r| matches!(
        r.kind,
        frontdesk_actors::store::RecordKind::CallStarted { .. }
    )));
    assert!(records.iter().any(|r| matches!(
        r.kind,
        frontdesk_actors::store::RecordKind::CallEnded { .. }
    )));
}

/// An STT whose every session ends the moment it opens; it notes when each connect happened.
#[derive(Default)]
struct DeadStt {
    connects: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

#[async_trait]
impl SttProvider for DeadStt {
    fn name(&self) -> &'static str {
        "dead"
    }
    async fn connect(&self, _: &SttSessionConfig) -> Result<SttSession, SttError> {
        self.connects
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let (tx, events) = tokio::sync::mpsc::channel(1);
        drop(tx);
        Ok(SttSession {
            sink: Box::new(StalledSink(tokio::sync::mpsc::channel(1).0)),
            events,
        })
    }
}

/// A provider that fails at once is restarted at once the first time, then with a growing delay:
/// the budget is spent over seconds, not within a millisecond (it was three restarts in 1 ms).
#[tokio::test(start_paused = true)]
async fn a_provider_that_fails_at_once_is_restarted_with_backoff() {
    let stt = Arc::new(DeadStt::default());
    let mut cfg = quiet_config();
    cfg.supervision.backoff = frontdesk_actors::backoff::Backoff::new(200, 5_000);
    let p = Providers {
        stt: stt.clone(),
        ..Providers::fast()
    };
    let mut h = start(cfg, p).await;
    h.caller.silence(S(10_000)).await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.reason, EndReason::BudgetExhausted(ChildKind::Stt));
    assert_eq!(outcome.restarts.get(&ChildKind::Stt), Some(&3));
    let t = stt.connects.lock().unwrap().clone();
    assert_eq!(t.len(), 4, "the first start and three restarts");
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // Immediate, then 200 ms and 400 ms, each with up to 100 % jitter.
    assert!(gaps[0] < S(50), "{gaps:?}");
    assert!(gaps[1] >= S(200) && gaps[1] < S(450), "{gaps:?}");
    assert!(gaps[2] >= S(400) && gaps[2] < S(850), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_tts_that_stops_taking_text_is_restarted_and_says_it_all() {
    // The first session never takes the text: after the progress deadline the child restarts.
    let spoken = greet_through_faulty_tts(ScriptedTtsConfig {
        stalled_sessions: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(spoken, vec![GREETING.to_string()]);
}

#[tokio::test(start_paused = true)]
async fn a_room_that_stops_taking_audio_ends_the_call_with_a_reason() {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = "A long greeting for a room that has stopped reading. ".repeat(6);
    cfg.supervision.progress_deadline_ms = 2_000;
    let mut h = start(cfg, Providers::fast()).await;
    h.caller.listening = false;
    h.caller.silence(S(8_000)).await;
    let outcome = h.call.wait().await.unwrap();
    match outcome.reason {
        EndReason::RoomFailed(why) => assert!(why.contains("no progress"), "{why}"),
        other => panic!("ended with {other:?}"),
    }
}

//! False-interruption recovery on the whole call tree, on paused tokio time: caller sound over the
//! agent pauses the reply; words cancel it (barge-in), sound without words lets it play on from
//! where it paused.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::call::{ChildKind, SupervisorMsg};
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::*;
use frontdesk_actors::PipelineConfig;

const S: fn(u64) -> Duration = Duration::from_millis;

/// About ten seconds of greeting at the TTS double's 15 chars/s.
const GREETING: &str = "Thank you for calling Saint Mary's hospital. Our opening hours are nine to five on weekdays and nine to one on Saturdays. How can I help you today?";

fn config() -> PipelineConfig {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = GREETING.into();
    cfg
}

/// An STT that hears the audio but never any words (a cough, a door, a television).
fn wordless_stt() -> Arc<dyn SttProvider> {
    Arc::new(ScriptedStt::new(ScriptedSttConfig {
        mode: TranscriptMode::Script(vec![String::new()]),
        latency: Latency::ms(50, 0),
        ..Default::default()
    }))
}

fn providers(stt: Arc<dyn SttProvider>) -> Providers {
    Providers {
        stt,
        ..Providers::fast()
    }
}

/// Frames of the whole greeting when nobody talks over it.
async fn whole_greeting_frames() -> usize {
    let mut h = start(config(), providers(wordless_stt())).await;
    assert!(h.caller.wait_for_reply(S(30_000), S(600)).await);
    h.caller.hang_up().await;
    h.call.wait().await.unwrap();
    h.caller.agent_frames.len()
}

/// Talk over the greeting for `speech` (past the barge-in window) 1.5 s into it; returns how
/// many greeting frames were played before and during the speech.
async fn talk_over_greeting(h: &mut Harness, speech: Duration) -> (usize, usize) {
    h.caller.silence(S(1_500)).await;
    let before = h.caller.agent_frames.len();
    assert!(before > 30, "greeting playing ({before} frames)");
    h.caller.speak(speech).await;
    (before, h.caller.agent_frames.len() - before)
}

#[tokio::test(start_paused = true)]
async fn sound_without_words_resumes_the_reply_and_all_of_it_is_heard() {
    let whole = whole_greeting_frames().await;
    let llm = Arc::new(
        ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(50, 0),
            ..Default::default()
        })
        .recording(),
    );
    let p = Providers {
        llm: llm.clone(),
        ..providers(wordless_stt())
    };
    let mut h = start(config(), p).await;
    let (before, during) = talk_over_greeting(&mut h, S(1_000)).await;
    // Paused, not cancelled, and quiet until the timeout has passed after the speech end.
    h.caller.silence(S(1_500)).await;
    let paused = h.caller.agent_frames.len() - before;
    assert!(paused <= during + 2, "{paused} frames played in the pause");
    assert!(h.caller.wait_for_reply(S(30_000), S(600)).await);
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(
        (outcome.false_interruptions, outcome.barge_ins),
        (1, 0),
        "{outcome:?}"
    );
    assert_eq!(
        h.caller.agent_frames.len(),
        whole,
        "the resumed greeting is not the whole greeting"
    );
    assert!(llm.request_log().is_empty(), "a noise started a turn");
}

#[tokio::test(start_paused = true)]
async fn words_within_the_timeout_are_a_barge_in_as_before() {
    // The default STT double transcribes any speech ("heard N ms"), as a final after speech end.
    let mut h = start(config(), Providers::fast()).await;
    talk_over_greeting(&mut h, S(1_000)).await;
    h.caller.silence(S(1_000)).await;
    let snap = h.call.snapshot().await.unwrap();
    assert!(
        snap.edges["tts_to_room"].2.flushed > 0,
        "reply not cancelled"
    );
    assert!(h.caller.wait_for_reply(S(10_000), S(600)).await);
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(
        (outcome.false_interruptions, outcome.barge_ins),
        (0, 1),
        "{outcome:?}"
    );
}

/// An STT that sends an interim transcript once it has heard `after` of voice, and finals with
/// words: a barge-in needs no wait for the caller to stop.
struct InterimStt;
struct InterimSink {
    voiced: Duration,
    sent: bool,
    tx: tokio::sync::mpsc::Sender<Result<SttEvent, SttError>>,
}

#[async_trait]
impl SttSink for InterimSink {
    async fn send_audio(&mut self, frame: &AudioFrame) -> Result<(), SttError> {
        if frame.level_dbfs() > -45.0 {
            self.voiced += frame.duration();
        }
        if !self.sent && self.voiced >= S(400) {
            self.sent = true;
            let interim = SttEvent::Interim {
                text: "I need".into(),
            };
            let _ = self.tx.send(Ok(interim)).await;
        }
        Ok(())
    }
    async fn finalize(&mut self) -> Result<(), SttError> {
        let fin = SttEvent::Final {
            text: "I need a doctor".into(),
            start: Duration::ZERO,
            end: Duration::ZERO,
            speech_final: true,
        };
        let _ = self.tx.send(Ok(fin)).await;
        Ok(())
    }
    async fn close(&mut self) -> Result<(), SttError> {
        Ok(())
    }
}

#[async_trait]
impl SttProvider for InterimStt {
    fn name(&self) -> &'static str {
        "interim"
    }
    async fn connect(&self, _: &SttSessionConfig) -> Result<SttSession, SttError> {
        let (tx, events) = tokio::sync::mpsc::channel(16);
        let sink = InterimSink {
            voiced: Duration::ZERO,
            sent: false,
            tx,
        };
        Ok(SttSession {
            sink: Box::new(sink),
            events,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn an_interim_transcript_barges_in_while_the_caller_still_talks() {
    let mut h = start(config(), providers(Arc::new(InterimStt))).await;
    talk_over_greeting(&mut h, S(1_000)).await;
    // Still speaking (no speech end, so no final yet): the interim alone cancelled the reply.
    let snap = h.call.snapshot().await.unwrap();
    assert!(
        snap.edges["tts_to_room"].2.flushed > 0,
        "reply not cancelled"
    );
    h.caller.silence(S(1_000)).await;
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(
        (outcome.false_interruptions, outcome.barge_ins),
        (0, 1),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_timeout_speech_past_the_window_cancels_at_once() {
    let mut cfg = config();
    cfg.turn.false_interruption_timeout_ms = 0;
    let mut h = start(cfg, providers(wordless_stt())).await;
    talk_over_greeting(&mut h, S(1_000)).await;
    // No words at all, and the caller has not stopped: cancelled at the barge-in window.
    let snap = h.call.snapshot().await.unwrap();
    assert!(
        snap.edges["tts_to_room"].2.flushed > 0,
        "reply not cancelled"
    );
    let left = h.caller.agent_frames.len();
    h.caller.silence(S(4_000)).await;
    assert_eq!(h.caller.agent_frames.len(), left, "the greeting resumed");
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(
        (outcome.false_interruptions, outcome.barge_ins),
        (0, 1),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cough_shorter_than_the_window_resumes_without_waiting_for_the_timeout() {
    let whole = whole_greeting_frames().await;
    let mut cfg = config();
    // A window longer than the cough plus the VAD's hangover, and a long recovery timeout.
    cfg.turn.barge_in_min_speech_ms = 2_000;
    cfg.turn.false_interruption_timeout_ms = 5_000;
    let mut h = start(cfg, providers(wordless_stt())).await;
    let (before, _) = talk_over_greeting(&mut h, S(200)).await;
    h.caller.silence(S(600)).await;
    let paused = h.caller.agent_frames.len() - before;
    assert!(paused < 15, "playout did not pause ({paused} frames)");
    // The window ends about 2.1 s after the cough began; the timeout would be 5 s after its end.
    h.caller.silence(S(3_000)).await;
    let after = h.caller.agent_frames.len() - before;
    assert!(after > paused + 50, "not resumed at the window ({after})");
    assert!(h.caller.wait_for_reply(S(30_000), S(600)).await);
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(
        (outcome.false_interruptions, outcome.barge_ins),
        (0, 0),
        "{outcome:?}"
    );
    assert_eq!(h.caller.agent_frames.len(), whole);
}

#[tokio::test(start_paused = true)]
async fn a_tts_restart_during_the_pause_loses_nothing_of_the_reply() {
    let whole = whole_greeting_frames().await;
    let tts = Arc::new(ScriptedTts::new(ScriptedTtsConfig {
        ttfb: Latency::ms(80, 0),
        ..Default::default()
    }));
    let p = Providers {
        tts: tts.clone(),
        ..providers(wordless_stt())
    };
    let mut h = start(config(), p).await;
    talk_over_greeting(&mut h, S(1_000)).await;
    h.call
        .supervisor
        .cast(SupervisorMsg::KillChild(ChildKind::Tts))
        .unwrap();
    assert!(h.caller.wait_for_reply(S(30_000), S(600)).await);
    let snap = h.call.snapshot().await.unwrap();
    assert_eq!(snap.restarts.get(&ChildKind::Tts), Some(&1));
    h.caller.hang_up().await;
    let outcome = h.call.wait().await.unwrap();
    assert_eq!(outcome.false_interruptions, 1, "{outcome:?}");
    // The new session re-spoke the rest of the greeting from the last word heard before the
    // pause, so the caller heard all of it, with at most that word again.
    let spoken = tts.spoken();
    assert_eq!(spoken.len(), 2, "{spoken:?}");
    assert!(GREETING.ends_with(&spoken[1]) && spoken[1].len() < GREETING.len());
    let heard = h.caller.agent_frames.len();
    let word = GREETING.split(' ').map(str::len).max().unwrap() + 1;
    // 15 chars/s in 20 ms frames.
    let word_frames = word * 50 / 15 + 2;
    assert!(
        heard >= whole && heard <= whole + word_frames,
        "heard {heard} frames of {whole}"
    );
}

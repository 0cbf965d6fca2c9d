//! PostgreSQL stops in the middle of a call (a proxy in front of the real server cuts every
//! connection and refuses new ones): the call goes on, the tool answers "unavailable" and the
//! agent says so, and once the database is back the call record lands whole, nothing duplicated.
//! Real time (the database is real); skipped loudly without `DATABASE_URL`.
#![allow(clippy::unwrap_used)]

mod pg;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use frontdesk_actors::audio::{samples_per_frame, AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::call::{spawn_call, CallDeps, CallSpec, NoopObserver};
use frontdesk_actors::doubles::signal::speechlike;
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::Role;
use frontdesk_actors::store::{Clock, RecordKind, Store};
use frontdesk_actors::PipelineConfig;
use pg::{database_url, drop_schema, proxied_store, seeded_store, unique_schema};

const S: fn(u64) -> Duration = Duration::from_millis;

/// The far end of the room: real-time 20 ms frames, counting the agent's frames.
struct Caller {
    end: RoomEnd,
    t: Duration,
    pos: u64,
    heard: usize,
}

impl Caller {
    async fn frame(&mut self, speech: bool) {
        let n = samples_per_frame(ROOM_RATE);
        let samples = if speech {
            speechlike(ROOM_RATE, FRAME_DURATION, self.pos)
        } else {
            vec![0; n]
        };
        self.pos += n as u64;
        let f = AudioFrame::new(samples, ROOM_RATE, self.t);
        self.t += FRAME_DURATION;
        let _ = self.end.audio.send(f).await;
        tokio::time::sleep(FRAME_DURATION).await;
        while self.end.from_agent.try_recv().is_ok() {
            self.heard += 1;
        }
    }

    async fn talk(&mut self, speech: bool, d: Duration) {
        for _ in 0..d.as_millis() / 20 {
            self.frame(speech).await;
        }
    }

    /// Silence until the agent has spoken and gone quiet for 600 ms.
    async fn wait_for_reply(&mut self, max: Duration) -> bool {
        let (start, mut quiet) = (self.heard, 0);
        for _ in 0..max.as_millis() / 20 {
            let before = self.heard;
            self.frame(false).await;
            quiet = if self.heard > before { 0 } else { quiet + 1 };
            if self.heard > start && quiet >= 30 {
                return true;
            }
        }
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_mid_call_then_back_record_lands_once() {
    let Some(url) = database_url() else { return };
    let schema = unique_schema("call_down");
    let now: Clock = Arc::new(|| "2030-01-07T08:00:00Z".parse::<DateTime<Utc>>().unwrap());
    let direct = seeded_store(&url, &schema, Arc::clone(&now)).await;
    let (proxy, store) = proxied_store(&url, &schema, now).await;

    let llm = Arc::new(
        ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(50, 0),
            ..Default::default()
        })
        .recording(),
    );
    let stt = ScriptedStt::new(ScriptedSttConfig {
        mode: TranscriptMode::Script(vec!["I need to see a heart doctor.".into()]),
        latency: Latency::ms(50, 0),
        ..Default::default()
    });
    let tts = ScriptedTts::new(ScriptedTtsConfig {
        ttfb: Latency::ms(50, 0),
        ..Default::default()
    });
    let deps = CallDeps {
        stt: Arc::new(stt),
        llm: llm.clone(),
        tts: Arc::new(tts),
        store: Arc::new(store),
        observer: Arc::new(NoopObserver),
        prices: Default::default(),
    };
    let mut cfg = PipelineConfig::default();
    cfg.dialogue.greeting = String::new();
    let (end, link) = LoopbackRoom::pair(64);
    let spec = CallSpec {
        call_id: format!("call-{schema}"),
        room: "room-outage".into(),
        caller: "+15550100002".into(),
    };
    let call = spawn_call(spec.clone(), cfg, deps, link).await.unwrap();
    let mut caller = Caller {
        end,
        t: Duration::ZERO,
        pos: 0,
        heard: 0,
    };

    caller.talk(false, S(300)).await;
    proxy.down().await;
    caller.talk(true, S(1_000)).await;
    assert!(
        caller.wait_for_reply(S(15_000)).await,
        "no reply during the outage"
    );
    let tool_result = llm
        .request_log()
        .iter()
        .flat_map(|r| r.messages.clone())
        .find(|m| m.role == Role::Tool)
        .expect("no tool result reached the model");
    assert!(
        tool_result.content.contains("unavailable"),
        "{}",
        tool_result.content
    );
    // Only what landed before the outage (the call's start) is there yet.
    let before = direct.call_record(&spec.call_id).await.unwrap();
    assert!(
        before
            .iter()
            .all(|o| matches!(o.kind, RecordKind::CallStarted { .. })),
        "{before:?}"
    );

    proxy.restore();
    caller.talk(false, S(2_000)).await;
    caller.end.leave("caller").await;
    let outcome = tokio::time::timeout(S(20_000), call.wait())
        .await
        .expect("call did not end")
        .expect("no outcome");
    assert_eq!(outcome.records_dropped, 0);

    let record = direct.call_record(&spec.call_id).await.unwrap();
    let seqs: Vec<u64> = record.iter().map(|o| o.seq).collect();
    // Every op once, none missing: the outbox numbers them 1, 2, 3, ...
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "lost, duplicated or out of order");
    let has = |f: fn(&RecordKind) -> bool| record.iter().any(|o| f(&o.kind));
    assert!(has(|k| matches!(k, RecordKind::CallStarted { .. })));
    assert!(has(|k| matches!(
        k,
        RecordKind::ToolCall { error: Some(_), .. }
    )));
    assert!(has(|k| matches!(k, RecordKind::Turn { .. })));
    assert!(has(|k| matches!(k, RecordKind::CallEnded { .. })));
    drop_schema(&url, &schema).await;
}

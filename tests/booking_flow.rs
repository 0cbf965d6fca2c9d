//! One whole emulated call books an appointment: the six caller clips of tests/fixtures/speech are
//! played into a call tree the way `frontdesk console` runs one (loopback room, the provider
//! emulators behind the real clients, the embedded SQLite store), each line after the agent's
//! reply to the previous one. Afterwards the store holds the caller's appointment and the call
//! record has every turn, the tool calls from find_patient to book_appointment, and the usage.
//! Real time (about a minute): the emulators are real sockets and the agent speaks at its pace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use frontdesk::config::AppConfig;
use frontdesk::console::taps::{Speaker, SttTap, Transcript, TtsTap};
use frontdesk::simulate::clips::Clips;
use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION, PIPELINE_RATE};
use frontdesk_actors::call::{spawn_call, CallDeps, CallSpec, EndReason, NoopObserver};
use frontdesk_actors::loopback::{LoopbackRoom, RoomEnd};
use frontdesk_actors::store::{AppointmentStatus, RecordKind, RecordOp};
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

/// Seeded patient 4 (actors/src/seed.rs), the caller of the fixture lines.
const NOAH_FISCHER: i64 = 4;
/// Seeded doctor 1, the only cardiologist; she works weekdays.
const DR_HART: i64 = 1;
/// Agent silence that ends its reply (a reply may pause while its tools run).
const QUIET: Duration = Duration::from_millis(1_500);
/// Longest wait for a reply to start.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// The caller's side of the loopback room: 20 ms frames in real time, as the console's driver.
struct Caller {
    end: RoomEnd,
    tick: tokio::time::Interval,
    silence: Arc<[i16]>,
    media_time: Duration,
    agent_frames: usize,
}

impl Caller {
    fn new(end: RoomEnd) -> Self {
        let mut tick = tokio::time::interval(FRAME_DURATION);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Self {
            end,
            tick,
            silence: vec![0; PIPELINE_RATE as usize / 50].into(),
            media_time: Duration::ZERO,
            agent_frames: 0,
        }
    }

    async fn say(&mut self, frames: &[Arc<[i16]>]) {
        for f in frames {
            self.tick.tick().await;
            self.drain();
            self.send(Arc::clone(f));
        }
    }

    /// Silence until the agent has spoken and gone quiet; false if it never started.
    async fn listen(&mut self) -> bool {
        let started = Instant::now();
        let mut heard: Option<Instant> = None;
        loop {
            self.tick.tick().await;
            if self.drain() {
                heard = Some(Instant::now());
            }
            match heard {
                Some(t) if t.elapsed() >= QUIET => return true,
                None if started.elapsed() >= REPLY_TIMEOUT => return false,
                _ => {}
            }
            self.send(Arc::clone(&self.silence));
        }
    }

    fn send(&mut self, samples: Arc<[i16]>) {
        let frame = AudioFrame::new(samples, PIPELINE_RATE, self.media_time);
        self.media_time += FRAME_DURATION;
        let _ = self.end.audio.try_send(frame);
    }

    fn drain(&mut self) -> bool {
        let mut any = false;
        while self.end.from_agent.try_recv().is_ok() {
            self.agent_frames += 1;
            any = true;
        }
        any
    }
}

/// The first weekday after `day`.
fn next_weekday(day: NaiveDate) -> NaiveDate {
    let mut d = day.succ_opt().unwrap();
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d.succ_opt().unwrap();
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulated_call_books_and_leaves_a_complete_record() {
    // RUST_LOG=info tells the call's story when this fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut cfg = AppConfig::default();
    // The embedded store in memory: migrated and seeded on open, nothing left behind.
    cfg.database.sqlite_path = ":memory:".into();
    let store = frontdesk::store::open_store(&cfg.database).unwrap();
    let clips = Clips::load().unwrap();
    let lines = clips.texts();
    assert_eq!(lines.len(), 6);
    let wire = frontdesk::console::emulators_for(&cfg, lines.clone())
        .await
        .unwrap();
    let transcript = Transcript::new(false);
    let deps = CallDeps {
        stt: Arc::new(SttTap {
            inner: wire.providers.stt.clone(),
            transcript: transcript.clone(),
        }),
        llm: wire.providers.llm.clone(),
        tts: Arc::new(TtsTap {
            inner: wire.providers.tts.clone(),
            transcript: transcript.clone(),
        }),
        store: Arc::clone(&store),
        observer: Arc::new(NoopObserver),
        prices: cfg.providers.prices.clone(),
    };
    let booking_days = [next_weekday(Utc::now().date_naive())];
    let (end, link) = LoopbackRoom::pair(64);
    let spec = CallSpec {
        call_id: "booking-flow".into(),
        room: "booking-flow".into(),
        caller: "booking-flow-caller".into(),
    };
    let call = spawn_call(spec.clone(), cfg.pipeline.clone(), deps, link)
        .await
        .unwrap();

    let mut caller = Caller::new(end);
    assert!(caller.listen().await, "no greeting");
    for clip in &clips.lines {
        caller.say(&clip.frames).await;
        assert!(
            caller.listen().await,
            "no reply to {:?}: {:#?}",
            clip.text,
            transcript.lines()
        );
    }
    caller.end.leave("booking-flow-caller").await;
    let outcome = tokio::time::timeout(Duration::from_secs(30), call.wait())
        .await
        .expect("the call did not end")
        .expect("no outcome");
    // The day may have turned during the call (UTC midnight).
    let booking_days = [booking_days[0], next_weekday(Utc::now().date_naive())];
    let said = transcript.lines();
    assert_eq!(outcome.reason, EndReason::CallerHungUp, "{said:#?}");
    assert_eq!(outcome.records_dropped, 0);

    // The caller was heard line by line, each line one turn.
    let heard: Vec<&str> = said
        .iter()
        .filter(|l| l.speaker == Speaker::Caller)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(heard, lines, "{said:#?}");
    assert!(
        said.iter().all(|l| l.speaker != Speaker::AgentInterrupted),
        "no reply was cut short: {said:#?}"
    );
    assert_eq!(outcome.turns, 6, "{said:#?}");

    // The booking: Noah Fischer with Dr. Hart at 09:30 on the next weekday, as he asked.
    let booked = store.appointments_for(NOAH_FISCHER).await.unwrap();
    assert_eq!(booked.len(), 1, "{booked:?}\n{said:#?}");
    let a = &booked[0];
    assert_eq!(
        (a.doctor_id, a.status),
        (DR_HART, AppointmentStatus::Scheduled)
    );
    assert_eq!(a.start.format("%H:%M").to_string(), "09:30");
    assert!(
        booking_days.contains(&a.start.date_naive()),
        "{a:?} not on {booking_days:?}"
    );

    // The call record, as written behind the call.
    let record = store.call_record(&spec.call_id).await.unwrap();
    let seqs: Vec<u64> = record.iter().map(|o| o.seq).collect();
    assert_eq!(seqs, (1..=record.len() as u64).collect::<Vec<_>>());
    assert!(matches!(
        record.first().map(|o| &o.kind),
        Some(RecordKind::CallStarted { .. })
    ));
    assert!(
        matches!(record.last().map(|o| &o.kind), Some(RecordKind::CallEnded { reason }) if reason == "caller_hung_up"),
        "{:?}",
        record.last()
    );
    let turns: Vec<(&str, &str)> = record
        .iter()
        .filter_map(|o| match &o.kind {
            RecordKind::Turn {
                transcript,
                reply,
                interrupted: false,
                ..
            } => Some((transcript.as_str(), reply.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        turns.iter().map(|t| t.0).collect::<Vec<_>>(),
        lines,
        "{record:#?}"
    );
    assert!(turns[2].1.contains("09:30 free on"), "{:?}", turns[2]);
    assert!(turns[3].1.contains("all set"), "{:?}", turns[3]);
    assert!(turns[4].1.contains("Monday to Friday"), "{:?}", turns[4]);
    assert!(turns[5].1.contains("goodbye"), "{:?}", turns[5]);

    let tools = tool_calls(&record);
    let names: Vec<&str> = tools.iter().map(|t| t.0).collect();
    assert!(
        tools.iter().all(|t| t.2.is_none()),
        "every tool call succeeded: {tools:#?}"
    );
    assert_eq!(names[..2], ["list_doctors", "find_patient"], "{names:?}");
    assert_eq!(names.last(), Some(&"book_appointment"), "{names:?}");
    assert!(
        names[2..names.len() - 1]
            .iter()
            .all(|n| *n == "list_free_slots"),
        "{names:?}"
    );
    let (_, args, _, result) = &tools[1];
    assert_eq!(
        args,
        &serde_json::json!({ "name": "Noah Fischer", "date_of_birth": "1979-04-22" })
    );
    assert_eq!(result["result"][0]["id"], NOAH_FISCHER, "{result}");
    let (_, args, _, result) = tools.last().unwrap();
    assert_eq!(args["patient_id"], NOAH_FISCHER);
    assert_eq!(args["doctor_id"], DR_HART);
    assert_eq!(result["result"]["id"], a.id, "{result}");

    let usage = record.iter().find_map(|o| match &o.kind {
        RecordKind::Usage {
            stt_audio_seconds,
            prompt_tokens,
            completion_tokens,
            tts_characters,
            cost_usd,
            ..
        } => Some((
            *stt_audio_seconds,
            *prompt_tokens,
            *completion_tokens,
            *tts_characters,
            *cost_usd,
        )),
        _ => None,
    });
    let (stt_s, prompt, completion, tts_chars, cost) = usage.expect("no usage in the record");
    let clip_seconds: f64 = clips
        .lines
        .iter()
        .map(|c| c.frames.len() as f64 * 0.02)
        .sum();
    assert!(stt_s >= clip_seconds * 0.5, "{stt_s} s of STT audio");
    assert!(
        prompt > 0 && completion > 0,
        "{prompt} / {completion} tokens"
    );
    assert!(tts_chars > 0 && cost > 0.0, "{tts_chars} chars, ${cost}");
    drop(wire);
}

/// (name, arguments, error, result) of each tool call in the record, in order.
fn tool_calls(record: &[RecordOp]) -> Vec<(&str, Value, Option<&str>, Value)> {
    record
        .iter()
        .filter_map(|o| match &o.kind {
            RecordKind::ToolCall {
                name,
                arguments,
                result,
                error,
                ..
            } => Some((
                name.as_str(),
                serde_json::from_str(arguments).unwrap(),
                error.as_deref(),
                serde_json::from_str(result).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

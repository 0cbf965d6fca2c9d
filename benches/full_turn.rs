//! One full turn with zero-latency doubles: our overhead alone. A simulated caller speaks ~1 s of
//! speech-like 48 kHz audio in 20 ms frames, then silence, until the agent's first frame comes
//! back.
//!
//! The runtime is current-thread with paused time: the caller's 20 ms pacing, the endpointing delay
//! and every other timer are skipped as soon as the runtime is idle, and the doubles answer at
//! once, so the wall-clock time measured is only our processing (room resampling, VAD, the actor
//! hops, dialogue, the tool call, TTS resampling).
//!
//! Benches, per variant (plain reply / reply after one `list_doctors` tool call):
//! - `with_call_setup`: start the call, the turn, hang up and wait for the call to end;
//! - `turn_only`: the turn alone (call started and torn down outside the timed part).
//!
//! Criterion reports means; p50/p99/max from an HDR histogram of every iteration (warm-up
//! included) are printed at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::call::{spawn_call, CallDeps, CallHandle, CallSpec, EndReason, NoopObserver};
use frontdesk_actors::doubles::signal::{frames, speechlike};
use frontdesk_actors::doubles::{
    Latency, LoopbackRoom, MemoryStore, RoomEnd, ScriptedLlm, ScriptedLlmConfig, ScriptedStt,
    ScriptedSttConfig, ScriptedTts, ScriptedTtsConfig, TranscriptMode,
};
use frontdesk_actors::provider::RoomLink;
use frontdesk_actors::PipelineConfig;
use hdrhistogram::Histogram;
use tokio::runtime::Runtime;

const SPEECH: Duration = Duration::from_secs(1);
/// Simulated silence after the speech before the bench declares the agent mute.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// Both variants hear the same line; only the LLM double's tool policy differs, so the difference
/// between them is the tool round trip (LLM → DB gateway → store → LLM again).
const LINE: &str = "I need a heart doctor appointment";

#[derive(Clone, Copy, Debug)]
enum Variant {
    NoTools,
    OneTool,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::NoTools => "no_tools",
            Variant::OneTool => "one_tool",
        }
    }

    /// LLM requests the turn makes before the agent can speak its answer.
    fn llm_requests(self) -> u64 {
        match self {
            Variant::NoTools => 1,
            Variant::OneTool => 2,
        }
    }
}

/// The caller's audio, built once: generating speech-like audio is the harness's cost, not ours.
/// Frames share their samples (`Arc`), so handing them out per iteration is free.
struct CallerAudio {
    speech: Vec<AudioFrame>,
    silence: Vec<AudioFrame>,
}

impl CallerAudio {
    fn new() -> Self {
        let quiet = vec![0i16; (MAX_WAIT.as_secs_f64() * f64::from(ROOM_RATE)) as usize];
        Self {
            speech: frames(&speechlike(ROOM_RATE, SPEECH, 0), ROOM_RATE, Duration::ZERO),
            silence: frames(&quiet, ROOM_RATE, SPEECH),
        }
    }
}

/// Everything a call needs, made outside the timed part (doubles, seeded store, room).
struct Prepared {
    cfg: PipelineConfig,
    deps: CallDeps,
    llm: Arc<ScriptedLlm>,
    end: RoomEnd,
    link: RoomLink,
}

fn prepare(variant: Variant) -> Prepared {
    let mut cfg = PipelineConfig::default();
    cfg.dialogue.greeting = String::new();
    let llm = Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
        ttft: Latency::ZERO,
        token_interval: Duration::ZERO,
        use_tools: matches!(variant, Variant::OneTool),
        ..Default::default()
    }));
    let deps = CallDeps {
        stt: Arc::new(ScriptedStt::new(ScriptedSttConfig {
            mode: TranscriptMode::Script(vec![LINE.into()]),
            latency: Latency::ZERO,
            ..Default::default()
        })),
        llm: Arc::clone(&llm) as _,
        tts: Arc::new(ScriptedTts::new(ScriptedTtsConfig {
            ttfb: Latency::ZERO,
            ..Default::default()
        })),
        store: Arc::new(MemoryStore::seeded()),
        observer: Arc::new(NoopObserver),
        prices: Default::default(),
    };
    // Roomy both ways: neither the caller nor the agent's output ever waits on the channel.
    let (end, link) = LoopbackRoom::pair(1_024);
    Prepared {
        cfg,
        deps,
        llm,
        end,
        link,
    }
}

struct Live {
    call: CallHandle,
    end: RoomEnd,
    llm: Arc<ScriptedLlm>,
}

async fn start(p: Prepared) -> Live {
    let spec = CallSpec {
        call_id: "bench-turn".into(),
        room: "bench-room".into(),
        caller: "bench-caller".into(),
    };
    let call = spawn_call(spec, p.cfg, p.deps, p.link)
        .await
        .expect("call starts");
    Live {
        call,
        end: p.end,
        llm: p.llm,
    }
}

/// Speak, then stay silent until the agent's first frame. Returns the caller frames sent.
async fn turn(live: &mut Live, audio: &CallerAudio, variant: Variant) -> usize {
    for (i, f) in audio.speech.iter().chain(&audio.silence).enumerate() {
        live.end.audio.send(f.clone()).await.expect("room open");
        // Paused time: returns as soon as the call has nothing left to do.
        tokio::time::sleep(FRAME_DURATION).await;
        if live.end.from_agent.try_recv().is_ok() {
            assert!(
                i >= audio.speech.len(),
                "agent spoke while the caller talked"
            );
            assert_eq!(
                live.llm.requests(),
                variant.llm_requests(),
                "{variant:?}: first agent frame before the expected LLM rounds"
            );
            return i + 1;
        }
    }
    panic!("{variant:?}: no agent audio within {MAX_WAIT:?} of silence");
}

/// Hang up and wait until the call has ended (records flushed, children stopped).
async fn finish(live: Live) {
    let Live { call, end, .. } = live;
    let RoomEnd {
        audio,
        events,
        mut from_agent,
        ..
    } = end;
    call.hang_up(EndReason::CallerHungUp);
    // Keep reading the agent's audio so the room's output never blocks the shutdown.
    let drain = tokio::spawn(async move { while from_agent.recv().await.is_some() {} });
    let outcome = call.wait().await.expect("call outcome");
    assert_eq!(outcome.reason, EndReason::CallerHungUp);
    drain.abort();
    drop((audio, events));
}

#[derive(Clone, Copy, Debug)]
enum Scope {
    WithCallSetup,
    TurnOnly,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::WithCallSetup => "with_call_setup",
            Scope::TurnOnly => "turn_only",
        }
    }
}

/// One timed iteration; also returns the caller frames sent before the reply.
async fn iteration(audio: &CallerAudio, variant: Variant, scope: Scope) -> (Duration, usize) {
    let p = prepare(variant);
    match scope {
        Scope::WithCallSetup => {
            let t0 = Instant::now();
            let mut live = start(p).await;
            let sent = turn(&mut live, audio, variant).await;
            finish(live).await;
            (t0.elapsed(), sent)
        }
        Scope::TurnOnly => {
            let mut live = start(p).await;
            // Let the startup work (children's first polls) run to idle before the clock starts.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let t0 = Instant::now();
            let sent = turn(&mut live, audio, variant).await;
            let d = t0.elapsed();
            finish(live).await;
            (d, sent)
        }
    }
}

fn bench_turn(c: &mut Criterion) {
    // `start_paused` needs tokio's test-util, which benches get from dev-dependencies.
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let audio = CallerAudio::new();
    // Per bench: histogram (ns) and the caller frames sent before the reply (last iteration).
    let mut stats: BTreeMap<String, (Histogram<u64>, usize)> = BTreeMap::new();

    let mut group = c.benchmark_group("full_turn");
    // Milliseconds per iteration: flat sampling keeps the run near the configured time.
    group.sampling_mode(SamplingMode::Flat);
    for variant in [Variant::NoTools, Variant::OneTool] {
        for scope in [Scope::WithCallSetup, Scope::TurnOnly] {
            let id = format!("{}/{}", variant.name(), scope.name());
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
            let mut sent = 0;
            group.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (d, n) = iteration(&audio, variant, scope).await;
                            hist.saturating_record(d.as_nanos() as u64);
                            sent = n;
                            total += d;
                        }
                        total
                    })
                })
            });
            stats.insert(id, (hist, sent));
        }
    }
    group.finish();

    for (id, (h, sent)) in &stats {
        let us = |ns: u64| ns as f64 / 1_000.0;
        eprintln!(
            "full_turn/{id}: n={} p50={:.1}µs p99={:.1}µs max={:.1}µs; reply after {} ms of simulated silence",
            h.len(),
            us(h.value_at_quantile(0.50)),
            us(h.value_at_quantile(0.99)),
            us(h.max()),
            (sent.saturating_sub(audio.speech.len()) as u128) * FRAME_DURATION.as_millis(),
        );
    }
}

criterion_group! {
    name = full_turn;
    config = common::config(Criterion::default(), Duration::from_secs(2));
    targets = bench_turn
}
criterion_main!(full_turn);

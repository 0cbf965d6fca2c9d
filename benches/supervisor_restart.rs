//! Restart of a crashed child: from `SupervisorMsg::KillChild` until the supervisor's snapshot
//! shows the child restarted and alive again. Target: p99 ≤ 5 ms.
//!
//! Criterion reports means; each iteration is also recorded in an HDR histogram and p50/p99/max are
//! printed per child at the end (they include criterion's warm-up iterations, which are real
//! restarts too).
//!
//! Runtime: current-thread. The restart path is a chain of task hops (supervisor → killed child →
//! supervision event → `Respawn` → new child's `pre_start`); on one thread every hop is a plain
//! task switch, so the number is the supervisor's and ractor's own work. On a multi-thread runtime
//! it would mostly measure how fast the OS wakes parked workers, which is noise for a regression
//! bench (the call is idle here, so nothing else competes for the thread).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk_actors::call::{
    spawn_call, CallDeps, CallHandle, CallSpec, ChildKind, EndReason, NoopObserver, SupervisorMsg,
};
use frontdesk_actors::config::RestartBudget;
use frontdesk_actors::doubles::{
    Latency, LoopbackRoom, MemoryStore, RoomEnd, ScriptedLlm, ScriptedLlmConfig, ScriptedStt,
    ScriptedSttConfig, ScriptedTts, ScriptedTtsConfig,
};
use frontdesk_actors::PipelineConfig;
use hdrhistogram::Histogram;
use tokio::runtime::Runtime;

/// A restart slower than this is a hang, not a data point.
const GIVE_UP: Duration = Duration::from_secs(5);

fn pipeline() -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    cfg.dialogue.greeting = String::new();
    // The budget never runs out, and a 0 ms window forgets each restart before the next kill:
    // every kill is then a crash after a healthy spell, which restarts at once (the path timed
    // here). Kills inside the window would be a failure spell, which backs off on purpose (200 ms
    // and more). It also keeps the supervisor's list of recent restarts as short as in production.
    let endless = RestartBudget::new(u32::MAX, 0);
    let s = &mut cfg.supervision;
    (s.vad, s.stt, s.dialogue, s.tts, s.db_gateway) = (endless, endless, endless, endless, endless);
    cfg
}

fn deps() -> CallDeps {
    CallDeps {
        stt: Arc::new(ScriptedStt::new(ScriptedSttConfig {
            latency: Latency::ZERO,
            ..Default::default()
        })),
        llm: Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ZERO,
            token_interval: Duration::ZERO,
            ..Default::default()
        })),
        tts: Arc::new(ScriptedTts::new(ScriptedTtsConfig {
            ttfb: Latency::ZERO,
            ..Default::default()
        })),
        store: Arc::new(MemoryStore::seeded()),
        observer: Arc::new(NoopObserver),
        prices: Default::default(),
    }
}

/// One idle call. The room end must outlive the benches: dropping it hangs the call up.
async fn start_call() -> (CallHandle, RoomEnd) {
    let (end, link) = LoopbackRoom::pair(64);
    let spec = CallSpec {
        call_id: "bench-restart".into(),
        room: "bench-room".into(),
        caller: "bench-caller".into(),
    };
    let call = spawn_call(spec, pipeline(), deps(), link)
        .await
        .expect("call starts");
    (call, end)
}

async fn restarts(call: &CallHandle, kind: ChildKind) -> u32 {
    let snap = call.snapshot().await.expect("supervisor answers");
    assert!(snap.alive.contains(&kind), "{kind:?} not running");
    snap.restarts.get(&kind).copied().unwrap_or(0)
}

/// Kill `kind` and time until it has been restarted.
async fn restart_once(call: &CallHandle, kind: ChildKind) -> Duration {
    let before = restarts(call, kind).await;
    let t0 = Instant::now();
    call.supervisor
        .cast(SupervisorMsg::KillChild(kind))
        .expect("supervisor alive");
    // Back-to-back snapshots (no sleep, which would quantise the result): each is one round trip
    // through the supervisor's mailbox, queued behind the `Respawn` it is waiting for.
    loop {
        let snap = call.snapshot().await.expect("supervisor answers");
        let count = snap.restarts.get(&kind).copied().unwrap_or(0);
        if count > before && snap.alive.contains(&kind) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < GIVE_UP,
            "{kind:?} not restarted after {GIVE_UP:?}"
        );
    }
}

fn bench_restart(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (call, end) = rt.block_on(start_call());
    let kinds = [ChildKind::Vad, ChildKind::Stt, ChildKind::Tts];
    let mut hists: BTreeMap<ChildKind, Histogram<u64>> = BTreeMap::new();

    let mut group = c.benchmark_group("supervisor_restart");
    for kind in kinds {
        // Nanoseconds, 1 ns to 60 s, 3 significant digits.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        group.bench_function(kind.as_str(), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let d = restart_once(&call, kind).await;
                        hist.saturating_record(d.as_nanos() as u64);
                        total += d;
                    }
                    total
                })
            })
        });
        hists.insert(kind, hist);
    }
    group.finish();

    for (kind, h) in &hists {
        let us = |ns: u64| ns as f64 / 1_000.0;
        eprintln!(
            "supervisor_restart/{}: n={} p50={:.1}µs p99={:.1}µs max={:.1}µs (target p99 ≤ 5000µs)",
            kind.as_str(),
            h.len(),
            us(h.value_at_quantile(0.50)),
            us(h.value_at_quantile(0.99)),
            us(h.max()),
        );
    }

    // The call must have survived every kill.
    rt.block_on(async {
        let snap = call.snapshot().await.expect("supervisor answers");
        for kind in kinds {
            assert!(
                snap.alive.contains(&kind),
                "{kind:?} not running at the end"
            );
        }
        call.hang_up(EndReason::Shutdown);
        call.wait().await.expect("call outcome");
    });
    drop(end);
}

criterion_group! {
    name = supervisor_restart;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = bench_restart
}
criterion_main!(supervisor_restart);

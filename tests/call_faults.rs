//! Every fault kind each provider emulator can inject, mid-call, through the whole call tree and
//! the real clients: the call goes on and no turn is lost; a provider that stays down ends the call
//! with a recorded reason, or, with a secondary configured, the call fails over and goes on.
//! Real time (sockets), so each scenario is one short call and the scenarios run concurrently.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontdesk::emulators::faults::{FaultConfig, FaultKind};
use frontdesk::simulate::clips::Clips;
use frontdesk::simulate::report::Report;
use frontdesk::simulate::wire::{Wire, WireFaults};
use frontdesk::simulate::{self, ProviderMode, SimArgs};
use futures_util::future::join_all;

fn args(fallback: bool) -> SimArgs {
    SimArgs {
        calls: 1,
        duration: Duration::from_secs(12),
        ramp: Duration::ZERO,
        stt_latency_ms: 100,
        llm_ttft_ms: 200,
        llm_token_ms: 10,
        tts_ttfb_ms: 80,
        jitter_ms: 20,
        providers: ProviderMode::Wire,
        fault_rate: 0.0,
        fallback,
        store: simulate::StoreMode::Memory,
        report: None,
        pipeline: Default::default(),
        prices: Default::default(),
        cache: Default::default(),
        scenario: Default::default(),
    }
}

/// How a scenario arms its faults once the emulators are up.
type Arm = Box<dyn Fn(&Wire) + Send + Sync>;

async fn scenario(name: String, faults: WireFaults, fallback: bool, arm: Arm) -> (String, Report) {
    // RUST_LOG=info shows the call's story when a scenario fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let a = args(fallback);
    let script = Clips::load().unwrap().texts();
    let wire = Wire::start_with(&a, script, faults).await.unwrap();
    arm(&wire);
    let report = simulate::run_with(a, Some(wire)).await.unwrap();
    (name, report)
}

/// Each forced fault: the call completes, every line got a reply, the fault really happened.
async fn each_kind_mid_call(provider: &'static str, kinds: &[FaultKind], inner: bool) {
    let runs = kinds.iter().map(|&kind| {
        let arm: Arm = Box::new(move |w: &Wire| {
            let faults = &w.emulator(provider).unwrap().faults;
            if inner {
                faults.force_next_inner(kind);
            } else {
                faults.force_next(kind);
            }
        });
        scenario(
            format!("{provider}/{}", kind.as_str()),
            WireFaults::default(),
            false,
            arm,
        )
    });
    for (name, r) in join_all(runs).await {
        assert!(r.all_calls_completed(), "{name}: {:?}", r.end_reasons);
        assert_eq!(r.missed_replies, 0, "{name}: a turn was lost");
        // The fault strikes the first use (the greeting, the first utterance or its request):
        // the affected turn still gets its reply.
        assert!(
            r.turns >= 1 && r.replies_heard >= 2,
            "{name}:\n{}",
            r.table()
        );
        assert_eq!(r.faults.get(&name), Some(&1), "{name}: {:?}", r.faults);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepgram_faults_mid_call_lose_no_turn() {
    // The STT socket opens at call start: socket faults strike after a few messages, a stall is
    // found at the first Finalize. Handshake faults are exercised on the reconnect below.
    let kinds = [
        FaultKind::DropSocket,
        FaultKind::WrongCloseCode,
        FaultKind::MalformedJson,
        FaultKind::Stall,
    ];
    each_kind_mid_call("deepgram", &kinds, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepgram_refusing_the_reconnect_loses_no_turn() {
    let runs = [FaultKind::RateLimited, FaultKind::ServerError].map(|kind| {
        let arm: Arm = Box::new(move |w: &Wire| {
            let faults = &w.emulator("deepgram").unwrap().faults;
            faults.force_next(FaultKind::DropSocket);
            faults.force_next(kind);
        });
        scenario(kind.as_str().into(), WireFaults::default(), false, arm)
    });
    for (name, r) in join_all(runs).await {
        assert!(r.all_calls_completed(), "{name}: {:?}", r.end_reasons);
        assert_eq!(r.missed_replies, 0, "{name}");
        assert_eq!(r.faults.get(&format!("deepgram/{name}")), Some(&1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_faults_mid_call_lose_no_turn() {
    let kinds = [
        FaultKind::RateLimited,
        FaultKind::ServerError,
        FaultKind::DropSocket,
        FaultKind::Stall,
        FaultKind::MalformedJson,
        FaultKind::ErrorEvent,
    ];
    each_kind_mid_call("openai", &kinds, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cartesia_faults_mid_call_lose_no_turn() {
    // Drawn per context: the fault hits one reply of the running call.
    each_kind_mid_call("cartesia", FaultKind::ALL, true).await;
}

fn always(kind: FaultKind) -> FaultConfig {
    FaultConfig {
        rate: 1.0,
        kinds: vec![kind],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_stays_down_ends_the_call_with_a_recorded_reason() {
    let faults = WireFaults {
        deepgram: always(FaultKind::ServerError),
        ..Default::default()
    };
    let (_, r) = scenario("stt down".into(), faults, false, Box::new(|_| {})).await;
    assert_eq!(r.completed, 0);
    assert_eq!(
        r.end_reasons.get("budget_exhausted"),
        Some(&1),
        "{:?}",
        r.end_reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_secondaries_configured_calls_fail_over_mid_call() {
    // Every primary fails mid-stream or mid-request, every time: the breaker opens and the call
    // moves to the secondaries without losing a turn.
    let faults = WireFaults {
        deepgram: always(FaultKind::DropSocket),
        openai: always(FaultKind::Stall),
        cartesia: always(FaultKind::WrongCloseCode),
    };
    let (_, r) = scenario("fallback".into(), faults, true, Box::new(|_| {})).await;
    assert!(r.all_calls_completed(), "{:?}", r.end_reasons);
    assert_eq!(r.missed_replies, 0);
    assert!(r.turns >= 1 && r.replies_heard >= 2, "{}", r.table());
    for kind in ["stt", "llm", "tts"] {
        assert!(
            r.failovers.get(kind).is_some_and(|&n| n >= 1),
            "{kind}: {:?}",
            r.failovers
        );
    }
}

//! The simulation end to end (a few calls, paused time so it runs in well under a second of wall
//! time): every call completes, every stage is measured, nothing is dropped.

use std::time::Duration;

use frontdesk::simulate::{self, SimArgs};

fn args(calls: usize) -> SimArgs {
    SimArgs {
        calls,
        duration: Duration::from_secs(12),
        ramp: Duration::from_secs(1),
        stt_latency_ms: 150,
        llm_ttft_ms: 300,
        llm_token_ms: 20,
        tts_ttfb_ms: 120,
        jitter_ms: 40,
        providers: simulate::ProviderMode::Doubles,
        fault_rate: 0.0,
        fallback: false,
        store: simulate::StoreMode::Sqlite,
        report: None,
        pipeline: Default::default(),
        prices: Default::default(),
        cache: Default::default(),
        scenario: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn small_simulation_completes_every_call_and_measures_every_stage() -> anyhow::Result<()> {
    let report = simulate::run(args(4)).await?;
    assert_eq!(report.calls, 4);
    assert!(report.all_calls_completed(), "{:?}", report.end_reasons);
    assert!(report.turns >= 4, "only {} turns", report.turns);
    assert_eq!(report.missed_replies, 0);
    for stage in simulate::report::STAGES.map(str::trim) {
        let s = &report.stages[stage];
        assert!(s.count >= report.turns.min(4), "{stage}: {s:?}");
    }
    // Voice to voice includes at least the configured endpointing and the provider latencies.
    assert!(report.stages["turn_latency"].p50_ms > 600.0);
    assert!(
        report.edge_drops.values().all(|&d| d == 0),
        "{:?}",
        report.edge_drops
    );
    let json = serde_json::to_value(&report)?;
    assert!(json["stages"]["turn_latency"]["p99_ms"].is_number());
    assert!(report.table().contains("turn_latency"));
    // The host's steal over the run is read and reported (Linux has /proc/stat).
    let steal = report.host_steal.expect("host steal read from /proc/stat");
    assert!((0.0..=1.0).contains(&steal), "{steal}");
    assert!(json["host_steal"].is_number());
    assert!(report.table().contains("host steal "));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_on_the_wire_runs_the_real_clients_against_the_emulators() -> anyhow::Result<()>
{
    // Real time (sockets are involved), so keep it short.
    let mut a = args(2);
    a.providers = simulate::ProviderMode::Wire;
    a.duration = Duration::from_secs(6);
    let report = simulate::run(a).await?;
    assert!(report.all_calls_completed(), "{:?}", report.end_reasons);
    assert!(report.turns >= 2, "only {} turns", report.turns);
    assert_eq!(report.missed_replies, 0);
    assert!(report.stages["llm_ttft"].count >= 2);
    assert!(report.stages["tts_ttfb"].count >= 2);
    assert!(report.faults.is_empty());
    // The emulators report usage as the providers do, so the calls have a cost.
    assert!(
        report.cost_usd > 0.0 && report.call_minutes > 0.0,
        "{report:?}"
    );
    Ok(())
}

/// Every scenario, two calls each, on the doubles with the emulator's receptionist: each call
/// reaches its goal, checked in the database after it (booked, registered, moved, cancelled...),
/// and every tool ran.
#[tokio::test(start_paused = true)]
async fn every_scenario_reaches_its_goal_in_the_database() -> anyhow::Result<()> {
    let mut a = args(2 * simulate::scenario::ALL.len());
    a.duration = Duration::from_secs(90);
    a.ramp = Duration::from_secs(3);
    let report = simulate::run(a).await?;
    assert!(report.all_calls_completed(), "{:?}", report.end_reasons);
    let mut tools = std::collections::BTreeSet::new();
    for s in simulate::scenario::ALL {
        let row = &report.scenarios[s.name()];
        assert_eq!(
            (row.calls, row.goal_reached),
            (2, 2),
            "{}: {row:?}",
            s.name()
        );
        tools.extend(row.tools.keys().cloned());
    }
    let every: std::collections::BTreeSet<String> = frontdesk_actors::tools::TOOL_NAMES
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(tools, every);
    let json = serde_json::to_value(&report)?;
    assert_eq!(json["scenarios"]["new-patient"]["goal_reached"], 2);
    assert!(report.table().contains("registered and booked"));
    Ok(())
}

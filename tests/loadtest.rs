//! `frontdesk loadtest` end to end: the real binary against a real livekit-server
//! (tests/support/livekit.rs), spawning its own agent worker, with a few calls of two turns each;
//! the assertions are on the JSON report.
//!
//! Without a livekit-server binary the test prints `SKIPPED: ...` and passes; under
//! FRONTDESK_REQUIRE_E2E=1 (CI) it fails instead.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

#[path = "support/livekit.rs"]
mod livekit;

use std::process::Stdio;
use std::time::Duration;

use livekit::LiveKitServer;
use serde_json::Value;

const CALLS: usize = 3;
const TURNS: usize = 2;
use frontdesk::simulate::report::TURN_STAGES as STAGES;

/// Runs the load test; its JSON report, with its output printed on failure.
async fn loadtest(server: &LiveKitServer, report: &std::path::Path) -> Value {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.arg("loadtest")
        .args(["--url", &server.ws_url()])
        .args([
            "--api-key",
            server.api_key(),
            "--api-secret",
            server.api_secret(),
        ])
        .args(["--calls", &CALLS.to_string(), "--turns", &TURNS.to_string()])
        .args(["--ramp", "1s", "--worker", "spawn"])
        .arg("--report")
        .arg(report)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(pid) = server.pid() {
        cmd.args(["--server-pid", &pid.to_string()]);
    }
    // The local provider emulators, whatever keys this machine has.
    for var in [
        "OPENAI_API_KEY",
        "DEEPGRAM_API_KEY",
        "CARTESIA_API_KEY",
        "LIVEKIT_URL",
    ] {
        cmd.env_remove(var);
    }
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .expect("the load test did not finish in 4 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let text = std::fs::read_to_string(report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); exit {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server\n{}",
            out.status,
            server.log_tail(40)
        )
    });
    assert!(
        out.status.success(),
        "exit {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_reports_caller_and_agent_latencies_loss_and_cost_per_call() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let r = loadtest(&server, &dir.path().join("report.json")).await;
    assert_calls_and_turns(&r);
    assert_resources_and_packets(&r);
}

/// Every call completed, every turn was answered within sane bounds and matched the agent's record.
fn assert_calls_and_turns(r: &Value) {
    assert_eq!(r["calls"]["started"], CALLS, "{:#}", r["calls"]);
    assert_eq!(r["calls"]["completed"], CALLS, "{:#}", r["calls"]);
    assert_eq!(r["turns"]["spoken"], CALLS * TURNS);
    assert_eq!(r["turns"]["replied"], CALLS * TURNS, "{:#}", r["turns"]);
    let calls = r["per_call"].as_array().unwrap();
    assert_eq!(calls.len(), CALLS);
    for call in calls {
        let turns = call["turns"].as_array().unwrap();
        assert_eq!(turns.len(), TURNS, "{call:#}");
        for t in turns {
            let v2v = t["v2v_ms"]
                .as_f64()
                .unwrap_or_else(|| panic!("no v2v: {t:#}"));
            assert!(v2v > 0.0 && v2v < 10_000.0, "implausible v2v: {t:#}");
            // Correlation: the agent's record of the same room and turn.
            for stage in STAGES {
                assert!(t["agent"][stage].is_number(), "{stage} missing: {t:#}");
            }
            assert!(t["added_ms"].is_number(), "{t:#}");
        }
    }
    assert_eq!(r["correlation"]["turns_matched"], CALLS * TURNS);
    assert!(r["caller_ms"]["voice_to_voice"]["p50"].as_f64().unwrap() > 0.0);
    assert!(r["agent_ms"]["turn_latency"]["count"].as_u64().unwrap() > 0);
}

/// The worker's cost per call, the other processes sampled, packet loss both ways.
fn assert_resources_and_packets(r: &Value) {
    let worker = &r["resources"]["worker"];
    assert!(
        worker["cpu_ms_per_call_second"].as_f64().unwrap() > 0.0,
        "{worker:#}"
    );
    assert!(
        worker["rss_mb_per_call"].as_f64().unwrap() > 0.0,
        "{worker:#}"
    );
    assert!(r["resources"]["loadtest_callers"].is_object());
    assert!(r["resources"]["livekit_server"].is_object());
    let packets = &r["packets"];
    assert!(packets["agent_to_caller"]["received"].as_u64().unwrap() > 0);
    assert!(packets["agent_to_caller"]["loss_pct"].is_number());
    assert!(
        packets["caller_to_agent"]["loss_pct"].is_number(),
        "{packets:#}"
    );
}

//! What the agent publishes into the room, seen by a real LiveKit client: the real
//! `livekit-server`, the real worker (`frontdesk dev`, playground on) and the official Python SDK
//! as the caller (tests/support/caller/caller.py). The caller joins with a token from the
//! worker's own `POST /playground/token` and creates no dispatch: the token's room configuration
//! brings the agent. The SDK then raises `transcription_received` for both sides (the caller's
//! words against the caller's track, the agent's reply against the agent's track) and
//! `data_received` with the `frontdesk.turn` metrics of the reply.
//!
//! Without a livekit-server binary or the caller's venv the test prints `SKIPPED: ...`; under
//! FRONTDESK_REQUIRE_E2E=1 (CI) it fails instead.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

#[path = "support/agent_proc.rs"]
mod agent_proc;
#[path = "support/livekit.rs"]
mod livekit;

use std::time::Duration;

use agent_proc::Agent;
use livekit::{CallerEvent, CallerReport, LiveKitServer};
use serde_json::{json, Value};

const REGISTER: Duration = Duration::from_secs(60);

fn script() -> Value {
    json!([
        {"wait_agent_speech": {"timeout_ms": 30000}},
        {"wait_agent_silence": {"quiet_ms": 1200, "timeout_ms": 30000}},
        {"say": "tests/fixtures/speech/line01.wav"},
        {"wait_agent_speech": {"timeout_ms": 30000}},
        {"wait_agent_silence": {"quiet_ms": 1500, "timeout_ms": 30000}},
        {"pause_ms": 500},
        {"leave": true}
    ])
}

/// The final segments of `identity` in the report: (segment id, text, the track it was matched
/// to by the SDK).
fn segments(r: &CallerReport, identity: &str) -> Vec<(String, String, Option<String>)> {
    r.events_of("transcription_received")
        .filter(|e| e.fields.get("identity") == Some(&json!(identity)))
        .flat_map(|e: &CallerEvent| {
            let track = e.fields["track"].as_str().map(str::to_owned);
            e.fields["segments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s["final"] == json!(true))
                .map(move |s| {
                    let id = s["id"].as_str().unwrap_or_default().to_owned();
                    let text = s["text"].as_str().unwrap_or_default().to_owned();
                    (id, text, track.clone())
                })
        })
        .collect()
}

/// A token from the worker's playground endpoint.
async fn playground_token(agent: &Agent, room: &str, identity: &str) -> Value {
    let url = format!("http://127.0.0.1:{}/playground/token", agent.http_port);
    let r = reqwest::Client::new()
        .post(url)
        .json(&json!({"room": room, "identity": identity}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token endpoint");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playground_caller_gets_both_sides_transcript_and_the_turn_metrics() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    let agent = Agent::start(
        &server.ws_url(),
        server.api_key(),
        server.api_secret(),
        "fd-room-data",
    );
    agent.registered(REGISTER).await;
    let (room, identity) = ("e2e-room-data", "caller-data");
    let minted = playground_token(&agent, room, identity).await;
    assert_eq!(minted["url"], json!(server.ws_url()));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, minted["token"].as_str().unwrap()).unwrap();

    // No --dispatch: only the token's room configuration can bring the agent.
    let run = server
        .caller(room, identity, script())
        .arg("--token-file")
        .arg(token_file.display().to_string())
        .timeout(Duration::from_secs(150))
        .run(&python)
        .await;
    run.assert_ok();
    let r = &run.report;
    let agent_id = r.agent_identity.clone().expect("the agent was dispatched");

    let caller_said = segments(r, identity);
    let said = caller_said
        .iter()
        .find(|(id, _, _)| id == "turn-1-caller")
        .unwrap_or_else(|| panic!("no caller segment: {caller_said:?}"));
    assert!(!said.1.trim().is_empty(), "{said:?}");
    assert!(
        said.2.is_some(),
        "matched to the caller's own track: {said:?}"
    );

    let agent_said = segments(r, &agent_id);
    let reply = agent_said
        .iter()
        .find(|(id, _, _)| id == "turn-1-agent")
        .unwrap_or_else(|| panic!("no agent reply segment: {agent_said:?}"));
    assert!(!reply.1.trim().is_empty(), "{reply:?}");
    assert!(reply.2.is_some(), "matched to the agent's track: {reply:?}");
    assert!(
        agent_said
            .iter()
            .any(|(id, t, _)| id.starts_with("reply-") && !t.is_empty()),
        "the greeting: {agent_said:?}"
    );
    // While the reply was spoken, interim text under the same id (the final one replaced it).
    let interim = r
        .events_of("transcription_received")
        .flat_map(|e| e.fields["segments"].as_array().cloned().unwrap_or_default())
        .any(|s| s["id"] == json!("turn-1-agent") && s["final"] == json!(false));
    assert!(interim, "no interim agent segment: {agent_said:?}");

    let turns: Vec<Value> = r
        .events_of("data_received")
        .filter(|e| e.fields.get("topic") == Some(&json!("frontdesk.turn")))
        .map(|e| {
            assert_eq!(e.fields["identity"], json!(agent_id), "{e:?}");
            serde_json::from_str(e.fields["payload"].as_str().unwrap()).unwrap()
        })
        .collect();
    let first = turns
        .iter()
        .find(|t| t["turn"] == json!(1))
        .unwrap_or_else(|| panic!("no frontdesk.turn packet for turn 1: {turns:?}"));
    assert!(
        first["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{first}"
    );
    assert_eq!(first["interrupted"], json!(false), "{first}");
    for key in ["llm_ttft_ms", "tts_ttfb_ms"] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(
        first.as_object().unwrap().len(),
        5,
        "metrics only, no patient data: {first}"
    );
}

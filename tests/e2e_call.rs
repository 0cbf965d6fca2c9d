//! Real calls end to end: the real `livekit-server`, the real worker binary (`frontdesk dev`,
//! joining rooms over our WebRTC transport, providers on the local emulators, SQLite) and the
//! official LiveKit Python SDK as the caller (tests/support/caller/caller.py), speaking the
//! fixture lines and recording what it hears.
//!
//! - a dispatched agent answers the caller's booking request with audio, and the booking and the
//!   whole call record (turns, tool calls, usage) are in the database;
//! - a barge-in over real media stops the agent's audio within 300 ms of the caller's speech;
//! - the caller leaving ends the call, flushes the record and the job reports success;
//! - the LiveKit server crashing and coming back mid-call: the worker registers again and the
//!   call resumes (or ends with a recorded reason), nothing lost, no panic;
//! - two workers: jobs spread over both; SIGTERM drains one while the other takes new calls.
//!
//! Without a livekit-server binary or the caller's venv each test prints `SKIPPED: ...`;
//! under FRONTDESK_REQUIRE_E2E=1 (CI) they fail instead.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

#[path = "support/agent_proc.rs"]
mod agent_proc;
#[path = "support/livekit.rs"]
mod livekit;

use std::path::PathBuf;
use std::time::Duration;

use agent_proc::{Agent, Records};
use livekit::{CallerRun, Channel, LiveKitServer};
use serde_json::{json, Value};

const REGISTER: Duration = Duration::from_secs(60);
/// Seeded patient 4 and doctor 1 (actors/src/seed.rs): the caller of the fixture lines and the
/// cardiologist they book.
const NOAH_FISCHER: i64 = 4;
const DR_HART: i64 = 1;

fn line(n: u32) -> String {
    format!("tests/fixtures/speech/line{n:02}.wav")
}

/// Say a line, then wait for the agent's whole answer.
fn turn(n: u32) -> Vec<Value> {
    vec![
        json!({"say": line(n)}),
        json!({"wait_agent_speech": {"timeout_ms": 30000}}),
        json!({"wait_agent_silence": {"quiet_ms": 1500, "timeout_ms": 30000}}),
    ]
}

/// Wait for the greeting to play out.
fn greeting() -> Vec<Value> {
    vec![
        json!({"wait_agent_speech": {"timeout_ms": 30000}}),
        json!({"wait_agent_silence": {"quiet_ms": 1200, "timeout_ms": 30000}}),
    ]
}

fn script(parts: Vec<Vec<Value>>) -> Value {
    Value::Array(parts.into_iter().flatten().collect())
}

async fn setup(name: &str) -> Option<(LiveKitServer, PathBuf, Agent)> {
    let server = LiveKitServer::start().await?;
    let python = livekit::caller_python()?;
    let agent = Agent::start(
        &server.ws_url(),
        server.api_key(),
        server.api_secret(),
        name,
    );
    agent.registered(REGISTER).await;
    Some((server, python, agent))
}

/// Poll until `f` holds (or panic after `timeout` with `what`).
async fn until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The final status the LiveKit server recorded for `job` ("job ended" in its log), if any.
fn job_end(server: &LiveKitServer, job: &str) -> Option<String> {
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("job ended") && l.contains(&format!("\"jobID\": \"{job}\"")))?;
    let status = line.split("\"status\": \"").nth(1)?;
    Some(status.split('"').next()?.to_owned())
}

fn no_panic(agent: &Agent) {
    let log = agent.log_text();
    assert!(
        !log.contains("panicked"),
        "the agent panicked:\n{}",
        agent.log_tail(60)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_agent_books_the_callers_appointment() {
    let _serial = livekit::serial().await;
    let Some((server, python, agent)) = setup("fd-e2e-book").await else {
        return;
    };
    let room = "e2e-book";
    let steps = script(vec![
        greeting(),
        turn(1),
        turn(2),
        turn(3),
        turn(4),
        turn(6),
        vec![json!({"leave": true})],
    ]);
    let run = server
        .caller(room, "caller-book", steps)
        .dispatch(&agent.name)
        .timeout(Duration::from_secs(240))
        .run(&python)
        .await;
    run.assert_ok();
    let r = &run.report;
    assert!(r.agent_identity.is_some(), "the agent joined the room");
    assert_eq!(r.turns.len(), 5, "{:?}", r.turns);
    for (i, t) in r.turns.iter().enumerate() {
        assert!(
            t.first_agent_audio_ms.is_some(),
            "turn {i} got no spoken answer"
        );
    }
    // The agent's answers, as the caller heard them: several seconds of real speech.
    assert!(r.agent_audio.active_s > 8.0, "{:?}", r.agent_audio);
    assert!(
        r.agent_audio.rms_dbfs.unwrap() > -35.0,
        "{:?}",
        r.agent_audio
    );
    let rec = run.recording();
    assert!(rec.active_ms(Channel::Heard) > 8_000.0);

    // The caller left: the call ends, its record is flushed, the job succeeded.
    until(Duration::from_secs(30), "call ended", || async {
        agent.active_calls().await == 0
    })
    .await;
    let db = Records::open(&agent.db);
    let calls = db.calls_in(room);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (call, reason) = &calls[0];
    // The call id is the job id: the server recorded the job's success (not "agent left").
    until(Duration::from_secs(10), "job success", || async {
        job_end(&server, call).as_deref() == Some("JS_SUCCESS")
    })
    .await;
    assert_eq!(reason.as_deref(), Some("caller_hung_up"));
    let turns = db.turns(call);
    assert!(turns.len() >= 5, "{turns:?}");
    assert!(
        turns.iter().all(|(_, _, reply)| !reply.is_empty()),
        "{turns:?}"
    );
    let tools: Vec<String> = db.tool_calls(call).into_iter().map(|(n, _)| n).collect();
    assert!(tools.contains(&"find_patient".to_owned()), "{tools:?}");
    assert!(tools.contains(&"book_appointment".to_owned()), "{tools:?}");
    let (stt_s, prompt, completion, chars, cost) = db.usage(call).expect("usage recorded");
    assert!(stt_s > 5.0 && prompt > 0 && completion > 0 && chars > 50 && cost > 0.0);
    // A hospital's logs: the caller's name and birth date never at INFO or above.
    let log = agent.log_text();
    let leaked: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("\"level\":\"DEBUG\"") && !l.contains("\"level\":\"TRACE\""))
        .filter(|l| l.contains("Fischer") || l.contains("seventy nine"))
        .collect();
    assert!(leaked.is_empty(), "patient data at INFO+: {leaked:?}");
    let booked = db.appointments_of(NOAH_FISCHER);
    assert!(
        booked.iter().any(|(doctor, _)| *doctor == DR_HART),
        "{booked:?}"
    );
    no_panic(&agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_over_real_media_stops_the_agent_within_300_ms() {
    let _serial = livekit::serial().await;
    let Some((server, python, agent)) = setup("fd-e2e-barge").await else {
        return;
    };
    let steps = script(vec![
        vec![
            json!({"wait_agent_speech": {"timeout_ms": 30000}}),
            // Talk over the greeting, 800 ms into it.
            json!({"barge_in": {"after_ms": 800, "say": line(1)}}),
        ],
        vec![
            json!({"wait_agent_speech": {"timeout_ms": 30000}}),
            json!({"wait_agent_silence": {"quiet_ms": 1500, "timeout_ms": 30000}}),
            json!({"leave": true}),
        ],
    ]);
    let run = server
        .caller("e2e-barge", "caller-barge", steps)
        .dispatch(&agent.name)
        .timeout(Duration::from_secs(120))
        .run(&python)
        .await;
    run.assert_ok();
    let rec = run.recording();
    let said = run
        .report
        .first("say_start")
        .expect("the barge-in was spoken");
    // The caller's speech as it is in the recording (the onset of channel 0 from there on).
    let speech = rec
        .speech_onsets(Channel::Sent)
        .into_iter()
        .find(|t| *t >= said - 40.0)
        .expect("caller speech in the recording");
    assert!(
        rec.rms_dbfs(Channel::Heard, speech - 200.0, speech) > -40.0,
        "the agent was speaking when the caller started"
    );
    let stop = rec
        .agent_audio_stop_after(speech)
        .expect("the agent's audio stopped");
    let took = stop - speech;
    eprintln!("barge-in: agent audio stopped {took:.0} ms after the caller's speech start");
    assert!(
        took <= 300.0,
        "agent kept talking {took:.0} ms over the caller"
    );
    assert!(
        run.report
            .turns
            .iter()
            .any(|t| t.first_agent_audio_ms.is_some()),
        "the interrupted agent answered the caller"
    );
    let records = Records::open(&agent.db);
    until(Duration::from_secs(30), "call ended", || async {
        agent.active_calls().await == 0
    })
    .await;
    assert_eq!(records.calls_in("e2e-barge").len(), 1);
    no_panic(&agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_leaving_ends_the_call_and_the_job_succeeds() {
    let _serial = livekit::serial().await;
    let Some((server, python, agent)) = setup("fd-e2e-leave").await else {
        return;
    };
    let room = "e2e-leave";
    // The caller hangs up while the agent is still answering.
    let steps = script(vec![
        greeting(),
        vec![
            json!({"say": line(1)}),
            json!({"wait_agent_speech": {"timeout_ms": 30000}}),
            json!({"pause_ms": 300}),
            json!({"leave": true}),
        ],
    ]);
    let run = server
        .caller(room, "caller-leave", steps)
        .dispatch(&agent.name)
        .timeout(Duration::from_secs(90))
        .run(&python)
        .await;
    run.assert_ok();
    let left_at = std::time::Instant::now();
    until(
        Duration::from_secs(15),
        "call ended after the caller left",
        || async { agent.active_calls().await == 0 },
    )
    .await;
    eprintln!("call ended {:?} after the caller left", left_at.elapsed());
    let db = Records::open(&agent.db);
    let calls = db.calls_in(room);
    assert_eq!(calls.len(), 1);
    until(Duration::from_secs(10), "job success", || async {
        job_end(&server, &calls[0].0).as_deref() == Some("JS_SUCCESS")
    })
    .await;
    assert_eq!(calls[0].1.as_deref(), Some("caller_hung_up"));
    // The turn in progress at hang-up is in the record.
    assert_eq!(db.turns(&calls[0].0).len(), 1);
    assert!(db.usage(&calls[0].0).is_some());
    // The agent left the room: nobody is left in it.
    until(Duration::from_secs(15), "agent left the room", || async {
        server.participants(room).await.is_empty()
    })
    .await;
    no_panic(&agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_mid_call_is_survived() {
    let _serial = livekit::serial().await;
    let Some((mut server, python, agent)) = setup("fd-e2e-restart").await else {
        return;
    };
    let room = "e2e-restart";
    let before = agent.worker().await.unwrap()["worker_id"].clone();
    let steps = script(vec![
        greeting(),
        turn(1),
        // The server dies and comes back here; the SDK rejoins on its own.
        vec![json!({"pause_ms": 9000})],
        turn(2),
        vec![json!({"leave": true})],
    ]);
    let caller = server
        .caller(room, "caller-restart", steps)
        .dispatch(&agent.name)
        .arg("--keep-going")
        .timeout(Duration::from_secs(150))
        .spawn(&python);
    // Wait for the first answer, then crash the server.
    until(
        Duration::from_secs(60),
        "first turn in the record",
        || async {
            let db = Records::open(&agent.db);
            db.calls_in(room)
                .first()
                .is_some_and(|(c, _)| !db.turns(c).is_empty())
        },
    )
    .await;
    server.crash_restart().await;
    // The worker registers again with the new server.
    until(Duration::from_secs(60), "registered again", || async {
        agent
            .worker()
            .await
            .is_some_and(|w| w["connected"] == true && w["worker_id"] != before)
    })
    .await;
    let run: CallerRun = caller.wait().await;
    until(Duration::from_secs(60), "call ended", || async {
        agent.active_calls().await == 0
    })
    .await;
    let db = Records::open(&agent.db);
    let calls = db.calls_in(room);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (call, reason) = &calls[0];
    let turns = db.turns(call);
    // Nothing said before the crash is lost.
    assert!(
        !turns.is_empty(),
        "the turn before the crash is in the record"
    );
    let resumed = run.report.turns.len() >= 2 && run.report.turns[1].first_agent_audio_ms.is_some();
    eprintln!(
        "after the crash: resumed={resumed}, end reason {reason:?}, {} turns",
        turns.len()
    );
    for l in agent.log_lines("room media") {
        eprintln!("agent: {} {}", l["message"], l["mode"]);
    }
    if resumed {
        assert!(
            turns.len() >= 2,
            "the turn after the crash is in the record: {turns:?}"
        );
        let recovered = agent.log_lines("room media recovered");
        assert_eq!(recovered.len(), 1, "one recovery of the room");
    } else {
        assert!(reason.is_some(), "the call ended with a recorded reason");
    }
    no_panic(&agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_calls_and_one_drains_on_sigterm() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    let (url, key, secret) = (server.ws_url(), server.api_key(), server.api_secret());
    // One dispatch name, two processes; two calls each at most, so four calls must spread.
    let name = "fd-e2e-pair";
    let mut agents = [
        Agent::start_limited(&url, key, secret, name, 2),
        Agent::start_limited(&url, key, secret, name, 2),
    ];
    for a in &agents {
        a.registered(REGISTER).await;
    }
    let short = || script(vec![greeting(), turn(1), vec![json!({"leave": true})]]);
    let runs = futures_util::future::join_all((0..4).map(|i| {
        server
            .caller(&format!("e2e-pair-{i}"), &format!("caller-{i}"), short())
            .dispatch(name)
            .timeout(Duration::from_secs(120))
            .run(&python)
    }))
    .await;
    runs.iter().for_each(CallerRun::assert_ok);
    until(Duration::from_secs(30), "calls ended", || async {
        agents[0].active_calls().await + agents[1].active_calls().await == 0
    })
    .await;
    let rooms = |agent: &Agent| {
        let db = Records::open(&agent.db);
        (0..4)
            .filter(|i| !db.calls_in(&format!("e2e-pair-{i}")).is_empty())
            .count()
    };
    assert_eq!(
        (rooms(&agents[0]), rooms(&agents[1])),
        (2, 2),
        "four calls over two workers of two"
    );

    // A long call on one worker, then SIGTERM it: it drains (finishes that call, takes no new
    // one) while the other keeps taking calls.
    let long = script(vec![
        greeting(),
        turn(1),
        vec![json!({"pause_ms": 6000})],
        turn(2),
        vec![json!({"leave": true})],
    ]);
    let first = server
        .caller("e2e-pair-long", "caller-long", long)
        .dispatch(name)
        .timeout(Duration::from_secs(150))
        .spawn(&python);
    until(Duration::from_secs(30), "the long call started", || async {
        agents[0].active_calls().await + agents[1].active_calls().await == 1
    })
    .await;
    let busy = usize::from(agents[0].active_calls().await != 1);
    let idle = 1 - busy;
    agents[busy].sigterm();
    until(Duration::from_secs(10), "draining", || async {
        agents[busy]
            .worker()
            .await
            .is_some_and(|w| w["draining"] == true)
    })
    .await;
    let during = server
        .caller("e2e-pair-new", "caller-new", short())
        .dispatch(name)
        .timeout(Duration::from_secs(120))
        .run(&python)
        .await;
    during.assert_ok();
    let new_calls = Records::open(&agents[idle].db).calls_in("e2e-pair-new");
    assert_eq!(new_calls.len(), 1, "the new call went to the other worker");
    let long_run = first.wait().await;
    long_run.assert_ok();
    let exit = agents[busy].wait_exit(Duration::from_secs(60)).await;
    assert_eq!(exit, Some(0), "the drained worker exits cleanly");
    let db = Records::open(&agents[busy].db);
    let calls = db.calls_in("e2e-pair-long");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].1.as_deref(),
        Some("caller_hung_up"),
        "the long call finished during the drain"
    );
    no_panic(&agents[idle]);
}

/// `frontdesk connect --room` joins a room directly, without dispatch, and holds one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_joins_a_room_directly_and_holds_one_call() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("connect.db");
    let agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args([
            "connect",
            "--room",
            "e2e-connect",
            "--url",
            &server.ws_url(),
        ])
        .args([
            "--api-key",
            server.api_key(),
            "--api-secret",
            server.api_secret(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let steps = script(vec![greeting(), turn(1), vec![json!({"leave": true})]]);
    let run = server
        .caller("e2e-connect", "caller-connect", steps)
        .timeout(Duration::from_secs(120))
        .run(&python)
        .await;
    run.assert_ok();
    let out = tokio::time::timeout(Duration::from_secs(30), agent.wait_with_output())
        .await
        .expect("connect exits when the call ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("call ended (caller_hung_up) after 1 turn(s)"),
        "{stdout}"
    );
    assert_eq!(Records::open(&db).calls_in("e2e-connect").len(), 1);
}

//! The end-to-end test infrastructure checked on its own, without the agent: a real livekit-server
//! (tests/support/livekit.rs) and callers on the official LiveKit Python SDK
//! (tests/support/caller/caller.py) talking to each other through it, the server restarted under
//! them, and the recording analysis and skip rule on known inputs.
//!
//! Without a livekit-server binary or the caller's venv the server tests print `SKIPPED: ...` and
//! pass; under FRONTDESK_REQUIRE_E2E=1 (CI) they fail instead.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

#[path = "support/livekit.rs"]
mod livekit;

use std::path::PathBuf;
use std::time::Duration;

use livekit::{Channel, LiveKitServer, Recording};
use serde_json::json;

const LINE1: &str = "tests/fixtures/speech/line01.wav";
const LINE2: &str = "tests/fixtures/speech/line02.wav";
const LINE3: &str = "tests/fixtures/speech/line03.wav";
const WAIT: Duration = Duration::from_secs(60);
/// Onsets are found on 20 ms windows.
const WINDOW_SLACK_MS: f64 = 20.0;

/// A's say_start/say_end moved onto B's timeline (both callers' clocks start when each joined).
fn on_timeline_of(t_ms: f64, from: &livekit::CallerReport, to: &livekit::CallerReport) -> f64 {
    t_ms + (from.joined_at_unix_ms.unwrap() - to.joined_at_unix_ms.unwrap()) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_hear_each_other_on_one_timeline() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    // A speaks once B is there, then waits for B's answer. B plays a tiny agent: waits for A's
    // speech and the silence after it, answers, and waits for A to leave. Each listens to the
    // other (--listen-any: neither is an agent).
    let a = server
        .caller(
            "infra-two",
            "caller-a",
            json!([
                {"wait_agent_joined": {"timeout_ms": 30000}},
                {"pause_ms": 500},
                {"say": LINE1},
                {"wait_agent_speech": {"timeout_ms": 30000}},
                {"wait_agent_silence": {"quiet_ms": 800, "timeout_ms": 30000}},
                {"leave": true}
            ]),
        )
        .listen_any()
        .timeout(Duration::from_secs(90));
    let b = server
        .caller(
            "infra-two",
            "caller-b",
            json!([
                {"wait_agent_speech": {"timeout_ms": 40000}},
                {"wait_agent_silence": {"quiet_ms": 800, "timeout_ms": 30000}},
                {"say": LINE2},
                {"wait_disconnect": {"timeout_ms": 40000}}
            ]),
        )
        .listen_any()
        .timeout(Duration::from_secs(90));
    let (a, b) = tokio::join!(a.run(&python), b.run(&python));
    a.assert_ok();
    b.assert_ok();
    let (ra, rb) = (&a.report, &b.report);
    assert_eq!(ra.agent_identity.as_deref(), Some("caller-b"));
    assert_eq!(rb.agent_identity.as_deref(), Some("caller-a"));

    // B heard A's words where A said them: the onset on B's recording lies inside A's utterance,
    // moved to B's clock (after it started: the network is not instantaneous).
    let a_start = on_timeline_of(ra.first("say_start").unwrap(), ra, rb);
    let a_end = on_timeline_of(ra.first("say_end").unwrap(), ra, rb);
    let b_rec = b.recording();
    let onsets = b_rec.speech_onsets(Channel::Heard);
    assert!(!onsets.is_empty(), "B heard nothing: {:?}", rb.agent_audio);
    assert!(
        a_start < onsets[0] && onsets[0] < a_end,
        "B's first onset {} ms not within A's utterance {a_start}..{a_end} ms (B's clock)",
        onsets[0]
    );
    // ...all of them, near enough: the clip's speech is several seconds long.
    let a_rec = a.recording();
    let sent = a_rec.active_ms(Channel::Sent);
    let heard = b_rec.active_ms(Channel::Heard);
    assert!(sent > 2000.0, "A's clip has {sent} ms of speech");
    assert!(
        heard > 0.6 * sent && heard < 1.4 * sent,
        "B heard {heard} ms of A's {sent} ms"
    );
    // The report's figures agree with the WAV.
    assert!((rb.agent_audio.active_s * 1000.0 - heard).abs() < 1.0);
    assert!(rb.frames_received > 100);

    // A's channel 0 holds the clip at its say_start.
    let a_onset = a_rec.speech_onsets(Channel::Sent)[0];
    let say_start = ra.first("say_start").unwrap();
    assert!(
        (a_onset - say_start).abs() < 100.0,
        "A's sent onset {a_onset} ms vs say_start {say_start} ms"
    );

    // A's turn: B's answer came after A stopped, at least B's quiet wait later.
    assert_eq!(ra.turns.len(), 1, "{:?}", ra.turns);
    let turn = &ra.turns[0];
    let v2v = turn.voice_to_voice_ms.expect("A heard no answer");
    assert!(v2v > 0.0, "{turn:?}");
    let answer = a_rec.speech_onsets(Channel::Heard);
    assert!(
        answer
            .iter()
            .any(|t| (t - turn.first_agent_audio_ms.unwrap()).abs() < 1.0),
        "turn {turn:?} vs A's heard onsets {answer:?}"
    );
    // And A's recording has B's answer on channel 1 and its own words on channel 0 only.
    assert!(a_rec.active_ms(Channel::Heard) > 1000.0);
    assert!(
        a_rec.rms_dbfs(Channel::Heard, 0.0, say_start) < livekit::THRESHOLD_DBFS,
        "A heard something before it spoke"
    );

    // B saw A leave; A's audio had stopped (and B's answer was over) before that.
    assert!(rb.first("agent_left").is_some(), "{:?}", rb.events);
    let left = on_timeline_of(ra.first("caller_left").unwrap(), ra, rb);
    let stop = b_rec.agent_audio_stop_after(onsets[0]).unwrap();
    assert!(onsets[0] < stop && stop < left, "{onsets:?} {stop} {left}");
    assert!(rb.first("say_end").unwrap() < left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_speaks_into_the_heard_speech() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    // A talks for ~5 s; B barges in 700 ms into what it hears.
    let a = server
        .caller(
            "infra-barge",
            "caller-a",
            json!([
                {"wait_agent_joined": {"timeout_ms": 30000}},
                {"pause_ms": 500},
                {"say": LINE2},
                {"pause_ms": 500},
                {"leave": true}
            ]),
        )
        .listen_any()
        .timeout(WAIT);
    let b = server
        .caller(
            "infra-barge",
            "caller-b",
            json!([
                {"barge_in": {"after_ms": 700, "say": LINE3, "timeout_ms": 40000}},
                {"wait_disconnect": {"timeout_ms": 40000}}
            ]),
        )
        .listen_any()
        .timeout(WAIT);
    let (a, b) = tokio::join!(a.run(&python), b.run(&python));
    a.assert_ok();
    b.assert_ok();

    // On B's timeline: its words go out no earlier than 700 ms into A's (the source queue is
    // accounted for), and while A is still talking.
    let b_rec = b.recording();
    let (heard_start, heard_end) = b_rec.speech_segments(Channel::Heard)[0];
    let barge = b.report.events_of("say_start").next().unwrap();
    assert_eq!(barge.fields["barge_in"], true);
    assert!(
        barge.t_ms >= heard_start + 700.0 - WINDOW_SLACK_MS && barge.t_ms < heard_end,
        "barge-in at {} ms; A heard over {heard_start}..{heard_end} ms",
        barge.t_ms
    );
    let sent_onset = b_rec.speech_onsets(Channel::Sent)[0];
    assert!((sent_onset - barge.t_ms).abs() < 100.0);
    // On A's: B's voice arrives while A is still speaking.
    let a_rec = a.recording();
    let (a_start, a_end) = (
        a.report.first("say_start").unwrap(),
        a.report.first("say_end").unwrap(),
    );
    let heard = a_rec.speech_onsets(Channel::Heard);
    assert!(
        heard.first().is_some_and(|t| a_start < *t && *t < a_end),
        "A spoke {a_start}..{a_end} ms, heard B at {heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_comes_back_on_the_same_ports_and_ends_calls() {
    let _serial = livekit::serial().await;
    let Some(mut server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    let ports = server.ports();
    let caller = server
        .caller(
            "infra-restart",
            "caller-r",
            json!([{"wait_disconnect": {"timeout_ms": 60000, "or_reconnecting": true}}]),
        )
        .timeout(WAIT)
        .spawn(&python);
    assert!(
        server
            .wait_for_publisher("infra-restart", "caller-r", WAIT)
            .await,
        "the caller never joined"
    );
    let pid = server.pid();

    server.restart().await;
    assert_eq!(server.ports(), ports);
    assert_ne!(server.pid(), pid, "not a new process");
    assert!(server.is_up().await);
    assert!(server.log_tail(200).contains("=== start 2"));

    // The shutdown ended the call. The server usually tells the caller why (Leave,
    // SERVER_SHUTDOWN), but its signal socket can close before that Leave is out (seen in CI):
    // then the SDK sees the session drop and starts reconnecting.
    let run = caller.wait().await;
    run.assert_ok();
    let told = run.report.disconnect_reason.as_deref() == Some("SERVER_SHUTDOWN");
    let dropped = run.report.first("reconnecting").is_some();
    assert!(
        told || dropped,
        "the call outlived the shutdown: reason {:?}, no reconnect",
        run.report.disconnect_reason
    );
    // The restarted server carries calls: a new caller joins, publishes and leaves cleanly.
    let again = server
        .caller(
            "infra-restart",
            "caller-r2",
            json!([{"say": LINE3}, {"leave": true}]),
        )
        .timeout(WAIT)
        .run(&python)
        .await;
    again.assert_ok();
    assert!(again.report.first("say_end").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restart_lets_the_caller_reconnect_and_ctrl_c_still_reports() {
    let _serial = livekit::serial().await;
    let Some(mut server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    let caller = server
        .caller("infra-crash", "caller-c", json!([{"pause_ms": 120000}]))
        .timeout(Duration::from_secs(180))
        .spawn(&python);
    assert!(
        server
            .wait_for_publisher("infra-crash", "caller-c", WAIT)
            .await
    );
    server.crash_restart().await;
    // The SDK reconnects by itself to the new process.
    assert!(
        server
            .wait_for_publisher("infra-crash", "caller-c", WAIT)
            .await,
        "the caller did not come back after the crash"
    );
    caller.interrupt();
    let run = caller.wait().await;
    assert_eq!(run.exit_code, Some(130), "{}", run.stderr);
    assert!(!run.report.ok);
    assert!(
        run.report.errors.iter().any(|e| e.contains("SIGINT")),
        "{:?}",
        run.report.errors
    );
    let events = |kind| {
        run.report
            .first(kind)
            .unwrap_or_else(|| panic!("no {kind} event; caller log:\n{}", run.stderr))
    };
    let (reconnecting, reconnected) = (events("reconnecting"), events("reconnected"));
    assert!(reconnecting < reconnected);
    assert!(run.wav_path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_steps_and_the_overall_timeout_are_reported() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let Some(python) = livekit::caller_python() else {
        return;
    };
    // Alone in the room: no agent speech ever. With --keep-going the say still runs.
    let failed = server
        .caller(
            "infra-fail",
            "caller-f",
            json!([
                {"wait_agent_speech": {"timeout_ms": 500}},
                {"pause_ms": 300},
                {"say": LINE3}
            ]),
        )
        .arg("--keep-going")
        .dispatch("frontdesk-infra")
        .timeout(WAIT);
    // The script would wait a minute; --timeout cuts it at 5 s.
    let timed_out = server
        .caller(
            "infra-timeout",
            "caller-t",
            json!([{"wait_agent_speech": {"timeout_ms": 60000}}]),
        )
        .timeout(Duration::from_secs(5));
    let (failed, timed_out) = tokio::join!(failed.run(&python), timed_out.run(&python));

    assert_eq!(failed.exit_code, Some(1), "{}", failed.stderr);
    let r = &failed.report;
    assert!(!r.ok);
    assert_eq!(r.steps.len(), 3);
    assert!(
        !r.steps[0].ok && r.steps[1].ok && r.steps[2].ok,
        "{:?}",
        r.steps
    );
    assert!(r.steps[0].error.as_deref().unwrap().contains("timed out"));
    assert!(r.first("step_timeout").is_some());
    // The clip is on channel 0 where say_start says, the rest silent, nothing heard.
    let rec = failed.recording();
    let say_start = r.first("say_start").unwrap();
    let onsets = rec.speech_onsets(Channel::Sent);
    assert_eq!(onsets.len(), 1, "{onsets:?}");
    assert!(
        (onsets[0] - say_start).abs() < 100.0,
        "{onsets:?} {say_start}"
    );
    assert!(rec.rms_dbfs(Channel::Sent, 0.0, say_start) < livekit::THRESHOLD_DBFS);
    assert_eq!(rec.active_ms(Channel::Heard), 0.0);
    // The explicit dispatch was created in the room (no worker takes it here).
    let id = r.dispatch_id.clone().expect("no dispatch id");
    assert!(r.first("dispatch_created").is_some());
    let dispatches = server
        .twirp(
            "AgentDispatchService",
            "ListDispatch",
            json!({"room": "infra-fail"}),
        )
        .await
        .unwrap();
    let listed = &dispatches["agent_dispatches"];
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str() && d["agent_name"] == "frontdesk-infra"),
        "{dispatches}"
    );

    assert_eq!(timed_out.exit_code, Some(2), "{}", timed_out.stderr);
    let r = &timed_out.report;
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("timeout") && e.contains("step 0")),
        "{:?}",
        r.errors
    );
    assert!(r.first("timeout").is_some());
}

// ---------------------------------------------------------------- no server needed

fn tone(rate: u32, ms: u32, amplitude: f64) -> Vec<i16> {
    (0..rate * ms / 1000)
        .map(|i| {
            (amplitude * (i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin()) as i16
        })
        .collect()
}

fn silence(rate: u32, ms: u32) -> Vec<i16> {
    vec![0; (rate * ms / 1000) as usize]
}

#[test]
fn recording_analysis_finds_onsets_stops_and_levels() {
    let rate = 16000;
    // heard: 1 s silence, 500 ms tone, 200 ms silence (merged: < hangover), 300 ms tone,
    // 1 s silence, 400 ms tone, 300 ms silence.
    let heard = [
        silence(rate, 1000),
        tone(rate, 500, 8000.0),
        silence(rate, 200),
        tone(rate, 300, 8000.0),
        silence(rate, 1000),
        tone(rate, 400, 8000.0),
        silence(rate, 300),
    ]
    .concat();
    let sent = [silence(rate, 2500), tone(rate, 200, 100.0)].concat(); // -50 dBFS: below
    let rec = Recording::from_samples(rate, sent, heard);

    assert_eq!(rec.speech_onsets(Channel::Heard), vec![1000.0, 3000.0]);
    assert_eq!(
        rec.speech_segments(Channel::Heard),
        vec![(1000.0, 2000.0), (3000.0, 3400.0)]
    );
    assert_eq!(rec.active_ms(Channel::Heard), 1200.0);
    assert!(rec.speech_onsets(Channel::Sent).is_empty());
    assert_eq!(rec.active_ms(Channel::Sent), 0.0);

    // Stops: mid-tone the audio stops when the tone ends; the 200 ms gap counts as a stop (it
    // is ≥ 100 ms); already-quiet time is its own answer; the end without 100 ms quiet is None.
    assert_eq!(rec.agent_audio_stop_after(1100.0), Some(1500.0));
    assert_eq!(rec.agent_audio_stop_after(1700.0), Some(2000.0));
    assert_eq!(rec.agent_audio_stop_after(2500.0), Some(2500.0));
    assert_eq!(rec.agent_audio_stop_after(3100.0), Some(3400.0));
    assert_eq!(rec.quiet_after(Channel::Heard, 3100.0, 400.0), None);

    // A sine at amplitude A is A/√2 RMS: 8000 → -15.3 dBFS.
    let level = rec.rms_dbfs(Channel::Heard, 1000.0, 1500.0);
    assert!((level - -15.26).abs() < 0.1, "{level}");
    assert_eq!(rec.rms_dbfs(Channel::Heard, 0.0, 1000.0), f64::NEG_INFINITY);
    let windows = rec.window_dbfs(Channel::Heard);
    assert_eq!(windows.len(), 3700 / 20);
    assert!(windows[49] < livekit::THRESHOLD_DBFS && windows[50] > livekit::THRESHOLD_DBFS);
}

#[test]
fn recording_reads_the_callers_wav_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..48000 {
        // channel 0 loud in the first half, channel 1 in the second
        let (l, r) = if i < 24000 { (10000, 0) } else { (0, -10000) };
        w.write_sample(l as i16).unwrap();
        w.write_sample(r as i16).unwrap();
    }
    w.finalize().unwrap();
    let rec = Recording::open(&path);
    assert_eq!(rec.rate, 48000);
    assert_eq!(rec.duration_ms(), 1000.0);
    assert_eq!(rec.speech_segments(Channel::Sent), vec![(0.0, 500.0)]);
    assert_eq!(rec.speech_segments(Channel::Heard), vec![(500.0, 1000.0)]);
}

#[test]
fn skip_rule_skips_loudly_unless_required() {
    let mut out = Vec::new();
    let skipped: Option<()> = livekit::skip_or_fail(
        false,
        "some_test",
        "no livekit-server binary",
        "go missing",
        &mut out,
    );
    assert!(skipped.is_none());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "SKIPPED: some_test: no livekit-server binary (go missing)\n"
    );

    let required = std::panic::catch_unwind(|| {
        let mut out = Vec::new();
        livekit::skip_or_fail::<()>(
            true,
            "some_test",
            "no livekit-server binary",
            "go missing",
            &mut out,
        );
        out
    });
    let message = *required
        .expect_err("FRONTDESK_REQUIRE_E2E must fail, not skip")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("go missing") && message.contains("FRONTDESK_REQUIRE_E2E"));
}

#[test]
fn binary_lookup_prefers_the_env_then_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    // A wrong LIVEKIT_SERVER_BIN is an error naming it, not a silent fall-back.
    let err = livekit::find_server_binary(Some("/nonexistent/lk".into()), cache.path(), false)
        .unwrap_err();
    assert!(err.contains("LIVEKIT_SERVER_BIN=/nonexistent/lk"), "{err}");
    // Nothing cached and no go: the reason names where it looked.
    let err = livekit::find_server_binary(None, cache.path(), false).unwrap_err();
    assert!(
        err.contains("livekit-server-v1.13.5/livekit-server"),
        "{err}"
    );
    // A cached binary is used as it is.
    let bin = cache.path().join("livekit-server-v1.13.5/livekit-server");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    let mut perms = std::fs::metadata(&bin).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&bin, perms).unwrap();
    assert_eq!(
        livekit::find_server_binary(None, cache.path(), false).unwrap(),
        bin
    );
    // The same order for the caller's python.
    let err =
        livekit::find_caller_python(Some(PathBuf::from("/nonexistent/py")), cache.path(), false)
            .unwrap_err();
    assert!(
        err.contains("FRONTDESK_CALLER_PYTHON=/nonexistent/py"),
        "{err}"
    );
    let err = livekit::find_caller_python(None, cache.path(), false).unwrap_err();
    assert!(err.contains("caller-venv/bin/python"), "{err}");
}

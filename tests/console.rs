//! `frontdesk console` end to end on the emulators: a fixture WAV in, the transcript of each turn
//! and a WAV of the agent's audio out. Real time (about 15 s): the emulators are real sockets.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontdesk::config::AppConfig;
use frontdesk::console::taps::Speaker;
use frontdesk::console::{self, ConsoleArgs, ConsoleError};
use frontdesk::secret::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wav_call_through_the_emulators() {
    let output = std::env::temp_dir().join(format!("frontdesk-console-{}.wav", std::process::id()));
    let args = ConsoleArgs {
        input: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/speech/line01.wav"
        )
        .into(),
        output: output.clone(),
        say: vec!["I would like to book an appointment with a heart doctor.".into()],
        emulators: true,
        reply_timeout: Duration::from_secs(10),
    };
    // The embedded store in memory: a test leaves no database file behind.
    let mut cfg = AppConfig::default();
    cfg.database.sqlite_path = ":memory:".into();
    let outcome = console::run(&cfg, &args, false).await.unwrap();
    assert!(outcome.emulated);
    assert_eq!(outcome.end_reason, "caller_hung_up");
    assert!(outcome.turns >= 1, "{outcome:?}");
    let said = |who: Speaker| {
        outcome
            .transcript
            .iter()
            .filter(|l| l.speaker == who)
            .count()
    };
    assert_eq!(said(Speaker::Caller), 1, "{:?}", outcome.transcript);
    assert!(
        said(Speaker::Agent) >= 2,
        "greeting and a reply: {:?}",
        outcome.transcript
    );
    assert!(
        outcome.transcript[1].text.contains("heart doctor"),
        "{:?}",
        outcome.transcript
    );
    let wav = hound::WavReader::open(&output).unwrap();
    assert_eq!(wav.spec().sample_rate, 48_000);
    assert_eq!(wav.len() as usize, outcome.agent_samples);
    assert!(wav.duration() > 48_000 * 2, "at least 2 s of agent audio");
    let _ = std::fs::remove_file(output);
}

/// Every provider on a closed port: the call dies (restart budgets run out) and `run` says so,
/// instead of reporting it like a call the caller ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_dies_is_an_error() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let output = std::env::temp_dir().join(format!("frontdesk-dead-{}.wav", std::process::id()));
    let args = ConsoleArgs {
        input: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/speech/line01.wav"
        )
        .into(),
        output: output.clone(),
        say: vec![],
        emulators: false,
        reply_timeout: Duration::from_secs(2),
    };
    let mut cfg = AppConfig::default();
    cfg.database.sqlite_path = ":memory:".into();
    let p = &mut cfg.providers;
    p.deepgram.url = format!("ws://{closed}/v1/listen");
    p.openai.base_url = format!("http://{closed}");
    p.cartesia.url = format!("ws://{closed}");
    p.deepgram.api_key = Secret::new("dead");
    p.openai.api_key = Secret::new("dead");
    p.cartesia.api_key = Secret::new("dead");
    cfg.pipeline.dialogue.farewell_timeout_ms = 500;
    let err = console::run(&cfg, &args, false).await.unwrap_err();
    assert!(
        matches!(&err, ConsoleError::Failed { reason, .. } if reason.starts_with("budget_exhausted")),
        "{err}"
    );
    assert!(err.to_string().contains("did not end normally"), "{err}");
    let _ = std::fs::remove_file(output);
}

/// A file that is not a WAV, a WAV of the wrong format and a WAV without samples are each refused
/// in plain words naming the file (no Rust struct dumps).
#[test]
fn bad_wavs_get_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let plain = |path: &std::path::Path| {
        let err = console::read_wav(path).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConsoleError::Wav { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains('{') && !text.contains("kind:"), "{text}");
        text
    };
    let garbage = dir.path().join("garbage.wav");
    std::fs::write(
        &garbage,
        b"RIFF\x10\0\0\0WAVEfmt this is not a wav file at all",
    )
    .unwrap();
    plain(&garbage);
    let short = dir.path().join("short.wav");
    std::fs::write(&short, b"RIFF").unwrap();
    plain(&short);
    let write = |name: &str, bits: u16, samples: &[i16]| {
        let path = dir.path().join(name);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for &s in samples {
            if bits == 8 {
                w.write_sample(s as i8).unwrap();
            } else {
                w.write_sample(s).unwrap();
            }
        }
        w.finalize().unwrap();
        path
    };
    let eight = plain(&write("eight.wav", 8, &[1, 2, 3]));
    assert!(eight.contains("16-bit"), "{eight}");
    let empty = plain(&write("empty.wav", 16, &[]));
    assert!(empty.contains("no samples"), "{empty}");
}

/// Every run has its own call id, and each run's record stays in the database under it (they
/// were all "console", so a newer run's record hid an older one's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_gets_its_own_call_id_and_record() {
    use frontdesk_actors::store::{RecordKind, Store};
    let dir = std::env::temp_dir().join(format!("frontdesk-console-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("calls.db");
    let mut cfg = AppConfig::default();
    cfg.database.sqlite_path = db.display().to_string();
    let mut ids = vec![];
    for n in 0..2 {
        let args = ConsoleArgs {
            input: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/speech/line01.wav"
            )
            .into(),
            output: dir.join(format!("reply{n}.wav")),
            say: vec!["I would like to book an appointment with a heart doctor.".into()],
            emulators: true,
            reply_timeout: Duration::from_secs(10),
        };
        ids.push(console::run(&cfg, &args, false).await.unwrap().call_id);
    }
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|id| id.starts_with("console-")), "{ids:?}");
    let store = frontdesk::store::sqlite::SqliteStore::open(&db.display().to_string()).unwrap();
    for id in &ids {
        let record = store.call_record(id).await.unwrap();
        let started = record
            .iter()
            .filter(|op| matches!(op.kind, RecordKind::CallStarted { .. }));
        assert_eq!(started.count(), 1, "{id}: {record:?}");
        assert!(record.iter().all(|op| op.call_id == *id));
    }
    let _ = std::fs::remove_dir_all(dir);
}

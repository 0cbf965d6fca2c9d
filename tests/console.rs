//! `frontdesk console` end to end on the emulators: a fixture WAV in, the transcript of each turn
//! and a WAV of the agent's audio out. Real time (about 15 s): the emulators are real sockets.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontdesk::config::AppConfig;
use frontdesk::console::taps::Speaker;
use frontdesk::console::{self, ConsoleArgs};

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

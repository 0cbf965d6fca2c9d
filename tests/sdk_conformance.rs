#![allow(clippy::unwrap_used)]
//! The vendors' official Python SDKs (openai, deepgram-sdk, cartesia; pinned in
//! tests/support/sdk/requirements.txt) against `frontdesk emulators`, run as a user would run it:
//! the binary on free loopback ports, each SDK given only a base URL and a dummy key. The checks
//! are pytest files in tests/support/sdk/ (one per vendor); they validate every raw server message
//! against the SDK's own models strictly, and drive faults through the emulators' control routes
//! (`/_emulator/faults/next`). Without the SDK venv the tests say SKIPPED loudly (CI requires it).

#[path = "support/livekit.rs"]
mod livekit;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// `frontdesk emulators --json` as a child process; killed on drop.
struct Emulators {
    child: Child,
    urls: Value,
}

impl Emulators {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["emulators", "--json"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning frontdesk emulators");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let urls: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("frontdesk emulators printed {line:?}: {e}"));
        Self { child, urls }
    }

    fn url(&self, name: &str) -> String {
        self.urls[name].as_str().unwrap().to_owned()
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one vendor's pytest file against fresh emulators; fails with pytest's output.
fn conformance(file: &str, extra_args: &[&str]) {
    let Some(python) = livekit::sdk_python() else {
        return;
    };
    let emus = Emulators::start(extra_args);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sdk");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", file])
        .current_dir(&dir)
        .env("FRONTDESK_OPENAI_URL", emus.url("openai"))
        .env("FRONTDESK_DEEPGRAM_URL", emus.url("deepgram"))
        .env("FRONTDESK_CARTESIA_URL", emus.url("cartesia"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{file} failed:\n{text}");
    // pytest exits 0 with everything skipped: that would prove nothing.
    assert!(
        text.contains(" passed") && !text.contains(" skipped"),
        "{file}: nothing ran or something was skipped:\n{text}"
    );
    eprintln!("{file}: {}", text.lines().last().unwrap_or_default());
}

#[test]
fn openai_sdk_accepts_the_emulator() {
    conformance("test_openai.py", &[]);
}

#[test]
fn deepgram_sdk_accepts_the_emulator() {
    // The fixture lines are the default too; passing them exercises the flag.
    let lines = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/speech/lines.txt"
    );
    conformance("test_deepgram.py", &["--deepgram-transcripts", lines]);
}

#[test]
fn cartesia_sdk_accepts_the_emulator() {
    conformance("test_cartesia.py", &[]);
}

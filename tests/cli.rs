//! The binary as a shell sees it: output into a pipe whose reader is gone.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

/// The binary with an empty environment (development, embedded store, no LiveKit), run in `dir`.
fn frontdesk(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

/// `frontdesk check | head -1`: stdout's reader closes before the first line is written. The
/// process stops quietly instead of panicking on the broken pipe.
#[test]
fn check_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = frontdesk(dir.path())
        .arg("check")
        // Providers would be probed over the network; the first line comes before any of that.
        .env("FRONTDESK_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// `migrate down` prints what it is about to drop before dropping it (development, no --yes).
#[test]
fn migrate_down_names_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = frontdesk(dir.path()).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    run(&["migrate", "up"]);
    let out = run(&["migrate", "down", "2"]);
    let plan = out.find("0001_hospital: drops appointments, doctor_shifts");
    let done = out.find("rolled back 2 migration(s)");
    assert!(
        plan.is_some() && out.contains("0002_call_record: drops "),
        "{out}"
    );
    assert!(plan < done, "the plan comes first: {out}");
}

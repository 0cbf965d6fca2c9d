//! `frontdesk simulate` as a shell sees it: bad arguments refused at once with a clear message
//! (exit 2, nothing run), and a run that logs nothing but problems by default.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

/// The binary with an empty environment (development, embedded store), run in `dir`.
fn frontdesk(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

fn simulate(dir: &std::path::Path, args: &[&str]) -> (Output, String, String) {
    let out = frontdesk(dir).arg("simulate").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Refused before anything starts: a usage error (2) naming the argument and the reason, and no
/// table (a run would have printed one).
fn refused(args: &[&str], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = simulate(dir.path(), args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{args:?} should say {e:?}: {stderr}");
    }
    assert!(!stdout.contains("stage (ms)"), "{args:?} ran: {stdout}");
}

#[test]
fn zero_calls_are_refused() {
    refused(&["--calls", "0"], &["--calls", "must be at least 1"]);
}

#[test]
fn a_fault_rate_above_one_is_refused() {
    refused(&["--fault-rate", "2"], &["--fault-rate", "between 0 and 1"]);
    refused(&["--fault-rate=-0.1"], &["--fault-rate", "between 0 and 1"]);
}

#[test]
fn a_zero_duration_is_refused() {
    refused(&["--duration", "0s"], &["--duration", "longer than 0s"]);
}

#[test]
fn a_ramp_past_the_first_hang_up_is_refused() {
    refused(
        &["--calls", "20", "--duration", "3s"],
        &["--ramp 5s", "--duration 3s", "shorter than the duration"],
    );
}

#[test]
fn output_files_in_a_missing_folder_are_refused() {
    for flag in ["--report", "--html", "--metrics-out"] {
        refused(
            &[flag, "no/such/folder/out.file"],
            &[flag, "no/such/folder", "does not exist"],
        );
    }
}

/// A short run with the defaults: the table on stdout, and on stderr no INFO line (there were
/// ~86 for 20 calls: a line per turn and per call) and no progress line (not a terminal). The
/// same run with `--log-level info` (at the same time: each takes a whole call) logs them.
#[test]
fn a_run_logs_only_problems_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--calls", "1", "--duration", "3s", "--ramp", "0s"];
    let spawn = |extra: &[&str]| {
        frontdesk(dir.path())
            .args(extra)
            .arg("simulate")
            .args(args)
            .args(["--providers", "doubles"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (quiet, verbose) = (spawn(&[]), spawn(&["--log-level", "info"]));
    let text = |out: &Output| {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let out = quiet.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("turn_latency"), "{stdout}");
    assert!(stdout.contains("calls 1 completed 1"), "{stdout}");
    assert!(!stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains("running,"),
        "progress line in a pipe: {stderr}"
    );
    let out = verbose.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(stderr.contains("call ending"), "{stderr}");
}

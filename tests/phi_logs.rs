//! Patient data stays out of the logs. A full simulated booking (one call on the emulators, the
//! new-patient scenario: the caller gives name, birth date and phone, is registered and books)
//! runs with its logs captured; no line may hold the patient's name, birth date (in any usual
//! format) or phone, nor what the caller said. The booking must have happened (the scenario's goal,
//! checked in the database), so the test cannot pass on a call that went nowhere. In development
//! at debug the caller's words do reach the log: the positive control that the grep sees them.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use frontdesk::simulate::scenario::{Plan, Scenario, Selection};

/// The new patient of the run's only call, and what they say.
fn plan() -> Plan {
    Plan::new(Selection::One(Scenario::NewPatient), 0, chrono::Utc::now())
}

/// Everything that must not be logged: the caller's name, birth date in the usual formats, phone
/// in the usual forms, their lines and telling pieces of them; and every seeded patient's.
fn patient_data(plan: &Plan) -> Vec<String> {
    let c = &plan.caller;
    let full = format!("{} {}", c.first_name, c.last_name);
    let mut out = vec![full, c.first_name.clone(), c.last_name.clone()];
    for f in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%m/%d/%Y",
        "%d/%m/%Y",
        "%d.%m.%Y",
        "%Y%m%d",
        "%B %-d, %Y",
        "%-d %B %Y",
        "%B %-d",
    ] {
        out.push(c.date_of_birth.format(f).to_string());
    }
    let phone = c.phone.clone().unwrap();
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    out.extend([phone.replace(' ', "-"), digits.clone(), phone]);
    if let Some(national) = digits.strip_prefix('0') {
        out.push(format!("+44{national}"));
    }
    out.extend(plan.lines.iter().cloned());
    out.extend(["skin doctor", "phone number", "book it"].map(String::from));
    for p in frontdesk_actors::seed::patients() {
        out.push(format!("{} {}", p.first_name, p.last_name));
        out.push(p.date_of_birth.format("%Y-%m-%d").to_string());
        out.push(p.phone.clone());
    }
    out
}

/// One new-patient call through the emulators; returns the log (stderr) and the JSON report.
fn booking(dir: &Path, flags: &[&str]) -> (String, serde_json::Value) {
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir)
        .args(flags)
        .args(["simulate", "--scenario", "new-patient", "--calls", "1"])
        .args(["--duration", "120s", "--ramp", "0s", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{flags:?}: {stdout}{log}");
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (log, report)
}

/// The call registered the patient and booked: the scenario's goal, read from the database.
fn assert_booked(report: &serde_json::Value) {
    let row = &report["scenarios"]["new-patient"];
    assert_eq!(row["calls"], 1, "{report}");
    assert_eq!(row["goal_reached"], 1, "{row}");
    assert!(
        row["tools"]["register_patient"].as_u64() >= Some(1),
        "{row}"
    );
    assert!(
        row["tools"]["book_appointment"].as_u64() >= Some(1),
        "{row}"
    );
}

/// Every line holding patient data, with what it holds.
fn leaks(log: &str) -> Vec<String> {
    let needles: Vec<String> = patient_data(&plan())
        .iter()
        .map(|n| n.to_lowercase())
        .collect();
    let mut found = vec![];
    for line in log.lines() {
        let lower = line.to_lowercase();
        for n in needles.iter().filter(|n| lower.contains(n.as_str())) {
            found.push(format!("{n:?} in: {line}"));
        }
    }
    found
}

/// The most a non-development deployment logs (staging's JSON, and debug on top of production's
/// info): ids, timings and outcomes only.
#[test]
fn a_booking_logs_no_patient_data_outside_development() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--env",
        "staging",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    ];
    let (log, report) = booking(dir.path(), &flags);
    assert_booked(&report);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // The log is there and says what happened, by id and count.
    let committed = lines
        .iter()
        .filter(|l| l["message"] == "turn committed")
        .count();
    assert!(
        committed >= plan().lines.len(),
        "{committed} turns committed:\n{log}"
    );
    assert!(log.contains("sim-00000"), "{log}");
    let found = leaks(&log);
    assert!(
        found.is_empty(),
        "patient data in the log:\n{}",
        found.join("\n")
    );
}

/// Development's configured level (info), pretty: nothing either.
#[test]
fn a_booking_logs_no_patient_data_at_developments_level() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = booking(dir.path(), &["--log-level", "info"]);
    assert_booked(&report);
    assert!(log.contains("turn committed"), "{log}");
    let found = leaks(&log);
    assert!(
        found.is_empty(),
        "patient data in the log:\n{}",
        found.join("\n")
    );
}

/// Development at debug: the caller's words are logged (for whoever debugs the pipeline on their
/// own machine), so the grep above would have seen them.
#[test]
fn development_at_debug_logs_what_the_caller_said() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = booking(dir.path(), &["--log-level", "info,frontdesk_actors=debug"]);
    assert_booked(&report);
    let said: Vec<&str> = log.lines().filter(|l| l.contains("caller said")).collect();
    assert!(said.len() >= plan().lines.len(), "{log}");
    let c = plan().caller;
    let name = format!("{} {}", c.first_name, c.last_name);
    assert!(
        said.iter().any(|l| l.contains(&name)),
        "{}",
        said.join("\n")
    );
    assert!(!leaks(&log).is_empty());
}

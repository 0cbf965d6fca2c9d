//! deploy/: the Prometheus rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and every metric the rules and the Grafana dashboard query is one we
//! export from the first scrape, so neither can drift from the code.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// promtool from `PROMTOOL` or the PATH (Debian's `prometheus` package). Absent: skip loudly,
/// unless FRONTDESK_REQUIRE_E2E=1 (CI), where that is a failure.
fn promtool() -> Option<PathBuf> {
    let candidate = std::env::var_os("PROMTOOL").map_or_else(|| "promtool".into(), PathBuf::from);
    let found = Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(candidate);
    }
    assert!(
        std::env::var("FRONTDESK_REQUIRE_E2E").as_deref() != Ok("1"),
        "promtool not found and FRONTDESK_REQUIRE_E2E=1 (apt-get install prometheus)"
    );
    eprintln!("=== SKIPPED: promtool not found (apt-get install prometheus, or set PROMTOOL) ===");
    None
}

fn run(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(deploy("prometheus"))
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_their_tests_pass() {
    let Some(promtool) = promtool() else {
        return;
    };
    let checked = run(&promtool, &["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run(&promtool, &["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// `/metrics` of a fresh process, before any call.
fn exported() -> String {
    let recorder = frontdesk::telemetry::prometheus_builder()
        .expect("buckets")
        .build_recorder();
    metrics::with_local_recorder(&recorder, || {
        frontdesk::telemetry::describe_all();
    });
    recorder.handle().render()
}

/// Metric names (ours and the standard process ones) a PromQL-bearing file mentions.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["frontdesk_", "process_"] {
        for (at, _) in text.match_indices(prefix) {
            let preceded = text
                .get(..at)
                .and_then(|before| before.chars().next_back())
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if preceded {
                continue;
            }
            let name: String = text
                .get(at..)
                .unwrap_or_default()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// The family a series name belongs to (`x_bucket` is histogram `x`'s).
fn family<'a>(name: &'a str, exported: &str) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if exported.contains(&format!("# TYPE {base} histogram")) {
                return base;
            }
        }
    }
    name
}

#[test]
fn every_metric_the_alerts_and_the_dashboard_query_is_exported() {
    let metrics = exported();
    for file in ["prometheus/alerts.yml", "grafana/frontdesk.json"] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        let names = referenced(&text);
        assert!(names.len() >= 10, "{file}: found only {names:?}");
        for name in &names {
            let family = family(name, &metrics);
            assert!(
                metrics.contains(&format!("# TYPE {family} ")),
                "{file} queries {name}, which /metrics does not have"
            );
        }
    }
}

#[test]
fn the_drift_check_catches_an_unknown_name() {
    let metrics = exported();
    let names = referenced(
        "rate(frontdesk_turn_latency_seconds_bucket[5m]) + frontdesk_no_such_thing_total",
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !metrics.contains(&format!("# TYPE {} ", family(n, &metrics))))
        .collect();
    assert_eq!(missing, ["frontdesk_no_such_thing_total"]);
}

#[test]
fn the_dashboard_covers_every_area_and_its_panels_are_well_formed() {
    let text = std::fs::read_to_string(deploy("grafana/frontdesk.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        if p["type"] != "row" {
            let targets = p["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty() && targets.iter().all(|t| t["expr"].is_string()),
                "{}",
                p["title"]
            );
        }
    }
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for area in [
        "Calls",
        "Latency",
        "Drops and restarts",
        "Provider faults",
        "Cost",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(area)),
            "no {area} row: {rows:?}"
        );
    }
    for stage in [
        "transcription_delay",
        "end_of_turn_delay",
        "llm_ttft",
        "tts_ttfb",
    ] {
        assert!(
            text.contains(&format!("frontdesk_{stage}_seconds_bucket")),
            "{stage}"
        );
    }
}

#[test]
fn the_rule_tests_use_the_exported_turn_latency_buckets() {
    let text = std::fs::read_to_string(deploy("prometheus/alerts_test.yml")).unwrap();
    let prefix = "frontdesk_turn_latency_seconds_bucket{le=\"";
    let mut seen = 0;
    for (at, _) in text.match_indices(prefix) {
        let le: String = text
            .get(at + prefix.len()..)
            .unwrap_or_default()
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        if le == "+Inf" {
            continue;
        }
        let le: f64 = le.parse().unwrap();
        assert!(
            frontdesk_actors::metrics::TURN_LATENCY_BUCKETS.contains(&le),
            "alerts_test.yml uses le={le}, not a bucket we export"
        );
        seen += 1;
    }
    assert!(seen >= 5, "{seen}");
}

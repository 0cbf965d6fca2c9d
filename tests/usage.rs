//! `frontdesk usage` and the usage alert gauges, on SQLite and PostgreSQL (`DATABASE_URL`;
//! skipped loudly without it): calls written through the real record path
//! (`Store::write_records`), the report's numbers equal to values worked out by hand from that
//! seed, the same on both stores.
#![allow(clippy::unwrap_used)]

mod pg;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use frontdesk::store::sqlite::SqliteStore;
use frontdesk::store::usage::gauges::Refresher;
use frontdesk::store::usage::{UsageConfig, UsageReport, UsageSource, Window};
use frontdesk::store::DatabaseConfig;
use frontdesk_actors::cache::CacheSavings;
use frontdesk_actors::store::{RecordKind, RecordOp, Store, TurnLatencies};
use serde_json::Value;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// One call as written: started, its turns (voice-to-voice latency, None: not measured), tool
/// calls (name, failed), usage, and how it ended (None: no end record).
struct Call {
    id: &'static str,
    start: &'static str,
    secs: i64,
    latencies: &'static [Option<f64>],
    tools: &'static [(&'static str, bool)],
    usage: Option<(f64, u64, u64, u64, f64, CacheSavings)>,
    end: Option<&'static str>,
}

fn savings(tts: (u64, u64, u64), llm: (u64, u64, u64, u64), saved: f64) -> CacheSavings {
    CacheSavings {
        tts_hits: tts.0,
        tts_misses: tts.1,
        tts_saved_characters: tts.2,
        llm_hits: llm.0,
        llm_misses: llm.1,
        llm_saved_prompt_tokens: llm.2,
        llm_saved_completion_tokens: llm.3,
        saved_cost_usd: saved,
    }
}

fn calls() -> Vec<Call> {
    vec![
        Call {
            id: "c1",
            start: "2026-11-10T10:00:00Z",
            secs: 180,
            latencies: &[Some(800.0), Some(900.0), Some(1000.0)],
            tools: &[("find_patient", false), ("book_appointment", true)],
            usage: Some((
                100.0,
                1000,
                100,
                500,
                0.01,
                savings((2, 1, 40), (1, 2, 300, 20), 0.002),
            )),
            end: Some("caller_hung_up"),
        },
        Call {
            id: "c2",
            start: "2026-11-12T09:00:00Z",
            secs: 90,
            latencies: &[Some(1200.0), Some(1500.0)],
            tools: &[("find_patient", true)],
            usage: Some((
                50.5,
                500,
                50,
                250,
                0.005,
                savings((1, 0, 20), (0, 1, 0, 0), 0.0005),
            )),
            end: Some("room_failed: ice connection lost"),
        },
        Call {
            id: "c3",
            start: "2026-11-15T12:00:00Z",
            secs: 30,
            latencies: &[Some(700.0), None],
            tools: &[],
            usage: Some((10.0, 100, 10, 50, 0.001, CacheSavings::default())),
            end: Some("budget_exhausted: tts"),
        },
        // The worker died: no usage, no end record, long ago.
        Call {
            id: "c4",
            start: "2026-11-20T08:00:00Z",
            secs: 0,
            latencies: &[Some(2000.0)],
            tools: &[],
            usage: None,
            end: None,
        },
        Call {
            id: "c6",
            start: "2026-11-18T14:00:00Z",
            secs: 120,
            latencies: &[Some(950.0), Some(1100.0)],
            tools: &[("list_doctors", false), ("list_doctors", false)],
            usage: Some((
                60.0,
                600,
                60,
                300,
                0.006,
                savings((3, 0, 90), (2, 0, 500, 40), 0.003),
            )),
            end: Some("agent_hung_up"),
        },
        // Still running at NOW.
        Call {
            id: "c5",
            start: "2026-11-29T23:30:00Z",
            secs: 0,
            latencies: &[Some(600.0)],
            tools: &[],
            usage: None,
            end: None,
        },
        // Before the window.
        Call {
            id: "old",
            start: "2026-10-15T10:00:00Z",
            secs: 600,
            latencies: &[Some(5000.0)],
            tools: &[("find_patient", true)],
            usage: Some((
                300.0,
                9000,
                900,
                4000,
                1.0,
                savings((9, 9, 9), (9, 9, 9, 9), 0.5),
            )),
            end: Some("room_failed: signal"),
        },
    ]
}

const NOW: &str = "2026-11-30T00:00:00Z";

/// The call's turns, one a second after its start.
fn turns(c: &Call) -> Vec<(DateTime<Utc>, RecordKind)> {
    let mut kinds = vec![];
    let start = at(c.start);
    for (i, l) in c.latencies.iter().enumerate() {
        let latencies = TurnLatencies {
            turn_latency_ms: *l,
            llm_ttft_ms: Some(300.0),
            ..Default::default()
        };
        let index = u32::try_from(i).unwrap() + 1;
        let kind = RecordKind::Turn {
            index,
            transcript: "When are you open?".into(),
            reply: "From eight to six.".into(),
            interrupted: false,
            latencies,
        };
        kinds.push((start + chrono::TimeDelta::seconds(i64::from(index)), kind));
    }
    kinds
}

fn ops(c: &Call) -> Vec<RecordOp> {
    let start = at(c.start);
    let end = start + chrono::TimeDelta::seconds(c.secs);
    let mut kinds = vec![(
        start,
        RecordKind::CallStarted {
            room: format!("room-{}", c.id),
            caller: "+15550100002".into(),
        },
    )];
    kinds.extend(turns(c));
    for (name, failed) in c.tools {
        kinds.push((
            start,
            RecordKind::ToolCall {
                name: (*name).into(),
                arguments: "{}".into(),
                result: "[]".into(),
                error: failed.then(|| "database timed out".into()),
                duration_ms: 2.0,
            },
        ));
    }
    if let Some((stt, prompt, completion, tts, cost, cache)) = c.usage {
        let kind = RecordKind::Usage {
            stt_audio_seconds: stt,
            prompt_tokens: prompt,
            completion_tokens: completion,
            tts_characters: tts,
            cost_usd: cost,
            cache,
        };
        kinds.push((end, kind));
    }
    if let Some(reason) = c.end {
        let kind = RecordKind::CallEnded {
            reason: reason.into(),
        };
        kinds.push((end, kind));
    }
    (1..)
        .zip(kinds)
        .map(|(seq, (at, kind))| RecordOp {
            call_id: c.id.into(),
            seq,
            at,
            kind,
        })
        .collect()
}

async fn seed(store: &dyn Store) {
    for c in calls() {
        store.write_records(&ops(&c)).await.unwrap();
    }
}

fn november() -> Window {
    Window::new(
        at("2026-11-01T00:00:00Z"),
        at("2026-12-01T00:00:00Z"),
        at(NOW),
    )
    .unwrap()
}

/// The November report worked out by hand from `calls()`.
fn expected_november() -> Value {
    serde_json::json!({
        "calls": 6,
        // (180 + 90 + 30 + 120) s; unended calls have no duration.
        "minutes": 7.0,
        "failed_calls": 3,
        "end_reasons": [
            {"reason": "agent_hung_up", "calls": 1, "failure": false},
            {"reason": "budget_exhausted", "calls": 1, "failure": true},
            {"reason": "caller_hung_up", "calls": 1, "failure": false},
            {"reason": "in_progress", "calls": 1, "failure": false},
            {"reason": "not_ended", "calls": 1, "failure": true},
            {"reason": "room_failed", "calls": 1, "failure": true},
        ],
        "turns": 11,
        // Sorted: 600 700 800 900 950 1000 1100 1200 1500 2000 (the unmeasured turn left out).
        // p50 at rank 4.5: 950 + 0.5 * 50; p95 at rank 8.55: 1500 + 0.55 * 500.
        "turn_latency_p50_ms": 975.0,
        "turn_latency_p95_ms": 1775.0,
        "tools": [
            {"name": "book_appointment", "calls": 1, "errors": 1},
            {"name": "find_patient", "calls": 2, "errors": 1},
            {"name": "list_doctors", "calls": 2, "errors": 0},
        ],
        "provider": {
            "stt_audio_seconds": 220.5, "prompt_tokens": 2200, "completion_tokens": 220,
            "tts_characters": 1100, "cost_usd": 0.022,
        },
        "cache": {
            "tts_hits": 6, "tts_misses": 1, "tts_saved_characters": 150,
            "llm_hits": 3, "llm_misses": 3, "llm_saved_prompt_tokens": 800,
            "llm_saved_completion_tokens": 60, "saved_cost_usd": 0.0055,
        },
    })
}

/// `actual` has every field of `expected` with the same value (numbers within 1e-6 relative:
/// float sums depend on the order rows are added).
fn assert_matches(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
            assert!(
                (a - e).abs() <= 1e-6 * e.abs().max(1.0),
                "{path}: {a} != {e}"
            );
        }
        (Value::Object(a), Value::Object(e)) => {
            for (k, v) in e {
                let got = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {actual}"));
                assert_matches(got, v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{path}: {actual} vs {expected}");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert_matches(a, e, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

fn json(r: &UsageReport) -> Value {
    serde_json::to_value(r).unwrap()
}

/// The checks every store must pass, on a source over a seeded database.
async fn check_reports(src: &UsageSource) -> UsageReport {
    let report = src.report(&november()).await.unwrap();
    assert_matches(&json(&report), &expected_november(), "november");
    // Since the 13th: c3, c4, c5, c6 (c1, c2 and the October call left out).
    let later = Window::new(
        at("2026-11-13T00:00:00Z"),
        at("2026-12-01T00:00:00Z"),
        at(NOW),
    );
    let later = src.report(&later.unwrap()).await.unwrap();
    let tools: Vec<&str> = later.turns.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!((later.summary.calls, later.failed_calls), (4, 2));
    assert_eq!(later.turns.turns, 6);
    assert_eq!(tools, ["list_doctors"]);
    assert!((later.summary.provider.cost_usd - 0.007).abs() < 1e-9);
    // From October the old call counts too: its 5000 ms is the new maximum.
    let all = Window::new(
        at("2026-10-01T00:00:00Z"),
        at("2026-12-01T00:00:00Z"),
        at(NOW),
    );
    let all = src.report(&all.unwrap()).await.unwrap();
    assert_eq!((all.summary.calls, all.failed_calls), (7, 4));
    assert!((all.summary.minutes - 17.0).abs() < 1e-6);
    // 11 latencies: p50 at rank 5 (1000); p95 at rank 9.5, between 2000 and 5000.
    let close = |v: Option<f64>, e: f64| v.is_some_and(|v| (v - e).abs() < 1e-6);
    assert!(
        close(all.turns.turn_latency_p50_ms, 1000.0),
        "{:?}",
        all.turns
    );
    assert!(
        close(all.turns.turn_latency_p95_ms, 3500.0),
        "{:?}",
        all.turns
    );
    // An empty window: zeros, and no percentile rather than a made-up one.
    let empty = Window::new(
        at("2025-01-01T00:00:00Z"),
        at("2025-02-01T00:00:00Z"),
        at(NOW),
    );
    let empty = src.report(&empty.unwrap()).await.unwrap();
    assert_eq!((empty.summary.calls, empty.turns.turns), (0, 0));
    assert_eq!(empty.turns.turn_latency_p95_ms, None);
    assert!(empty.summary.end_reasons.is_empty() && empty.turns.tools.is_empty());
    report
}

/// A seeded SQLite file in `dir`, as `frontdesk usage` would find it.
async fn sqlite_seeded(dir: &std::path::Path) -> String {
    let path = dir.join("frontdesk.db").display().to_string();
    let store = SqliteStore::open(&path).unwrap();
    seed(&store).await;
    path
}

fn sqlite_source(path: &str) -> UsageSource {
    let cfg = DatabaseConfig {
        sqlite_path: path.into(),
        ..Default::default()
    };
    UsageSource::open(&cfg, false).unwrap()
}

#[tokio::test]
async fn sqlite_report_matches_the_hand_computed_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(&sqlite_seeded(dir.path()).await);
    check_reports(&src).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_report_matches_sqlite_and_the_hand_computed_numbers() {
    let Some(url) = pg::database_url() else {
        return;
    };
    let schema = pg::unique_schema("usage");
    let store = pg::seeded_store(&url, &schema, Arc::new(Utc::now)).await;
    seed(&store).await;
    let pg_report = check_reports(&UsageSource::Postgres(store.pool().clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_source(&sqlite_seeded(dir.path()).await);
    let sqlite_report = sqlite.report(&november()).await.unwrap();
    // Field by field, both ways: neither store has a number the other lacks.
    assert_matches(
        &json(&pg_report),
        &json(&sqlite_report),
        "postgres vs sqlite",
    );
    assert_matches(
        &json(&sqlite_report),
        &json(&pg_report),
        "sqlite vs postgres",
    );
    pg::drop_schema(&url, &schema).await;
}

fn rendered(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The gauges come from the store; a store outage keeps them and is counted on each refresh.
#[tokio::test]
async fn gauges_are_set_from_the_store_and_kept_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_seeded(dir.path()).await;
    let recorder = frontdesk::telemetry::prometheus_builder()
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cfg = UsageConfig {
        // Since 2026-11-16: c4 (never ended), c5 (running), c6 (hung up).
        window_ms: 14 * 86_400_000,
        monthly_budget_usd: 0.025,
        ..Default::default()
    };
    let mut refresher = Refresher::with_source(sqlite_source(&path), cfg);
    let inputs = refresher.refresh(at(NOW)).await.unwrap();
    assert_eq!((inputs.window_calls, inputs.window_failed_calls), (2, 1));
    let text = handle.render();
    assert!((rendered(&text, "frontdesk_usage_month_cost_usd") - 0.022).abs() < 1e-9);
    assert_eq!(rendered(&text, "frontdesk_usage_monthly_budget_usd"), 0.025);
    assert_eq!(rendered(&text, "frontdesk_usage_calls_window"), 2.0);
    assert_eq!(rendered(&text, "frontdesk_usage_failed_calls_window"), 1.0);

    // The store loses its tables (as good as down): twice failed, both counted, values kept.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE usage RENAME TO usage_away")
        .unwrap();
    assert!(refresher.refresh(at(NOW)).await.is_err());
    assert!(refresher.refresh(at(NOW)).await.is_err());
    let text = handle.render();
    assert_eq!(
        rendered(&text, "frontdesk_usage_refresh_failures_total"),
        2.0
    );
    assert!((rendered(&text, "frontdesk_usage_month_cost_usd") - 0.022).abs() < 1e-9);
    assert_eq!(rendered(&text, "frontdesk_usage_failed_calls_window"), 1.0);

    // Back: refreshed from the store again (December has no calls yet).
    conn.execute_batch("ALTER TABLE usage_away RENAME TO usage")
        .unwrap();
    refresher.refresh(at("2026-12-01T00:30:00Z")).await.unwrap();
    let text = handle.render();
    assert_eq!(rendered(&text, "frontdesk_usage_month_cost_usd"), 0.0);
    assert_eq!(
        rendered(&text, "frontdesk_usage_refresh_failures_total"),
        2.0
    );
}

/// The binary with an empty environment (development, the embedded store in `dir`).
fn frontdesk(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_cli_prints_the_report_and_refuses_a_bad_window() {
    let dir = tempfile::tempdir().unwrap();
    sqlite_seeded(dir.path()).await;
    let november = ["usage", "--since", "2026-11-01", "--until", "2026-12-01"];
    let (ok, out, err) = frontdesk(dir.path(), &november);
    assert!(ok, "{out}{err}");
    // Now is later than the test's NOW: the call still "running" then has failed by now.
    assert!(
        out.contains("calls 6   minutes 7.0   turns 11   failed 4"),
        "{out}"
    );
    assert!(
        out.contains("turn latency p50 975 ms   p95 1775 ms"),
        "{out}"
    );
    assert!(out.contains("* room_failed"), "{out}");
    assert!(out.contains("find_patient"), "{out}");
    assert!(
        out.contains("6 hits, 1 misses (86 %), 150 characters saved"),
        "{out}"
    );

    let mut json_args = november.to_vec();
    json_args.push("--json");
    let (ok, out, err) = frontdesk(dir.path(), &json_args);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["calls"], 6);
    let p95 = report["turn_latency_p95_ms"].as_f64().unwrap();
    assert!((p95 - 1775.0).abs() < 1e-6, "{p95}");

    for (args, says) in [
        (
            &["usage", "--since", "last tuesday"][..],
            "neither a duration",
        ),
        (
            &["usage", "--since", "1d", "--until", "2d"][..],
            "must be before",
        ),
    ] {
        let (ok, out, err) = frontdesk(dir.path(), args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

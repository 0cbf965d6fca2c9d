#![allow(clippy::disallowed_methods)] // tests read and write temporary files
use std::sync::{Arc, Mutex};

use super::*;
use crate::config::{AppConfig, Environment, Vars};

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn configured() -> AppConfig {
    let vars: Vars = [
        ("LIVEKIT_URL", "wss://lk.example.com"),
        ("LIVEKIT_API_KEY", "APIplaceholderkey1"),
        ("LIVEKIT_API_SECRET", "placeholder\"livekit\\secret"),
        ("OPENAI_API_KEY", "placeholder-openai-key"),
        ("DEEPGRAM_API_KEY", "placeholder-deepgram-key"),
        ("CARTESIA_API_KEY", "placeholder-cartesia-key"),
        (
            "DATABASE_URL",
            "postgres://app:placeholder-pw@db.internal/fd?sslmode=require",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    AppConfig::load(Environment::Production, &vars).unwrap()
}

/// Log the config's Debug and an error chain quoting a provider URL with a key in it.
fn log_everything(cfg: &AppConfig) {
    tracing::info!(config = ?cfg, "configuration loaded");
    let key = cfg.providers.deepgram.api_key.expose();
    let cause = anyhow::anyhow!("connect wss://api.deepgram.com/v1/listen?token={key}: refused");
    let err = cause.context("stt session failed");
    log_error("call failed", &err);
    let secret = cfg.worker.api_secret.expose();
    tracing::warn!(header = %format!("Bearer {secret}"), "raw header");
}

#[test]
fn no_configured_secret_reaches_the_log_in_any_format() {
    let cfg = configured();
    for format in [LogFormat::Json, LogFormat::Pretty] {
        let buf = Buffer::default();
        let sub = subscriber("info", format, &cfg.secrets(), buf.clone());
        tracing::subscriber::with_default(sub, || log_everything(&cfg));
        let out = buf.text();
        assert!(
            out.contains("stt session failed: connect"),
            "cause chain: {out}"
        );
        assert!(out.contains("[redacted]"), "{out}");
        for s in cfg.secrets() {
            assert!(!out.contains(&s), "{format:?} leaked {s}: {out}");
            let escaped = serde_json::to_string(&s).unwrap();
            assert!(
                !out.contains(escaped.trim_matches('"')),
                "{format:?} leaked {s}"
            );
        }
    }
}

#[test]
fn json_lines_parse() {
    let buf = Buffer::default();
    let sub = subscriber("info", LogFormat::Json, &[], buf.clone());
    tracing::subscriber::with_default(sub, || tracing::info!(n = 1, "hello"));
    for line in buf.text().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["message"], "hello");
    }
}

#[test]
fn the_webrtc_stack_is_quiet_unless_the_level_names_it() {
    let quiet = super::with_quiet_deps("info,frontdesk=debug");
    assert!(quiet.contains(",rtc=error"), "{quiet}");
    assert!(quiet.contains(",webrtc=warn"), "{quiet}");
    let mine = super::with_quiet_deps("info,rtc=trace");
    assert!(
        mine.contains("rtc=trace") && !mine.contains("rtc=error"),
        "{mine}"
    );
    assert!(mine.contains("rtc_ice=warn"), "{mine}");
    assert!(tracing_subscriber::EnvFilter::try_new(quiet).is_ok());
}

/// `/metrics` as a fresh process renders it before any call: our exporter, everything described.
fn rendered_at_start() -> String {
    let recorder = prometheus_builder().unwrap().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_all();
    });
    recorder.handle().render()
}

/// Every metric name written in our source (`"frontdesk_..."` literals).
fn names_in_source() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"frontdesk_").skip(1) {
                    let name: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let closed = piece.get(name.len()..).is_some_and(|r| r.starts_with('"'));
                    if !name.is_empty() && closed {
                        out.insert(format!("frontdesk_{name}"));
                    }
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = std::collections::BTreeSet::new();
    walk(&root.join("src"), &mut out);
    walk(&root.join("actors/src"), &mut out);
    out
}

#[test]
fn metrics_are_listed_before_the_first_call() {
    let text = rendered_at_start();
    let names = names_in_source();
    assert!(names.len() > 30, "source scan found {names:?}");
    // Only the emulators inject faults; a production worker has no series for them.
    let exempt = [catalog::EMULATOR_FAULTS];
    for name in names.iter().filter(|n| !exempt.contains(&n.as_str())) {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not in /metrics at start"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no description"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("\n{name} ")), "{name} missing");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!("version=\"{version}\"")) && text.contains("frontdesk_build_info{"),
        "build info"
    );
    assert!(
        text.contains("frontdesk_turn_latency_seconds_count 0"),
        "histograms are listed empty"
    );
}

#[test]
fn a_description_alone_lists_nothing() {
    // Why `describe` also creates the series: the exporter renders only registered series.
    let recorder = prometheus_builder().unwrap().build_recorder();
    metrics::with_local_recorder(&recorder, crate::room::metrics::describe);
    assert_eq!(recorder.handle().render().trim(), "");
}

/// The cumulative count of the bucket `le` of `name` in `text`.
fn bucket(text: &str, name: &str, le: &str) -> Option<u64> {
    let prefix = format!("{name}_bucket{{le=\"{le}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
}

#[test]
fn turn_latency_resolves_the_alert_threshold() {
    use frontdesk_actors::metrics as m;
    let recorder = prometheus_builder().unwrap().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        // Healthy turns at 1.1-1.4 s and one slow turn at 1.9 s.
        for secs in [1.1, 1.2, 1.3, 1.4, 1.9] {
            metrics::histogram!(m::TURN_LATENCY).record(secs);
        }
        metrics::histogram!(m::PIPELINE_OVERHEAD).record(0.004);
    });
    let text = recorder.handle().render();
    // With buckets 1 s then 2 s, every one of these sat in (1, 2]: p95 interpolated to ~1.95 s
    // and the 1.5 s alert fired on a healthy system.
    assert_eq!(bucket(&text, m::TURN_LATENCY, "1.5"), Some(4), "{text}");
    assert_eq!(bucket(&text, m::TURN_LATENCY, "1"), Some(0));
    assert_eq!(bucket(&text, m::PIPELINE_OVERHEAD, "0.005"), Some(1));
}

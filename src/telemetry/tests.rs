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

//! `frontdesk check`: the configuration is valid (else loading already failed), then every
//! dependency is reached once; one line each, non-zero exit naming what failed.

use std::time::Duration;

use frontdesk::checks::{self, CheckError};
use frontdesk::config::{AppConfig, Environment};

/// Check and print; `Err` names every dependency that failed.
pub async fn run(cfg: &AppConfig) -> anyhow::Result<()> {
    frontdesk::outln!("configuration ({}): ok", cfg.environment.name());
    let targets = checks::targets(cfg);
    let timeout = Duration::from_millis(cfg.http.check_timeout_ms);
    let results = checks::run_once(&targets, timeout).await;
    let mut failed = vec![];
    for (t, result) in targets.iter().zip(results) {
        let line = match result {
            Ok(()) if matches!(t.probe, checks::Probe::EmbeddedStore) => {
                "ok (embedded SQLite store)".to_string()
            }
            Ok(()) if missing_key(cfg, t.name) => {
                "reachable; no key set (console and simulate use the emulators)".to_string()
            }
            Ok(()) => "ok".to_string(),
            // Outside production LiveKit is optional; production's loader already demanded it.
            Err(CheckError::NotConfigured) if cfg.environment != Environment::Production => {
                "skipped (not configured)".to_string()
            }
            Err(e) => {
                failed.push(t.name);
                format!("FAILED: {e}")
            }
        };
        frontdesk::outln!("{:<10} {line}", t.name);
    }
    anyhow::ensure!(failed.is_empty(), "unreachable: {}", failed.join(", "));
    Ok(())
}

/// A provider without its key (only possible outside production).
fn missing_key(cfg: &AppConfig, name: &str) -> bool {
    let p = &cfg.providers;
    match name {
        "deepgram" => p.deepgram.api_key.is_empty(),
        "openai" => p.openai.api_key.is_empty(),
        "cartesia" => p.cartesia.api_key.is_empty(),
        _ => false,
    }
}

//! What production demands beyond valid values: every credential present and every hop encrypted.

use super::AppConfig;
use crate::secret::Secret;
use crate::store::config::check_tls_policy;

/// Append production's problems to `errors` (each names its key and variable).
pub fn production(cfg: &AppConfig, errors: &mut Vec<String>) {
    let w = &cfg.worker;
    if w.url.is_empty() {
        errors.push("worker.url (LIVEKIT_URL) is required in production".into());
    } else if w.url.starts_with("ws://") || w.url.starts_with("http://") {
        errors.push("worker.url (LIVEKIT_URL) must be wss:// or https:// in production".into());
    }
    let p = &cfg.providers;
    let required: [(&str, &str, &Secret); 5] = [
        ("worker.api_key", "LIVEKIT_API_KEY", &w.api_key),
        ("worker.api_secret", "LIVEKIT_API_SECRET", &w.api_secret),
        (
            "providers.deepgram.api_key",
            "DEEPGRAM_API_KEY",
            &p.deepgram.api_key,
        ),
        (
            "providers.openai.api_key",
            "OPENAI_API_KEY",
            &p.openai.api_key,
        ),
        (
            "providers.cartesia.api_key",
            "CARTESIA_API_KEY",
            &p.cartesia.api_key,
        ),
    ];
    for (key, var, value) in required {
        // The worker's own check already names its keys when a URL is set; say it once.
        if value.is_empty() && !errors.iter().any(|e| e.contains(var)) {
            errors.push(format!("{key} ({var}) is required in production"));
        }
    }
    let db = cfg.database.url.expose();
    if cfg.database.backend() != crate::store::Backend::Postgres {
        // The embedded file belongs to one process: replicas would each book their own calendar.
        errors.push(
            "database.url (DATABASE_URL) must be a postgres:// URL in production (the embedded SQLite store is for one process)".into(),
        );
    } else if let Err(e) = check_tls_policy(db, true) {
        errors.push(format!("database.url (DATABASE_URL): {e}"));
    }
}

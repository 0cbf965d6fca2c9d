//! `[database]`: which store, pool sizes and timeouts, and the TLS policy.

use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` (from `DATABASE_URL`); empty: the in-process store (SQLite lands later).
    pub url: Secret,
    /// Search path schema (tests isolate themselves in their own schema); empty: the URL's default.
    pub schema: String,
    pub pool_max_size: usize,
    /// Longest a tool call waits for a pooled connection; never hang on `pool.get()`.
    pub pool_wait_timeout_ms: u64,
    pub pool_create_timeout_ms: u64,
    pub pool_recycle_timeout_ms: u64,
    /// Per statement, set on every connection.
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            schema: String::new(),
            pool_max_size: 16,
            pool_wait_timeout_ms: 1_000,
            pool_create_timeout_ms: 2_000,
            pool_recycle_timeout_ms: 1_000,
            statement_timeout_ms: 2_000,
        }
    }
}

impl DatabaseConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        let url = self.url.expose();
        if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            errors.push("database.url must be a postgres:// URL".into());
        }
        if self.pool_max_size == 0 {
            errors.push("database.pool_max_size must be at least 1".into());
        }
        for (name, v) in [
            ("pool_wait_timeout_ms", self.pool_wait_timeout_ms),
            ("pool_create_timeout_ms", self.pool_create_timeout_ms),
            ("pool_recycle_timeout_ms", self.pool_recycle_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
        ] {
            if v == 0 {
                errors.push(format!("database.{name} must be positive"));
            }
        }
        let valid_schema = self
            .schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_schema {
            errors.push("database.schema may hold only letters, digits and _".into());
        }
        errors
    }

    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

/// `sslmode` as libpq names it: `prefer` (TLS when the server offers it) and `require` encrypt
/// without checking the certificate; `verify-ca`/`verify-full` check it against the web PKI roots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl SslMode {
    /// From the URL's query; libpq's default is `prefer`.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("database url: {e}"))?;
        let mode = parsed
            .query_pairs()
            .find(|(k, _)| k == "sslmode")
            .map(|(_, v)| v.to_string());
        match mode.as_deref() {
            None | Some("prefer") | Some("allow") => Ok(Self::Prefer),
            Some("disable") => Ok(Self::Disable),
            Some("require") => Ok(Self::Require),
            Some("verify-ca" | "verify-full") => Ok(Self::VerifyFull),
            Some(other) => Err(format!("database url: unknown sslmode {other:?}")),
        }
    }

    pub fn uses_tls(self) -> bool {
        self != Self::Disable
    }
}

/// Production refuses a database connection without TLS unless the host is loopback.
pub fn check_tls_policy(url: &str, production: bool) -> Result<(), String> {
    if url.is_empty() || !production {
        return Ok(());
    }
    let mode = SslMode::from_url(url)?;
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let loopback =
        matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.is_empty();
    if matches!(mode, SslMode::Require | SslMode::VerifyFull) || loopback {
        Ok(())
    } else {
        Err(format!(
            "production needs TLS to the database at {host}: set sslmode=require or verify-full"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_parsing() {
        let m = |u: &str| SslMode::from_url(u);
        assert_eq!(m("postgres://h/db"), Ok(SslMode::Prefer));
        assert_eq!(m("postgres://h/db?sslmode=disable"), Ok(SslMode::Disable));
        assert_eq!(m("postgres://h/db?sslmode=require"), Ok(SslMode::Require));
        assert_eq!(
            m("postgres://h/db?x=1&sslmode=verify-full"),
            Ok(SslMode::VerifyFull)
        );
        assert!(m("postgres://h/db?sslmode=sometimes").is_err());
        assert!(!SslMode::Disable.uses_tls() && SslMode::Prefer.uses_tls());
    }

    #[test]
    fn production_refuses_plaintext_to_a_remote_host() {
        let remote = "postgres://app@db.internal:5432/frontdesk";
        assert!(check_tls_policy(remote, true).is_err());
        assert!(check_tls_policy(&format!("{remote}?sslmode=disable"), true).is_err());
        assert!(check_tls_policy(&format!("{remote}?sslmode=require"), true).is_ok());
        assert!(check_tls_policy(&format!("{remote}?sslmode=verify-full"), true).is_ok());
        assert!(
            check_tls_policy("postgres://postgres@127.0.0.1/test?sslmode=disable", true).is_ok()
        );
        assert!(
            check_tls_policy(remote, false).is_ok(),
            "outside production anything goes"
        );
    }

    #[test]
    fn every_bad_value_is_named() {
        let cfg = DatabaseConfig {
            url: Secret::new("mysql://x"),
            pool_max_size: 0,
            statement_timeout_ms: 0,
            schema: "a;drop".into(),
            ..Default::default()
        };
        let errors = cfg.validate().join("\n");
        for name in ["url", "pool_max_size", "statement_timeout_ms", "schema"] {
            assert!(errors.contains(name), "{name}: {errors}");
        }
        assert!(!format!("{cfg:?}").contains("mysql"), "the url is a secret");
    }
}

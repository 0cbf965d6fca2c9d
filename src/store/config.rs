//! `[database]`: which store, pool sizes and timeouts, and the TLS policy.

use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` (from `DATABASE_URL`), or `sqlite://PATH` / `sqlite::memory:`; empty: the
    /// embedded SQLite database at `sqlite_path`.
    pub url: Secret,
    /// The embedded database's file when no URL is set (`:memory:` keeps nothing).
    pub sqlite_path: String,
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
            sqlite_path: "frontdesk.db".into(),
            schema: String::new(),
            pool_max_size: 16,
            pool_wait_timeout_ms: 1_000,
            pool_create_timeout_ms: 2_000,
            pool_recycle_timeout_ms: 1_000,
            statement_timeout_ms: 2_000,
        }
    }
}

/// Which store a configuration selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// The database file, or `:memory:`.
    Sqlite(String),
}

/// The SQLite path of a `sqlite:` URL, if it is one.
fn sqlite_path_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    Some(rest.strip_prefix("//").unwrap_or(rest))
}

impl DatabaseConfig {
    pub fn backend(&self) -> Backend {
        let url = self.url.expose();
        if url.is_empty() {
            Backend::Sqlite(self.sqlite_path.clone())
        } else if let Some(path) = sqlite_path_of(url) {
            Backend::Sqlite(path.to_owned())
        } else {
            Backend::Postgres
        }
    }

    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        let url = self.url.expose();
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !(url.is_empty() || postgres || sqlite_path_of(url).is_some()) {
            errors
                .push("database.url (DATABASE_URL) must be a postgres:// or sqlite:// URL".into());
        }
        if matches!(self.backend(), Backend::Sqlite(p) if p.is_empty()) {
            errors.push("database.sqlite_path must not be empty".into());
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
    // An embedded database is a local file: nothing travels over a network.
    if url.is_empty() || !production || sqlite_path_of(url).is_some() {
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

    #[test]
    fn backend_follows_the_url() {
        let with = |url: &str| DatabaseConfig {
            url: Secret::new(url),
            ..Default::default()
        };
        assert_eq!(with("").backend(), Backend::Sqlite("frontdesk.db".into()));
        assert_eq!(
            with("sqlite://data/x.db").backend(),
            Backend::Sqlite("data/x.db".into())
        );
        assert_eq!(
            with("sqlite::memory:").backend(),
            Backend::Sqlite(":memory:".into())
        );
        assert_eq!(with("postgres://h/db").backend(), Backend::Postgres);
        assert!(with("sqlite://x.db").validate().is_empty());
        assert!(check_tls_policy("sqlite://x.db", true).is_ok());
    }
}

//! The connection pool: deadpool over tokio-postgres, TLS by rustls when the URL asks for it,
//! every wait bounded, pool gauges exported.

use std::str::FromStr;
use std::time::Instant;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts};
use frontdesk_actors::store::StoreError;
use tokio_postgres::config::SslMode as PgSslMode;

use crate::store::config::{DatabaseConfig, SslMode};

const POOL_SIZE: &str = "frontdesk_db_pool_size";
const POOL_IN_USE: &str = "frontdesk_db_pool_in_use";
const POOL_WAITING: &str = "frontdesk_db_pool_waiting";
const POOL_WAIT: &str = "frontdesk_db_pool_wait_seconds";

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("database url: {0}")]
    Url(String),
    #[error("database pool: {0}")]
    Build(String),
}

impl PoolError {
    /// A bad URL or pool setting is a configuration error: retrying changes nothing.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The tokio-postgres config for `cfg`: sslmode handled here (tokio-postgres knows only
/// disable/prefer/require), search path and statement timeout set per connection.
fn pg_config(cfg: &DatabaseConfig) -> Result<(tokio_postgres::Config, SslMode), PoolError> {
    let raw = cfg.url.expose();
    let mode = SslMode::from_url(raw).map_err(PoolError::Url)?;
    let mut url = url::Url::parse(raw).map_err(|e| PoolError::Url(e.to_string()))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let mut pg = tokio_postgres::Config::from_str(url.as_str().trim_end_matches('?'))
        .map_err(|e| PoolError::Url(e.to_string()))?;
    pg.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyFull => PgSslMode::Require,
    });
    let mut options = format!("-c statement_timeout={}", cfg.statement_timeout_ms);
    if !cfg.schema.is_empty() {
        // validate() allows only [A-Za-z0-9_] here, so this cannot inject anything.
        options.push_str(&format!(" -c search_path={},public", cfg.schema));
    }
    pg.options(&options);
    pg.application_name("frontdesk");
    Ok((pg, mode))
}

/// libpq semantics: `prefer`/`require` encrypt without checking the certificate (servers often
/// run a self-signed one); `verify-ca`/`verify-full` check it against the web PKI roots.
fn tls(mode: SslMode) -> tokio_postgres_rustls::MakeRustlsConnect {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if mode == SslMode::VerifyFull {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth()
    } else {
        rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(EncryptOnly::new()))
            .with_no_client_auth()
    };
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Accepts any certificate but still checks the handshake signatures (libpq's `require`).
#[derive(Debug)]
struct EncryptOnly(rustls::crypto::WebPkiSupportedAlgorithms);

impl EncryptOnly {
    fn new() -> Self {
        Self(rustls::crypto::ring::default_provider().signature_verification_algorithms)
    }
}

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Build the pool (connections are made lazily, so a database that is down now is not an error).
pub fn build(cfg: &DatabaseConfig) -> Result<Pool, PoolError> {
    let (pg, mode) = pg_config(cfg)?;
    let mgr_cfg = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = Manager::from_config(pg, tls(mode), mgr_cfg);
    let timeouts = Timeouts {
        wait: Some(DatabaseConfig::ms(cfg.pool_wait_timeout_ms)),
        create: Some(DatabaseConfig::ms(cfg.pool_create_timeout_ms)),
        recycle: Some(DatabaseConfig::ms(cfg.pool_recycle_timeout_ms)),
    };
    Pool::builder(manager)
        .max_size(cfg.pool_max_size)
        .timeouts(timeouts)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| PoolError::Build(e.to_string()))
}

/// A pooled connection, with the wait timed and the pool gauges updated.
pub async fn get(pool: &Pool) -> Result<Object, StoreError> {
    let started = Instant::now();
    let got = pool.get().await;
    metrics::histogram!(POOL_WAIT).record(started.elapsed().as_secs_f64());
    let status = pool.status();
    metrics::gauge!(POOL_SIZE).set(status.size as f64);
    metrics::gauge!(POOL_IN_USE).set(status.size.saturating_sub(status.available) as f64);
    metrics::gauge!(POOL_WAITING).set(status.waiting as f64);
    got.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Timeout,
        other => StoreError::Unavailable(describe_pool(&other)),
    })
}

/// Driver errors: lost connections and timeouts are retriable infrastructure failures.
pub fn db_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        return StoreError::Timeout;
    }
    StoreError::Unavailable(describe(&e))
}

/// What the server said and its SQLSTATE (the driver's own text is only "db error"), else the
/// driver's error with its causes ("error connecting to server: Connection refused"). The
/// server's DETAIL is left out: it quotes the offending row or key, which may be a patient's.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return with_causes(e);
    };
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(hint) = db.hint() {
        text.push_str("; hint: ");
        text.push_str(hint);
    }
    text
}

/// A failed `Pool::get`: a connection that could not be made says why, as `describe` does.
pub fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => format!("connecting: {}", describe(e)),
        other => other.to_string(),
    }
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn sslmode_is_mapped_and_options_set() {
        let cfg = DatabaseConfig {
            url: Secret::new(
                "postgres://u@db.example:5433/app?sslmode=verify-full&connect_timeout=3",
            ),
            schema: "t_1".into(),
            ..Default::default()
        };
        let (pg, mode) = pg_config(&cfg).unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(pg.get_ssl_mode(), PgSslMode::Require);
        assert_eq!(pg.get_dbname(), Some("app"));
        assert!(pg.get_options().unwrap().contains("search_path=t_1,public"));
        let bad = DatabaseConfig {
            url: Secret::new("postgres://h/db?sslmode=maybe"),
            ..Default::default()
        };
        assert!(pg_config(&bad).is_err());
    }
}

//! Service configuration: parsed once into typed structs, unknown keys rejected, validated with
//! every problem named at once. Actors get their part (`PipelineConfig`) injected.
//!
//! Layers, later wins (see [`source`]): the embedded `config/default.toml`; the config directory's
//! `default.toml` and `<env>.toml`, read at run time (`--config`, `FRONTDESK_CONFIG`, else
//! `./config`; the embedded environment file stands in for a missing one); environment variables
//! (see [`vars::VARS`]; `.env` fills in the unset ones); then flags. The loader takes the variables
//! as a map, so it never reads the process environment itself; only `main.rs` does.

mod layers;
mod policy;
pub mod show;
pub mod source;
pub mod vars;

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use frontdesk_actors::PipelineConfig;
use serde::Deserialize;

use crate::providers::config::ProvidersConfig;
use crate::room::RoomConfig;
use crate::store::DatabaseConfig;
use crate::telemetry::LogFormat;
use crate::worker::WorkerConfig;

/// The embedded defaults (config/default.toml), so the binary runs with no files around it.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Environment variables as the loader sees them (name → value).
pub type Vars = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown environment {0:?}: expected development, staging or production")]
    UnknownEnvironment(String),
    /// A config directory or file named by `--config` or `FRONTDESK_CONFIG` is not there.
    #[error("configuration {path} (from {by}): {reason}")]
    Missing {
        path: String,
        by: &'static str,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// A TOML layer does not parse or holds a key nobody knows.
    #[error("invalid configuration in {layer}: {message}")]
    Parse { layer: String, message: String },
    /// Every missing or invalid value, one per line.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// Configuration is fixed for the life of the process: retrying never helps.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// Where the service runs; picks the environment file and the validation policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    #[default]
    Development,
    Staging,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Self::Development, Self::Staging, Self::Production];

    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// The `--env` flag if given, else `FRONTDESK_ENV`, else development.
    pub fn resolve(flag: Option<Environment>, vars: &Vars) -> Result<Self, ConfigError> {
        if let Some(env) = flag {
            return Ok(env);
        }
        match vars.get(vars::ENV_VAR).map(|v| v.trim()) {
            None | Some("") => Ok(Self::Development),
            Some(name) => Self::ALL
                .into_iter()
                .find(|e| e.name() == name)
                .ok_or_else(|| ConfigError::UnknownEnvironment(name.to_owned())),
        }
    }
}

/// `[http]`: the health/metrics server and how often dependencies are re-checked.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to bind; production files set 0.0.0.0 (inside a container).
    pub bind: String,
    pub port: u16,
    pub check_interval_ms: u64,
    /// Per dependency probe.
    pub check_timeout_ms: u64,
    /// Serve the web playground (`/playground`, `POST /playground/token`); `dev` turns it on.
    pub playground: bool,
    /// Lifetime of a playground join token.
    pub playground_token_ttl_s: u64,
    /// Token requests allowed per client IP per minute.
    pub playground_requests_per_minute: u32,
    /// The LiveKit URL the browser uses; empty: the worker's.
    pub playground_livekit_url: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 8081,
            check_interval_ms: 10_000,
            check_timeout_ms: 3_000,
            playground: false,
            playground_token_ttl_s: 600,
            playground_requests_per_minute: 20,
            playground_livekit_url: String::new(),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            errors.push(format!("http.bind: {:?} is not an IP address", self.bind));
        }
        for (name, v) in [
            ("check_interval_ms", self.check_interval_ms),
            ("check_timeout_ms", self.check_timeout_ms),
        ] {
            if v == 0 {
                errors.push(format!("http.{name} must be positive"));
            }
        }
        errors.extend(crate::playground::validate(self));
        errors
    }
}

/// `[log]`: level (an `EnvFilter` directive; `RUST_LOG` still wins) and format.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

impl LogConfig {
    fn validate(&self) -> Vec<String> {
        match tracing_subscriber::EnvFilter::try_new(&self.level) {
            Ok(_) => vec![],
            Err(e) => vec![format!("log.level: {e}")],
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    pub pipeline: PipelineConfig,
    pub providers: ProvidersConfig,
    pub database: DatabaseConfig,
    pub worker: WorkerConfig,
    pub room: RoomConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// `[retention]`: how long conversations, usage and cache entries are kept.
    pub retention: crate::store::retention::RetentionConfig,
    /// `[cache.tts]`, `[cache.llm]`: the response caches (issue 14).
    pub cache: crate::cache::CacheConfig,
    /// `[usage]`: the usage alert gauges `start` refreshes (issue 14).
    pub usage: crate::store::usage::UsageConfig,
    /// Which environment the configuration was loaded for (not a key in any file).
    #[serde(skip)]
    pub environment: Environment,
}

impl AppConfig {
    /// The embedded files for `env`, then `vars`; validated with the environment's policy.
    pub fn load(env: Environment, vars: &Vars) -> Result<Self, ConfigError> {
        Self::load_from(source::Inputs {
            env,
            location: &source::Location::Embedded,
            vars,
            from_dotenv: &Default::default(),
            flags: &[],
        })
    }

    /// Every layer of `inputs`, validated with the environment's policy.
    pub fn load_from(inputs: source::Inputs<'_>) -> Result<Self, ConfigError> {
        source::Merged::load(inputs)?.build()
    }

    /// Parse one TOML document (no layering) and validate it for development.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: AppConfig = layers::deserialize("the configuration", layers::parse("", text)?)?;
        let errors = cfg.validate();
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(cfg)
    }

    /// The embedded defaults.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::from_toml(DEFAULT_TOML)
    }

    /// Every problem with the values, each naming its key (and variable, when one sets it).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = self.pipeline.validate().err().unwrap_or_default();
        errors.extend(self.providers.validate());
        errors.extend(self.database.validate());
        errors.extend(self.worker.validate());
        errors.extend(self.room.validate());
        errors.extend(self.http.validate());
        errors.extend(self.log.validate());
        errors.extend(self.telemetry.validate());
        errors.extend(self.retention.validate());
        errors.extend(self.cache.validate());
        errors.extend(self.usage.validate());
        if self.environment == Environment::Production {
            policy::production(self, &mut errors);
        }
        errors.into_iter().map(|e| vars::annotate(&e)).collect()
    }

    /// Every secret value configured (for log redaction); empty ones left out.
    pub fn secrets(&self) -> Vec<String> {
        let p = &self.providers;
        let s = &p.secondary;
        let mut all = vec![
            &self.database.url,
            &self.worker.api_key,
            &self.worker.api_secret,
            &p.deepgram.api_key,
            &p.openai.api_key,
            &p.cartesia.api_key,
        ];
        all.extend(s.deepgram.as_ref().map(|c| &c.api_key));
        all.extend(s.openai.as_ref().map(|c| &c.api_key));
        all.extend(s.cartesia.as_ref().map(|c| &c.api_key));
        let mut out: Vec<String> = all
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.expose().to_owned())
            .collect();
        // The database password on its own too: drivers may print it without the URL.
        if let Some(pw) = url::Url::parse(self.database.url.expose())
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        {
            out.push(pw);
        }
        out
    }
}

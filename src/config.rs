//! Service configuration: parsed once into typed structs, unknown keys rejected, validated with
//! every problem named at once. Actors get their part (`PipelineConfig`) injected.

use anyhow::Context;
use frontdesk_actors::PipelineConfig;

use crate::providers::config::ProvidersConfig;
use crate::store::DatabaseConfig;
use crate::worker::WorkerConfig;
use serde::Deserialize;

/// The embedded defaults (config/default.toml), so the binary runs with no files around it.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    pub pipeline: PipelineConfig,
    pub providers: ProvidersConfig,
    pub database: DatabaseConfig,
    pub worker: WorkerConfig,
}

impl AppConfig {
    /// Parse a TOML document and validate it.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let cfg: AppConfig = toml::from_str(text).context("invalid configuration")?;
        let mut errors = cfg.pipeline.validate().err().unwrap_or_default();
        errors.extend(cfg.providers.validate());
        errors.extend(cfg.database.validate());
        errors.extend(cfg.worker.validate());
        if !errors.is_empty() {
            anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  "));
        }
        Ok(cfg)
    }

    /// The embedded defaults.
    pub fn embedded() -> anyhow::Result<Self> {
        Self::from_toml(DEFAULT_TOML)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_matches_code_defaults() -> anyhow::Result<()> {
        assert_eq!(AppConfig::embedded()?, AppConfig::default());
        Ok(())
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = AppConfig::from_toml("[pipeline.vad]\nagressiveness = 2\n").unwrap_err();
        assert!(format!("{err:#}").contains("agressiveness"), "{err:#}");
    }

    #[test]
    fn every_invalid_value_is_named() {
        let err = AppConfig::from_toml(
            "[pipeline.edges]\nroom_to_vad_frames = 0\n[pipeline.dialogue]\nmax_tool_steps = 0\n\
             [providers.secondary.openai]\nbase_url = \"ftp://x\"\n",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        for name in [
            "room_to_vad_frames",
            "max_tool_steps",
            "providers.secondary.openai.base_url",
        ] {
            assert!(msg.contains(name), "{name} missing: {msg}");
        }
    }
}

//! `[cache.llm]`: the LLM answer cache's switch, entry lifetime, memory bound and how long a turn
//! may wait on the database layer.

use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmCacheConfig {
    /// On by default everywhere (`simulate`, `console` and `start`): only caller-independent
    /// completions are ever looked up or stored (see `rule`), so production is as safe as a
    /// simulation, and it saves the most there.
    pub enabled: bool,
    /// How long an answer is served after it was made (humantime: "7d").
    #[serde(deserialize_with = "crate::providers::deepgram::duration_str")]
    pub ttl: Duration,
    /// Answers kept in the process (the database layer holds the rest).
    pub memory_entries: u64,
    /// Share answers through the database (`llm_answer_cache`) with every worker on it.
    pub database: bool,
    /// A database lookup taking longer counts as an error and the provider answers: a slow
    /// database never adds more than this to a turn.
    #[serde(deserialize_with = "crate::providers::deepgram::duration_str")]
    pub lookup_timeout: Duration,
    /// The hospital's data version (doctors, shifts) is re-read at most this often, so a change
    /// is seen within it.
    #[serde(deserialize_with = "crate::providers::deepgram::duration_str")]
    pub data_version_every: Duration,
}

impl Default for LlmCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(7 * 24 * 3600),
            memory_entries: 4096,
            database: true,
            lookup_timeout: Duration::from_millis(5),
            data_version_every: Duration::from_secs(1),
        }
    }
}

impl LlmCacheConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        if !self.enabled {
            return errors;
        }
        if self.ttl.is_zero() {
            errors.push("cache.llm.ttl must be positive".to_string());
        }
        if self.memory_entries == 0 {
            errors.push("cache.llm.memory_entries must be positive".to_string());
        }
        if self.lookup_timeout.is_zero() {
            errors.push("cache.llm.lookup_timeout must be positive".to_string());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_and_rejects_zero() {
        let c: LlmCacheConfig =
            toml::from_str("ttl = \"2d\"\nlookup_timeout = \"3ms\"\nmemory_entries = 10").unwrap();
        assert_eq!(c.ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(c.lookup_timeout, Duration::from_millis(3));
        assert!(c.validate().is_empty());
        let bad: LlmCacheConfig = toml::from_str("ttl = \"0s\"").unwrap();
        assert_eq!(bad.validate().len(), 1);
        assert!(toml::from_str::<LlmCacheConfig>("ttl = \"soon\"").is_err());
    }
}

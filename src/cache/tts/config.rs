//! `[cache.tts]`: the TTS phrase cache's switch, its memory bound and how long a call may wait
//! on the database layer.

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsCacheConfig {
    /// On by default everywhere: only caller-independent replies are ever cached, so it is as
    /// safe in production (where it saves the most) as in `simulate` and `console`.
    pub enabled: bool,
    /// Bound of the in-process layer (audio bytes plus text), MiB.
    pub memory_mb: u64,
    /// Share phrases through the database (`tts_phrase_cache`) with every worker on it.
    pub database: bool,
    /// A database lookup taking longer than this counts as an error and the provider speaks
    /// instead: playout never waits on the database for longer.
    pub lookup_timeout_ms: u64,
    /// Synthesise (or load) the greeting and fixed prompts before the first call.
    pub prewarm: bool,
}

impl Default for TtsCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            memory_mb: 64,
            database: true,
            lookup_timeout_ms: 150,
            prewarm: true,
        }
    }
}

impl TtsCacheConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        if self.enabled && self.memory_mb == 0 {
            errors.push("cache.tts.memory_mb must be positive".to_string());
        }
        if self.enabled && self.database && self.lookup_timeout_ms == 0 {
            errors.push("cache.tts.lookup_timeout_ms must be positive".to_string());
        }
        errors
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mb.saturating_mul(1024 * 1024)
    }

    pub fn lookup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lookup_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sizes_are_refused_only_when_used() {
        let bad = TtsCacheConfig {
            memory_mb: 0,
            lookup_timeout_ms: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().len(), 2);
        let off = TtsCacheConfig {
            enabled: false,
            ..bad
        };
        assert!(off.validate().is_empty());
        assert!(TtsCacheConfig::default().validate().is_empty());
    }
}

//! Response caches (issue 14): synthesised agent phrases (`tts`) and caller-independent LLM answers
//! (`llm`), in memory and shared through the database by every worker.

pub mod llm;
pub mod tts;

/// `[cache]`: one table per cache.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub tts: tts::config::TtsCacheConfig,
    pub llm: llm::config::LlmCacheConfig,
}

impl CacheConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut errors = self.tts.validate();
        errors.extend(self.llm.validate());
        errors
    }
}

//! What the response caches saved in one call (issue 14): the TTS phrase cache and the LLM answer
//! cache. Totalled per call in `UsageTotals`, written with the call's usage record, summed by
//! `frontdesk usage` and shown in the simulation report.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheSavings {
    /// Phrases played from the TTS phrase cache / synthesised by the provider while cacheable.
    pub tts_hits: u64,
    pub tts_misses: u64,
    /// Characters not sent to the TTS provider thanks to hits.
    pub tts_saved_characters: u64,
    /// Answers served from the LLM answer cache / completions asked while cacheable.
    pub llm_hits: u64,
    pub llm_misses: u64,
    /// Tokens the hits would have cost.
    pub llm_saved_prompt_tokens: u64,
    pub llm_saved_completion_tokens: u64,
    /// The above at the configured prices, US dollars.
    pub saved_cost_usd: f64,
}

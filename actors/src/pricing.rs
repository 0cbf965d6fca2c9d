//! Cost of a call from its usage, with prices from configuration (`[providers.prices]`), so the
//! call record carries what the call cost.

use serde::Deserialize;

use crate::call::shared::UsageTotals;

/// Prices in US dollars.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    pub stt_per_minute: f64,
    pub llm_prompt_per_million_tokens: f64,
    pub llm_completion_per_million_tokens: f64,
    pub tts_per_thousand_chars: f64,
}

impl Default for Prices {
    /// List prices of the default models (Deepgram nova-3 streaming, GPT-4o-mini, Cartesia sonic).
    fn default() -> Self {
        Self {
            stt_per_minute: 0.0077,
            llm_prompt_per_million_tokens: 0.15,
            llm_completion_per_million_tokens: 0.60,
            tts_per_thousand_chars: 0.03,
        }
    }
}

impl Prices {
    pub fn cost(&self, u: &UsageTotals) -> f64 {
        u.stt_audio_seconds / 60.0 * self.stt_per_minute
            + u.prompt_tokens as f64 / 1e6 * self.llm_prompt_per_million_tokens
            + u.completion_tokens as f64 / 1e6 * self.llm_completion_per_million_tokens
            + u.tts_characters as f64 / 1e3 * self.tts_per_thousand_chars
    }

    /// What LLM tokens not asked from the provider (answer cache hits) would have cost.
    pub fn llm_saved_cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        prompt_tokens as f64 / 1e6 * self.llm_prompt_per_million_tokens
            + completion_tokens as f64 / 1e6 * self.llm_completion_per_million_tokens
    }

    /// What TTS characters not sent to the provider (phrase cache hits) would have cost.
    pub fn tts_saved_cost(&self, characters: u64) -> f64 {
        characters as f64 / 1e3 * self.tts_per_thousand_chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_adds_every_kind_of_usage() {
        let p = Prices::default();
        let u = UsageTotals {
            stt_audio_seconds: 60.0,
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            tts_characters: 1_000,
            ..Default::default()
        };
        let expected = 0.0077 + 0.15 + 0.60 + 0.03;
        assert!((p.cost(&u) - expected).abs() < 1e-9);
        assert_eq!(p.cost(&UsageTotals::default()), 0.0);
    }
}

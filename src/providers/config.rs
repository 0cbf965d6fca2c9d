//! `[providers]`: the primary client of each kind, an optional secondary of the same shape, the
//! breaker that decides between them, and the prices used for the call's cost.

use std::sync::Arc;

use frontdesk_actors::provider::{LlmProvider, SttProvider, TtsProvider};
use serde::Deserialize;

use super::cartesia::{CartesiaConfig, CartesiaTts};
use super::deepgram::{DeepgramConfig, DeepgramStt};
use super::fallback::{Breaker, BreakerConfig, FallbackLlm, FallbackStt, FallbackTts};
use super::openai::{OpenAiConfig, OpenAiLlm};
use super::pricing::Prices;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    pub deepgram: DeepgramConfig,
    pub openai: OpenAiConfig,
    pub cartesia: CartesiaConfig,
    /// Secondaries (e.g. another region, key or OpenAI-compatible server), tried when a primary fails.
    pub secondary: Secondaries,
    pub breaker: BreakerConfig,
    pub prices: Prices,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secondaries {
    pub deepgram: Option<DeepgramConfig>,
    pub openai: Option<OpenAiConfig>,
    pub cartesia: Option<CartesiaConfig>,
}

/// One provider of each kind, as a call uses them, plus the breakers watching the primaries (for
/// health reporting), when secondaries are configured.
#[derive(Clone)]
pub struct Providers {
    pub stt: Arc<dyn SttProvider>,
    pub llm: Arc<dyn LlmProvider>,
    pub tts: Arc<dyn TtsProvider>,
    pub breakers: Vec<Arc<Breaker>>,
}

impl ProvidersConfig {
    /// Every invalid value, named.
    /// The real providers need all three keys; with any missing, keyless runs (console, dev)
    /// use the local emulators.
    pub fn has_all_keys(&self) -> bool {
        !(self.deepgram.api_key.is_empty()
            || self.openai.api_key.is_empty()
            || self.cartesia.api_key.is_empty())
    }

    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        let sets = [
            (
                "providers",
                Some(&self.deepgram),
                Some(&self.openai),
                Some(&self.cartesia),
            ),
            (
                "providers.secondary",
                self.secondary.deepgram.as_ref(),
                self.secondary.openai.as_ref(),
                self.secondary.cartesia.as_ref(),
            ),
        ];
        for (at, dg, oa, ca) in sets {
            if let Some(dg) = dg {
                check_url(
                    &mut errors,
                    &format!("{at}.deepgram.url"),
                    &dg.url,
                    &["ws", "wss"],
                );
            }
            if let Some(oa) = oa {
                let name = format!("{at}.openai.base_url");
                check_url(&mut errors, &name, &oa.base_url, &["http", "https"]);
                if oa.ttft_timeout.is_zero() {
                    errors.push(format!("{at}.openai.ttft_timeout must be positive"));
                }
            }
            if let Some(Err(e)) = ca.map(CartesiaConfig::validate) {
                errors.push(format!("{at}.cartesia: {e}"));
            }
        }
        self.breaker.validate(&mut errors);
        errors
    }

    /// The clients, each wrapped in a fallback when its secondary is configured.
    pub fn build(&self) -> anyhow::Result<Providers> {
        let (b, s) = (&self.breaker, &self.secondary);
        let mut breakers = vec![];
        let stt: Arc<dyn SttProvider> = Arc::new(DeepgramStt::new(self.deepgram.clone()));
        let stt: Arc<dyn SttProvider> = match &s.deepgram {
            None => stt,
            Some(c) => {
                let second = Arc::new(DeepgramStt::new(c.clone()));
                let f = FallbackStt::new(stt, Some(second), b.clone());
                breakers.push(Arc::clone(f.breaker()));
                Arc::new(f)
            }
        };
        let llm: Arc<dyn LlmProvider> = Arc::new(OpenAiLlm::new(self.openai.clone())?);
        let llm: Arc<dyn LlmProvider> = match &s.openai {
            None => llm,
            Some(c) => {
                let second = Arc::new(OpenAiLlm::new(c.clone())?);
                let f = FallbackLlm::new(llm, Some(second), b.clone());
                breakers.push(Arc::clone(f.breaker()));
                Arc::new(f)
            }
        };
        let tts: Arc<dyn TtsProvider> = Arc::new(CartesiaTts::new(self.cartesia.clone())?);
        let tts: Arc<dyn TtsProvider> = match &s.cartesia {
            None => tts,
            Some(c) => {
                let second = Arc::new(CartesiaTts::new(c.clone())?);
                let f = FallbackTts::new(tts, Some(second), b.clone());
                breakers.push(Arc::clone(f.breaker()));
                Arc::new(f)
            }
        };
        Ok(Providers {
            stt,
            llm,
            tts,
            breakers,
        })
    }
}

fn check_url(errors: &mut Vec<String>, name: &str, value: &str, schemes: &[&str]) {
    match url::Url::parse(value) {
        Ok(u) if schemes.contains(&u.scheme()) => {}
        Ok(u) => errors.push(format!(
            "{name}: scheme {} is not one of {schemes:?}",
            u.scheme()
        )),
        Err(e) => errors.push(format!("{name}: {e} ({value:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondaries_parse_with_defaults_and_unknown_keys_fail() {
        let cfg: ProvidersConfig = toml::from_str(
            "[secondary.openai]\nbase_url = \"http://127.0.0.1:9\"\n[breaker]\nfailure_threshold = 3\n",
        )
        .unwrap();
        let second = cfg.secondary.openai.as_ref().unwrap();
        assert_eq!(second.model, "gpt-4o-mini");
        assert_eq!(cfg.breaker.failure_threshold, 3);
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        assert!(
            toml::from_str::<ProvidersConfig>("[secondary.openai]\nbase_ur = \"x\"\n").is_err()
        );
    }

    #[test]
    fn every_bad_value_is_named() {
        let mut cfg = ProvidersConfig::default();
        cfg.deepgram.url = "https://api.deepgram.com".into();
        cfg.secondary.cartesia = Some(CartesiaConfig {
            sample_rate: 12_345,
            ..Default::default()
        });
        cfg.breaker.failure_threshold = 0;
        let errors = cfg.validate().join("\n");
        for name in [
            "providers.deepgram.url",
            "providers.secondary.cartesia",
            "failure_threshold",
        ] {
            assert!(errors.contains(name), "{name} missing in {errors}");
        }
    }

    #[tokio::test]
    async fn build_wraps_only_kinds_with_a_secondary() {
        let mut cfg = ProvidersConfig::default();
        assert!(cfg.build().unwrap().breakers.is_empty());
        cfg.secondary.deepgram = Some(DeepgramConfig::default());
        cfg.secondary.cartesia = Some(CartesiaConfig::default());
        assert_eq!(cfg.build().unwrap().breakers.len(), 2);
    }
}

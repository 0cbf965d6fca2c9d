//! Settings of the Deepgram live STT client.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// Deepgram client settings (`[stt.deepgram]`-style config). Durations are humantime strings
/// ("5s", "250ms").
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepgramConfig {
    /// Websocket endpoint, without query (the client adds it).
    pub url: String,
    pub api_key: Secret,
    pub model: String,
    pub language: String,
    pub punctuate: bool,
    pub filler_words: bool,
    /// Silence (ms) after which Deepgram sets `speech_final`.
    pub endpointing_ms: u32,
    /// Sent only when set (Deepgram requires ≥ 1000 and interim results).
    pub utterance_end_ms: Option<u32>,
    /// `KeepAlive` after this long without audio; zero disables it.
    #[serde(deserialize_with = "duration_str")]
    pub keepalive_every: Duration,
    #[serde(deserialize_with = "duration_str")]
    pub connect_timeout: Duration,
    /// After `Finalize`, a final must arrive within this long, else the session fails with
    /// `SttError::Timeout` (a stalled server is otherwise silent forever); zero disables it.
    #[serde(deserialize_with = "duration_str")]
    pub result_timeout: Duration,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.deepgram.com/v1/listen".into(),
            api_key: Secret::default(),
            model: "nova-3".into(),
            language: "en-US".into(),
            punctuate: true,
            filler_words: true,
            endpointing_ms: 25,
            utterance_end_ms: None,
            keepalive_every: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            // Finalize is answered in a few hundred ms; past this the session is replaced and the
            // utterance replayed, which beats more dead air.
            result_timeout: Duration::from_millis(1_500),
        }
    }
}

/// A humantime duration string ("5s", "250ms").
pub(crate) fn duration_str<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        dg: DeepgramConfig,
    }

    #[test]
    fn parses_and_rejects_unknown_fields() {
        let w: Wrap = toml::from_str(
            "[dg]\napi_key = \"k\"\nkeepalive_every = \"250ms\"\nutterance_end_ms = 1000\n",
        )
        .unwrap();
        assert_eq!(w.dg.keepalive_every, Duration::from_millis(250));
        assert_eq!(w.dg.model, "nova-3");
        assert_eq!(w.dg.utterance_end_ms, Some(1000));
        assert!(toml::from_str::<Wrap>("[dg]\nmodle = \"x\"\n").is_err());
    }
}

//! One cached phrase: its key, its audio and the checks that make a corrupt or colliding entry
//! a clear error instead of noise on a call.

use std::fmt::Write;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// What makes audio reusable: the same text in the same voice, model and output format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voice {
    pub voice: String,
    pub model: String,
    /// `pcm_s16le@<rate>`: what the provider is configured to produce.
    pub format: String,
}

impl Voice {
    pub fn new(voice: &str, model: &str, sample_rate: u32) -> Self {
        Self {
            voice: voice.to_owned(),
            model: model.to_owned(),
            format: format_name(sample_rate),
        }
    }

    /// Hex SHA-256 of the four parts, each length-prefixed so no two keys run together.
    pub fn key(&self, text: &str) -> String {
        let mut h = Sha256::new();
        for part in [&self.voice, &self.model, &self.format, text] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex(&h.finalize())
    }
}

/// Synthesised audio of one phrase, as the provider produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Phrase {
    pub text: String,
    pub samples: Arc<[i16]>,
    pub sample_rate: u32,
}

impl Phrase {
    /// Bytes it holds in memory (the memory layer's weight).
    pub fn weight(&self) -> u64 {
        (self.samples.len() * 2 + self.text.len()) as u64
    }
}

/// A phrase as the database keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPhrase {
    pub key: String,
    pub voice: String,
    pub model: String,
    pub format: String,
    pub text: String,
    /// PCM s16 little-endian.
    pub audio: Vec<u8>,
    pub audio_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PhraseError {
    #[error("corrupt tts cache entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("tts cache key collision on {key}")]
    Collision { key: String },
    #[error("tts cache store: {0}")]
    Store(String),
    #[error("tts cache store did not answer in time")]
    Timeout,
}

impl PhraseError {
    /// A corrupt entry stays corrupt until overwritten; the store may come back.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Timeout)
    }

    /// The `result` label of the lookup counter.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Corrupt { .. } | Self::Collision { .. } => "corrupt",
            Self::Store(_) | Self::Timeout => "error",
        }
    }
}

pub fn format_name(sample_rate: u32) -> String {
    format!("pcm_s16le@{sample_rate}")
}

fn parse_format(format: &str) -> Option<u32> {
    format
        .strip_prefix("pcm_s16le@")
        .and_then(|r| r.parse().ok())
        .filter(|r| (8_000..=96_000).contains(r))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl StoredPhrase {
    /// The row for `phrase`, spoken in `voice`.
    pub fn encode(voice: &Voice, phrase: &Phrase) -> Self {
        let audio: Vec<u8> = phrase
            .samples
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        Self {
            key: voice.key(&phrase.text),
            voice: voice.voice.clone(),
            model: voice.model.clone(),
            format: format_name(phrase.sample_rate),
            text: phrase.text.clone(),
            audio_sha256: sha256_hex(&audio),
            audio,
        }
    }

    /// The phrase back, if the row is whole and is the one asked for (`key` of `text` in `voice`).
    pub fn decode(&self, voice: &Voice, text: &str) -> Result<Phrase, PhraseError> {
        let corrupt = |reason: &str| PhraseError::Corrupt {
            key: self.key.clone(),
            reason: reason.to_owned(),
        };
        if self.text != text || self.voice != voice.voice || self.model != voice.model {
            return Err(PhraseError::Collision {
                key: self.key.clone(),
            });
        }
        let sample_rate = parse_format(&self.format).ok_or_else(|| corrupt("unknown format"))?;
        if self.audio.is_empty() || !self.audio.len().is_multiple_of(2) {
            return Err(corrupt("bad audio length"));
        }
        if sha256_hex(&self.audio) != self.audio_sha256 {
            return Err(corrupt("audio_sha256 mismatch"));
        }
        let samples: Arc<[i16]> = self
            .audio
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(Phrase {
            text: text.to_owned(),
            samples,
            sample_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice() -> Voice {
        Voice::new("v1", "sonic-3", 24_000)
    }

    fn phrase(text: &str) -> Phrase {
        Phrase {
            text: text.into(),
            samples: vec![1, -2, 300, i16::MIN, i16::MAX].into(),
            sample_rate: 24_000,
        }
    }

    #[test]
    fn keys_differ_by_every_part_and_never_run_together() {
        let v = voice();
        let k = v.key("Hello.");
        assert_eq!(k.len(), 64);
        assert_eq!(k, voice().key("Hello."));
        assert_ne!(k, v.key("Hello!"));
        assert_ne!(k, Voice::new("v2", "sonic-3", 24_000).key("Hello."));
        assert_ne!(k, Voice::new("v1", "sonic-2", 24_000).key("Hello."));
        assert_ne!(k, Voice::new("v1", "sonic-3", 16_000).key("Hello."));
        // Moving a character from one part to the next makes another key.
        assert_ne!(
            Voice::new("ab", "c", 24_000).key("x"),
            Voice::new("a", "bc", 24_000).key("x")
        );
    }

    #[test]
    fn a_row_round_trips() {
        let p = phrase("Hello.");
        let row = StoredPhrase::encode(&voice(), &p);
        assert_eq!(row.decode(&voice(), "Hello.").unwrap(), p);
    }

    #[test]
    fn corrupt_rows_are_named_errors() {
        let row = StoredPhrase::encode(&voice(), &phrase("Hello."));
        let mut flipped = row.clone();
        flipped.audio[3] ^= 1;
        let mut odd = row.clone();
        odd.audio.pop();
        odd.audio_sha256 = sha256_hex(&odd.audio);
        let mut format = row.clone();
        format.format = "mp3".into();
        for (bad, why) in [
            (flipped, "audio_sha256 mismatch"),
            (odd, "bad audio length"),
            (format, "unknown format"),
        ] {
            let e = bad.decode(&voice(), "Hello.").unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(e.label(), "corrupt");
            assert!(!e.is_retriable());
        }
        let e = row.decode(&voice(), "Goodbye.").unwrap_err();
        assert!(matches!(e, PhraseError::Collision { .. }), "{e}");
    }
}

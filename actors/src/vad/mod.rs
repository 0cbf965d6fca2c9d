//! Voice activity detection: webrtc-vad per 20 ms frame, smoothed by a small state machine, with a
//! pre-roll ring so STT also hears the start of the utterance that triggered detection.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audio::FRAME_DURATION;

mod detector;
mod machine;

pub use detector::{VadDetector, VadEvent};
pub use machine::{SpeechMachine, SpeechState, SpeechTransition};

/// Upper bound on any VAD duration; keeps the pre-roll ring (and a typo in a config file) small.
const MAX_DURATION_MS: u32 = 10_000;

/// Tuning of the voice activity detector. Durations are in milliseconds and are rounded up to
/// whole 20 ms frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadConfig {
    /// webrtc-vad mode, 0 (least) ..= 3 (most aggressive in rejecting non-speech).
    pub aggressiveness: u8,
    /// Speech must last this long before it counts as an utterance (filters clicks and coughs).
    pub min_speech_ms: u32,
    /// Non-speech must last this long before the utterance ends (bridges pauses between words).
    pub hangover_ms: u32,
    /// Audio before the detected onset that is still sent to STT.
    pub preroll_ms: u32,
    /// Inside an utterance, a frame this many dB below its loudest frame counts as silence for
    /// the hangover even when webrtc-vad still hears voice in it: the fading tail of the last
    /// syllable, which webrtc-vad keeps for 60–120 ms. Relative, so a quiet line ends the same way
    /// as a loud one. 0 turns it off.
    pub tail_floor_db: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            aggressiveness: 2,
            min_speech_ms: 100,
            hangover_ms: 400,
            preroll_ms: 200,
            tail_floor_db: 30,
        }
    }
}

impl VadConfig {
    pub fn min_speech(&self) -> Duration {
        Duration::from_millis(self.min_speech_ms.into())
    }

    pub fn hangover(&self) -> Duration {
        Duration::from_millis(self.hangover_ms.into())
    }

    pub fn preroll(&self) -> Duration {
        Duration::from_millis(self.preroll_ms.into())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.aggressiveness > 3 {
            return Err(format!(
                "aggressiveness must be 0..=3, got {}",
                self.aggressiveness
            ));
        }
        if self.tail_floor_db > 90 {
            return Err(format!(
                "tail_floor_db must be at most 90, got {}",
                self.tail_floor_db
            ));
        }
        if self.min_speech_ms < 20 {
            return Err(format!(
                "min_speech_ms must be at least 20, got {}",
                self.min_speech_ms
            ));
        }
        for (name, ms) in [
            ("min_speech_ms", self.min_speech_ms),
            ("hangover_ms", self.hangover_ms),
            ("preroll_ms", self.preroll_ms),
        ] {
            if ms > MAX_DURATION_MS {
                return Err(format!(
                    "{name} must be at most {MAX_DURATION_MS}, got {ms}"
                ));
            }
        }
        Ok(())
    }

    /// Speech frames needed to start an utterance (at least one).
    pub fn min_speech_frames(&self) -> u32 {
        ms_to_frames(self.min_speech_ms).max(1)
    }

    /// Non-speech frames needed to end an utterance (at least one).
    pub fn hangover_frames(&self) -> u32 {
        ms_to_frames(self.hangover_ms).max(1)
    }

    pub fn preroll_frames(&self) -> u32 {
        ms_to_frames(self.preroll_ms)
    }
}

fn ms_to_frames(ms: u32) -> u32 {
    ms.div_ceil(FRAME_DURATION.as_millis() as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let cfg = VadConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.min_speech(), Duration::from_millis(100));
        assert_eq!(cfg.hangover(), Duration::from_millis(400));
        assert_eq!(cfg.preroll(), Duration::from_millis(200));
        assert_eq!((cfg.min_speech_frames(), cfg.hangover_frames()), (5, 20));
        assert_eq!(cfg.preroll_frames(), 10);
    }

    #[test]
    fn validate_rejects_bad_values() {
        let bad = |f: fn(&mut VadConfig)| {
            let mut cfg = VadConfig::default();
            f(&mut cfg);
            cfg.validate().unwrap_err()
        };
        assert!(bad(|c| c.aggressiveness = 4).contains("aggressiveness"));
        assert!(bad(|c| c.min_speech_ms = 19).contains("min_speech_ms"));
        assert!(bad(|c| c.preroll_ms = 60_000).contains("preroll_ms"));
    }

    #[test]
    fn serde_fills_defaults_and_rejects_unknown_fields() {
        let cfg: VadConfig = serde_json::from_str(r#"{"hangover_ms": 300}"#).unwrap();
        assert_eq!(cfg.hangover_ms, 300);
        assert_eq!(cfg.min_speech_ms, 100);
        assert!(serde_json::from_str::<VadConfig>(r#"{"hangover": 300}"#).is_err());
        let back: VadConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn durations_round_up_to_frames() {
        let cfg = VadConfig {
            min_speech_ms: 30,
            hangover_ms: 0,
            preroll_ms: 1,
            ..VadConfig::default()
        };
        assert_eq!(cfg.min_speech_frames(), 2);
        assert_eq!(cfg.hangover_frames(), 1);
        assert_eq!(cfg.preroll_frames(), 1);
    }
}

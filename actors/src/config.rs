//! Typed configuration of one call's pipeline. Parsed once at start (by the service) and handed to
//! every call; actors never read the environment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::vad::VadConfig;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub vad: VadConfig,
    pub turn: TurnConfig,
    pub edges: EdgeConfig,
    pub supervision: SupervisionConfig,
    pub dialogue: DialogueConfig,
    /// Caller transcripts in debug logs. Patient data: set only for the development environment
    /// when the configuration is loaded, never from a file (off by default).
    #[serde(skip)]
    pub log_transcripts: bool,
}

impl PipelineConfig {
    /// Every problem at once, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = vec![];
        if let Err(e) = self.vad.validate() {
            errs.push(format!("pipeline.vad: {e}"));
        }
        if self.turn.false_interruption_timeout_ms > MAX_FALSE_INTERRUPTION_MS {
            errs.push(format!(
                "pipeline.turn.false_interruption_timeout_ms must be at most {MAX_FALSE_INTERRUPTION_MS} (0 turns recovery off)"
            ));
        }
        if self.edges.room_to_vad_frames == 0 {
            errs.push("pipeline.edges.room_to_vad_frames must be at least 1".into());
        }
        if self.edges.vad_to_stt_frames == 0 {
            errs.push("pipeline.edges.vad_to_stt_frames must be at least 1".into());
        }
        if self.edges.tts_to_room_frames == 0 {
            errs.push("pipeline.edges.tts_to_room_frames must be at least 1".into());
        }
        if self.dialogue.max_tool_steps == 0 {
            errs.push("pipeline.dialogue.max_tool_steps must be at least 1".into());
        }
        if self.dialogue.tool_timeout_ms == 0 {
            errs.push("pipeline.dialogue.tool_timeout_ms must be at least 1".into());
        }
        for (name, b) in self.supervision.budgets() {
            if b.window_ms == 0 {
                errs.push(format!(
                    "pipeline.supervision.{name}.window_ms must be at least 1"
                ));
            }
        }
        if let Err(e) = self
            .supervision
            .backoff
            .validate("pipeline.supervision.backoff")
        {
            errs.push(e);
        }
        // Under 100 ms an ordinary provider hiccup would restart the TTS.
        if !(100..=60_000).contains(&self.supervision.progress_deadline_ms) {
            errs.push(
                "pipeline.supervision.progress_deadline_ms must be between 100 and 60000".into(),
            );
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// A reply paused longer than this is stale for the caller, and the TTS session behind it
/// would be kept waiting on backpressure for as long.
const MAX_FALSE_INTERRUPTION_MS: u32 = 10_000;

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// Turn-taking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// Silence after speech end (beyond VAD hangover) before the turn is committed.
    pub endpointing_delay_ms: u32,
    /// Caller speech while the agent talks must last this long to interrupt it.
    pub barge_in_min_speech_ms: u32,
    /// Give up waiting for a final transcript this long after speech end.
    pub final_transcript_timeout_ms: u32,
    /// Caller speech past the barge-in window keeps the reply paused, not cancelled, until words
    /// are transcribed (then it is cancelled) or the caller has been quiet this long without any
    /// (then it resumes where it paused: a cough, a door). 0: cancel at once, as before.
    pub false_interruption_timeout_ms: u32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            endpointing_delay_ms: 200,
            barge_in_min_speech_ms: 300,
            final_transcript_timeout_ms: 2_000,
            false_interruption_timeout_ms: 2_000,
        }
    }
}

impl TurnConfig {
    pub fn endpointing_delay(&self) -> Duration {
        ms(self.endpointing_delay_ms)
    }
    pub fn barge_in_min_speech(&self) -> Duration {
        ms(self.barge_in_min_speech_ms)
    }
    pub fn final_transcript_timeout(&self) -> Duration {
        ms(self.final_transcript_timeout_ms)
    }
    /// `None`: recovery is off and a barge-in cancels the reply at once.
    pub fn false_interruption_timeout(&self) -> Option<Duration> {
        (self.false_interruption_timeout_ms > 0).then(|| ms(self.false_interruption_timeout_ms))
    }
}

/// Bounds of the supervisor-owned edges, in 20 ms frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    pub room_to_vad_frames: usize,
    pub vad_to_stt_frames: usize,
    pub tts_to_room_frames: usize,
    /// Caller audio since the last final transcript kept for replay after an STT restart.
    pub stt_replay_ms: u32,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            room_to_vad_frames: 10,
            vad_to_stt_frames: 100,
            tts_to_room_frames: 10,
            stt_replay_ms: 30_000,
        }
    }
}

/// Restart budget: at most `max_restarts` within `window_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartBudget {
    pub max_restarts: u32,
    pub window_ms: u32,
}

impl RestartBudget {
    pub const fn new(max_restarts: u32, window_ms: u32) -> Self {
        Self {
            max_restarts,
            window_ms,
        }
    }
    pub fn window(&self) -> Duration {
        ms(self.window_ms)
    }
}

/// Per-child restart budgets (the architecture's supervision table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    pub vad: RestartBudget,
    pub stt: RestartBudget,
    pub dialogue: RestartBudget,
    pub tts: RestartBudget,
    pub db_gateway: RestartBudget,
    /// Delay between restarts of a child that keeps failing; the first restart after a healthy
    /// spell is immediate (the call goes on), a failed start always waits.
    pub backoff: Backoff,
    /// A child whose send makes no progress for this long (the TTS taking text, the room taking
    /// audio) is failed: the TTS is restarted (it re-speaks the unplayed part), a stalled room
    /// ends the call with a reason instead of leaving it silent.
    pub progress_deadline_ms: u32,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            vad: RestartBudget::new(5, 10_000),
            stt: RestartBudget::new(3, 30_000),
            dialogue: RestartBudget::new(3, 30_000),
            tts: RestartBudget::new(3, 30_000),
            db_gateway: RestartBudget::new(5, 30_000),
            backoff: Backoff::new(200, 5_000),
            progress_deadline_ms: 5_000,
        }
    }
}

impl SupervisionConfig {
    pub fn progress_deadline(&self) -> Duration {
        ms(self.progress_deadline_ms)
    }

    pub fn budgets(&self) -> [(&'static str, RestartBudget); 5] {
        [
            ("vad", self.vad),
            ("stt", self.stt),
            ("dialogue", self.dialogue),
            ("tts", self.tts),
            ("db_gateway", self.db_gateway),
        ]
    }
}

/// The conversation itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialogueConfig {
    pub system_prompt: String,
    /// Spoken when the call starts; empty for none.
    pub greeting: String,
    /// Spoken when a provider cannot be recovered and the call must end.
    pub apology: String,
    /// Spoken when no caller audio reaches the room in time; then the call ends.
    pub no_audio_prompt: String,
    /// LLM rounds per turn (each may call tools) before the agent gives up on the turn.
    pub max_tool_steps: u32,
    pub tool_timeout_ms: u32,
    /// How long the call may take to say goodbye or an apology before it is torn down.
    pub farewell_timeout_ms: u32,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are the front desk of Saint Mary's hospital on the phone. Help callers \
                            find, book, cancel or reschedule appointments using the tools. Be brief: \
                            one or two short sentences per reply."
                .into(),
            greeting: "Saint Mary's hospital, how can I help you?".into(),
            apology: "I'm sorry, our system is having trouble right now. Please call again in a few minutes.".into(),
            no_audio_prompt: "I'm sorry, I can't hear you. Please try calling again.".into(),
            max_tool_steps: 5,
            tool_timeout_ms: 2_000,
            farewell_timeout_ms: 5_000,
        }
    }
}

impl DialogueConfig {
    pub fn tool_timeout(&self) -> Duration {
        ms(self.tool_timeout_ms)
    }
    pub fn farewell_timeout(&self) -> Duration {
        ms(self.farewell_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_interruption_timeout_is_bounded_and_zero_turns_it_off() {
        let mut cfg = PipelineConfig::default();
        assert_eq!(
            cfg.turn.false_interruption_timeout(),
            Some(Duration::from_secs(2))
        );
        cfg.turn.false_interruption_timeout_ms = 0;
        assert_eq!(cfg.turn.false_interruption_timeout(), None);
        assert!(cfg.validate().is_ok());
        cfg.turn.false_interruption_timeout_ms = MAX_FALSE_INTERRUPTION_MS + 1;
        let errs = cfg.validate().unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.starts_with("pipeline.turn.false_interruption_timeout_ms")),
            "{errs:?}"
        );
    }
}

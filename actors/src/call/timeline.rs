//! Timestamps of one turn and the per-stage latencies derived from them.
//!
//! t0 speech end (last voiced audio) → final transcript → end of turn decided → LLM request → first
//! token → first sentence to TTS → first TTS audio → first agent frame out. `pipeline_overhead` is the
//! turn latency minus every interval spent waiting on a provider or on a configured delay
//! (hangover, endpointing): what our own code added.

use std::time::Duration;

use tokio::time::Instant;

use super::ledger::ReplyLedger;

#[derive(Clone, Debug, Default)]
pub struct TurnTimeline {
    pub turn: u32,
    pub reply_id: u64,
    pub speech_end: Option<Instant>,
    pub final_at: Option<Instant>,
    /// When both the configured delays had passed and a final transcript was there: from here on,
    /// any delay before the commit is ours.
    pub eot_ready_at: Option<Instant>,
    pub eot_at: Option<Instant>,
    pub llm_request_at: Option<Instant>,
    pub llm_first_token_at: Option<Instant>,
    /// Time spent awaiting the LLM and tools before the first sentence went to TTS.
    pub provider_wait: Duration,
    pub first_sentence_at: Option<Instant>,
    /// From the room delivering the speech-end frame to the VAD seeing it (inside the turn's
    /// latency and overhead: the turn starts at the arrival).
    pub input_lag: Option<Duration>,
}

/// Latencies of one completed turn (each `None` when that stage did not happen).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnReport {
    pub turn: u32,
    pub transcription_delay: Option<Duration>,
    pub end_of_turn_delay: Option<Duration>,
    pub llm_ttft: Option<Duration>,
    pub tts_ttfb: Option<Duration>,
    pub turn_latency: Option<Duration>,
    pub pipeline_overhead: Option<Duration>,
    /// Where the overhead went: end of turn ready → decided, decided → LLM request, first sentence
    /// → TTS request, first TTS audio → first frame out.
    pub eot_lag: Option<Duration>,
    pub reply_start_lag: Option<Duration>,
    pub tts_start_lag: Option<Duration>,
    pub playout_lag: Option<Duration>,
    pub input_lag: Option<Duration>,
}

fn since(later: Option<Instant>, earlier: Option<Instant>) -> Option<Duration> {
    Some(later?.saturating_duration_since(earlier?))
}

impl TurnTimeline {
    pub fn new_turn(turn: u32, speech_end: Instant) -> Self {
        Self {
            turn,
            speech_end: Some(speech_end),
            ..Default::default()
        }
    }

    pub fn report(&self, ledger: &ReplyLedger) -> TurnReport {
        let t0 = self.speech_end;
        let tts_ttfb = since(ledger.first_audio_at, ledger.tts_requested_at);
        let turn_latency = since(ledger.first_frame_out_at, t0);
        let overhead = turn_latency.map(|total| {
            let eot_wait = since(self.eot_ready_at, t0).unwrap_or_default();
            total
                .saturating_sub(eot_wait)
                .saturating_sub(self.provider_wait)
                .saturating_sub(tts_ttfb.unwrap_or_default())
        });
        TurnReport {
            turn: self.turn,
            transcription_delay: since(self.final_at, t0),
            end_of_turn_delay: since(self.eot_at, t0),
            llm_ttft: since(self.llm_first_token_at, self.llm_request_at),
            tts_ttfb,
            turn_latency,
            pipeline_overhead: overhead,
            eot_lag: since(self.eot_at, self.eot_ready_at),
            reply_start_lag: since(self.llm_request_at, self.eot_at),
            tts_start_lag: since(ledger.tts_requested_at, self.first_sentence_at),
            playout_lag: since(ledger.first_frame_out_at, ledger.first_audio_at),
            input_lag: self.input_lag,
        }
    }
}

impl TurnReport {
    /// Record the histograms.
    pub fn record_metrics(&self) {
        use crate::metrics as m;
        let pairs = [
            (m::TRANSCRIPTION_DELAY, self.transcription_delay),
            (m::END_OF_TURN_DELAY, self.end_of_turn_delay),
            (m::LLM_TTFT, self.llm_ttft),
            (m::TTS_TTFB, self.tts_ttfb),
            (m::TURN_LATENCY, self.turn_latency),
            (m::PIPELINE_OVERHEAD, self.pipeline_overhead),
            (m::INPUT_LAG, self.input_lag),
        ];
        for (name, v) in pairs {
            if let Some(d) = v {
                m::seconds(name, d);
            }
        }
    }

    pub fn latencies(&self) -> crate::store::TurnLatencies {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        crate::store::TurnLatencies {
            transcription_delay_ms: ms(self.transcription_delay),
            end_of_turn_delay_ms: ms(self.end_of_turn_delay),
            llm_ttft_ms: ms(self.llm_ttft),
            tts_ttfb_ms: ms(self.tts_ttfb),
            turn_latency_ms: ms(self.turn_latency),
            pipeline_overhead_ms: ms(self.pipeline_overhead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn overhead_excludes_waits() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut tl = TurnTimeline::new_turn(1, t0);
        tl.final_at = Some(at(150));
        tl.eot_ready_at = Some(at(600));
        tl.eot_at = Some(at(601));
        tl.llm_request_at = Some(at(601));
        tl.llm_first_token_at = Some(at(900));
        tl.provider_wait = Duration::from_millis(400);
        let mut ledger = ReplyLedger::default();
        ledger.tts_requested_at = Some(at(1002));
        ledger.first_audio_at = Some(at(1202));
        ledger.first_frame_out_at = Some(at(1205));
        let r = tl.report(&ledger);
        assert_eq!(r.turn_latency, Some(Duration::from_millis(1205)));
        assert_eq!(r.transcription_delay, Some(Duration::from_millis(150)));
        assert_eq!(r.llm_ttft, Some(Duration::from_millis(299)));
        assert_eq!(r.tts_ttfb, Some(Duration::from_millis(200)));
        // 1205 - 600 (eot) - 400 (llm) - 200 (tts) = 5 ms of our own.
        assert_eq!(r.pipeline_overhead, Some(Duration::from_millis(5)));
    }
}

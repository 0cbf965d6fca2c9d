//! Metric names and recording helpers. Names follow `frontdesk_<name>_<unit>`; labels never carry a
//! call id (cardinality stays bounded by construction).

use std::time::Duration;

use crate::edge::DropReason;

pub const TRANSCRIPTION_DELAY: &str = "frontdesk_transcription_delay_seconds";
pub const END_OF_TURN_DELAY: &str = "frontdesk_end_of_turn_delay_seconds";
pub const LLM_TTFT: &str = "frontdesk_llm_ttft_seconds";
pub const TTS_TTFB: &str = "frontdesk_tts_ttfb_seconds";
pub const TURN_LATENCY: &str = "frontdesk_turn_latency_seconds";
pub const PIPELINE_OVERHEAD: &str = "frontdesk_pipeline_overhead_seconds";
pub const EDGE_DROPPED: &str = "frontdesk_edge_dropped_items_total";
pub const ACTOR_RESTARTS: &str = "frontdesk_actor_restarts_total";
pub const ACTIVE_CALLS: &str = "frontdesk_active_calls";
pub const CALLS_ENDED: &str = "frontdesk_calls_ended_total";
pub const TURNS: &str = "frontdesk_turns_total";
pub const BARGE_INS: &str = "frontdesk_barge_ins_total";
pub const TOOL_CALLS: &str = "frontdesk_tool_calls_total";
pub const INPUT_REJECTED: &str = "frontdesk_input_rejected_total";
pub const RECORD_DROPPED: &str = "frontdesk_call_record_dropped_total";

/// Register descriptions once per process (the exporter shows them as HELP lines).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        TRANSCRIPTION_DELAY,
        Unit::Seconds,
        "Speech end to final transcript."
    );
    describe_histogram!(
        END_OF_TURN_DELAY,
        Unit::Seconds,
        "Speech end to end of turn decided."
    );
    describe_histogram!(LLM_TTFT, Unit::Seconds, "LLM request to first token.");
    describe_histogram!(TTS_TTFB, Unit::Seconds, "TTS request to first audio.");
    describe_histogram!(
        TURN_LATENCY,
        Unit::Seconds,
        "Caller speech end to first agent audio out."
    );
    describe_histogram!(
        PIPELINE_OVERHEAD,
        Unit::Seconds,
        "Turn latency minus provider and configured waits."
    );
    describe_counter!(
        EDGE_DROPPED,
        "Items dropped from a bounded edge, by edge and reason."
    );
    describe_counter!(ACTOR_RESTARTS, "Child actor restarts by child.");
    describe_gauge!(ACTIVE_CALLS, "Calls in progress.");
    describe_counter!(CALLS_ENDED, "Calls ended, by reason.");
    describe_counter!(TURNS, "Completed caller turns.");
    describe_counter!(BARGE_INS, "Agent replies interrupted by the caller.");
    describe_counter!(TOOL_CALLS, "Tool calls by tool and outcome.");
    describe_counter!(
        INPUT_REJECTED,
        "Bad input from outside, by source and reason."
    );
    describe_counter!(RECORD_DROPPED, "Call-record writes dropped, by reason.");
}

pub fn edge_dropped(edge: &'static str, reason: DropReason, n: u64) {
    metrics::counter!(EDGE_DROPPED, "edge" => edge, "reason" => reason.as_str()).increment(n);
}

pub fn restart(child: &'static str) {
    metrics::counter!(ACTOR_RESTARTS, "child" => child).increment(1);
}

pub fn input_rejected(source: &'static str, reason: &'static str) {
    metrics::counter!(INPUT_REJECTED, "source" => source, "reason" => reason).increment(1);
}

pub fn seconds(name: &'static str, d: Duration) {
    metrics::histogram!(name).record(d.as_secs_f64());
}

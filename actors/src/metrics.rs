//! Metric names and recording helpers. Names follow `frontdesk_<name>_<unit>`; labels never carry a
//! call id (cardinality stays bounded by construction).

use std::time::Duration;

use crate::call::ports::{Drops, QUEUES};
use crate::edge::DropReason;
use crate::tools::ToolStatus;

pub const TRANSCRIPTION_DELAY: &str = "frontdesk_transcription_delay_seconds";
pub const END_OF_TURN_DELAY: &str = "frontdesk_end_of_turn_delay_seconds";
pub const LLM_TTFT: &str = "frontdesk_llm_ttft_seconds";
pub const TTS_TTFB: &str = "frontdesk_tts_ttfb_seconds";
pub const TURN_LATENCY: &str = "frontdesk_turn_latency_seconds";
pub const PIPELINE_OVERHEAD: &str = "frontdesk_pipeline_overhead_seconds";
pub const INPUT_LAG: &str = "frontdesk_input_lag_seconds";
pub const STALLS: &str = "frontdesk_stalls_total";
pub const EDGE_DROPPED: &str = "frontdesk_edge_dropped_items_total";
pub const EDGE_DEPTH: &str = "frontdesk_edge_depth";
pub const ACTOR_RESTARTS: &str = "frontdesk_actor_restarts_total";
pub const ACTIVE_CALLS: &str = "frontdesk_active_calls";
pub const CALLS_ENDED: &str = "frontdesk_calls_ended_total";
pub const TURNS: &str = "frontdesk_turns_total";
pub const BARGE_INS: &str = "frontdesk_barge_ins_total";
pub const FALSE_INTERRUPTIONS: &str = "frontdesk_false_interruptions_total";
pub const TOOL_CALLS: &str = "frontdesk_tool_calls_total";
pub const INPUT_REJECTED: &str = "frontdesk_input_rejected_total";
pub const RECORD_DROPPED: &str = "frontdesk_call_record_dropped_total";
pub const CALL_COST: &str = "frontdesk_call_cost_usd";
pub const CALL_DURATION: &str = "frontdesk_call_duration_seconds";

/// Bucket upper bounds per histogram, fitted to each one's range: a quantile is only as precise
/// as the buckets around it, and every alert threshold is a boundary (turn latency has 1.5 s,
/// pipeline overhead 5 ms). Voice to voice spans 0.5-3 s; the provider stages 50 ms-2 s.
pub const TURN_LATENCY_BUCKETS: &[f64] = &[
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0,
];
pub const STAGE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];
pub const OVERHEAD_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Dollars per call: a minute costs about $0.02.
pub const COST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
pub const CALL_DURATION_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Every histogram of this crate with its buckets (the exporter is configured from this).
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    (TRANSCRIPTION_DELAY, STAGE_BUCKETS),
    (END_OF_TURN_DELAY, STAGE_BUCKETS),
    (LLM_TTFT, STAGE_BUCKETS),
    (TTS_TTFB, STAGE_BUCKETS),
    (TURN_LATENCY, TURN_LATENCY_BUCKETS),
    (PIPELINE_OVERHEAD, OVERHEAD_BUCKETS),
    (INPUT_LAG, OVERHEAD_BUCKETS),
    (CALL_COST, COST_BUCKETS),
    (CALL_DURATION, CALL_DURATION_BUCKETS),
];

/// `reason` label values of [`CALLS_ENDED`] (`EndReason::label`).
pub const END_REASONS: &[&str] = &[
    "caller_hung_up",
    "agent_hung_up",
    "room_failed",
    "no_caller_audio",
    "budget_exhausted",
    "shutdown",
];
/// `child` label values of [`ACTOR_RESTARTS`] (`ChildKind::as_str`).
pub const CHILDREN: &[&str] = &["room", "vad", "stt", "dialogue", "tts", "db_gateway"];
/// Drop series of every queue counted in [`EDGE_DROPPED`], zeroed at start: derived from the
/// call's queue table (`call::ports::QUEUES`), where each queue's bound and policy are.
pub fn edge_drops() -> impl Iterator<Item = (&'static str, DropReason)> {
    QUEUES.iter().flat_map(|q| {
        let reasons: &'static [DropReason] = match q.drops {
            Drops::Edge(r) => r,
            _ => &[],
        };
        reasons.iter().map(move |r| (q.name, *r))
    })
}

/// Queues with a [`EDGE_DEPTH`] gauge, created at 0 at start (from the queue table).
pub fn edge_depths() -> impl Iterator<Item = &'static str> {
    QUEUES.iter().filter(|q| q.depth_gauge).map(|q| q.name)
}

/// [`RECORD_DROPPED`] reasons: the record outbox's (from the queue table) and a gateway given up.
fn record_drop_reasons() -> impl Iterator<Item = &'static str> {
    let outbox = QUEUES.iter().flat_map(|q| match q.drops {
        Drops::Records(r) => r,
        _ => &[],
    });
    outbox.copied().chain(["gateway_down"])
}

/// [`INPUT_REJECTED`] series created at start; others appear on their first rejection.
const KNOWN_REJECTIONS: &[(&str, &str)] = &[
    ("livekit", "text_frame"),
    ("livekit", "undecodable"),
    ("room", "empty_frame"),
    ("room", "unsupported_rate"),
    ("vad", "bad_frame"),
];

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
    describe_histogram!(
        INPUT_LAG,
        Unit::Seconds,
        "Speech-end frame delivered by the room to seen by the VAD (queued caller audio)."
    );
    describe_counter!(
        EDGE_DROPPED,
        "Items dropped from a bounded edge, by edge and reason."
    );
    describe_gauge!(
        EDGE_DEPTH,
        "Items queued on a bounded edge, summed over its instances (calls, contexts)."
    );
    describe_counter!(ACTOR_RESTARTS, "Child actor restarts by child.");
    describe_counter!(
        STALLS,
        "Sends that made no progress within the deadline, by child (tts restarts, room ends the call)."
    );
    describe_gauge!(ACTIVE_CALLS, "Calls in progress.");
    describe_counter!(CALLS_ENDED, "Calls ended, by reason.");
    describe_counter!(TURNS, "Completed caller turns.");
    describe_counter!(BARGE_INS, "Agent replies interrupted by the caller.");
    describe_counter!(
        FALSE_INTERRUPTIONS,
        "Agent replies paused by caller sound without words, then resumed."
    );
    describe_counter!(TOOL_CALLS, "Tool calls by tool and outcome.");
    describe_counter!(
        INPUT_REJECTED,
        "Bad input from outside, by source and reason."
    );
    describe_counter!(RECORD_DROPPED, "Call-record writes dropped, by reason.");
    describe_histogram!(
        CALL_COST,
        "Provider cost of each ended call in US dollars (sum: total spend)."
    );
    describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "Length of each ended call (sum: call time, for cost per minute)."
    );
    register();
}

/// Create every series whose labels are known up front at zero, so `/metrics` lists them before
/// the first call and `rate()`/`increase()` see the first event as a change from 0.
fn register() {
    for (name, _) in HISTOGRAMS {
        let _ = metrics::histogram!(*name);
    }
    metrics::gauge!(ACTIVE_CALLS).set(0.0);
    for name in [TURNS, BARGE_INS, FALSE_INTERRUPTIONS] {
        metrics::counter!(name).absolute(0);
    }
    for reason in END_REASONS {
        metrics::counter!(CALLS_ENDED, "reason" => *reason).absolute(0);
    }
    for child in CHILDREN {
        metrics::counter!(ACTOR_RESTARTS, "child" => *child).absolute(0);
    }
    for child in ["tts", "room"] {
        metrics::counter!(STALLS, "child" => child).absolute(0);
    }
    for (edge, reason) in edge_drops() {
        metrics::counter!(EDGE_DROPPED, "edge" => edge, "reason" => reason.as_str()).absolute(0);
    }
    for edge in edge_depths() {
        metrics::gauge!(EDGE_DEPTH, "edge" => edge).set(0.0);
    }
    for reason in record_drop_reasons() {
        metrics::counter!(RECORD_DROPPED, "reason" => reason).absolute(0);
    }
    for tool in crate::tools::TOOL_NAMES {
        for status in [ToolStatus::Ok, ToolStatus::Unavailable] {
            metrics::counter!(TOOL_CALLS, "tool" => *tool, "status" => status.as_str()).absolute(0);
        }
    }
    for (source, reason) in KNOWN_REJECTIONS {
        metrics::counter!(INPUT_REJECTED, "source" => *source, "reason" => *reason).absolute(0);
    }
}

/// A call ended: count it by reason and record its cost and length.
pub fn call_ended(reason: &'static str, cost_usd: f64, duration: Duration) {
    metrics::counter!(CALLS_ENDED, "reason" => reason).increment(1);
    metrics::histogram!(CALL_COST).record(cost_usd);
    metrics::histogram!(CALL_DURATION).record(duration.as_secs_f64());
}

pub fn edge_dropped(edge: &'static str, reason: DropReason, n: u64) {
    metrics::counter!(EDGE_DROPPED, "edge" => edge, "reason" => reason.as_str()).increment(n);
}

pub fn stalled(child: &'static str) {
    metrics::counter!(STALLS, "child" => child).increment(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{ChildKind, EndReason};

    #[test]
    fn seeded_labels_match_the_enums() {
        let reasons = [
            EndReason::CallerHungUp,
            EndReason::AgentHungUp,
            EndReason::RoomFailed(String::new()),
            EndReason::NoCallerAudio,
            EndReason::BudgetExhausted(ChildKind::Stt),
            EndReason::Shutdown,
        ];
        let labels: Vec<&str> = reasons.iter().map(EndReason::label).collect();
        assert_eq!(labels, END_REASONS);
        let kinds = [
            ChildKind::Room,
            ChildKind::Vad,
            ChildKind::Stt,
            ChildKind::Dialogue,
            ChildKind::Tts,
            ChildKind::DbGateway,
        ];
        let children: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(children, CHILDREN);
    }

    #[test]
    fn every_alert_threshold_is_a_bucket_boundary() {
        // README/deploy alerts: turn latency p95 > 1.5 s, pipeline overhead p99 > 5 ms.
        assert!(TURN_LATENCY_BUCKETS.contains(&1.5));
        assert!(OVERHEAD_BUCKETS.contains(&0.005));
        for (name, buckets) in HISTOGRAMS {
            assert!(
                buckets.windows(2).all(|w| w[0] < w[1]),
                "{name}: buckets must increase"
            );
        }
    }
}

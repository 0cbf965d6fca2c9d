//! The answer cache's metrics: process-wide, no per-call labels.

use metrics::describe_counter;

pub const LOOKUPS: &str = "frontdesk_llm_cache_lookups_total";
pub const ERRORS: &str = "frontdesk_llm_cache_errors_total";
pub const WRITES: &str = "frontdesk_llm_cache_writes_total";

pub const LOOKUP_RESULTS: [&str; 4] = ["hit", "miss", "uncacheable", "error"];
pub const ERROR_REASONS: [&str; 3] = ["unavailable", "timeout", "corrupt"];
/// `stored`; `error`: the database refused or timed out; `dropped`: too many writes in flight.
pub const WRITE_RESULTS: [&str; 3] = ["stored", "error", "dropped"];

/// Describe the metrics and create their series at zero (called by the telemetry catalogue).
pub fn describe() {
    describe_counter!(
        LOOKUPS,
        "LLM completions by answer cache verdict: served from the cache, asked while cacheable, never cacheable (caller data), or the cache failed (the provider answered)."
    );
    describe_counter!(
        ERRORS,
        "Answer cache failures by reason (each one fell back to the provider)."
    );
    describe_counter!(
        WRITES,
        "Answers written behind to the database layer, by result."
    );
    for result in LOOKUP_RESULTS {
        metrics::counter!(LOOKUPS, "result" => result).absolute(0);
    }
    for reason in ERROR_REASONS {
        metrics::counter!(ERRORS, "reason" => reason).absolute(0);
    }
    for result in WRITE_RESULTS {
        metrics::counter!(WRITES, "result" => result).absolute(0);
    }
}

pub fn lookup(result: &'static str) {
    metrics::counter!(LOOKUPS, "result" => result).increment(1);
}

pub fn error(reason: &'static str) {
    metrics::counter!(ERRORS, "reason" => reason).increment(1);
}

pub fn write(result: &'static str) {
    metrics::counter!(WRITES, "result" => result).increment(1);
}

//! The phrase cache's metrics: process-wide, no per-call labels.

use metrics::{describe_counter, describe_gauge};

pub const LOOKUPS: &str = "frontdesk_tts_cache_lookups_total";
pub const WRITES: &str = "frontdesk_tts_cache_writes_total";
pub const BYTES: &str = "frontdesk_tts_cache_bytes";

pub const LOOKUP_RESULTS: [&str; 4] = ["hit", "miss", "corrupt", "error"];
/// `stored`; `error`: the database refused or timed out; `dropped`: too many writes in flight;
/// `skipped`: not kept at all (longer than a phrase may be, or the sample rate changed).
pub const WRITE_RESULTS: [&str; 4] = ["stored", "error", "dropped", "skipped"];

/// Describe the metrics and create their series at zero (called by the telemetry catalogue).
pub fn describe() {
    describe_counter!(
        LOOKUPS,
        "TTS phrase cache lookups of cacheable sentences, by result (corrupt and error fall back to the provider)."
    );
    describe_counter!(
        WRITES,
        "Phrases written behind to the database layer, by result."
    );
    describe_gauge!(
        BYTES,
        metrics::Unit::Bytes,
        "Audio and text held by the in-memory phrase cache."
    );
    for result in LOOKUP_RESULTS {
        metrics::counter!(LOOKUPS, "result" => result).absolute(0);
    }
    for result in WRITE_RESULTS {
        metrics::counter!(WRITES, "result" => result).absolute(0);
    }
    metrics::gauge!(BYTES).set(0.0);
}

pub fn lookup(result: &'static str) {
    metrics::counter!(LOOKUPS, "result" => result).increment(1);
}

pub fn write(result: &'static str) {
    metrics::counter!(WRITES, "result" => result).increment(1);
}

pub fn gauge_bytes(bytes: u64) {
    metrics::gauge!(BYTES).set(bytes as f64);
}

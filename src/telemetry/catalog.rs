//! The service's metrics outside the call tree (worker, providers, store, health, build), each
//! described at start and, where its labels are known up front, created at zero: `/metrics` is
//! complete before the first call, so dashboards and alerts never query a series that does not
//! exist yet. The call tree's own metrics are in `frontdesk_actors::metrics`, the transport's in
//! `room::metrics`.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

pub const WORKER_JOBS: &str = "frontdesk_worker_jobs_total";
pub const WORKER_OFFERS: &str = "frontdesk_worker_offers_total";
pub const WORKER_RECONNECTS: &str = "frontdesk_worker_reconnects_total";
pub const WORKER_ASSIGNMENT_TIMEOUTS: &str = "frontdesk_worker_assignment_timeouts_total";
pub const WORKER_JOBS_ACTIVE: &str = "frontdesk_worker_jobs_active";
/// The load the worker reports to LiveKit: max(slot fraction, CPU load).
pub const WORKER_LOAD: &str = "frontdesk_worker_load";
/// CPU utilisation averaged over the load window, 0..1 of the CPUs this process may use.
pub const WORKER_CPU_LOAD: &str = "frontdesk_worker_cpu_load";
pub const PROVIDER_FAILOVERS: &str = "frontdesk_provider_failovers_total";
pub const PROVIDER_PROBES: &str = "frontdesk_provider_probes_total";
pub const PROVIDER_REQUEST_FAILOVERS: &str = "frontdesk_provider_request_failovers_total";
pub const PROVIDER_RETRIES: &str = "frontdesk_provider_retries_total";
pub const PROVIDER_BAD_MESSAGES: &str = "frontdesk_provider_bad_messages_total";
pub const PROVIDER_UNKNOWN_MESSAGES: &str = "frontdesk_provider_unknown_messages_total";
pub const EMULATOR_FAULTS: &str = "frontdesk_emulator_faults_total";
pub const DB_POOL_SIZE: &str = "frontdesk_db_pool_size";
pub const DB_POOL_IN_USE: &str = "frontdesk_db_pool_in_use";
pub const DB_POOL_WAITING: &str = "frontdesk_db_pool_waiting";
pub const DB_POOL_WAIT: &str = "frontdesk_db_pool_wait_seconds";
pub const DEPENDENCY_UP: &str = "frontdesk_dependency_up";
pub const HEALTHY: &str = "frontdesk_healthy";
pub const BUILD_INFO: &str = "frontdesk_build_info";
/// Usage alert inputs, refreshed from the call record by `start` (store::usage::gauges).
pub const USAGE_MONTH_COST: &str = "frontdesk_usage_month_cost_usd";
pub const USAGE_MONTHLY_BUDGET: &str = "frontdesk_usage_monthly_budget_usd";
pub const USAGE_WINDOW_CALLS: &str = "frontdesk_usage_calls_window";
pub const USAGE_FAILED_CALLS_WINDOW: &str = "frontdesk_usage_failed_calls_window";
pub const USAGE_REFRESH_FAILURES: &str = "frontdesk_usage_refresh_failures_total";

/// Buckets of the histograms outside the call tree.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    (
        crate::room::metrics::JOIN_SECONDS,
        &[0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0],
    ),
    // The alert fires on p99 > 100 ms; a healthy pool hands a connection out in microseconds.
    (
        DB_POOL_WAIT,
        &[
            0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ],
    ),
];

const PROVIDERS: &[&str] = &["deepgram", "openai", "cartesia"];
const KINDS: &[&str] = &["stt", "llm", "tts"];

/// Describe every metric of this catalogue and create its known series.
pub fn describe() {
    describe_worker();
    describe_providers();
    describe_store_and_health();
    describe_room_series();
    describe_retention();
    describe_usage();
    crate::cache::llm::metrics::describe();
    crate::cache::tts::metrics::describe();
    crate::playground::describe();
}

fn describe_worker() {
    describe_counter!(WORKER_JOBS, "Jobs run by the agent worker, by outcome.");
    describe_counter!(WORKER_OFFERS, "Job offers from LiveKit, by decision.");
    describe_counter!(WORKER_RECONNECTS, "Reconnects to the LiveKit server.");
    describe_counter!(
        WORKER_ASSIGNMENT_TIMEOUTS,
        "Accepted offers whose assignment never came (slot released)."
    );
    describe_gauge!(WORKER_JOBS_ACTIVE, "Jobs running in this worker.");
    describe_gauge!(
        WORKER_LOAD,
        "Load reported to LiveKit, 0..1: max(slots taken / max_calls, CPU load)."
    );
    describe_gauge!(
        WORKER_CPU_LOAD,
        "CPU utilisation of the CPUs this worker may use, averaged over 2.5 s, 0..1."
    );
    for outcome in ["success", "failed"] {
        metrics::counter!(WORKER_JOBS, "outcome" => outcome).absolute(0);
    }
    for decision in [
        "accepted",
        "refused_full",
        "refused_load",
        "refused_draining",
    ] {
        metrics::counter!(WORKER_OFFERS, "decision" => decision).absolute(0);
    }
    metrics::counter!(WORKER_RECONNECTS).absolute(0);
    metrics::counter!(WORKER_ASSIGNMENT_TIMEOUTS).absolute(0);
    metrics::gauge!(WORKER_JOBS_ACTIVE).set(0.0);
    metrics::gauge!(WORKER_LOAD).set(0.0);
    metrics::gauge!(WORKER_CPU_LOAD).set(0.0);
}

fn describe_providers() {
    describe_counter!(
        PROVIDER_FAILOVERS,
        "Switches to the secondary provider (breaker opened), by kind."
    );
    describe_counter!(
        PROVIDER_PROBES,
        "Probes of a failed primary provider, by kind and outcome."
    );
    describe_counter!(
        PROVIDER_REQUEST_FAILOVERS,
        "Single requests retried on the secondary provider, by kind."
    );
    describe_counter!(PROVIDER_RETRIES, "Provider requests retried, by provider.");
    describe_counter!(
        PROVIDER_BAD_MESSAGES,
        "Malformed messages from a provider, by provider."
    );
    describe_counter!(
        PROVIDER_UNKNOWN_MESSAGES,
        "Provider messages of a type we do not know, by provider."
    );
    describe_counter!(
        EMULATOR_FAULTS,
        "Faults injected by the provider emulators (simulation and tests only)."
    );
    for kind in KINDS {
        metrics::counter!(PROVIDER_FAILOVERS, "kind" => *kind).absolute(0);
        for outcome in ["ok", "failed"] {
            metrics::counter!(PROVIDER_PROBES, "kind" => *kind, "outcome" => outcome).absolute(0);
        }
    }
    metrics::counter!(PROVIDER_REQUEST_FAILOVERS, "kind" => "llm").absolute(0);
    for provider in PROVIDERS {
        metrics::counter!(PROVIDER_RETRIES, "provider" => *provider).absolute(0);
        metrics::counter!(PROVIDER_BAD_MESSAGES, "provider" => *provider).absolute(0);
    }
    metrics::counter!(PROVIDER_UNKNOWN_MESSAGES, "provider" => "deepgram").absolute(0);
}

fn describe_store_and_health() {
    describe_gauge!(DB_POOL_SIZE, "PostgreSQL pool connections open.");
    describe_gauge!(DB_POOL_IN_USE, "PostgreSQL pool connections handed out.");
    describe_gauge!(DB_POOL_WAITING, "Tasks waiting for a pool connection.");
    describe_histogram!(
        DB_POOL_WAIT,
        Unit::Seconds,
        "Time to get a PostgreSQL connection from the pool."
    );
    describe_gauge!(
        DEPENDENCY_UP,
        "1 while a dependency is up, 0 while down, NaN until checked (as /health shows it)."
    );
    describe_gauge!(
        HEALTHY,
        "1 while /health answers 200, 0 while it answers 503."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the running build.");
    for name in [DB_POOL_SIZE, DB_POOL_IN_USE, DB_POOL_WAITING] {
        metrics::gauge!(name).set(0.0);
    }
    let _ = metrics::histogram!(DB_POOL_WAIT);
    // /health answers 200 until a check says otherwise; the worker's registration is unknown
    // until the worker starts (and stays so in a process that runs no worker).
    metrics::gauge!(HEALTHY).set(1.0);
    metrics::gauge!(DEPENDENCY_UP, "dependency" => crate::worker::DEPENDENCY).set(f64::NAN);
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "profile" => if cfg!(debug_assertions) { "debug" } else { "release" },
        "target" => std::env::consts::ARCH,
        "os" => std::env::consts::OS,
    )
    .set(1.0);
}

/// The transport's series whose labels are known (its descriptions are `room::metrics`').
fn describe_room_series() {
    use crate::room::metrics as m;
    metrics::counter!(m::JOINS, "outcome" => "ok").absolute(0);
    let _ = metrics::histogram!(m::JOIN_SECONDS);
    for kind in ["resume", "rejoin"] {
        for outcome in ["ok", "timeout"] {
            metrics::counter!(m::RECONNECTS, "kind" => kind, "outcome" => outcome).absolute(0);
        }
    }
    for reason in ["left", "timeout", "ice", "signal", "peer_connection"] {
        metrics::counter!(m::DISCONNECTS, "reason" => reason).absolute(0);
    }
    for name in [
        m::PACKETS_RECEIVED,
        m::PACKETS_LOST,
        m::PACKETS_SENT,
        m::CONCEALED_SECONDS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for edge in [m::EDGE_INBOUND, m::EDGE_OUTBOUND] {
        metrics::counter!(
            frontdesk_actors::metrics::EDGE_DROPPED,
            "edge" => edge,
            "reason" => "overflow"
        )
        .absolute(0);
    }
}

/// The usage gauges are unknown (NaN) until the first refresh: a restart must not read as a
/// month without cost. The budget is set from `[usage]` when the refresh starts.
fn describe_usage() {
    describe_gauge!(
        USAGE_MONTH_COST,
        "Provider cost of the calls started this calendar month (UTC), from the call record, USD."
    );
    describe_gauge!(
        USAGE_MONTHLY_BUDGET,
        "[usage] monthly_budget_usd; 0: no budget."
    );
    describe_gauge!(
        USAGE_WINDOW_CALLS,
        "Calls started in the last [usage] window_ms that are over, from the call record."
    );
    describe_gauge!(
        USAGE_FAILED_CALLS_WINDOW,
        "Of those, calls that failed (room_failed, budget_exhausted, never ended)."
    );
    describe_counter!(
        USAGE_REFRESH_FAILURES,
        "Usage gauge refreshes that failed (store down); the gauges keep their values."
    );
    for name in [
        USAGE_MONTH_COST,
        USAGE_WINDOW_CALLS,
        USAGE_FAILED_CALLS_WINDOW,
    ] {
        metrics::gauge!(name).set(f64::NAN);
    }
    metrics::gauge!(USAGE_MONTHLY_BUDGET).set(0.0);
    metrics::counter!(USAGE_REFRESH_FAILURES).absolute(0);
}

/// Retention (`[retention] every` in `start`, or `frontdesk retention --apply`).
fn describe_retention() {
    use crate::store::retention::{ROWS_DELETED, RUNS, TABLES};
    describe_counter!(ROWS_DELETED, "Rows removed by retention runs, by table.");
    describe_counter!(
        RUNS,
        "Applied retention runs, by result (ok, failed, refused)."
    );
    for table in TABLES {
        metrics::counter!(ROWS_DELETED, "table" => table).absolute(0);
    }
    for result in ["ok", "failed", "refused"] {
        metrics::counter!(RUNS, "result" => result).absolute(0);
    }
}

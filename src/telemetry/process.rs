//! The standard `process_*` metrics (CPU seconds, resident and virtual memory, open and max file
//! descriptors, threads, start time), as every Prometheus client library exports them, so the
//! usual dashboards and alerts work unchanged.

use std::time::Duration;

use metrics_process::Collector;

/// Often enough for a 15 s scrape interval; each pass reads a few files under /proc/self.
const INTERVAL: Duration = Duration::from_secs(5);

/// Describe the process metrics and take the first reading (so a scrape right after start has
/// them).
pub fn describe() -> Collector {
    let collector = Collector::default();
    collector.describe();
    collector.collect();
    collector
}

/// Keep the readings fresh on a thread of their own: the recorder is global and the readings
/// are blocking file reads, which have no business on the async runtime.
#[allow(clippy::disallowed_methods)] // the sampler's own OS thread sleeps, never a runtime thread
pub fn spawn(collector: Collector) {
    let spawned = std::thread::Builder::new()
        .name("process-metrics".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            collector.collect();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "process metrics will not update: no thread");
    }
}

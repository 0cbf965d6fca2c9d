//! What every bench shares.

use std::time::Duration;

use criterion::Criterion;

/// Criterion settings: the defaults for real measurements, tiny ones when `CI` is set (CI only
/// checks that the benches build and run).
pub fn config(c: Criterion, ci_measurement: Duration) -> Criterion {
    if std::env::var_os("CI").is_some() {
        c.sample_size(10)
            .measurement_time(ci_measurement)
            .warm_up_time(Duration::from_millis(200))
    } else {
        c
    }
}

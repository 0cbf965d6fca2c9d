//! What every bench shares.

use std::f64::consts::PI;
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

/// One second of voiced-speech-like audio (pitch harmonics to 2 kHz, 4 Hz syllable envelope).
#[allow(dead_code)] // not every bench uses it
pub fn speech_like(rate: u32) -> Vec<i16> {
    (0..rate as usize)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let voiced: f64 = (1..=13)
                .map(|h| (2.0 * PI * 150.0 * h as f64 * t).sin() / h as f64)
                .sum();
            let envelope = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
            (6000.0 * envelope * voiced) as i16
        })
        .collect()
}

//! A seeded latency distribution: what the in-process doubles and the wire emulators wait before
//! they answer, so simulated providers have realistic, reproducible timing.

use std::time::Duration;

/// A latency distribution: `base` plus a uniform jitter in `[0, jitter]`, deterministic per seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub base_ms: u32,
    pub jitter_ms: u32,
}

impl Latency {
    pub const ZERO: Latency = Latency {
        base_ms: 0,
        jitter_ms: 0,
    };

    pub const fn ms(base_ms: u32, jitter_ms: u32) -> Self {
        Self { base_ms, jitter_ms }
    }

    /// A sample for `seed` (e.g. a counter), spread by a cheap integer hash.
    pub fn sample(&self, seed: u64) -> Duration {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            x % (u64::from(self.jitter_ms) + 1)
        };
        Duration::from_millis(u64::from(self.base_ms) + jitter)
    }
}

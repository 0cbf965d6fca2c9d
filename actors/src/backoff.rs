//! The one retry schedule of the process: exponential with jitter (backon's), capped, so a
//! provider that fails at once is not hammered and many calls failing together spread out.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use serde::{Deserialize, Serialize};

/// `initial_ms · 2ⁿ`, at most `max_ms`, plus up to 100 % jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    pub initial_ms: u32,
    pub max_ms: u32,
}

impl Backoff {
    pub const fn new(initial_ms: u32, max_ms: u32) -> Self {
        Self { initial_ms, max_ms }
    }

    /// A fresh schedule: its first item is the first retry's delay.
    pub fn schedule(&self) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(ms(self.initial_ms))
            .with_max_delay(ms(self.max_ms.max(self.initial_ms)))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The delay before retry `n` (0-based), without keeping a schedule.
    pub fn delay(&self, n: u32) -> Duration {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.schedule().nth(n).unwrap_or(ms(self.max_ms))
    }

    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.initial_ms == 0 || self.max_ms < self.initial_ms {
            return Err(format!(
                "{name}: initial_ms must be at least 1 and max_ms at least initial_ms"
            ));
        }
        Ok(())
    }
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn delays_double_within_jitter_and_stay_capped(initial in 1u32..2_000, extra in 0u32..60_000, n in 0u32..40) {
            let b = Backoff::new(initial, initial + extra);
            let d = b.delay(n);
            let base = ms(initial).saturating_mul(1u32 << n.min(20)).min(ms(b.max_ms));
            prop_assert!(d >= base, "{d:?} < {base:?}");
            prop_assert!(d <= base * 2, "{d:?} > 2 x {base:?}");
        }
    }

    #[test]
    fn invalid_schedules_are_refused() {
        assert!(Backoff::new(0, 10).validate("x").is_err());
        assert!(Backoff::new(10, 5).validate("x").is_err());
        assert!(Backoff::new(10, 10).validate("x").is_ok());
    }
}

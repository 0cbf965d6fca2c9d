//! `[usage]`: the alert gauges `start` refreshes from the call record.

use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// The gauges are recomputed this often; 0 turns the refresh off.
    pub refresh_interval_ms: u64,
    /// The failed-call rate covers calls started this long ago until now.
    pub window_ms: u64,
    /// Provider spend allowed per calendar month (UTC), US dollars; 0: no budget (the budget
    /// alerts stay quiet).
    pub monthly_budget_usd: f64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            refresh_interval_ms: 60_000,
            window_ms: 3_600_000,
            monthly_budget_usd: 0.0,
        }
    }
}

impl UsageConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        if self.window_ms == 0 {
            errors.push("usage.window_ms must be positive".into());
        }
        if !(self.monthly_budget_usd.is_finite() && self.monthly_budget_usd >= 0.0) {
            errors.push("usage.monthly_budget_usd must be 0 (no budget) or positive".into());
        }
        errors
    }

    /// None when the refresh is off.
    pub fn refresh(&self) -> Option<Duration> {
        (self.refresh_interval_ms > 0).then(|| Duration::from_millis(self.refresh_interval_ms))
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let cfg = UsageConfig {
            window_ms: 0,
            monthly_budget_usd: -1.0,
            ..Default::default()
        };
        let errors = cfg.validate().join("\n");
        assert!(errors.contains("usage.window_ms"), "{errors}");
        assert!(errors.contains("usage.monthly_budget_usd"), "{errors}");
        assert!(UsageConfig::default().validate().is_empty());
        let off = UsageConfig {
            refresh_interval_ms: 0,
            ..Default::default()
        };
        assert_eq!(off.refresh(), None);
    }
}

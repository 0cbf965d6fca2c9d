//! The usage report as alert inputs: `start` recomputes a few gauges from the call record every
//! `[usage] refresh_interval_ms` (deploy/prometheus/alerts.yml turns them into the budget and
//! failed-call alerts). Every worker computes the same database-wide values, so rules take
//! `max()` over instances, never `sum()`. A store outage keeps the previous values (a gap in the
//! data must not clear a firing budget alert), is logged at WARN once per outage and counted on
//! every failed refresh.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use super::{UsageConfig, UsageError, UsageSource, Window};
use crate::store::DatabaseConfig;
use crate::telemetry::catalog::{
    USAGE_FAILED_CALLS_WINDOW, USAGE_MONTHLY_BUDGET, USAGE_MONTH_COST, USAGE_REFRESH_FAILURES,
    USAGE_WINDOW_CALLS,
};

/// What the gauges show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertInputs {
    /// Provider cost of the calls started this calendar month (UTC).
    pub month_cost_usd: f64,
    pub monthly_budget_usd: f64,
    /// Calls started in the window that are over (ended, or failed without an end record).
    pub window_calls: u64,
    pub window_failed_calls: u64,
}

/// The calendar month (UTC) `now` is in, as a window.
pub fn month_of(now: DateTime<Utc>) -> Result<Window, UsageError> {
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .ok_or_else(|| UsageError::Window(format!("no month for {now}")))?;
    let next = first
        .checked_add_months(Months::new(1))
        .ok_or_else(|| UsageError::Window(format!("no month after {first}")))?;
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    Window::new(midnight(first), midnight(next), now)
}

/// The alert inputs at `now`, from the store.
pub async fn compute(
    src: &UsageSource,
    cfg: &UsageConfig,
    now: DateTime<Utc>,
) -> Result<AlertInputs, UsageError> {
    let month = src.summary(&month_of(now)?).await?;
    let span = chrono::TimeDelta::from_std(cfg.window())
        .map_err(|e| UsageError::Window(format!("usage.window_ms: {e}")))?;
    let recent = src.summary(&Window::new(now - span, now, now)?).await?;
    Ok(AlertInputs {
        month_cost_usd: month.provider.cost_usd,
        monthly_budget_usd: cfg.monthly_budget_usd,
        window_calls: recent.finished_calls(),
        window_failed_calls: recent.failed_calls(),
    })
}

/// Set the gauges (the process's recorder).
pub fn publish(v: &AlertInputs) {
    metrics::gauge!(USAGE_MONTH_COST).set(v.month_cost_usd);
    metrics::gauge!(USAGE_MONTHLY_BUDGET).set(v.monthly_budget_usd);
    metrics::gauge!(USAGE_WINDOW_CALLS).set(v.window_calls as f64);
    metrics::gauge!(USAGE_FAILED_CALLS_WINDOW).set(v.window_failed_calls as f64);
}

/// Refreshes the gauges; remembers whether the store is down so an outage is logged once.
pub struct Refresher {
    db: DatabaseConfig,
    cfg: UsageConfig,
    src: Option<UsageSource>,
    down: bool,
}

impl Refresher {
    pub fn new(db: DatabaseConfig, cfg: UsageConfig) -> Self {
        Self {
            db,
            cfg,
            src: None,
            down: false,
        }
    }

    /// With a source already open (tests).
    pub fn with_source(src: UsageSource, cfg: UsageConfig) -> Self {
        let mut r = Self::new(DatabaseConfig::default(), cfg);
        r.src = Some(src);
        r
    }

    /// One refresh at `now`: the gauges set, or left as they were and the failure counted.
    pub async fn refresh(&mut self, now: DateTime<Utc>) -> Result<AlertInputs, UsageError> {
        let result = self.compute(now).await;
        match &result {
            Ok(v) => {
                publish(v);
                if std::mem::take(&mut self.down) {
                    tracing::info!("usage gauges refreshed again: the store is back");
                }
            }
            Err(e) => {
                metrics::counter!(USAGE_REFRESH_FAILURES).increment(1);
                if !std::mem::replace(&mut self.down, true) {
                    tracing::warn!(error = %e, "usage gauges not refreshed (previous values kept)");
                }
            }
        }
        result
    }

    async fn compute(&mut self, now: DateTime<Utc>) -> Result<AlertInputs, UsageError> {
        // Opened here, not at start: a database down at start is an outage like any other.
        let src = match self.src.take() {
            Some(src) => src,
            None => UsageSource::open(&self.db, false)?,
        };
        let result = compute(&src, &self.cfg, now).await;
        self.src = Some(src);
        result
    }
}

/// The refresh loop, or None when `[usage] refresh_interval_ms` is 0. The budget gauge is set at
/// once: it is configuration, not data.
pub fn spawn(db: &DatabaseConfig, cfg: &UsageConfig) -> Option<tokio::task::JoinHandle<()>> {
    let every = cfg.refresh()?;
    metrics::gauge!(USAGE_MONTHLY_BUDGET).set(cfg.monthly_budget_usd);
    let mut refresher = Refresher::new(db.clone(), cfg.clone());
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Logged and counted inside.
            let _ = refresher.refresh(Utc::now()).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_window_is_the_calendar_month_in_utc() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().ok();
        let now = at("2026-12-31T23:59:59Z").unwrap_or_default();
        let w = month_of(now).ok();
        assert_eq!(w.map(|w| w.since), at("2026-12-01T00:00:00Z"));
        assert_eq!(w.map(|w| w.until), at("2027-01-01T00:00:00Z"));
    }
}

//! Usage analytics over the call record (issue 14): `frontdesk usage --since 30d` and the alert
//! gauges `start` refreshes. Every number is aggregated in SQL by the store that holds the
//! record (PostgreSQL in [`postgres`], SQLite in [`sqlite`]); both answer the same questions
//! with the same definitions, so a report does not depend on the backend.
//!
//! Which calls count: those whose `CallStarted` falls in `[since, until)`; their turns, tool
//! calls and usage row count with them (whenever those were written). A call without a start
//! record cannot be placed in time and is left out.
//!
//! Failures (see [`is_failure`]): calls that ended `room_failed` (the transport was lost) or
//! `budget_exhausted` (a pipeline stage ran out of restarts), and calls with no end record at all
//! ([`NOT_ENDED`]: the worker died or the record was lost) once they are older than
//! [`UNENDED_GRACE`]; younger ones are [`IN_PROGRESS`] and neither failed nor finished. Hang-ups,
//! `no_caller_audio` (the caller never spoke) and `shutdown` (a deploy's drain) are not failures.

pub mod cli;
pub mod config;
pub mod format;
pub mod gauges;
pub mod postgres;
pub mod sqlite;

use frontdesk_actors::cache::CacheSavings;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use frontdesk_actors::store::StoreError;
use serde::Serialize;

pub use config::UsageConfig;

use crate::store::{Backend, DatabaseConfig};

/// A call with no end record this long after its start has failed (the worker died, or its
/// record was lost); before that it may still be running.
pub const UNENDED_GRACE: Duration = Duration::from_secs(3600);
/// The shortest statement timeout of a usage query on PostgreSQL (`database.statement_timeout_ms`
/// is sized for a caller waiting on a tool call, not for a month of calls).
const STATEMENT_TIMEOUT_MS: u64 = 60_000;
/// End reasons that are failures (the labels of `EndReason`; details after a `:` are dropped).
pub const FAILURE_REASONS: &[&str] = &["room_failed", "budget_exhausted"];
/// The reason shown for a call with no end record older than [`UNENDED_GRACE`] (a failure).
pub const NOT_ENDED: &str = "not_ended";
/// The reason shown for a call with no end record younger than [`UNENDED_GRACE`].
pub const IN_PROGRESS: &str = "in_progress";

/// Whether calls that ended for `reason` (a label, as in the report) failed.
pub fn is_failure(reason: &str) -> bool {
    reason == NOT_ENDED || FAILURE_REASONS.contains(&reason)
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage query: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Window(String),
}

impl UsageError {
    /// A store outage may pass; a bad window never will.
    pub fn is_retriable(&self) -> bool {
        match self {
            UsageError::Store(e) => e.is_retriable(),
            UsageError::Window(_) => false,
        }
    }
}

/// The calls a report covers: started in `[since, until)`; `unended_before` splits the calls with
/// no end record into failed (started before it) and in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(skip)]
    pub unended_before: DateTime<Utc>,
}

impl Window {
    /// `[since, until)` as seen at `now`.
    pub fn new(
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, UsageError> {
        if since >= until {
            return Err(UsageError::Window(format!(
                "--since ({since}) must be before --until ({until})"
            )));
        }
        let grace = chrono::TimeDelta::from_std(UNENDED_GRACE).unwrap_or(chrono::TimeDelta::MAX);
        Ok(Self {
            since,
            until,
            unended_before: now - grace,
        })
    }
}

/// Calls that ended for one reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub calls: u64,
    pub failure: bool,
}

/// One tool's calls and how many returned an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolCount {
    pub name: String,
    pub calls: u64,
    pub errors: u64,
}

/// What the providers were asked for, and its cost at the prices of the day of the call.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProviderUsage {
    pub stt_audio_seconds: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tts_characters: u64,
    pub cost_usd: f64,
}

/// Calls, their minutes and end reasons, provider usage and cache savings: what the alert gauges
/// need, without the per-turn work.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub calls: u64,
    /// Ended calls only: sum of ended_at - started_at.
    pub minutes: f64,
    /// By reason label, sorted; includes [`NOT_ENDED`] and [`IN_PROGRESS`].
    pub end_reasons: Vec<ReasonCount>,
    pub provider: ProviderUsage,
    /// What the response caches saved: the usage table's cache columns, summed, in the shape a
    /// call records them.
    pub cache: CacheSavings,
}

impl Summary {
    pub fn failed_calls(&self) -> u64 {
        self.end_reasons
            .iter()
            .filter(|r| r.failure)
            .map(|r| r.calls)
            .sum()
    }

    /// Calls that are over (ended, or failed without an end record): the failure rate's base.
    pub fn finished_calls(&self) -> u64 {
        let running: u64 = self
            .end_reasons
            .iter()
            .filter(|r| r.reason == IN_PROGRESS)
            .map(|r| r.calls)
            .sum();
        self.calls.saturating_sub(running)
    }
}

/// Turns and their voice-to-voice latency (PostgreSQL's `percentile_cont` definition: linear
/// interpolation between the closest ranks), and tool calls by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TurnStats {
    pub turns: u64,
    pub turn_latency_p50_ms: Option<f64>,
    pub turn_latency_p95_ms: Option<f64>,
    pub tools: Vec<ToolCount>,
}

/// `frontdesk usage`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageReport {
    pub window: Window,
    pub failed_calls: u64,
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(flatten)]
    pub turns: TurnStats,
}

/// Labels the stores' SQL returned, counted, with the failure rule applied.
pub(crate) fn reasons(rows: Vec<(String, i64)>) -> Vec<ReasonCount> {
    rows.into_iter()
        .map(|(reason, n)| ReasonCount {
            failure: is_failure(&reason),
            reason,
            calls: count(n),
        })
        .collect()
}

/// A SQL count or sum (never negative in practice) as u64.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Where the call record is, for reading only.
#[derive(Clone)]
pub enum UsageSource {
    Postgres(Pool),
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
}

impl UsageSource {
    /// The database `cfg` selects. A PostgreSQL pool connects lazily; a SQLite file is opened
    /// now, and migrated when `migrate` (the CLI; `start` leaves that to the store).
    pub fn open(cfg: &DatabaseConfig, migrate: bool) -> Result<Self, UsageError> {
        match cfg.backend() {
            Backend::Postgres => {
                // Reports run one query at a time, and scan more than a tool call may wait for.
                let cfg = DatabaseConfig {
                    pool_max_size: 1,
                    statement_timeout_ms: cfg.statement_timeout_ms.max(STATEMENT_TIMEOUT_MS),
                    ..cfg.clone()
                };
                let pool = crate::store::postgres::pool::build(&cfg)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Ok(Self::Postgres(pool))
            }
            Backend::Sqlite(path) => Ok(Self::Sqlite(sqlite::open(&path, migrate)?)),
        }
    }

    pub async fn summary(&self, w: &Window) -> Result<Summary, UsageError> {
        match self {
            Self::Postgres(pool) => Ok(postgres::summary(pool, w).await?),
            Self::Sqlite(conn) => {
                let w = *w;
                Ok(sqlite::run(conn, move |c| sqlite::summary(c, &w)).await?)
            }
        }
    }

    pub async fn turn_stats(&self, w: &Window) -> Result<TurnStats, UsageError> {
        match self {
            Self::Postgres(pool) => Ok(postgres::turn_stats(pool, w).await?),
            Self::Sqlite(conn) => {
                let w = *w;
                Ok(sqlite::run(conn, move |c| sqlite::turn_stats(c, &w)).await?)
            }
        }
    }

    pub async fn report(&self, w: &Window) -> Result<UsageReport, UsageError> {
        let summary = self.summary(w).await?;
        let turns = self.turn_stats(w).await?;
        Ok(UsageReport {
            window: *w,
            failed_calls: summary.failed_calls(),
            summary,
            turns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_the_lost_the_exhausted_and_the_never_ended() {
        for r in ["room_failed", "budget_exhausted", NOT_ENDED] {
            assert!(is_failure(r), "{r}");
        }
        for r in [
            "caller_hung_up",
            "agent_hung_up",
            "no_caller_audio",
            "shutdown",
            IN_PROGRESS,
        ] {
            assert!(!is_failure(r), "{r}");
        }
    }

    #[test]
    fn finished_calls_leave_out_those_in_progress() {
        let s = Summary {
            calls: 10,
            end_reasons: reasons(vec![
                ("caller_hung_up".into(), 6),
                (IN_PROGRESS.into(), 2),
                (NOT_ENDED.into(), 1),
                ("room_failed".into(), 1),
            ]),
            ..Default::default()
        };
        assert_eq!((s.finished_calls(), s.failed_calls()), (8, 2));
    }

    #[test]
    fn an_empty_or_inverted_window_is_refused() {
        let now = Utc::now();
        assert!(Window::new(now, now, now).is_err());
        let w = Window::new(now - chrono::TimeDelta::days(1), now, now);
        assert!(w.is_ok_and(|w| w.unended_before < now));
    }
}

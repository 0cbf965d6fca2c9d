//! Retention: conversations (calls with their record ops, turns, tool calls and usage), usage rows
//! and response cache entries removed once older than `[retention]` says. Appointments, patients,
//! doctors and shifts are not conversation data and are never touched.
//!
//! `frontdesk retention` shows what a run would remove; `--apply` removes it in bounded batches,
//! each its own short transaction; `start` can run the same job on a schedule.

mod archive;
pub mod config;
mod postgres;
mod sql;
mod sqlite;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use frontdesk_actors::store::StoreError;

pub use archive::{Archive, ArchivedCall};
pub use config::{Cutoffs, RetentionConfig};

use super::{Backend, DatabaseConfig};
use crate::config::Environment;

/// Rows removed, by table.
pub const ROWS_DELETED: &str = "frontdesk_retention_rows_deleted_total";
/// Applied runs, by result: ok, failed, refused.
pub const RUNS: &str = "frontdesk_retention_runs_total";

/// Every table a run may remove rows from, in report order.
pub const TABLES: [&str; 7] = [
    "calls",
    "call_record_ops",
    "turns",
    "tool_calls",
    "usage",
    "tts_phrase_cache",
    "llm_answer_cache",
];

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("invalid retention policy:\n  {}", .0.join("\n  "))]
    Policy(Vec<String>),
    #[error(
        "refusing to remove data in production without --yes: the rows above would be deleted for good"
    )]
    Refused,
    // Not `#[from]`: that makes the error its source too, and `{:#}` would print it twice.
    #[error("retention: {0}")]
    Store(StoreError),
    #[error("retention: {0}")]
    Pool(super::postgres::pool::PoolError),
    #[error("writing the archive {path}: {source}")]
    Archive {
        path: String,
        source: std::io::Error,
    },
}

impl From<StoreError> for RetentionError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<super::postgres::pool::PoolError> for RetentionError {
    fn from(e: super::postgres::pool::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl RetentionError {
    /// A database outage may pass; a bad policy, a refusal or an unwritable archive will not.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retriable(),
            _ => false,
        }
    }
}

/// One table's line in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows a run would remove (dry run) or removed (applied).
    pub rows: u64,
    /// When the oldest row left was written: a call's start (its rows: their own time), a
    /// phrase's last use, an answer's creation. `None`: nothing left.
    pub oldest_kept: Option<DateTime<Utc>>,
}

/// Rows removed per table (in `TABLES` order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts([u64; TABLES.len()]);

impl Counts {
    fn add(&mut self, table: &str, n: u64) {
        if let Some(i) = TABLES.iter().position(|t| *t == table) {
            self.0[i] += n;
        }
    }

    /// Rows whose delete has committed: added and counted in the metrics.
    fn committed(&mut self, table: &'static str, n: u64) {
        self.add(table, n);
        metrics::counter!(ROWS_DELETED, "table" => table).increment(n);
    }

    fn committed_all(&mut self, other: &Counts) {
        for (table, n) in TABLES.iter().zip(other.0) {
            self.committed(table, n);
        }
    }

    pub fn get(&self, table: &str) -> u64 {
        TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(0, |i| self.0[i])
    }
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct Run {
    /// The cut-offs are computed back from this instant.
    pub now: DateTime<Utc>,
    /// Remove the rows; otherwise only count them.
    pub apply: bool,
    /// Confirmation, required to apply in production.
    pub yes: bool,
    pub env: Environment,
    /// Append each removed call's record to this JSON Lines file before deleting it.
    pub archive: Option<PathBuf>,
}

/// The run's cut-offs, what it would remove (or removed) and the oldest rows left.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub cutoffs: Cutoffs,
    pub applied: bool,
    pub tables: Vec<TableCount>,
}

impl Outcome {
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|t| t.table == table)
            .map_or(0, |t| t.rows)
    }

    /// The report printed by `frontdesk retention`.
    pub fn text(&self) -> String {
        let c = &self.cutoffs;
        let day = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
        let mut out = format!(
            "cut-offs: calls started before {}, usage of calls started before {}, \
             TTS phrases unused since {}, LLM answers expired by {}\n",
            day(c.conversations),
            day(c.usage),
            day(c.tts_unused),
            day(c.now)
        );
        let verb = if self.applied {
            "removed"
        } else {
            "would remove"
        };
        out.push_str(&format!("{:<18} {:>12}  oldest kept\n", "table", verb));
        for t in &self.tables {
            let kept = t.oldest_kept.map_or_else(|| "-".to_string(), day);
            out.push_str(&format!("{:<18} {:>12}  {kept}\n", t.table, t.rows));
        }
        if !self.applied {
            out.push_str("dry run: nothing removed (--apply removes these rows)\n");
        }
        out
    }
}

/// Count (or, with `run.apply`, remove) what `policy` says has expired at `run.now`.
pub async fn run(
    db: &DatabaseConfig,
    policy: &RetentionConfig,
    run: &Run,
) -> Result<Outcome, RetentionError> {
    let result = checked_run(db, policy, run).await;
    if run.apply {
        let label = match &result {
            Ok(_) => "ok",
            Err(RetentionError::Refused) => "refused",
            Err(_) => "failed",
        };
        metrics::counter!(RUNS, "result" => label).increment(1);
    }
    result
}

/// A bad policy and production without `--yes` are refused before the database is touched.
async fn checked_run(
    db: &DatabaseConfig,
    policy: &RetentionConfig,
    run: &Run,
) -> Result<Outcome, RetentionError> {
    let errors = policy.validate();
    if !errors.is_empty() {
        return Err(RetentionError::Policy(errors));
    }
    if run.apply && run.env == Environment::Production && !run.yes {
        return Err(RetentionError::Refused);
    }
    let cutoffs = policy.cutoffs(run.now);
    match db.backend() {
        Backend::Postgres => on_postgres(db, policy, run, &cutoffs).await,
        Backend::Sqlite(path) => {
            let (policy, run) = (policy.clone(), run.clone());
            tokio::task::spawn_blocking(move || on_sqlite(&path, &policy, &run, &cutoffs))
                .await
                .map_err(|e| StoreError::Unavailable(format!("retention task: {e}")))?
        }
    }
}

/// The survey, or the removal followed by a survey of what is left.
fn outcome(cutoffs: &Cutoffs, removed: Option<&Counts>, mut left: Vec<TableCount>) -> Outcome {
    if let Some(removed) = removed {
        for t in &mut left {
            t.rows = removed.get(t.table);
        }
    }
    Outcome {
        cutoffs: *cutoffs,
        applied: removed.is_some(),
        tables: left,
    }
}

fn open_archive(run: &Run) -> Result<Option<Archive>, RetentionError> {
    run.archive.as_deref().map(Archive::open).transpose()
}

async fn on_postgres(
    db: &DatabaseConfig,
    policy: &RetentionConfig,
    run: &Run,
    cutoffs: &Cutoffs,
) -> Result<Outcome, RetentionError> {
    let pool = super::postgres::pool::build(db)?;
    let mut conn = super::postgres::pool::get(&pool).await?;
    let client: &mut tokio_postgres::Client = &mut conn;
    // The survey scans whole tables, longer than a tool call's statement_timeout allows; the
    // connection is this run's own (its pool is dropped with it). Each batch is still short.
    client
        .batch_execute("SET statement_timeout = '5min'")
        .await
        .map_err(super::postgres::pool::db_error)?;
    if !run.apply {
        return Ok(outcome(
            cutoffs,
            None,
            postgres::survey(client, cutoffs).await?,
        ));
    }
    let mut archive = open_archive(run)?;
    let mut removed = Counts::default();
    postgres::apply(
        client,
        cutoffs,
        policy.batch_size,
        archive.as_mut(),
        &mut removed,
    )
    .await?;
    let left = postgres::survey(client, cutoffs).await?;
    Ok(outcome(cutoffs, Some(&removed), left))
}

fn on_sqlite(
    path: &str,
    policy: &RetentionConfig,
    run: &Run,
    cutoffs: &Cutoffs,
) -> Result<Outcome, RetentionError> {
    let mut conn = super::sqlite::connect(path).map_err(super::sqlite::sqlite_error)?;
    // As `seed` does: on SQLite the schema comes with the file.
    super::sqlite::migrate::Migrator::new(&mut conn, super::migrate::SQLITE)
        .up()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    if !run.apply {
        return Ok(outcome(cutoffs, None, sqlite::survey(&conn, cutoffs)?));
    }
    let mut archive = open_archive(run)?;
    let mut removed = Counts::default();
    sqlite::apply(
        &mut conn,
        cutoffs,
        policy.batch_size,
        archive.as_mut(),
        &mut removed,
    )?;
    let left = sqlite::survey(&conn, cutoffs)?;
    Ok(outcome(cutoffs, Some(&removed), left))
}

/// `frontdesk retention [--apply [--yes] [--archive FILE]]`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RetentionArgs {
    /// Remove the rows (without it, only show what a run would remove).
    #[arg(long)]
    pub apply: bool,
    /// Confirm the removal: required in production.
    #[arg(long, requires = "apply")]
    pub yes: bool,
    /// Before deleting, append each removed call's record (its ops) to this JSON Lines file,
    /// created readable by its owner only (it holds transcripts).
    #[arg(long, requires = "apply", value_name = "FILE")]
    pub archive: Option<PathBuf>,
}

/// The command: the plan first, then (with `--apply`) the removal and what it removed.
pub async fn command(
    db: &DatabaseConfig,
    policy: &RetentionConfig,
    env: Environment,
    args: &RetentionArgs,
) -> anyhow::Result<()> {
    let mut request = Run {
        now: Utc::now(),
        apply: false,
        yes: args.yes,
        env,
        archive: args.archive.clone(),
    };
    let plan = run(db, policy, &request).await?;
    crate::stdout::write(&plan.text());
    if !args.apply {
        return Ok(());
    }
    request.apply = true;
    let done = run(db, policy, &request).await?;
    crate::stdout::write(&done.text());
    if let Some(path) = args.archive.as_deref().filter(|_| done.rows("calls") > 0) {
        crate::outln!("removed calls archived to {}", path.display());
    }
    Ok(())
}

/// `start`'s scheduled job: every `[retention] every`, an applied run (the setting is the
/// operator's consent, as `--yes` is). Off when `every` is unset. Counts go to the metrics and
/// an INFO line (table names and numbers only).
pub fn spawn_schedule(
    policy: &RetentionConfig,
    db: &DatabaseConfig,
    env: Environment,
) -> Option<tokio::task::JoinHandle<()>> {
    let every = policy.every?;
    let (policy, db) = (policy.clone(), db.clone());
    Some(tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut tick = tokio::time::interval_at(start, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let request = Run {
                now: Utc::now(),
                apply: true,
                yes: true,
                env,
                archive: None,
            };
            match run(&db, &policy, &request).await {
                Ok(done) => {
                    let removed: Vec<String> = done
                        .tables
                        .iter()
                        .map(|t| format!("{}={}", t.table, t.rows))
                        .collect();
                    tracing::info!(removed = %removed.join(" "), "retention run done");
                }
                Err(e) => {
                    tracing::warn!(error = %e, retriable = e.is_retriable(), "retention run failed")
                }
            }
        }
    }))
}

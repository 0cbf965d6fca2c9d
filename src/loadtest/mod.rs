//! `frontdesk loadtest`: N real WebRTC callers (our transport, caller side) against the agent on a
//! LiveKit server, like LiveKit's `lk load-test`. Each caller joins its own room, has the agent
//! dispatched there, speaks the fixture lines in real time and times the replies on its clock.
//! The agent worker is spawned here (`--worker spawn`: `frontdesk dev` with a unique agent name
//! and its own SQLite database) or already running (`--worker external`). The report sets the
//! callers' voice-to-voice beside the agent's per-stage latencies from its call records (matched by
//! room and turn index), what Frontdesk added on the caller's clock, packet loss and jitter, and
//! the CPU and memory per call of the worker, the LiveKit server and the callers themselves.

mod caller;
mod dispatch;
mod ear;
mod procstat;
mod records;
mod report;
mod run;
mod table;
mod usage;
mod vadtail;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

pub use report::Report;
pub use run::run;

use crate::config::AppConfig;
use crate::room::TransportError;
use crate::token::TokenError;

/// Where the agent worker under test comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerSource {
    /// Start `frontdesk dev` as a child process (unique agent name, temp SQLite database), stop it
    /// at the end.
    Spawn,
    /// A worker already registered under `--agent-name`.
    External,
}

#[derive(clap::Args, Clone, Debug)]
pub struct LoadtestArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 10)]
    pub calls: usize,
    /// Calls start evenly spread over this period.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// Each caller keeps talking this long [default: --turns]. Lines repeat, without the
    /// goodbye; the local STT emulator transcribes only the first 6 utterances of a call.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "turns")]
    pub duration: Option<Duration>,
    /// Lines each caller speaks [default: every fixture line, 6, the last a goodbye].
    #[arg(long)]
    pub turns: Option<usize>,
    /// Agent dispatch name [default: worker.agent_name; spawn: a unique one].
    #[arg(long)]
    pub agent_name: Option<String>,
    #[arg(long, value_enum, default_value = "spawn")]
    pub worker: WorkerSource,
    /// external: the worker's pid, for its CPU and memory.
    #[arg(long)]
    pub worker_pid: Option<u32>,
    /// external: the worker's database, for its call records [default: database.url].
    #[arg(long)]
    pub database_url: Option<String>,
    /// external: the worker's /metrics URL, for the caller→agent packet counts.
    #[arg(long)]
    pub worker_metrics: Option<String>,
    /// The LiveKit server's pid [default: found by the URL's port].
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Dispatch → the agent's greeting, at most.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub greeting_timeout: Duration,
    /// End of a line → the agent's reply, at most (else the turn is missed).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub reply_timeout: Duration,
    /// The agent's reply is over after this much quiet.
    #[arg(long, default_value = "700ms", value_parser = humantime::parse_duration)]
    pub quiet: Duration,
    /// Longest reply waited for.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_reply: Duration,
    /// Think time before each line.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub pause: Duration,
    /// A 20 ms window of agent audio above this RMS is speech.
    #[arg(long, default_value_t = -45.0, allow_negative_numbers = true)]
    pub threshold_dbfs: f32,
    /// Callers' Opus DTX (browsers and the LiveKit SDKs send with it): silence is not sent, but
    /// comfort-noise refreshes are, about every 400 ms.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub caller_dtx: bool,
    /// spawn: the worker's log filter (RUST_LOG); its log is in the run's directory.
    #[arg(long, default_value = "info")]
    pub worker_log: String,
    /// spawn: keep the worker's directory (database, log) even when every call completed.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("{0}")]
    Args(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("dispatch: {reason}")]
    Dispatch { retriable: bool, reason: String },
    #[error("worker: {0}")]
    Worker(String),
    #[error("call records: {0}")]
    Records(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    LinkClosed(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl LoadtestError {
    /// Network trouble and timeouts may clear; bad arguments, refused tokens and a worker that
    /// would not start will not.
    pub fn is_retriable(&self) -> bool {
        match self {
            LoadtestError::Transport(e) => e.is_retriable(),
            LoadtestError::Dispatch { retriable, .. } => *retriable,
            LoadtestError::Records(_)
            | LoadtestError::Timeout(_)
            | LoadtestError::LinkClosed(_)
            | LoadtestError::Io(_) => true,
            LoadtestError::Args(_) | LoadtestError::Token(_) | LoadtestError::Worker(_) => false,
        }
    }
}

/// The command: run, print the table, write the JSON; an error when a call failed.
#[allow(clippy::disallowed_methods)] // the report is written after the runtime has finished
pub fn main(cfg: &AppConfig, args: &LoadtestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(cfg, args))?;
    crate::stdout::write(&report.table());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        crate::outln!("report written to {}", path.display());
    }
    anyhow::ensure!(
        report.all_calls_completed(),
        "{} of {} calls did not complete",
        report.calls.started - report.calls.completed,
        report.calls.started
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_errors() {
        assert!(LoadtestError::Timeout("x".into()).is_retriable());
        assert!(!LoadtestError::Args("x".into()).is_retriable());
        let refused = LoadtestError::Dispatch {
            retriable: false,
            reason: "401".into(),
        };
        assert!(!refused.is_retriable());
        assert!(!LoadtestError::from(TransportError::Unauthorized("no".into())).is_retriable());
        assert!(LoadtestError::from(TransportError::Signal("down".into())).is_retriable());
    }
}

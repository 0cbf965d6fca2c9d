//! Starting the worker and controlling it from outside: drain on the first shutdown signal, abort
//! on the second, wait for its end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::config::WorkerConfig;
use super::error::WorkerError;
use super::job::JobRunner;
use super::state::{Shared, Stop};
use super::{conn, run};
use crate::status::{DepState, ServiceStatus};

/// How long hung-up calls get to end and report after the drain timeout.
const HANG_UP_GRACE: Duration = Duration::from_secs(5);

type Outcome = Option<Result<(), WorkerError>>;

/// A running worker. Clones control the same worker.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    done: watch::Receiver<Outcome>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("agent_name", &self.shared.cfg.agent_name)
            .finish_non_exhaustive()
    }
}

/// Validate `cfg` and start the worker on the current tokio runtime. It connects, registers and
/// takes jobs until drained, aborted, or it gives up reconnecting.
pub fn start(
    cfg: WorkerConfig,
    runner: Arc<dyn JobRunner>,
    status: Arc<ServiceStatus>,
) -> Result<WorkerHandle, WorkerError> {
    let mut errors = cfg.validate();
    if cfg.url.is_empty() {
        errors.push("worker.url (LIVEKIT_URL) is required to run the agent worker".into());
    }
    if !errors.is_empty() {
        return Err(WorkerError::Config(errors.join("; ")));
    }
    let connector = runner.connector();
    tracing::info!(
        agent_name = %cfg.agent_name,
        max_calls = cfg.max_calls,
        connector,
        "starting the LiveKit agent worker"
    );
    status.update_worker(|w| {
        w.agent_name = cfg.agent_name.clone();
        w.max_calls = cfg.max_calls;
        w.connector = connector.to_owned();
        w.protocol_version = conn::AGENT_PROTOCOL;
    });
    status.set_dep(
        super::DEPENDENCY,
        DepState::Down("connecting".into()),
        false,
    );
    let (shared, outbox) = Shared::new(cfg, runner, status);
    if shared.cfg.load_from_cpu {
        // Ends when the worker's state is dropped.
        tokio::spawn(super::cpu::sample(Arc::clone(&shared.cpu)));
    }
    let (tx, done) = watch::channel(None);
    let task_shared = Arc::clone(&shared);
    tokio::spawn(async move {
        let result = run::run(task_shared, outbox).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "LiveKit agent worker stopped");
        }
        tx.send_replace(Some(result));
    });
    Ok(WorkerHandle { shared, done })
}

impl WorkerHandle {
    /// Graceful stop: report WS_FULL with `draining`, refuse new offers, let running calls end
    /// (up to `drain_timeout_ms`), hang up the rest, send their final statuses, close.
    pub async fn drain(&self) -> Result<(), WorkerError> {
        let sh = &self.shared;
        sh.draining.store(true, Ordering::Release);
        sh.status.update_worker(|w| w.draining = true);
        sh.nudge.notify_one();
        let timeout = Duration::from_millis(sh.cfg.drain_timeout_ms);
        tracing::info!(
            running = sh.jobs.len(),
            ?timeout,
            "draining the agent worker"
        );
        if tokio::time::timeout(timeout, sh.jobs.wait_empty())
            .await
            .is_err()
        {
            let n = sh.jobs.end_all();
            tracing::warn!(calls = n, "drain timeout: hanging up the remaining calls");
            let _ = tokio::time::timeout(HANG_UP_GRACE, sh.jobs.wait_empty()).await;
        }
        sh.stop.send_if_modified(|s| {
            let run = *s == Stop::Run;
            if run {
                *s = Stop::Flush;
            }
            run
        });
        self.wait().await
    }

    /// Immediate stop (second signal): hang up every call and close without waiting.
    pub fn abort(&self) {
        let n = self.shared.jobs.end_all();
        tracing::warn!(calls = n, "aborting the agent worker");
        self.shared.stop.send_replace(Stop::Now);
    }

    /// Until the worker has stopped: Ok after a drain or abort, Err if it gave up or could not
    /// run. Running calls are not ended by giving up; `drain` still ends them.
    pub async fn wait(&self) -> Result<(), WorkerError> {
        let mut done = self.done.clone();
        let outcome = match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The task is gone without a word: it panicked.
            Err(_) => None,
        };
        outcome.unwrap_or_else(|| Err(WorkerError::Closed("worker task ended unexpectedly".into())))
    }

    /// Calls running now.
    pub fn active_jobs(&self) -> u32 {
        self.shared.jobs.len()
    }
}

//! The reconnect loop: one connection at a time, backoff between failed attempts, give up after
//! `max_reconnect_attempts` consecutive failures.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{self, Session, SessionEnd};
use super::error::WorkerError;
use super::state::{Outbox, Shared, Stop};
use crate::status::DepState;

/// Connection attempts until the worker stops (Ok) or gives up (Err).
pub(crate) async fn run(sh: Arc<Shared>, mut outbox: Outbox) -> Result<(), WorkerError> {
    let mut failures = 0u32;
    loop {
        let running = *sh.stop.borrow() == Stop::Run;
        if !running {
            return Ok(());
        }
        let mut registered = false;
        let end = attempt(&sh, &mut outbox, &mut registered).await;
        let why = match end {
            Ok(SessionEnd::Stopped) => {
                disconnected(&sh, "worker stopped".into(), false);
                return Ok(());
            }
            Ok(SessionEnd::Closed(why)) => why,
            Err(e) if !e.is_retriable() => {
                disconnected(&sh, e.to_string(), true);
                return Err(e);
            }
            Err(e) => e.to_string(),
        };
        // A registered connection that dropped is not a failed attempt: reconnect at once.
        failures = if registered { 0 } else { failures + 1 };
        if failures >= sh.cfg.max_reconnect_attempts {
            let e = WorkerError::GaveUp {
                attempts: failures,
                last: why,
            };
            disconnected(&sh, e.to_string(), true);
            return Err(e);
        }
        let delay = backoff(
            failures,
            Duration::from_millis(sh.cfg.reconnect_max_delay_ms),
        );
        tracing::warn!(error = %why, attempt = failures, ?delay, "LiveKit connection down; reconnecting");
        disconnected(&sh, why, false);
        metrics::counter!("frontdesk_worker_reconnects_total").increment(1);
        let mut stop = sh.stop.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = conn::stopping(&mut stop) => return Ok(()),
        }
    }
}

/// `min(failures * 2 s, max)`: a dropped registered connection retries at once, then 2, 4, ...
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_secs(2 * u64::from(failures)).min(max)
}

async fn attempt(
    sh: &Arc<Shared>,
    outbox: &mut Outbox,
    registered: &mut bool,
) -> Result<SessionEnd, WorkerError> {
    let mut ws = conn::connect(sh).await?;
    let (worker_id, protocol) = conn::register(&mut ws, sh).await?;
    *registered = true;
    tracing::info!(%worker_id, agent_name = %sh.cfg.agent_name, "registered with LiveKit");
    sh.status.update_worker(|w| {
        w.worker_id = Some(worker_id.clone());
        w.connected = true;
        w.protocol_version = protocol;
    });
    sh.status.set_dep(super::DEPENDENCY, DepState::Up, true);
    // The session's status timer fires at once: the server learns our load right away.
    let session = Session {
        sh,
        ws,
        seq: 0,
        last_rx: Instant::now(),
    };
    session.run(outbox).await
}

/// Health goes 503 (critical) only once the worker gives up: a reconnect in progress must not get
/// a process with live calls restarted.
fn disconnected(sh: &Shared, why: String, critical: bool) {
    sh.status.update_worker(|w| w.connected = false);
    sh.status
        .set_dep(super::DEPENDENCY, DepState::Down(why), critical);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_two_seconds_up_to_the_ceiling() {
        let max = Duration::from_secs(10);
        let delays: Vec<u64> = (0..8).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(delays, [0, 2, 4, 6, 8, 10, 10, 10]);
    }
}

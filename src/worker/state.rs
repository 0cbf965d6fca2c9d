//! State shared by the connection loop, the job tasks and the handle. Jobs live here, outside any
//! connection, so a reconnect never touches a running call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_protocol::WorkerMessage;
use tokio::sync::{mpsc, watch, Notify};

use super::admission::Admission;
use super::config::WorkerConfig;
use super::cpu::CpuLoad;
use super::job::JobRunner;
use crate::status::ServiceStatus;

/// How the connection loop should stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Run,
    /// Send what is queued (final job statuses), close, return.
    Flush,
    /// Return at once.
    Now,
}

pub(crate) struct Shared {
    pub cfg: WorkerConfig,
    pub runner: Arc<dyn JobRunner>,
    pub status: Arc<ServiceStatus>,
    pub admission: Admission,
    pub jobs: Jobs,
    /// Messages from job tasks (job statuses); sent by whichever connection is up, so an update
    /// made while reconnecting goes out after the next registration. Bounded: see [`OUTBOX_SPARE`].
    pub outbox: mpsc::Sender<WorkerMessage>,
    pub draining: AtomicBool,
    pub stop: watch::Sender<Stop>,
    /// Send a status report now (drain began, a job started or ended).
    pub nudge: Notify,
    /// CPU utilisation, kept current by `cpu::sample` while `load_from_cpu`.
    pub cpu: Arc<CpuLoad>,
}

impl Shared {
    pub fn new(
        cfg: WorkerConfig,
        runner: Arc<dyn JobRunner>,
        status: Arc<ServiceStatus>,
    ) -> (Arc<Self>, Outbox) {
        let (outbox, rx) = mpsc::channel(outbox_bound(cfg.max_calls));
        let shared = Self {
            admission: Admission::new(cfg.max_calls, cfg.load_threshold),
            cfg,
            runner,
            status,
            jobs: Jobs::new(),
            outbox,
            draining: AtomicBool::new(false),
            stop: watch::Sender::new(Stop::Run),
            nudge: Notify::new(),
            cpu: Arc::new(CpuLoad::default()),
        };
        (Arc::new(shared), Outbox { rx, retry: None })
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Queue a job status for LiveKit. A full outbox means the connection is down or stalled:
    /// the status waits (holding its job's slot, so no new job adds to the backlog) up to
    /// [`OUTBOX_DEADLINE`], then is dropped, counted and logged. A lost final status leaves the
    /// server thinking the job still runs, so waiting beats dropping at once; an unbounded wait
    /// would hold the slot forever.
    pub async fn send(&self, msg: WorkerMessage) {
        queue_message(&self.outbox, msg, OUTBOX_DEADLINE).await;
    }

    /// Load as reported to LiveKit: running calls over `max_calls`, or the CPU load when that is
    /// higher (`load_from_cpu`). Slots still cap the calls: CPU can only make the worker refuse
    /// sooner.
    pub fn load(&self) -> f32 {
        reported_load(self.jobs.len(), self.admission.max_calls(), self.cpu_load())
    }

    fn cpu_load(&self) -> f32 {
        if self.cfg.load_from_cpu {
            self.cpu.get()
        } else {
            0.0
        }
    }

    /// The CPU is at or above the threshold (never with a threshold of 1.0: `dev`).
    pub fn cpu_overloaded(&self) -> bool {
        cpu_overloaded(self.cpu_load(), self.cfg.load_threshold)
    }

    /// WS_FULL when draining, when the next offer would be refused for its slot, or when the CPU
    /// is overloaded.
    pub fn full(&self) -> bool {
        self.draining() || self.admission.is_full() || self.cpu_overloaded()
    }

    /// Mirror the load into `/worker` and the metrics (each status report).
    pub fn load_reported(&self, load: f32) {
        self.status.update_worker(|w| w.load = load);
        metrics::gauge!(crate::telemetry::catalog::WORKER_LOAD).set(f64::from(load));
    }

    /// Mirror the job count into `/worker` and nudge a status report.
    pub fn jobs_changed(&self) {
        let (active, load) = (self.jobs.len(), self.load());
        self.status.update_worker(|w| {
            w.active_calls = active;
            w.load = load;
        });
        metrics::gauge!("frontdesk_worker_jobs_active").set(f64::from(active));
        metrics::gauge!(crate::telemetry::catalog::WORKER_LOAD).set(f64::from(load));
        self.nudge.notify_one();
    }
}

/// max(slot fraction, CPU load), 0..1.
pub(crate) fn reported_load(jobs: u32, max_calls: u32, cpu: f32) -> f32 {
    let slots = jobs as f32 / max_calls.max(1) as f32;
    slots.max(cpu).clamp(0.0, 1.0)
}

pub(crate) fn cpu_overloaded(cpu: f32, threshold: f32) -> bool {
    threshold < 1.0 && cpu >= threshold
}

/// Metric label of the outbox in `frontdesk_edge_depth` and `frontdesk_edge_dropped_items_total`.
pub(crate) const OUTBOX_EDGE: &str = frontdesk_actors::call::ports::WORKER_OUTBOX.name;
/// Room in the outbox beyond two statuses per call slot.
pub(crate) const OUTBOX_SPARE: usize = 16;
/// How long a job status waits for room in a full outbox before it is dropped.
pub(crate) const OUTBOX_DEADLINE: Duration = Duration::from_secs(30);

/// Every running job owes LiveKit at most two statuses (running, then its end), jobs are capped
/// at `max_calls`, and new jobs only arrive over a live connection, which drains the outbox: so
/// the outbox cannot fill unless the connection is stalled.
fn outbox_bound(max_calls: u32) -> usize {
    2 * max_calls as usize + OUTBOX_SPARE
}

fn outbox_depth(depth: usize) {
    metrics::gauge!(frontdesk_actors::metrics::EDGE_DEPTH, "edge" => OUTBOX_EDGE).set(depth as f64);
}

/// Wait up to `deadline` for room; false if the message was dropped (counted, logged).
async fn queue_message(
    outbox: &mpsc::Sender<WorkerMessage>,
    msg: WorkerMessage,
    deadline: Duration,
) -> bool {
    match outbox.send_timeout(msg, deadline).await {
        Ok(()) => {
            outbox_depth(outbox.max_capacity() - outbox.capacity());
            true
        }
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
            frontdesk_actors::metrics::edge_dropped(
                OUTBOX_EDGE,
                frontdesk_actors::edge::DropReason::Overflow,
                1,
            );
            tracing::error!(?deadline, "worker outbox full; job status dropped");
            false
        }
        // Only once the connection loop is gone, when nobody could send it anyway.
        Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
    }
}

/// The receiving end of `Shared::outbox`, owned by the connection loop. A message whose send
/// failed is kept and goes out first on the next connection: a job's final status must not be
/// lost to a reconnect.
pub(crate) struct Outbox {
    rx: mpsc::Receiver<WorkerMessage>,
    retry: Option<WorkerMessage>,
}

impl Outbox {
    /// Cancel-safe: a kept message is returned without awaiting, and `recv` is cancel-safe.
    pub async fn next(&mut self) -> Option<WorkerMessage> {
        match self.retry.take() {
            Some(msg) => Some(msg),
            None => {
                let msg = self.rx.recv().await;
                self.took(msg)
            }
        }
    }

    pub fn try_next(&mut self) -> Option<WorkerMessage> {
        match self.retry.take() {
            Some(msg) => Some(msg),
            None => {
                let msg = self.rx.try_recv().ok();
                self.took(msg)
            }
        }
    }

    fn took(&self, msg: Option<WorkerMessage>) -> Option<WorkerMessage> {
        if msg.is_some() {
            outbox_depth(self.rx.max_capacity() - self.rx.capacity());
        }
        msg
    }

    pub fn keep(&mut self, msg: WorkerMessage) {
        self.retry = Some(msg);
    }
}

/// Running jobs by id, each with its end signal.
pub(crate) struct Jobs {
    map: Mutex<HashMap<String, watch::Sender<bool>>>,
    count: watch::Sender<u32>,
}

impl Jobs {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            count: watch::Sender::new(0),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<bool>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a job; its receiver turns true when the job should end. None if the id runs.
    pub fn insert(&self, job_id: &str) -> Option<watch::Receiver<bool>> {
        let mut map = self.map();
        if map.contains_key(job_id) {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        map.insert(job_id.to_owned(), tx);
        self.count.send_replace(map.len() as u32);
        Some(rx)
    }

    pub fn remove(&self, job_id: &str) {
        let mut map = self.map();
        map.remove(job_id);
        self.count.send_replace(map.len() as u32);
    }

    /// Ask one job to end; false for an unknown id.
    pub fn end(&self, job_id: &str) -> bool {
        match self.map().get(job_id) {
            Some(tx) => {
                tx.send_replace(true);
                true
            }
            None => false,
        }
    }

    pub fn end_all(&self) -> usize {
        let map = self.map();
        for tx in map.values() {
            tx.send_replace(true);
        }
        map.len()
    }

    pub fn len(&self) -> u32 {
        *self.count.borrow()
    }

    pub async fn wait_empty(&self) {
        let mut rx = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_load_is_the_higher_of_slots_and_cpu() {
        assert_eq!(reported_load(1, 4, 0.0), 0.25, "slots only");
        assert_eq!(reported_load(1, 4, 0.6), 0.6, "a busy CPU with few calls");
        assert_eq!(reported_load(3, 4, 0.2), 0.75, "many light calls");
        assert_eq!(reported_load(4, 4, 1.0), 1.0);
    }

    fn status(job: &str) -> WorkerMessage {
        super::super::wire::job_status(job, livekit_protocol::JobStatus::JsSuccess, "")
    }

    #[test]
    fn the_outbox_holds_two_statuses_per_slot() {
        assert_eq!(outbox_bound(100), 216);
        assert_eq!(outbox_bound(0), OUTBOX_SPARE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_waits_for_room_in_a_full_outbox() {
        let (tx, rx) = mpsc::channel(1);
        let mut outbox = Outbox { rx, retry: None };
        assert!(queue_message(&tx, status("a"), OUTBOX_DEADLINE).await);
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { queue_message(&tx, status("b"), OUTBOX_DEADLINE).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second status waits");
        assert_eq!(outbox.next().await, Some(status("a")));
        assert!(waiting.await.unwrap(), "then goes in, nothing lost");
        assert_eq!(outbox.try_next(), Some(status("b")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_is_dropped_after_the_deadline() {
        let (tx, rx) = mpsc::channel(1);
        let mut outbox = Outbox { rx, retry: None };
        assert!(queue_message(&tx, status("a"), OUTBOX_DEADLINE).await);
        assert!(!queue_message(&tx, status("b"), OUTBOX_DEADLINE).await);
        assert_eq!(outbox.try_next(), Some(status("a")));
        assert_eq!(outbox.try_next(), None, "b was dropped, a kept");
    }

    #[test]
    fn cpu_refuses_at_the_threshold_but_never_in_dev() {
        assert!(!cpu_overloaded(0.69, 0.7));
        assert!(cpu_overloaded(0.7, 0.7));
        assert!(
            !cpu_overloaded(1.0, 1.0),
            "dev (threshold 1.0): only max_calls"
        );
    }
}

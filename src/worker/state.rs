//! State shared by the connection loop, the job tasks and the handle. Jobs live here, outside any
//! connection, so a reconnect never touches a running call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use livekit_protocol::WorkerMessage;
use tokio::sync::{mpsc, watch, Notify};

use super::admission::Admission;
use super::config::WorkerConfig;
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
    /// made while reconnecting goes out after the next registration.
    pub outbox: mpsc::UnboundedSender<WorkerMessage>,
    pub draining: AtomicBool,
    pub stop: watch::Sender<Stop>,
    /// Send a status report now (drain began, a job started or ended).
    pub nudge: Notify,
}

impl Shared {
    pub fn new(
        cfg: WorkerConfig,
        runner: Arc<dyn JobRunner>,
        status: Arc<ServiceStatus>,
    ) -> (Arc<Self>, Outbox) {
        let (outbox, rx) = mpsc::unbounded_channel();
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
        };
        (Arc::new(shared), Outbox { rx, retry: None })
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn send(&self, msg: WorkerMessage) {
        // Fails only once the connection loop is gone, when nobody could send it anyway.
        let _ = self.outbox.send(msg);
    }

    /// Load as reported to LiveKit: running calls over `max_calls`. Not CPU, unlike the Python
    /// worker's default: calls are what this process is sized by.
    pub fn load(&self) -> f32 {
        self.jobs.len() as f32 / self.admission.max_calls() as f32
    }

    /// WS_FULL when draining or when the next offer would be refused.
    pub fn full(&self) -> bool {
        self.draining() || self.admission.is_full()
    }

    /// Mirror the job count into `/worker` and nudge a status report.
    pub fn jobs_changed(&self) {
        let (active, load) = (self.jobs.len(), self.load());
        self.status.update_worker(|w| {
            w.active_calls = active;
            w.load = load;
        });
        metrics::gauge!("frontdesk_worker_jobs_active").set(f64::from(active));
        self.nudge.notify_one();
    }
}

/// The receiving end of `Shared::outbox`, owned by the connection loop. A message whose send
/// failed is kept and goes out first on the next connection: a job's final status must not be
/// lost to a reconnect.
pub(crate) struct Outbox {
    rx: mpsc::UnboundedReceiver<WorkerMessage>,
    retry: Option<WorkerMessage>,
}

impl Outbox {
    /// Cancel-safe: a kept message is returned without awaiting, and `recv` is cancel-safe.
    pub async fn next(&mut self) -> Option<WorkerMessage> {
        match self.retry.take() {
            Some(msg) => Some(msg),
            None => self.rx.recv().await,
        }
    }

    pub fn try_next(&mut self) -> Option<WorkerMessage> {
        self.retry.take().or_else(|| self.rx.try_recv().ok())
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

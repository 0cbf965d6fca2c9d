//! A `JobRunner` for worker tests: jobs run until the worker ends them or the test finishes them,
//! and every start and end is recorded.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use frontdesk::worker::{JobError, JobInfo, JobRunner, RunningJob};
use tokio::sync::watch;

type End = Option<Result<(), String>>;

#[derive(Default)]
pub struct TestRunner {
    jobs: Mutex<HashMap<String, (JobInfo, watch::Sender<End>)>>,
    ended_by_worker: Arc<Mutex<Vec<String>>>,
}

impl TestRunner {
    pub fn started(&self, job_id: &str) -> Option<JobInfo> {
        self.jobs
            .lock()
            .unwrap()
            .get(job_id)
            .map(|(i, _)| i.clone())
    }

    /// Whether the worker asked the job to end (termination, drain timeout, abort).
    pub fn was_ended(&self, job_id: &str) -> bool {
        self.ended_by_worker
            .lock()
            .unwrap()
            .iter()
            .any(|j| j == job_id)
    }

    /// End a job from its side (the caller hung up, or it failed).
    pub fn finish(&self, job_id: &str, result: Result<(), String>) {
        let jobs = self.jobs.lock().unwrap();
        jobs.get(job_id).unwrap().1.send_replace(Some(result));
    }
}

#[async_trait]
impl JobRunner for TestRunner {
    fn connector(&self) -> &'static str {
        "test"
    }

    async fn start(&self, job: JobInfo) -> Result<Box<dyn RunningJob>, JobError> {
        let (tx, rx) = watch::channel(None);
        let id = job.job_id.clone();
        self.jobs
            .lock()
            .unwrap()
            .insert(id.clone(), (job, tx.clone()));
        Ok(Box::new(Job {
            id,
            end: tx,
            rx,
            ended_by_worker: Arc::clone(&self.ended_by_worker),
        }))
    }
}

struct Job {
    id: String,
    end: watch::Sender<End>,
    rx: watch::Receiver<End>,
    ended_by_worker: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl RunningJob for Job {
    fn end(&self) {
        self.ended_by_worker.lock().unwrap().push(self.id.clone());
        self.end.send_modify(|e| {
            e.get_or_insert(Ok(()));
        });
    }

    async fn finished(&mut self) -> Result<(), JobError> {
        let end = self.rx.wait_for(Option::is_some).await.unwrap().clone();
        end.unwrap().map_err(JobError::Failed)
    }
}

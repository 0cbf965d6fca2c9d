//! The seam between the worker and what a job runs: the worker hands a `JobRunner` the job's
//! room and token and gets back something it can end and wait for.

use async_trait::async_trait;
use frontdesk_actors::provider::RoomError;

use crate::secret::Secret;

/// An assigned job, as the runner needs it.
#[derive(Clone, Debug)]
pub struct JobInfo {
    pub job_id: String,
    pub room: String,
    /// The assignment's URL, or the worker's own LiveKit URL.
    pub url: String,
    /// Room token minted by the server for this job.
    pub token: Secret,
    /// The identity the agent joins as.
    pub participant_identity: String,
    /// Who placed the call, when the job names a participant (empty otherwise).
    pub caller: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("could not join the room: {0}")]
    Room(#[from] RoomError),
    #[error("could not start the call: {0}")]
    Start(String),
    /// The job ran and ended badly.
    #[error("{0}")]
    Failed(String),
}

impl JobError {
    pub fn is_retriable(&self) -> bool {
        match self {
            JobError::Room(e) => e.is_retriable(),
            JobError::Start(_) | JobError::Failed(_) => false,
        }
    }
}

/// Starts jobs. `CallJobRunner` in production; tests use their own.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// The media transport jobs join rooms with (logs, `/worker`).
    fn connector(&self) -> &'static str;

    /// Join the job's room and start its work; returns once it runs.
    async fn start(&self, job: JobInfo) -> Result<Box<dyn RunningJob>, JobError>;
}

/// A started job.
#[async_trait]
pub trait RunningJob: Send {
    /// Ask the job to end (termination, shutdown). Returns at once; calling it again is harmless.
    fn end(&self);

    /// Wait for the job's end. Must be cancel-safe: the worker polls it in a `select!` and may
    /// drop the future to call `end` and poll again.
    async fn finished(&mut self) -> Result<(), JobError>;
}

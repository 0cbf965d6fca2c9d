//! The production job: one call tree per job, on a room joined through a [`RoomIo`] (the LiveKit
//! WebRTC transport; the simulated caller in tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::call::{
    spawn_call, CallDeps, CallOutcome, CallSpec, EndReason, SupervisorMsg,
};
use frontdesk_actors::provider::{JoinRequest, RoomIo};
use frontdesk_actors::PipelineConfig;
use ractor::ActorRef;

use super::job::{JobError, JobInfo, JobRunner, RunningJob};

/// Runs each job as a call tree.
pub struct CallJobRunner {
    room: Arc<dyn RoomIo>,
    deps: CallDeps,
    pipeline: PipelineConfig,
}

impl CallJobRunner {
    pub fn new(room: Arc<dyn RoomIo>, deps: CallDeps, pipeline: PipelineConfig) -> Self {
        Self {
            room,
            deps,
            pipeline,
        }
    }
}

#[async_trait]
impl JobRunner for CallJobRunner {
    fn connector(&self) -> &'static str {
        self.room.name()
    }

    async fn start(&self, job: JobInfo) -> Result<Box<dyn RunningJob>, JobError> {
        let req = JoinRequest {
            url: job.url.clone(),
            token: job.token.expose().to_owned(),
            room: job.room.clone(),
            caller: (!job.caller.is_empty()).then(|| job.caller.clone()),
        };
        let mut link = self.room.join(req).await?;
        // Held until the job's end is reported (see `RunningJob`'s drop in dispatch).
        let stay = link.stay.take();
        let spec = CallSpec {
            call_id: job.job_id,
            room: job.room,
            caller: if job.caller.is_empty() {
                "unknown".into()
            } else {
                job.caller
            },
        };
        let handle = spawn_call(spec, self.pipeline.clone(), self.deps.clone(), link)
            .await
            .map_err(|e| JobError::Start(e.to_string()))?;
        let supervisor = handle.supervisor.clone();
        Ok(Box::new(CallJob {
            supervisor,
            done: Box::pin(handle.wait()),
            _stay: stay,
        }))
    }
}

type Done = Pin<Box<dyn Future<Output = Option<CallOutcome>> + Send>>;

/// A running call. The wait future is kept across polls so `finished` is cancel-safe.
struct CallJob {
    supervisor: ActorRef<SupervisorMsg>,
    done: Done,
    /// The agent stays in the room until this job is dropped, after its status went out.
    _stay: Option<frontdesk_actors::provider::StayGuard>,
}

#[async_trait]
impl RunningJob for CallJob {
    fn end(&self) {
        let _ = self
            .supervisor
            .cast(SupervisorMsg::EndCall(EndReason::Shutdown));
    }

    async fn finished(&mut self) -> Result<(), JobError> {
        match (&mut self.done).await {
            None => Err(JobError::Failed("call ended without an outcome".into())),
            Some(o) => match o.reason {
                EndReason::CallerHungUp | EndReason::AgentHungUp | EndReason::Shutdown => Ok(()),
                other => Err(JobError::Failed(format!("call ended: {other}"))),
            },
        }
    }
}

//! The production job: one call tree per job, on a room joined through a `RoomConnector`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_actors::call::{
    spawn_call, CallDeps, CallOutcome, CallSpec, EndReason, SupervisorMsg,
};
use frontdesk_actors::doubles::LoopbackRoom;
use frontdesk_actors::provider::{RoomError, RoomLink};
use frontdesk_actors::PipelineConfig;
use ractor::ActorRef;

use super::job::{JobError, JobInfo, JobRunner, RunningJob};
use crate::simulate::caller::{Caller, CallerConfig};
use crate::simulate::clips::Clips;

/// Joins a LiveKit room as the agent: the media transport.
#[async_trait]
pub trait RoomConnector: Send + Sync + 'static {
    /// For logs and `/worker`.
    fn name(&self) -> &'static str;
    async fn connect(&self, url: &str, token: &str, room: &str) -> Result<RoomLink, RoomError>;
}

/// The connector of a build without WebRTC: every join fails, so jobs are reported JS_FAILED
/// (and LiveKit can dispatch them elsewhere) instead of sitting in a room with no audio.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMediaConnector;

#[async_trait]
impl RoomConnector for NoMediaConnector {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn connect(&self, _url: &str, _token: &str, room: &str) -> Result<RoomLink, RoomError> {
        Err(RoomError::Join {
            room: room.to_owned(),
            reason: "no WebRTC media transport in this build".into(),
        })
    }
}

/// A room with a simulated caller in it (the `simulate` caller, speaking its recorded lines),
/// for running the worker end to end without WebRTC: `dev` mode and tests.
#[derive(Clone, Debug)]
pub struct SimulatedCallerConnector {
    clips: Arc<Clips>,
    caller: CallerConfig,
}

impl SimulatedCallerConnector {
    pub fn new(clips: Arc<Clips>, caller: CallerConfig) -> Self {
        Self { clips, caller }
    }
}

#[async_trait]
impl RoomConnector for SimulatedCallerConnector {
    fn name(&self) -> &'static str {
        "simulated-caller"
    }

    async fn connect(&self, _url: &str, _token: &str, room: &str) -> Result<RoomLink, RoomError> {
        let (end, link) = LoopbackRoom::pair(32);
        let closed = end.to_agent.clone();
        let caller = Caller::new(end, Arc::clone(&self.clips), self.caller.clone());
        let room = room.to_owned();
        tokio::spawn(async move {
            // The caller stops talking when the agent's side of the room is gone (hang-up,
            // termination), not only when its own script ends.
            tokio::select! {
                stats = caller.run() => tracing::debug!(%room, lines = stats.lines, "simulated caller hung up"),
                _ = closed.closed() => tracing::debug!(%room, "simulated caller's room closed"),
            }
        });
        Ok(link)
    }
}

/// Runs each job as a call tree.
pub struct CallJobRunner {
    connector: Arc<dyn RoomConnector>,
    deps: CallDeps,
    pipeline: PipelineConfig,
}

impl CallJobRunner {
    pub fn new(
        connector: Arc<dyn RoomConnector>,
        deps: CallDeps,
        pipeline: PipelineConfig,
    ) -> Self {
        Self {
            connector,
            deps,
            pipeline,
        }
    }
}

#[async_trait]
impl JobRunner for CallJobRunner {
    fn connector(&self) -> &'static str {
        self.connector.name()
    }

    async fn start(&self, job: JobInfo) -> Result<Box<dyn RunningJob>, JobError> {
        let link = self
            .connector
            .connect(&job.url, job.token.expose(), &job.room)
            .await?;
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
        }))
    }
}

type Done = Pin<Box<dyn Future<Output = Option<CallOutcome>> + Send>>;

/// A running call. The wait future is kept across polls so `finished` is cancel-safe.
struct CallJob {
    supervisor: ActorRef<SupervisorMsg>,
    done: Done,
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

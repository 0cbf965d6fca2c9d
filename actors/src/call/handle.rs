//! Starting a call and holding on to it from outside the tree.

use std::time::Duration;

use ractor::{Actor, ActorRef, SpawnErr};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::msg::{CallSnapshot, SupervisorMsg};
use super::supervisor::{CallSupervisor, SupervisorArgs};
use super::{CallDeps, CallOutcome, CallSpec, EndReason};
use crate::config::PipelineConfig;
use crate::provider::RoomLink;

/// A running call.
pub struct CallHandle {
    pub supervisor: ActorRef<SupervisorMsg>,
    outcome: oneshot::Receiver<CallOutcome>,
    join: JoinHandle<()>,
}

impl CallHandle {
    /// Wait for the call to end.
    pub async fn wait(self) -> Option<CallOutcome> {
        let outcome = self.outcome.await.ok();
        let _ = self.join.await;
        outcome
    }

    pub async fn snapshot(&self) -> Option<CallSnapshot> {
        match self
            .supervisor
            .call(SupervisorMsg::Snapshot, Some(Duration::from_secs(5)))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(s)) => Some(s),
            _ => None,
        }
    }

    /// End the call from outside (shutdown, job termination).
    pub fn hang_up(&self, reason: EndReason) {
        let _ = self.supervisor.cast(SupervisorMsg::EndCall(reason));
    }
}

/// Start a call's tree on a joined room.
pub async fn spawn_call(
    spec: CallSpec,
    cfg: PipelineConfig,
    deps: CallDeps,
    link: RoomLink,
) -> Result<CallHandle, SpawnErr> {
    let (tx, rx) = oneshot::channel();
    let args = SupervisorArgs {
        spec,
        cfg,
        deps,
        link,
        outcome: tx,
    };
    let (supervisor, join) = Actor::spawn(None, CallSupervisor, args).await?;
    Ok(CallHandle {
        supervisor,
        outcome: rx,
        join,
    })
}

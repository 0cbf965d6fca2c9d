//! DbGateway: the agent's tool calls against the store, each under a timeout (a database fault
//! becomes an "unavailable" tool result the model can speak, never a crashed call), and the
//! write-behind of the call record from a bounded outbox kept by the supervisor, so nothing queued is
//! lost when this actor restarts.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

pub use super::msg::DbMsg;
use super::ports::DbPorts;
use super::pump::TaskGuard;
use super::shared::lock;
use crate::tools::{self, ToolOutcome};

/// Records per write.
const BATCH: usize = 64;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct DbGatewayActor {
    pub ports: DbPorts,
}

pub struct DbGatewayState {
    _ticker: TaskGuard,
}

impl Actor for DbGatewayActor {
    type Msg = DbMsg;
    type State = DbGatewayState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<DbMsg>,
        _: (),
    ) -> Result<DbGatewayState, ActorProcessingErr> {
        let me = myself.clone();
        let ticker = TaskGuard::spawn(async move {
            let mut every = tokio::time::interval(FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if me.cast(DbMsg::FlushTick).is_err() {
                    return;
                }
            }
        });
        Ok(DbGatewayState { _ticker: ticker })
    }

    async fn handle(
        &self,
        _myself: ActorRef<DbMsg>,
        msg: DbMsg,
        _state: &mut DbGatewayState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DbMsg::Tool { call, reply } => {
                // Each tool call runs beside the mailbox so a slow query never delays the next.
                let store = Arc::clone(&self.ports.store);
                let timeout = self.ports.tool_timeout;
                tokio::spawn(async move {
                    let outcome =
                        match tokio::time::timeout(timeout, tools::execute(&*store, &call)).await {
                            Ok(o) => o,
                            Err(_) => ToolOutcome::unavailable(),
                        };
                    let _ = reply.send(outcome);
                });
            }
            DbMsg::FlushTick => {
                self.flush_once().await;
            }
            DbMsg::Flush(reply) => {
                while self.flush_once().await {}
                let _ = reply.send(lock(&self.ports.outbox).len());
            }
        }
        Ok(())
    }
}

impl DbGatewayActor {
    /// Write one batch. Returns true if it wrote something and more may be pending.
    async fn flush_once(&self) -> bool {
        let batch = lock(&self.ports.outbox).batch(BATCH);
        let Some(last) = batch.last().map(|op| op.seq) else {
            return false;
        };
        match tokio::time::timeout(WRITE_TIMEOUT, self.ports.store.write_records(&batch)).await {
            Ok(Ok(())) => {
                lock(&self.ports.outbox).ack(last);
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), error = %e, pending = batch.len(), "call record write failed; will retry");
                false
            }
            Err(_) => {
                tracing::warn!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), "call record write timed out; will retry");
                false
            }
        }
    }
}

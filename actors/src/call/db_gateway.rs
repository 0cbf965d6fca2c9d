//! DbGateway: the agent's tool calls against the store, each under a timeout (a database fault
//! becomes an "unavailable" tool result the model can speak, never a crashed call), and the
//! write-behind of the call record from a bounded outbox kept by the supervisor, so nothing queued is
//! lost when this actor restarts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::pump::TaskGuard;
use super::shared::{lock, CallShared};
use crate::provider::ToolCall;
use crate::store::{RecordKind, RecordOp};
use crate::tools::{self, ToolOutcome};

/// Records kept while the database is unreachable; beyond this the oldest are dropped (counted).
const OUTBOX_CAPACITY: usize = 4_096;
/// Records per write.
const BATCH: usize = 64;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Call-record writes not yet acknowledged by the store.
#[derive(Debug)]
pub struct Outbox {
    call_id: String,
    next_seq: u64,
    ops: VecDeque<RecordOp>,
    dropped: u64,
}

impl Outbox {
    pub fn new(call_id: String) -> Self {
        Self {
            call_id,
            next_seq: 0,
            ops: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, kind: RecordKind) {
        if self.ops.len() >= OUTBOX_CAPACITY {
            self.ops.pop_front();
            self.dropped += 1;
            metrics::counter!(crate::metrics::RECORD_DROPPED, "reason" => "outbox_full")
                .increment(1);
        }
        self.next_seq += 1;
        self.ops.push_back(RecordOp {
            call_id: self.call_id.clone(),
            seq: self.next_seq,
            at: Utc::now(),
            kind,
        });
    }

    /// The oldest pending ops (they stay queued until `ack`).
    pub fn batch(&self, max: usize) -> Vec<RecordOp> {
        self.ops.iter().take(max).cloned().collect()
    }

    /// The store applied ops up to and including `seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.ops.front().is_some_and(|op| op.seq <= seq) {
            self.ops.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[derive(Debug)]
pub enum DbMsg {
    Tool {
        call: ToolCall,
        reply: RpcReplyPort<ToolOutcome>,
    },
    FlushTick,
    /// Write everything pending now; answers the number of ops still pending.
    Flush(RpcReplyPort<usize>),
}

pub struct DbGatewayActor {
    pub shared: Arc<CallShared>,
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
                let store = Arc::clone(&self.shared.deps.store);
                let timeout = self.shared.cfg.dialogue.tool_timeout();
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
                let _ = reply.send(lock(&self.shared.outbox).len());
            }
        }
        Ok(())
    }
}

impl DbGatewayActor {
    /// Write one batch. Returns true if it wrote something and more may be pending.
    async fn flush_once(&self) -> bool {
        let batch = lock(&self.shared.outbox).batch(BATCH);
        let Some(last) = batch.last().map(|op| op.seq) else {
            return false;
        };
        match tokio::time::timeout(WRITE_TIMEOUT, self.shared.deps.store.write_records(&batch))
            .await
        {
            Ok(Ok(())) => {
                lock(&self.shared.outbox).ack(last);
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(call_id = %self.shared.call_id(), turn = self.shared.turn(), error = %e, pending = batch.len(), "call record write failed; will retry");
                false
            }
            Err(_) => {
                tracing::warn!(call_id = %self.shared.call_id(), turn = self.shared.turn(), "call record write timed out; will retry");
                false
            }
        }
    }
}

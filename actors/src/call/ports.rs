//! The queues of a call, in ONE table ([`QUEUES`]), and the typed ports each child is handed by the
//! supervisor (`wiring`): exactly the queue ends, routes and supervisor-owned state it uses.
//!
//! The call's in-process edges are created from their rows ([`QueueSpec::edge`]); the drop and
//! depth series are seeded from the table (`metrics::register`); `actors/README.md` carries the
//! same rows (a test keeps the two equal). A new queue is one row here.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{ActorRef, Message};

use super::context::ChatContext;
use super::ledger::ReplyLedger;
use super::msg::{AgentOut, Arrived, DbMsg, DialogueMsg, SttInput, SupervisorMsg, TtsMsg};
use super::outbox::Outbox;
use super::replay::ReplayLog;
use super::shared::{lock, CallInfo, Shared, UsageTotals};
use super::timeline::TurnTimeline;
use super::CallObserver;
use crate::config::PipelineConfig;
use crate::edge::{DropReason, Edge, EdgeFlush, EdgeRx, EdgeTx, OverflowPolicy};
use crate::provider::room::RoomDataOut;
use crate::provider::{LlmProvider, SttProvider, TtsProvider};
use crate::store::Store;
use crate::vad::VadConfig;

/// How a queue's bound is set.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// A `[pipeline]` key, read from the call's config when the call starts.
    Pipeline {
        key: &'static str,
        read: fn(&PipelineConfig) -> usize,
    },
    /// A key of another section of the service's configuration (read where the queue is made).
    Setting(&'static str),
    /// A constant in code: where it is, and its value.
    Const { name: &'static str, value: usize },
    /// Each provider implementation picks it (see the row's note).
    Provider(&'static str),
}

impl Bound {
    /// The bound for a call with `cfg`, where the table knows it.
    pub fn resolve(&self, cfg: &PipelineConfig) -> Option<usize> {
        match self {
            Bound::Pipeline { read, .. } => Some(read(cfg)),
            Bound::Const { value, .. } => Some(*value),
            Bound::Setting(_) | Bound::Provider(_) => None,
        }
    }

    /// As the README table shows it.
    pub fn describe(&self) -> String {
        match self {
            Bound::Pipeline { key, .. } | Bound::Setting(key) => format!("`{key}`"),
            Bound::Const { name, value } => format!("`{name}` ({value})"),
            Bound::Provider(what) => format!("provider: {what}"),
        }
    }
}

/// What a full queue does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// The oldest item is dropped, counted: live media, the newest audio matters most.
    DropOldest,
    /// The new item is dropped, counted; the producer never waits.
    DropNewest,
    /// The producer waits for room (playout pace, or low-rate control read first).
    Wait,
    /// The producer waits up to a deadline, then the item is dropped, counted.
    WaitThenDrop,
    /// The consumer's context fails, counted; its owner recovers (TTS re-speaks the unplayed part).
    FailContext,
}

impl Overflow {
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DropOldest => "drop oldest",
            Overflow::DropNewest => "drop newest",
            Overflow::Wait => "wait",
            Overflow::WaitThenDrop => "wait, then drop",
            Overflow::FailContext => "fail context",
        }
    }

    /// The policy of an in-process [`Edge`], for the policies an edge implements.
    pub fn edge_policy(self) -> Option<OverflowPolicy> {
        match self {
            Overflow::DropOldest => Some(OverflowPolicy::DropOldest),
            Overflow::Wait => Some(OverflowPolicy::Wait),
            _ => None,
        }
    }
}

/// Where a queue's drops are counted.
#[derive(Clone, Copy, Debug)]
pub enum Drops {
    /// Nothing is ever dropped (the producer waits).
    None,
    /// `frontdesk_edge_dropped_items_total{edge=<name>, reason}`.
    Edge(&'static [DropReason]),
    /// `frontdesk_call_record_dropped_total{reason}`.
    Records(&'static [&'static str]),
}

impl Drops {
    /// As the README table shows it.
    pub fn describe(&self) -> String {
        let join = |labels: Vec<&str>| labels.join(", ");
        match self {
            Drops::None => "none".into(),
            Drops::Edge(r) => format!(
                "`{}` {}",
                crate::metrics::EDGE_DROPPED,
                join(r.iter().map(|r| r.as_str()).collect())
            ),
            Drops::Records(r) => {
                format!("`{}` {}", crate::metrics::RECORD_DROPPED, join(r.to_vec()))
            }
        }
    }
}

/// One queue of a call.
#[derive(Clone, Copy, Debug)]
pub struct QueueSpec {
    /// Its `edge` label in the metrics.
    pub name: &'static str,
    pub producer: &'static str,
    pub consumer: &'static str,
    pub bound: Bound,
    pub overflow: Overflow,
    pub drops: Drops,
    /// Items queued, in `frontdesk_edge_depth{edge=<name>}`.
    pub depth_gauge: bool,
}

/// A row the table cannot make into an in-process edge.
#[derive(Debug, thiserror::Error)]
#[error("queue {0} is not an in-process edge (bound or policy outside the call)")]
pub struct NotAnEdge(pub &'static str);

impl NotAnEdge {
    /// A table mistake: no retry helps.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

impl QueueSpec {
    /// The call's edge for this row: name, bound and policy all from the row.
    pub fn edge<T>(&self, cfg: &PipelineConfig) -> Result<Edge<T>, NotAnEdge> {
        match (self.bound.resolve(cfg), self.overflow.edge_policy()) {
            (Some(capacity), Some(policy)) => Ok(Edge::new(self.name, capacity, policy)),
            _ => Err(NotAnEdge(self.name)),
        }
    }

    /// The bound of a row fixed in code, for the code that makes that queue (`const` use: a row
    /// without a fixed bound fails to compile there).
    pub const fn fixed_bound(&self) -> usize {
        match self.bound {
            Bound::Const { value, .. } => value,
            _ => panic!("this queue's bound is not fixed in code"),
        }
    }
}

pub const ROOM_TO_VAD: QueueSpec = QueueSpec {
    name: "room_to_vad",
    producer: "room ingress",
    consumer: "vad",
    bound: Bound::Pipeline {
        key: "pipeline.edges.room_to_vad_frames",
        read: |c| c.edges.room_to_vad_frames,
    },
    overflow: Overflow::DropOldest,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: false,
};

pub const VAD_TO_STT: QueueSpec = QueueSpec {
    name: "vad_to_stt",
    producer: "vad",
    consumer: "stt",
    bound: Bound::Pipeline {
        key: "pipeline.edges.vad_to_stt_frames",
        read: |c| c.edges.vad_to_stt_frames,
    },
    overflow: Overflow::DropOldest,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: false,
};

/// Flushed on barge-in and on a TTS restart; frames of a cancelled reply are dropped at playout.
pub const TTS_TO_ROOM: QueueSpec = QueueSpec {
    name: "tts_to_room",
    producer: "tts pump",
    consumer: "room egress",
    bound: Bound::Pipeline {
        key: "pipeline.edges.tts_to_room_frames",
        read: |c| c.edges.tts_to_room_frames,
    },
    overflow: Overflow::Wait,
    drops: Drops::Edge(&[DropReason::Flush]),
    depth_gauge: false,
};

// Rows of queues made outside the call tree (the room transport, the providers, the worker):
// their code takes its metric label and fixed bound from here, so the table is where they are set.

pub const ROOM_LINK_AUDIO: QueueSpec = QueueSpec {
    name: "room_link_audio",
    producer: "room transport",
    consumer: "room ingress",
    bound: Bound::Setting("room.inbound_queue"),
    overflow: Overflow::DropNewest,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: false,
};

/// Control before audio: its own channel, read first (biased select in room ingress).
pub const ROOM_EVENTS: QueueSpec = QueueSpec {
    name: "room_events",
    producer: "room transport",
    consumer: "room ingress",
    bound: Bound::Const {
        name: "room::EVENTS_QUEUE",
        value: 16,
    },
    overflow: Overflow::Wait,
    drops: Drops::None,
    depth_gauge: false,
};

pub const CARTESIA_CMD: QueueSpec = QueueSpec {
    name: "cartesia_cmd",
    producer: "tts sessions",
    consumer: "cartesia socket",
    bound: Bound::Const {
        name: "cartesia::conn::CMD_QUEUE",
        value: 64,
    },
    overflow: Overflow::Wait,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: false,
};

pub const CARTESIA_CONTEXT: QueueSpec = QueueSpec {
    name: "cartesia_context",
    producer: "cartesia socket",
    consumer: "tts session",
    bound: Bound::Setting("providers.cartesia.context_buffer_ms"),
    overflow: Overflow::FailContext,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: true,
};

pub const WORKER_OUTBOX: QueueSpec = QueueSpec {
    name: "worker_outbox",
    producer: "calls (job status)",
    consumer: "livekit worker connection",
    bound: Bound::Setting("2 × worker.max_calls + 16"),
    overflow: Overflow::WaitThenDrop,
    drops: Drops::Edge(&[DropReason::Overflow]),
    depth_gauge: true,
};

pub const ROOM_DATA: QueueSpec = QueueSpec {
    name: crate::provider::room::EDGE_ROOM_DATA,
    producer: "dialogue",
    consumer: "room transport",
    bound: Bound::Const {
        name: "room::DATA_QUEUE",
        value: 32,
    },
    overflow: Overflow::DropNewest,
    drops: Drops::Edge(&[DropReason::Overflow, DropReason::Closed]),
    depth_gauge: false,
};

/// Every queue of a call, from the transport to the store. Names are metric labels.
pub const QUEUES: &[QueueSpec] = &[
    ROOM_LINK_AUDIO,
    ROOM_EVENTS,
    ROOM_TO_VAD,
    VAD_TO_STT,
    QueueSpec {
        name: "stt_session",
        producer: "stt provider",
        consumer: "stt pump",
        bound: Bound::Provider("deepgram 64 events"),
        overflow: Overflow::Wait,
        drops: Drops::None,
        depth_gauge: false,
    },
    QueueSpec {
        name: "tts_session",
        producer: "tts provider",
        consumer: "tts pump",
        bound: Bound::Provider("cartesia SESSION_QUEUE, 4 chunks"),
        overflow: Overflow::Wait,
        drops: Drops::None,
        depth_gauge: false,
    },
    CARTESIA_CMD,
    CARTESIA_CONTEXT,
    TTS_TO_ROOM,
    ROOM_DATA,
    QueueSpec {
        name: "record_outbox",
        producer: "dialogue, supervisor",
        consumer: "db_gateway",
        bound: Bound::Const {
            name: "outbox::OUTBOX_CAPACITY",
            value: super::outbox::OUTBOX_CAPACITY,
        },
        overflow: Overflow::DropOldest,
        drops: Drops::Records(&[super::outbox::OUTBOX_FULL]),
        depth_gauge: false,
    },
    WORKER_OUTBOX,
];

/// The queue's row in `actors/README.md` (a test keeps the README's table equal to [`QUEUES`]).
pub fn readme_row(q: &QueueSpec) -> String {
    let depth = if q.depth_gauge {
        format!("`{}`", crate::metrics::EDGE_DEPTH)
    } else {
        "-".into()
    };
    format!(
        "| `{}` | {} → {} | {} | {} | {} | {} |",
        q.name,
        q.producer,
        q.consumer,
        q.bound.describe(),
        q.overflow.as_str(),
        q.drops.describe(),
        depth
    )
}

/// The row named `name`.
pub fn queue(name: &str) -> Option<&'static QueueSpec> {
    QUEUES.iter().find(|q| q.name == name)
}

/// A route to the current incarnation of a child: the supervisor sets it on every (re)start and
/// clears it when the child goes down. A message sent while the child is down is dropped (logged
/// at debug): such messages are low rate, and the supervisor-owned state lets the next
/// incarnation recover.
pub struct Route<M: Message> {
    to: &'static str,
    call: CallInfo,
    target: Arc<RwLock<Option<ActorRef<M>>>>,
}

impl<M: Message> Clone for Route<M> {
    fn clone(&self) -> Self {
        Self {
            to: self.to,
            call: self.call.clone(),
            target: Arc::clone(&self.target),
        }
    }
}

impl<M: Message> Route<M> {
    pub fn new(to: &'static str, call: CallInfo) -> Self {
        Self {
            to,
            call,
            target: Arc::new(RwLock::new(None)),
        }
    }

    pub fn set(&self, to: Option<ActorRef<M>>) {
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = to;
    }

    pub fn get(&self) -> Option<ActorRef<M>> {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Send to the current incarnation; false (logged) when it is not running.
    pub fn send(&self, msg: M) -> bool {
        match self.get() {
            Some(to) if to.cast(msg).is_ok() => true,
            _ => {
                tracing::debug!(call_id = %self.call.call_id(), turn = self.call.turn(), to = self.to, "child not running; message dropped");
                false
            }
        }
    }
}

/// The room child: caller audio in, agent audio out, room events.
#[derive(Clone)]
pub struct RoomPorts {
    pub call: CallInfo,
    /// `room_to_vad`, producer end.
    pub to_vad: EdgeTx<Arrived>,
    /// `tts_to_room`, consumer end.
    pub from_tts: EdgeRx<AgentOut>,
    /// Read at playout: is the frame's reply still current, held by caller speech?
    pub ledger: Shared<ReplyLedger>,
    pub dialogue: Route<DialogueMsg>,
    pub supervisor: Route<SupervisorMsg>,
    pub no_audio_prompt: String,
    pub progress_deadline: Duration,
}

/// The VAD child.
#[derive(Clone)]
pub struct VadPorts {
    pub call: CallInfo,
    /// `room_to_vad`, consumer end.
    pub from_room: EdgeRx<Arrived>,
    /// `vad_to_stt`, producer end.
    pub to_stt: EdgeTx<SttInput>,
    pub dialogue: Route<DialogueMsg>,
    pub vad: VadConfig,
    pub endpointing_delay: Duration,
}

/// The STT child.
#[derive(Clone)]
pub struct SttPorts {
    pub call: CallInfo,
    /// `vad_to_stt`, consumer end.
    pub from_vad: EdgeRx<SttInput>,
    /// Audio not yet covered by a final transcript, replayed by a restarted child.
    pub replay: Shared<ReplayLog>,
    pub usage: Shared<UsageTotals>,
    pub dialogue: Route<DialogueMsg>,
    pub provider: Arc<dyn SttProvider>,
}

/// The TTS child.
#[derive(Clone)]
pub struct TtsPorts {
    pub call: CallInfo,
    /// `tts_to_room`, producer end.
    pub to_room: EdgeTx<AgentOut>,
    /// The reply text to speak, and how far it has played (a restart re-speaks the rest).
    pub ledger: Shared<ReplyLedger>,
    pub usage: Shared<UsageTotals>,
    pub provider: Arc<dyn TtsProvider>,
    pub prices: crate::pricing::Prices,
    /// Rates the room output takes as they are (see `RoomLink::output_rates`).
    pub output_rates: &'static [u32],
    pub progress_deadline: Duration,
}

/// The dialogue child (and its reply tasks).
#[derive(Clone)]
pub struct DialoguePorts {
    pub call: CallInfo,
    pub cfg: Arc<PipelineConfig>,
    /// Barge-in silences the agent's queued audio (`tts_to_room`).
    pub playout: EdgeFlush<AgentOut>,
    pub ledger: Shared<ReplyLedger>,
    pub chat: Shared<ChatContext>,
    pub timeline: Shared<TurnTimeline>,
    pub usage: Shared<UsageTotals>,
    /// The call record, written behind by the DB gateway.
    pub outbox: Shared<Outbox>,
    /// Itself, as currently running (its reply tasks report through it).
    pub dialogue: Route<DialogueMsg>,
    pub tts: Route<TtsMsg>,
    pub db: Route<DbMsg>,
    pub supervisor: Route<SupervisorMsg>,
    /// Transcript and turn metrics into the room, when the link takes them.
    pub room_data: Option<RoomDataOut>,
    pub llm: Arc<dyn LlmProvider>,
    pub prices: crate::pricing::Prices,
    pub observer: Arc<dyn CallObserver>,
}

impl DialoguePorts {
    /// Queue a call-record write (written behind by the DB gateway).
    pub fn record(&self, kind: crate::store::RecordKind) {
        lock(&self.outbox).push(kind);
    }
}

/// The DB gateway child.
#[derive(Clone)]
pub struct DbPorts {
    pub call: CallInfo,
    pub outbox: Shared<Outbox>,
    pub store: Arc<dyn Store>,
    pub tool_timeout: Duration,
}

#[cfg(test)]
#[path = "ports_tests.rs"]
mod tests;

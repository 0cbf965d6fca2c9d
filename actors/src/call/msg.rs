//! Every message of a call and the small payloads its queues carry. Actor modules depend on this
//! module (and on `ports` and the state types), never on each other: a child talks to another
//! through a typed route in its ports, with the other's message type from here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ractor::RpcReplyPort;
use tokio::time::Instant;

use super::{ChildKind, EdgeStats, EndReason};
use crate::audio::AudioFrame;
use crate::provider::{SttEvent, ToolCall};
use crate::tools::ToolOutcome;
use crate::vad::VadEvent;

/// To the call supervisor.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// The room is gone (caller hung up or media failed).
    RoomClosed(EndReason),
    /// End the call (farewell spoken, shutdown, agent hang-up).
    EndCall(EndReason),
    /// Retry starting a child whose previous start failed.
    Respawn(ChildKind),
    /// Restart counts and edge levels now (tests, diagnostics).
    Snapshot(RpcReplyPort<CallSnapshot>),
    /// Diagnostics and fault drills: kill a child as if it had crashed.
    KillChild(ChildKind),
}

/// A look inside a running call.
#[derive(Clone, Debug)]
pub struct CallSnapshot {
    pub restarts: BTreeMap<ChildKind, u32>,
    /// Children running now.
    pub alive: BTreeSet<ChildKind>,
    /// Per edge: (queued now, capacity, stats).
    pub edges: BTreeMap<&'static str, (usize, usize, EdgeStats)>,
}

/// To the dialogue: events from the VAD, STT, the room (playout), its timers and its reply task.
#[derive(Debug)]
pub enum DialogueMsg {
    /// Events carry the time they happened, so time spent in our queues counts as overhead.
    /// `at` is when the room delivered the frame behind the event; `lag` how long it then took
    /// to reach the VAD (audio queued before the VAD delays the whole turn).
    Vad {
        ev: VadEvent,
        at: Instant,
        lag: Duration,
    },
    Stt {
        ev: SttEvent,
        at: Instant,
    },
    /// The endpointing delay has passed in silence after speech end (counted by the VAD on the
    /// audio clock).
    EndpointElapsed {
        at: Instant,
    },
    /// Timer: the fallback commit is due (no final transcript, or no audio).
    EndOfTurnCheck,
    /// Timer: the caller has been talking over the agent for the barge-in duration.
    BargeInCheck {
        speech: u64,
    },
    /// Timer: the false-interruption timeout has passed since speech `speech` ended.
    QuietCheck {
        speech: u64,
    },
    ReplyDone {
        reply_id: u64,
    },
    PlayoutStarted {
        reply_id: u64,
    },
    PlayoutFinished {
        reply_id: u64,
    },
    /// Say `text`, then end the call with `reason` (apology, goodbye).
    Farewell {
        text: String,
        reason: EndReason,
    },
}

/// To the TTS child.
#[derive(Debug)]
pub enum TtsMsg {
    /// The ledger has new text (or its end) for this reply.
    TextAvailable { reply_id: u64 },
    /// Barge-in: stop this reply now.
    Cancel { reply_id: u64 },
    PumpExited {
        reply_id: u64,
        result: Result<(), String>,
    },
}

/// To the DB gateway.
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

/// To the STT child.
#[derive(Debug)]
pub enum SttMsg {
    PumpExited(Result<(), String>),
    /// Close the stream gracefully (hang-up): remaining results are delivered, then the actor stops.
    Drain(RpcReplyPort<()>),
}

/// To the VAD child.
#[derive(Debug)]
pub enum VadMsg {
    PumpExited(Result<(), String>),
}

/// To the room child.
#[derive(Debug)]
pub enum RoomMsg {
    PumpExited(Result<(), String>),
}

/// What flows on the room → vad edge: a 16 kHz frame and when the room delivered it, so the VAD
/// can see how long audio queued before it (the turn's clock starts at the arrival).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrived {
    pub frame: AudioFrame,
    pub arrived: Instant,
}

/// What flows on the vad → stt edge.
#[derive(Clone, Debug, PartialEq)]
pub enum SttInput {
    Audio(AudioFrame),
    /// The VAD saw the end of speech: ask the provider to finalize.
    EndOfSpeech,
}

/// What flows on the tts → room edge.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentOut {
    /// One 20 ms frame at the room rate.
    Audio { reply_id: u64, frame: AudioFrame },
    /// The reply's last frame has been queued.
    EndOfReply { reply_id: u64 },
}

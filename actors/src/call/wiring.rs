//! What the supervisor owns for the whole call and wires into its children's ports: the edges
//! (made from their `ports::QUEUES` rows), the state that must survive a child's restart, and the
//! routes it updates on every (re)start. No child holds this; each gets its ports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::context::ChatContext;
use super::ledger::ReplyLedger;
use super::msg::{AgentOut, Arrived, DbMsg, DialogueMsg, SttInput, SupervisorMsg, TtsMsg};
use super::outbox::Outbox;
use super::ports::{
    DbPorts, DialoguePorts, NotAnEdge, RoomPorts, Route, SttPorts, TtsPorts, VadPorts, ROOM_TO_VAD,
    TTS_TO_ROOM, VAD_TO_STT,
};
use super::replay::ReplayLog;
use super::shared::{lock, CallInfo, Shared, UsageTotals};
use super::timeline::TurnTimeline;
use super::{CallDeps, CallSpec, EdgeStats};
use crate::config::PipelineConfig;
use crate::edge::Edge;
use crate::provider::room::RoomDataOut;

/// The call's in-process audio edges.
pub struct Edges {
    pub room_to_vad: Edge<Arrived>,
    pub vad_to_stt: Edge<SttInput>,
    pub tts_to_room: Edge<AgentOut>,
}

impl Edges {
    fn new(cfg: &PipelineConfig) -> Result<Self, NotAnEdge> {
        Ok(Self {
            room_to_vad: ROOM_TO_VAD.edge(cfg)?,
            vad_to_stt: VAD_TO_STT.edge(cfg)?,
            tts_to_room: TTS_TO_ROOM.edge(cfg)?,
        })
    }

    /// Per edge: (queued now, capacity, stats).
    pub fn levels(&self) -> BTreeMap<&'static str, (usize, usize, EdgeStats)> {
        fn level<T>(e: &Edge<T>) -> (&'static str, (usize, usize, EdgeStats)) {
            let stats = EdgeStats {
                pushed: e.pushed(),
                overflow: e.overflow_drops(),
                flushed: e.flushed(),
            };
            (e.name(), (e.len(), e.capacity(), stats))
        }
        BTreeMap::from([
            level(&self.room_to_vad),
            level(&self.vad_to_stt),
            level(&self.tts_to_room),
        ])
    }
}

/// Routes to the current incarnation of each child that others message.
pub struct Routes {
    pub supervisor: Route<SupervisorMsg>,
    pub dialogue: Route<DialogueMsg>,
    pub tts: Route<TtsMsg>,
    pub db: Route<DbMsg>,
}

/// Everything the supervisor owns for the call.
pub struct CallWiring {
    pub call: CallInfo,
    pub cfg: Arc<PipelineConfig>,
    pub deps: CallDeps,
    pub edges: Edges,
    pub routes: Routes,
    pub replay: Shared<ReplayLog>,
    pub chat: Shared<ChatContext>,
    pub ledger: Shared<ReplyLedger>,
    pub timeline: Shared<TurnTimeline>,
    pub usage: Shared<UsageTotals>,
    pub outbox: Shared<Outbox>,
    /// When the tree started, for the call's length in the outcome.
    pub started: tokio::time::Instant,
    /// Rates the room output takes as they are (see `RoomLink::output_rates`).
    pub output_rates: &'static [u32],
    /// Transcript and turn metrics into the room, when the link takes them (`RoomLink::data`).
    pub room_data: Option<RoomDataOut>,
}

fn shared<T>(value: T) -> Shared<T> {
    Arc::new(Mutex::new(value))
}

impl CallWiring {
    pub fn new(
        spec: CallSpec,
        cfg: PipelineConfig,
        deps: CallDeps,
        output_rates: &'static [u32],
        room_data: Option<RoomDataOut>,
    ) -> Result<Self, NotAnEdge> {
        let replay_ms = u64::from(cfg.edges.stt_replay_ms);
        let call = CallInfo::new(spec);
        Ok(Self {
            edges: Edges::new(&cfg)?,
            routes: Routes {
                supervisor: Route::new("supervisor", call.clone()),
                dialogue: Route::new("dialogue", call.clone()),
                tts: Route::new("tts", call.clone()),
                db: Route::new("db_gateway", call.clone()),
            },
            replay: shared(ReplayLog::new(std::time::Duration::from_millis(replay_ms))),
            chat: shared(ChatContext::new(&cfg.dialogue.system_prompt)),
            ledger: shared(ReplyLedger::default()),
            timeline: shared(TurnTimeline::default()),
            usage: shared(UsageTotals::default()),
            outbox: shared(Outbox::new(call.call_id().to_string())),
            started: tokio::time::Instant::now(),
            output_rates,
            room_data,
            cfg: Arc::new(cfg),
            deps,
            call,
        })
    }

    /// Queue a call-record write (written behind by the DB gateway).
    pub fn record(&self, kind: crate::store::RecordKind) {
        lock(&self.outbox).push(kind);
    }

    pub fn room(&self) -> RoomPorts {
        RoomPorts {
            call: self.call.clone(),
            to_vad: self.edges.room_to_vad.tx(),
            from_tts: self.edges.tts_to_room.rx(),
            ledger: Arc::clone(&self.ledger),
            dialogue: self.routes.dialogue.clone(),
            supervisor: self.routes.supervisor.clone(),
            no_audio_prompt: self.cfg.dialogue.no_audio_prompt.clone(),
            progress_deadline: self.cfg.supervision.progress_deadline(),
        }
    }

    pub fn vad(&self) -> VadPorts {
        VadPorts {
            call: self.call.clone(),
            from_room: self.edges.room_to_vad.rx(),
            to_stt: self.edges.vad_to_stt.tx(),
            dialogue: self.routes.dialogue.clone(),
            vad: self.cfg.vad.clone(),
            endpointing_delay: self.cfg.turn.endpointing_delay(),
        }
    }

    pub fn stt(&self) -> SttPorts {
        SttPorts {
            call: self.call.clone(),
            from_vad: self.edges.vad_to_stt.rx(),
            replay: Arc::clone(&self.replay),
            usage: Arc::clone(&self.usage),
            dialogue: self.routes.dialogue.clone(),
            provider: Arc::clone(&self.deps.stt),
        }
    }

    pub fn tts(&self) -> TtsPorts {
        TtsPorts {
            call: self.call.clone(),
            to_room: self.edges.tts_to_room.tx(),
            ledger: Arc::clone(&self.ledger),
            usage: Arc::clone(&self.usage),
            provider: Arc::clone(&self.deps.tts),
            prices: self.deps.prices.clone(),
            output_rates: self.output_rates,
            progress_deadline: self.cfg.supervision.progress_deadline(),
        }
    }

    pub fn dialogue(&self) -> DialoguePorts {
        DialoguePorts {
            call: self.call.clone(),
            cfg: Arc::clone(&self.cfg),
            playout: self.edges.tts_to_room.flusher(),
            ledger: Arc::clone(&self.ledger),
            chat: Arc::clone(&self.chat),
            timeline: Arc::clone(&self.timeline),
            usage: Arc::clone(&self.usage),
            outbox: Arc::clone(&self.outbox),
            dialogue: self.routes.dialogue.clone(),
            tts: self.routes.tts.clone(),
            db: self.routes.db.clone(),
            supervisor: self.routes.supervisor.clone(),
            room_data: self.room_data.clone(),
            llm: Arc::clone(&self.deps.llm),
            prices: self.deps.prices.clone(),
            observer: Arc::clone(&self.deps.observer),
        }
    }

    pub fn db(&self) -> DbPorts {
        DbPorts {
            call: self.call.clone(),
            outbox: Arc::clone(&self.outbox),
            store: Arc::clone(&self.deps.store),
            tool_timeout: self.cfg.dialogue.tool_timeout(),
        }
    }
}

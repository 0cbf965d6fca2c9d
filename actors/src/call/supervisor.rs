//! CallSupervisor: owns the call's state and edges (`wiring`), hands each child its ports, starts the six children, restarts a
//! failed child within its budget (the architecture's supervision table), and ends the call cleanly
//! with a recorded reason.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::ExponentialBackoff;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::db_gateway::DbGatewayActor;
use super::dialogue::DialogueActor;
pub use super::msg::{CallSnapshot, SupervisorMsg};
use super::msg::{DbMsg, DialogueMsg, SttMsg};
use super::room::RoomActor;
use super::shared::lock;
use super::stt::SttActor;
use super::tts::TtsActor;
use super::vad::VadActor;
use super::wiring::CallWiring;
use super::{CallDeps, CallOutcome, CallSpec, ChildKind, EndReason};
use crate::config::{PipelineConfig, RestartBudget};
use crate::provider::RoomLink;
use crate::store::RecordKind;

/// Grace given to each child when the call ends.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Time for the call record to reach the store at the end of the call.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

pub struct CallSupervisor;

pub struct SupervisorArgs {
    pub spec: CallSpec,
    pub cfg: PipelineConfig,
    pub deps: CallDeps,
    pub link: RoomLink,
    pub outcome: oneshot::Sender<CallOutcome>,
}

#[derive(Default)]
struct Slot {
    cell: Option<ActorCell>,
    recent: VecDeque<Instant>,
    restarts: u32,
    /// Delays of the current failure spell; a new spell starts a new schedule.
    schedule: Option<ExponentialBackoff>,
}

pub struct SupervisorState {
    wiring: CallWiring,
    slots: BTreeMap<ChildKind, Slot>,
    by_id: HashMap<ActorId, ChildKind>,
    ending: Option<EndReason>,
    outcome: Option<oneshot::Sender<CallOutcome>>,
}

impl Actor for CallSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let wiring = CallWiring::new(
            args.spec,
            args.cfg,
            args.deps,
            args.link.output_rates,
            args.link.data.clone(),
        )?;
        wiring.routes.supervisor.set(Some(myself.clone()));
        let spec = wiring.call.spec();
        wiring.record(RecordKind::CallStarted {
            room: spec.room.clone(),
            caller: spec.caller.clone(),
        });
        metrics::gauge!(crate::metrics::ACTIVE_CALLS).increment(1.0);
        let mut state = SupervisorState {
            wiring,
            slots: BTreeMap::new(),
            by_id: HashMap::new(),
            ending: None,
            outcome: Some(args.outcome),
        };
        // Consumers first, so the room's first audio finds everything in place.
        for kind in [
            ChildKind::DbGateway,
            ChildKind::Tts,
            ChildKind::Dialogue,
            ChildKind::Stt,
            ChildKind::Vad,
        ] {
            if let Err(e) = self.start_child(&myself, &mut state, kind).await {
                // A provider that is down at call start is retried like a crash, within budget.
                self.child_down(&myself, &mut state, kind, e.to_string(), true);
            }
        }
        let room = RoomActor {
            ports: state.wiring.room(),
        };
        let (r, _) = Actor::spawn_linked(None, room, args.link, myself.get_cell()).await?;
        state.adopt(ChildKind::Room, r.get_cell());
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::RoomClosed(reason) | SupervisorMsg::EndCall(reason) => {
                state.end(&myself, reason)
            }
            SupervisorMsg::Respawn(kind) => {
                if state.ending.is_none() && state.slot(kind).cell.is_none() {
                    if let Err(e) = self.start_child(&myself, state, kind).await {
                        self.child_down(&myself, state, kind, e.to_string(), true);
                    }
                }
            }
            SupervisorMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
            SupervisorMsg::KillChild(kind) => {
                if let Some(cell) = state.slot(kind).cell.as_ref() {
                    cell.kill();
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        if let Some(kind) = state.by_id.remove(&cell.get_id()) {
            state.slot(kind).cell = None;
            state.clear_route(kind);
            if state.ending.is_none() {
                tracing::warn!(call_id = %state.wiring.call.call_id(), turn = state.wiring.call.turn(), child = kind.as_str(), reason = %why, "child down");
                self.child_down(&myself, state, kind, why, false);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let reason = state.ending.clone().unwrap_or(EndReason::Shutdown);
        shutdown(state, &reason).await;
        let outcome = state.outcome_for(reason);
        metrics::gauge!(crate::metrics::ACTIVE_CALLS).decrement(1.0);
        crate::metrics::call_ended(outcome.reason.label(), outcome.cost_usd, outcome.duration);
        state.wiring.deps.observer.call_ended(&outcome);
        if let Some(tx) = state.outcome.take() {
            let _ = tx.send(outcome);
        }
        Ok(())
    }
}

impl CallSupervisor {
    async fn start_child(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        kind: ChildKind,
    ) -> Result<(), SpawnErr> {
        let w = &state.wiring;
        let sup = myself.get_cell();
        let cell = match kind {
            ChildKind::Vad => Actor::spawn_linked(None, VadActor { ports: w.vad() }, (), sup)
                .await?
                .0
                .get_cell(),
            ChildKind::Stt => Actor::spawn_linked(None, SttActor { ports: w.stt() }, (), sup)
                .await?
                .0
                .get_cell(),
            ChildKind::Tts => {
                let (r, _) =
                    Actor::spawn_linked(None, TtsActor { ports: w.tts() }, (), sup).await?;
                w.routes.tts.set(Some(r.clone()));
                r.get_cell()
            }
            ChildKind::Dialogue => {
                let actor = DialogueActor {
                    ports: w.dialogue(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, (), sup).await?;
                w.routes.dialogue.set(Some(r.clone()));
                r.get_cell()
            }
            ChildKind::DbGateway => {
                let (r, _) =
                    Actor::spawn_linked(None, DbGatewayActor { ports: w.db() }, (), sup).await?;
                w.routes.db.set(Some(r.clone()));
                r.get_cell()
            }
            // The room is joined once; it is never restarted.
            ChildKind::Room => return Ok(()),
        };
        state.adopt(kind, cell);
        Ok(())
    }

    /// A child failed or stopped on its own: restart it within budget, or apply the table's
    /// "then" column.
    /// `start_failed`: the restart itself failed (e.g. provider unreachable), so wait before the
    /// next attempt instead of spinning.
    fn child_down(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        kind: ChildKind,
        why: String,
        start_failed: bool,
    ) {
        if kind == ChildKind::Room {
            return state.end(myself, EndReason::RoomFailed(why));
        }
        let budget = budget(&state.wiring.cfg, kind);
        let now = Instant::now();
        let backoff = state.wiring.cfg.supervision.backoff;
        let slot = state.slot(kind);
        while slot
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > budget.window())
        {
            slot.recent.pop_front();
        }
        if slot.recent.len() as u32 >= budget.max_restarts {
            return self.budget_exhausted(myself, state, kind);
        }
        // A crash after a healthy spell restarts at once (the caller is waiting); a child that
        // keeps failing, or cannot even start, waits longer each time, so a provider that fails
        // at once spends the budget over seconds, not within a millisecond.
        let new_spell = slot.recent.is_empty();
        if new_spell {
            slot.schedule = None;
        }
        let delay = if new_spell && !start_failed {
            Duration::ZERO
        } else {
            let schedule = slot.schedule.get_or_insert_with(|| backoff.schedule());
            schedule.next().unwrap_or_default()
        };
        slot.recent.push_back(now);
        slot.restarts += 1;
        crate::metrics::restart(kind.as_str());
        if delay.is_zero() {
            let _ = myself.cast(SupervisorMsg::Respawn(kind));
        } else {
            tracing::debug!(call_id = %state.wiring.call.call_id(), child = kind.as_str(), ?delay, "restart backing off");
            myself.send_after(delay, move || SupervisorMsg::Respawn(kind));
        }
    }

    fn budget_exhausted(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        kind: ChildKind,
    ) {
        tracing::error!(call_id = %state.wiring.call.call_id(), turn = state.wiring.call.turn(), child = kind.as_str(), "restart budget exhausted");
        match kind {
            // Without STT the call cannot go on, but the caller can still be told why.
            ChildKind::Stt => {
                let reason = EndReason::BudgetExhausted(kind);
                let text = state.wiring.cfg.dialogue.apology.clone();
                state.wiring.routes.dialogue.send(DialogueMsg::Farewell {
                    text,
                    reason: reason.clone(),
                });
                let timeout = state.wiring.cfg.dialogue.farewell_timeout();
                myself.send_after(timeout, move || SupervisorMsg::EndCall(reason));
            }
            // The call goes on without the record; tools answer "unavailable".
            ChildKind::DbGateway => {
                metrics::counter!(crate::metrics::RECORD_DROPPED, "reason" => "gateway_down")
                    .increment(1);
            }
            _ => state.end(myself, EndReason::BudgetExhausted(kind)),
        }
    }
}

fn budget(cfg: &PipelineConfig, kind: ChildKind) -> RestartBudget {
    let s = &cfg.supervision;
    match kind {
        ChildKind::Vad => s.vad,
        ChildKind::Stt => s.stt,
        ChildKind::Dialogue => s.dialogue,
        ChildKind::Tts => s.tts,
        ChildKind::DbGateway => s.db_gateway,
        ChildKind::Room => RestartBudget::new(0, 1),
    }
}

impl SupervisorState {
    fn slot(&mut self, kind: ChildKind) -> &mut Slot {
        self.slots.entry(kind).or_default()
    }

    fn adopt(&mut self, kind: ChildKind, cell: ActorCell) {
        self.by_id.insert(cell.get_id(), kind);
        self.slot(kind).cell = Some(cell);
    }

    fn clear_route(&self, kind: ChildKind) {
        let r = &self.wiring.routes;
        match kind {
            ChildKind::Dialogue => r.dialogue.set(None),
            ChildKind::Tts => r.tts.set(None),
            ChildKind::DbGateway => r.db.set(None),
            _ => {}
        }
    }

    fn end(&mut self, myself: &ActorRef<SupervisorMsg>, reason: EndReason) {
        if self.ending.is_some() {
            return;
        }
        tracing::info!(call_id = %self.wiring.call.call_id(), turn = self.wiring.call.turn(), reason = %reason, "call ending");
        self.ending = Some(reason);
        myself.stop(None);
    }

    fn restarts(&self) -> BTreeMap<ChildKind, u32> {
        self.slots.iter().map(|(k, s)| (*k, s.restarts)).collect()
    }

    fn snapshot(&self) -> CallSnapshot {
        CallSnapshot {
            restarts: self.restarts(),
            alive: self
                .slots
                .iter()
                .filter(|(_, s)| s.cell.is_some())
                .map(|(k, _)| *k)
                .collect(),
            edges: self.wiring.edges.levels(),
        }
    }

    fn outcome_for(&self, reason: EndReason) -> CallOutcome {
        let edges = self
            .snapshot()
            .edges
            .into_iter()
            .map(|(k, (_, _, st))| (k, st))
            .collect();
        let w = &self.wiring;
        let outbox = lock(&w.outbox);
        let usage = *lock(&w.usage);
        let counters = w.call.counters();
        CallOutcome {
            call_id: w.call.call_id().to_string(),
            reason,
            turns: counters.turns.load(Ordering::Relaxed),
            barge_ins: counters.barge_ins.load(Ordering::Relaxed),
            false_interruptions: counters.false_interruptions.load(Ordering::Relaxed),
            restarts: self.restarts(),
            edges,
            records_dropped: outbox.dropped() + outbox.len() as u64,
            usage,
            cost_usd: w.deps.prices.cost(&usage),
            duration: w.started.elapsed(),
        }
    }
}

/// End of call: stop the media first, let STT deliver its last results, stop the rest, then write
/// the end of the call record.
async fn shutdown(state: &mut SupervisorState, reason: &EndReason) {
    let w = &state.wiring;
    w.edges.room_to_vad.close();
    w.edges.tts_to_room.close();
    let cells: BTreeMap<ChildKind, ActorCell> = state
        .slots
        .iter()
        .filter_map(|(k, s)| Some((*k, s.cell.clone()?)))
        .collect();
    if let Some(room) = cells.get(&ChildKind::Room) {
        let _ = room.stop_and_wait(None, Some(STOP_GRACE)).await;
    }
    if let Some(stt) = cells.get(&ChildKind::Stt) {
        let stt: ActorRef<SttMsg> = stt.clone().into();
        let _ = stt.call(SttMsg::Drain, Some(STOP_GRACE)).await;
    }
    for kind in [
        ChildKind::Vad,
        ChildKind::Stt,
        ChildKind::Dialogue,
        ChildKind::Tts,
    ] {
        if let Some(c) = cells.get(&kind) {
            let _ = c.stop_and_wait(None, Some(STOP_GRACE)).await;
        }
    }
    w.edges.vad_to_stt.close();
    let usage = *lock(&w.usage);
    w.record(RecordKind::Usage {
        stt_audio_seconds: usage.stt_audio_seconds,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        tts_characters: usage.tts_characters,
        cost_usd: w.deps.prices.cost(&usage),
        cache: usage.cache,
    });
    w.record(RecordKind::CallEnded {
        reason: reason.to_string(),
    });
    if let Some(db) = cells.get(&ChildKind::DbGateway) {
        let db: ActorRef<DbMsg> = db.clone().into();
        let _ = db.call(DbMsg::Flush, Some(FINAL_FLUSH)).await;
        let _ = db.stop_and_wait(None, Some(STOP_GRACE)).await;
    }
}

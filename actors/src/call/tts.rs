//! TtsActor: one provider session (context) per reply. Text comes from the reply ledger (so a
//! restarted TtsActor re-speaks exactly the unplayed part), audio is resampled to the room rate and
//! queued on the tts→room edge, where the producer waits at playout pace.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::msg::AgentOut;
pub use super::msg::TtsMsg;
use super::ports::TtsPorts;
use super::pump::{spawn_pump, TaskGuard};
use super::shared::lock;
use crate::audio::resample::Resampler;
use crate::audio::AudioFrame;
use crate::provider::room::output_rate;
use crate::provider::{TtsCacheUsage, TtsError, TtsEvent, TtsInput, TtsRequest, TtsSession};

pub struct TtsActor {
    pub ports: TtsPorts,
}

struct Current {
    reply_id: u64,
    input: Box<dyn TtsInput>,
    /// Bytes of the ledger text already pushed to this session.
    sent: usize,
    finished: bool,
    _pump: TaskGuard,
}

#[derive(Default)]
pub struct TtsState {
    current: Option<Current>,
}

impl Actor for TtsActor {
    type Msg = TtsMsg;
    type State = TtsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<TtsMsg>,
        _: (),
    ) -> Result<TtsState, ActorProcessingErr> {
        // A previous incarnation may have died mid-reply: re-speak what the caller has not heard.
        let resume = {
            let ledger = lock(&self.ports.ledger);
            let active = ledger.reply_id != 0
                && !ledger.cancelled
                && !ledger.playout_finished
                && !ledger.text.is_empty();
            active.then_some(ledger.reply_id)
        };
        if let Some(reply_id) = resume {
            self.ports.to_room.flush();
            let rest = lock(&self.ports.ledger).restart_segment();
            tracing::info!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), reply_id, chars = rest.len(), "re-speaking unplayed part of reply");
            let _ = myself.cast(TtsMsg::TextAvailable { reply_id });
        }
        Ok(TtsState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<TtsMsg>,
        msg: TtsMsg,
        state: &mut TtsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TtsMsg::TextAvailable { reply_id } => self.feed(&myself, state, reply_id).await?,
            TtsMsg::Cancel { reply_id } => {
                if let Some(mut cur) = state.current.take_if(|c| c.reply_id == reply_id) {
                    self.settle(&mut cur);
                    // Best effort: the pump is dropped and the ledger already refuses the audio.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(200),
                        cur.input.cancel(),
                    )
                    .await;
                }
            }
            TtsMsg::PumpExited { reply_id, result } => {
                if let Some(cur) = state.current.as_mut().filter(|c| c.reply_id == reply_id) {
                    self.settle(cur);
                }
                let wanted = lock(&self.ports.ledger).is_current(reply_id);
                if let (Err(e), true) = (result, wanted) {
                    return Err(format!("tts session for reply {reply_id} failed: {e}").into());
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<TtsMsg>,
        state: &mut TtsState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(cur) = state.current.as_mut() {
            self.settle(cur);
        }
        Ok(())
    }
}

impl TtsActor {
    /// Move what the session served from the phrase cache into the call's usage: those
    /// characters were pushed (and counted) but never billed by the provider.
    fn settle(&self, cur: &mut Current) {
        let u: TtsCacheUsage = cur.input.take_cache_usage();
        if u == TtsCacheUsage::default() {
            return;
        }
        let saved_cost = self.ports.prices.tts_saved_cost(u.saved_characters);
        let mut usage = lock(&self.ports.usage);
        usage.tts_characters = usage.tts_characters.saturating_sub(u.saved_characters);
        usage.cache.tts_hits += u.hits;
        usage.cache.tts_misses += u.misses;
        usage.cache.tts_saved_characters += u.saved_characters;
        usage.cache.saved_cost_usd += saved_cost;
    }

    /// A send to the provider that makes no progress within the deadline fails the child, whose
    /// restart re-speaks the unplayed part (a stalled socket would otherwise hold the mailbox,
    /// cancels included, for good).
    async fn within_deadline(
        &self,
        what: &'static str,
        send: impl std::future::Future<Output = Result<(), TtsError>>,
    ) -> Result<(), TtsError> {
        let deadline = self.ports.progress_deadline;
        match tokio::time::timeout(deadline, send).await {
            Ok(r) => r,
            Err(_) => {
                crate::metrics::stalled("tts");
                Err(TtsError::Timeout(format!(
                    "{what} made no progress for {} ms",
                    deadline.as_millis()
                )))
            }
        }
    }

    /// Push the ledger's new text for `reply_id` to its session, opening one if needed.
    async fn feed(
        &self,
        myself: &ActorRef<TtsMsg>,
        state: &mut TtsState,
        reply_id: u64,
    ) -> Result<(), TtsError> {
        let (text, ended, start) = {
            let l = lock(&self.ports.ledger);
            if !l.is_current(reply_id) {
                return Ok(());
            }
            (l.text.clone(), l.text_ended, l.segment_start())
        };
        if state
            .current
            .as_ref()
            .is_none_or(|c| c.reply_id != reply_id)
        {
            if let Some(old) = state.current.as_mut() {
                self.settle(old);
            }
            state.current = Some(self.open(myself, reply_id, start).await?);
        }
        let Some(cur) = state.current.as_mut() else {
            return Ok(());
        };
        if cur.sent < text.len() {
            let new = text.get(cur.sent..).unwrap_or_default();
            self.within_deadline("text push", cur.input.push_text(new))
                .await?;
            lock(&self.ports.usage).tts_characters += new.chars().count() as u64;
            cur.sent = text.len();
        }
        if ended && !cur.finished {
            self.within_deadline("finish", cur.input.finish()).await?;
            cur.finished = true;
        }
        Ok(())
    }

    async fn open(
        &self,
        myself: &ActorRef<TtsMsg>,
        reply_id: u64,
        start: usize,
    ) -> Result<Current, TtsError> {
        let req = TtsRequest {
            call_id: self.ports.call.call_id().to_string(),
            reply_id,
            cacheable: lock(&self.ports.ledger).cacheable,
        };
        lock(&self.ports.ledger)
            .tts_requested_at
            .get_or_insert_with(Instant::now);
        let TtsSession { input, events } = self.ports.provider.open(&req).await?;
        let ports = self.ports.clone();
        let pump = spawn_pump(
            myself,
            self.ports.call.media_key(),
            move |result| TtsMsg::PumpExited { reply_id, result },
            pump(ports, reply_id, events).instrument(
                tracing::info_span!(parent: self.ports.call.span(), "tts_node", reply_id),
            ),
        );
        Ok(Current {
            reply_id,
            input,
            sent: start,
            finished: false,
            _pump: pump,
        })
    }
}

/// Synthesised audio → 20 ms frames at the room output's rate → tts→room edge (waits for room: playout pace).
async fn pump(
    ports: TtsPorts,
    reply_id: u64,
    mut events: mpsc::Receiver<Result<TtsEvent, TtsError>>,
) -> Result<(), String> {
    let mut resampler: Option<Resampler> = None;
    let mut frames: Vec<AudioFrame> = Vec::with_capacity(16);
    let mut produced = std::time::Duration::ZERO;
    loop {
        match events.recv().await {
            Some(Ok(TtsEvent::Audio {
                samples,
                sample_rate,
            })) => {
                if resampler
                    .as_ref()
                    .is_none_or(|r| r.from_hz() != sample_rate)
                {
                    let to = output_rate(ports.output_rates, sample_rate);
                    resampler = Some(Resampler::new(sample_rate, to).map_err(|e| e.to_string())?);
                }
                if let Some(r) = resampler.as_mut() {
                    r.push(produced, &samples, &mut frames);
                }
                produced += std::time::Duration::from_secs_f64(
                    samples.len() as f64 / f64::from(sample_rate.max(1)),
                );
                queue(&ports, reply_id, &mut frames).await?;
            }
            Some(Ok(TtsEvent::Done)) => {
                if let Some(r) = resampler.as_mut() {
                    r.flush(&mut frames);
                }
                queue(&ports, reply_id, &mut frames).await?;
                lock(&ports.ledger).synthesis_done(reply_id);
                let _ = ports.to_room.send(AgentOut::EndOfReply { reply_id }).await;
                return Ok(());
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("tts stream ended before done".into()),
        }
    }
}

async fn queue(
    ports: &TtsPorts,
    reply_id: u64,
    frames: &mut Vec<AudioFrame>,
) -> Result<(), String> {
    for frame in frames.drain(..) {
        {
            let mut l = lock(&ports.ledger);
            if !l.is_current(reply_id) {
                return Ok(());
            }
            l.audio_produced(reply_id, frame.duration(), Instant::now());
        }
        ports
            .to_room
            .send(AgentOut::Audio { reply_id, frame })
            .await
            .map_err(|_| "tts→room edge closed".to_string())?;
    }
    Ok(())
}

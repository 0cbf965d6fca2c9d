//! SttActor: one streaming session with the STT provider. Audio comes from the vad→stt edge and is
//! logged in the supervisor's replay log until a final transcript covers it; a restarted SttActor
//! opens a new session and first sends the log again, so an utterance cut by a crash still yields
//! its transcript.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

pub use super::msg::SttMsg;
use super::msg::{DialogueMsg, SttInput};
use super::ports::SttPorts;
use super::pump::{spawn_pump, TaskGuard};
use super::shared::lock;
use crate::audio::PIPELINE_RATE;
use crate::provider::{SttError, SttEvent, SttSession, SttSessionConfig, SttSink};

/// How long a closing session may take to deliver its last results.
const CLOSE_GRACE: Duration = Duration::from_millis(1_000);

pub struct SttActor {
    pub ports: SttPorts,
}

pub struct SttState {
    control: mpsc::Sender<()>,
    drained: Option<RpcReplyPort<()>>,
    _pump: TaskGuard,
}

impl Actor for SttActor {
    type Msg = SttMsg;
    type State = SttState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SttMsg>,
        _: (),
    ) -> Result<SttState, ActorProcessingErr> {
        let cfg = SttSessionConfig {
            call_id: self.ports.call.call_id().to_string(),
            sample_rate: PIPELINE_RATE,
            language: "en".into(),
        };
        let session = self.ports.provider.connect(&cfg).await?;
        let replay = lock(&self.ports.replay).restart();
        if !replay.is_empty() {
            tracing::info!(call_id = %self.ports.call.call_id(), turn = self.ports.call.turn(), items = replay.len(), "replaying audio to new stt session");
        }
        let (control, control_rx) = mpsc::channel(1);
        let pump = run(self.ports.clone(), session, replay, control_rx);
        Ok(SttState {
            control,
            drained: None,
            _pump: spawn_pump(
                &myself,
                self.ports.call.media_key(),
                SttMsg::PumpExited,
                pump.instrument(self.ports.call.span().clone()),
            ),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SttMsg>,
        msg: SttMsg,
        state: &mut SttState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SttMsg::Drain(reply) => {
                state.drained = Some(reply);
                let _ = state.control.try_send(());
            }
            SttMsg::PumpExited(Ok(())) => {
                if let Some(reply) = state.drained.take() {
                    let _ = reply.send(());
                }
                myself.stop(None);
            }
            SttMsg::PumpExited(Err(e)) => return Err(e.into()),
        }
        Ok(())
    }
}

async fn send(
    ports: &SttPorts,
    sink: &mut Box<dyn SttSink>,
    input: &SttInput,
) -> Result<(), SttError> {
    match input {
        SttInput::Audio(frame) => {
            lock(&ports.usage).stt_audio_seconds += frame.duration().as_secs_f64();
            sink.send_audio(frame).await
        }
        SttInput::EndOfSpeech => sink.finalize().await,
    }
}

fn deliver(ports: &SttPorts, ev: SttEvent) {
    if let SttEvent::Final { end, .. } = &ev {
        lock(&ports.replay).ack(*end);
    }
    ports.dialogue.send(DialogueMsg::Stt {
        ev,
        at: Instant::now(),
    });
}

async fn run(
    ports: SttPorts,
    session: SttSession,
    replay: Vec<SttInput>,
    mut control: mpsc::Receiver<()>,
) -> Result<(), String> {
    let SttSession {
        mut sink,
        mut events,
    } = session;
    for input in &replay {
        send(&ports, &mut sink, input)
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        tokio::select! {
            biased;
            _ = control.recv() => break,
            ev = events.recv() => match ev {
                Some(Ok(ev)) => deliver(&ports, ev),
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stt session ended unexpectedly".into()),
            },
            input = ports.from_vad.recv() => match input {
                Some(input) => {
                    lock(&ports.replay).record(&input);
                    send(&ports, &mut sink, &input).await.map_err(|e| e.to_string())?;
                }
                None => break,
            },
        }
    }
    close(&ports, sink, events).await;
    Ok(())
}

/// Hang-up: ask the provider to finish, deliver what it still sends, within a grace period.
async fn close(
    ports: &SttPorts,
    mut sink: Box<dyn SttSink>,
    mut events: mpsc::Receiver<Result<SttEvent, SttError>>,
) {
    let drain = async move {
        let _ = sink.close().await;
        // Our half must go for the provider's event stream to end.
        drop(sink);
        while let Some(Ok(ev)) = events.recv().await {
            deliver(ports, ev);
        }
    };
    if tokio::time::timeout(CLOSE_GRACE, drain).await.is_err() {
        tracing::debug!(call_id = %ports.call.call_id(), turn = ports.call.turn(), "stt close timed out");
    }
}

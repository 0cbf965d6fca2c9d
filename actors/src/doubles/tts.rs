//! A streaming TTS double: after a time-to-first-byte it produces a tone whose length follows the
//! text (about 15 characters a second), in 40 ms chunks, faster than real time, and stops on cancel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::Latency;
use crate::audio::period::{cut, Periods};
use crate::provider::{TtsError, TtsEvent, TtsInput, TtsProvider, TtsRequest, TtsSession};

const CHARS_PER_SECOND: u64 = 15;
/// Texts queued for one session: a reply pushes one per sentence, so this never fills in
/// practice; a full queue makes `push_text` wait, as a real provider's socket would.
const CMD_QUEUE: usize = 32;

#[derive(Clone, Debug)]
pub struct ScriptedTtsConfig {
    pub ttfb: Latency,
    pub sample_rate: u32,
    /// Sessions numbered from 0 below this fail after their first chunk.
    pub failing_sessions: u64,
    /// Sessions numbered from 0 below this never take their text (`push_text` never returns), as
    /// a provider whose socket stopped reading.
    pub stalled_sessions: u64,
}

impl Default for ScriptedTtsConfig {
    fn default() -> Self {
        Self {
            ttfb: Latency::ms(150, 50),
            sample_rate: 24_000,
            failing_sessions: 0,
            stalled_sessions: 0,
        }
    }
}

pub struct ScriptedTts {
    cfg: ScriptedTtsConfig,
    sessions: AtomicU64,
    /// Every text pushed, in order (tests read what was spoken).
    spoken: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ScriptedTts {
    pub fn new(cfg: ScriptedTtsConfig) -> Self {
        Self {
            cfg,
            sessions: AtomicU64::new(0),
            spoken: Arc::default(),
        }
    }

    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    pub fn spoken(&self) -> Vec<String> {
        crate::call::shared::lock(&self.spoken).clone()
    }
}

/// One second of a 220 Hz tone per rate in use.
static TONE: Periods = Periods::new(|i, rate| {
    ((i as f32 * 220.0 * std::f32::consts::TAU / rate as f32).sin() * 6000.0) as i16
});

enum Cmd {
    Text(String),
    Finish,
}

struct Input {
    cmds: mpsc::Sender<Cmd>,
    stalled: bool,
    spoken: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait]
impl TtsInput for Input {
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError> {
        if self.stalled {
            std::future::pending::<()>().await;
        }
        crate::call::shared::lock(&self.spoken).push(text.to_string());
        self.cmds
            .send(Cmd::Text(text.to_string()))
            .await
            .map_err(|_| TtsError::Closed("session ended".into()))
    }
    async fn finish(&mut self) -> Result<(), TtsError> {
        self.cmds
            .send(Cmd::Finish)
            .await
            .map_err(|_| TtsError::Closed("session ended".into()))
    }
    async fn cancel(&mut self) -> Result<(), TtsError> {
        // Dropping the command channel ends the session task.
        let (dead, _) = mpsc::channel(1);
        self.cmds = dead;
        Ok(())
    }
}

#[async_trait]
impl TtsProvider for ScriptedTts {
    fn name(&self) -> &'static str {
        "scripted-tts"
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let (cmds, cmd_rx) = mpsc::channel(CMD_QUEUE);
        let (tx, events) = mpsc::channel(8);
        let ttfb = self.cfg.ttfb.sample(req.reply_id.wrapping_add(n));
        let fail = n < self.cfg.failing_sessions;
        // Where the real provider's socket reader runs (the media runtime): a vendor's synthesis
        // costs the dialogue's runtime nothing.
        crate::call::pump::spawn_on_media(
            None,
            synthesise(cmd_rx, tx, self.cfg.sample_rate, ttfb, fail),
        );
        Ok(TtsSession {
            input: Box::new(Input {
                cmds,
                stalled: n < self.cfg.stalled_sessions,
                spoken: Arc::clone(&self.spoken),
            }),
            events,
        })
    }
}

async fn synthesise(
    mut cmds: mpsc::Receiver<Cmd>,
    tx: mpsc::Sender<Result<TtsEvent, TtsError>>,
    rate: u32,
    ttfb: std::time::Duration,
    fail: bool,
) {
    let tone = TONE.get(rate);
    let chunk = (rate / 25) as usize; // 40 ms
    let mut first = true;
    let mut pos = 0usize;
    while let Some(cmd) = cmds.recv().await {
        let text = match cmd {
            Cmd::Text(t) => t,
            Cmd::Finish => {
                let _ = tx.send(Ok(TtsEvent::Done)).await;
                return;
            }
        };
        if first {
            tokio::time::sleep(ttfb).await;
            first = false;
        }
        let mut left = text.chars().count() as u64 * u64::from(rate) / CHARS_PER_SECOND;
        while left > 0 {
            let n = (left as usize).min(chunk);
            let samples = cut(&tone, pos, n);
            pos += n;
            left -= n as u64;
            if tx
                .send(Ok(TtsEvent::Audio {
                    samples,
                    sample_rate: rate,
                }))
                .await
                .is_err()
            {
                return;
            }
            if fail {
                let _ = tx
                    .send(Err(TtsError::Closed("injected socket drop".into())))
                    .await;
                return;
            }
        }
    }
}

//! A streaming STT double. It listens to the audio it is sent (energy-based voice detection, like a
//! real endpointer) and, on `finalize`, answers with a final transcript after a configurable delay:
//! either the next line of a per-call script, or a measurement of how much voiced audio it heard
//! (tests use that to prove no audio was lost across a restart).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::Latency;
use crate::audio::AudioFrame;
use crate::call::shared::lock;
use crate::provider::{SttError, SttEvent, SttProvider, SttSession, SttSessionConfig, SttSink};

/// Frames louder than this count as voiced.
const VOICED_DBFS: f32 = -45.0;

#[derive(Clone, Debug)]
pub enum TranscriptMode {
    /// Each final is the next line of the call's script (lines repeat when exhausted).
    Script(Vec<String>),
    /// Each call's own script by call id (the default for other calls); a call's script is not
    /// repeated: finals past its end are empty, as the Deepgram emulator's.
    PerCall {
        scripts: Arc<HashMap<String, Vec<String>>>,
        default: Vec<String>,
    },
    /// Each final says "heard N ms" with N the voiced audio since the previous final.
    Measure,
}

#[derive(Clone, Debug)]
pub struct ScriptedSttConfig {
    pub mode: TranscriptMode,
    /// From `finalize` to the final transcript.
    pub latency: Latency,
    /// Sessions numbered from 0 below this panic after `panic_after_frames` audio frames.
    pub crash_sessions: u32,
    pub panic_after_frames: u64,
    /// The first N `connect` calls fail.
    pub failed_connects: u32,
}

impl Default for ScriptedSttConfig {
    fn default() -> Self {
        Self {
            mode: TranscriptMode::Measure,
            latency: Latency::ms(100, 50),
            crash_sessions: 0,
            panic_after_frames: u64::MAX,
            failed_connects: 0,
        }
    }
}

pub struct ScriptedStt {
    cfg: ScriptedSttConfig,
    sessions: AtomicU32,
    connects: AtomicU32,
    seed: AtomicU64,
    /// Next script line per call id, shared by all sessions of a call (a restart continues).
    cursor: Arc<Mutex<HashMap<String, usize>>>,
}

impl ScriptedStt {
    pub fn new(cfg: ScriptedSttConfig) -> Self {
        Self {
            cfg,
            sessions: AtomicU32::new(0),
            connects: AtomicU32::new(0),
            seed: AtomicU64::new(1),
            cursor: Arc::default(),
        }
    }

    /// Sessions opened so far.
    pub fn sessions(&self) -> u32 {
        self.sessions.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl SttProvider for ScriptedStt {
    fn name(&self) -> &'static str {
        "scripted-stt"
    }

    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
        if self.connects.fetch_add(1, Ordering::Relaxed) < self.cfg.failed_connects {
            return Err(SttError::Connect("injected connect failure".into()));
        }
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let (tx, events) = mpsc::channel(64);
        let sink = Sink {
            cfg: self.cfg.clone(),
            call_id: cfg.call_id.clone(),
            crash: n < self.cfg.crash_sessions,
            frames: 0,
            offset: Duration::ZERO,
            final_end: Duration::ZERO,
            voiced: Duration::ZERO,
            seed: self.seed.fetch_add(1_000, Ordering::Relaxed),
            cursor: Arc::clone(&self.cursor),
            tx,
        };
        Ok(SttSession {
            sink: Box::new(sink),
            events,
        })
    }
}

struct Sink {
    cfg: ScriptedSttConfig,
    call_id: String,
    crash: bool,
    frames: u64,
    offset: Duration,
    final_end: Duration,
    voiced: Duration,
    seed: u64,
    cursor: Arc<Mutex<HashMap<String, usize>>>,
    tx: mpsc::Sender<Result<SttEvent, SttError>>,
}

impl Sink {
    fn text(&mut self) -> String {
        let (lines, repeat) = match &self.cfg.mode {
            TranscriptMode::Measure => return format!("heard {} ms", self.voiced.as_millis()),
            TranscriptMode::Script(lines) => (lines, true),
            TranscriptMode::PerCall { scripts, default } => match scripts.get(&self.call_id) {
                Some(lines) => (lines, false),
                None => (default, true),
            },
        };
        if lines.is_empty() {
            return String::new();
        }
        let mut cursor = lock(&self.cursor);
        let i = cursor.entry(self.call_id.clone()).or_insert(0);
        let at = if repeat { *i % lines.len() } else { *i };
        *i += 1;
        lines.get(at).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl SttSink for Sink {
    async fn send_audio(&mut self, frame: &AudioFrame) -> Result<(), SttError> {
        self.frames += 1;
        if self.crash && self.frames > self.cfg.panic_after_frames {
            panic!("injected stt client panic");
        }
        self.offset += frame.duration();
        if frame.level_dbfs() > VOICED_DBFS {
            self.voiced += frame.duration();
        }
        Ok(())
    }

    async fn finalize(&mut self) -> Result<(), SttError> {
        let text = if self.voiced >= Duration::from_millis(60) {
            self.text()
        } else {
            String::new()
        };
        let ev = SttEvent::Final {
            text,
            start: self.final_end,
            end: self.offset,
            speech_final: true,
        };
        self.final_end = self.offset;
        self.voiced = Duration::ZERO;
        self.seed += 1;
        let delay = self.cfg.latency.sample(self.seed);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Ok(ev)).await;
        });
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SttError> {
        Ok(())
    }
}

//! Shared harness for call-tree tests: a call on loopback room with in-process doubles, and a
//! caller that speaks in real (paused) time.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use frontdesk_actors::audio::{samples_per_frame, AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::call::{
    spawn_call, CallDeps, CallHandle, CallObserver, CallOutcome, CallSpec, TurnReport,
};
use frontdesk_actors::doubles::signal::speechlike;
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::{LlmProvider, SttProvider, TtsProvider};
use frontdesk_actors::store::Store;
use frontdesk_actors::PipelineConfig;

#[derive(Default)]
pub struct Recorder {
    pub turns: Mutex<Vec<TurnReport>>,
    pub outcomes: Mutex<Vec<CallOutcome>>,
}

impl CallObserver for Recorder {
    fn turn_completed(&self, _call_id: &str, report: &TurnReport) {
        self.turns.lock().unwrap().push(report.clone());
    }
    fn call_ended(&self, outcome: &CallOutcome) {
        self.outcomes.lock().unwrap().push(outcome.clone());
    }
}

pub struct Harness {
    pub call: CallHandle,
    pub caller: Caller,
    pub store: Arc<MemoryStore>,
    pub recorder: Arc<Recorder>,
}

pub struct Providers {
    pub stt: Arc<dyn SttProvider>,
    pub llm: Arc<dyn LlmProvider>,
    pub tts: Arc<dyn TtsProvider>,
}

impl Providers {
    pub fn fast() -> Self {
        Self {
            stt: Arc::new(ScriptedStt::new(ScriptedSttConfig {
                latency: Latency::ms(50, 0),
                ..Default::default()
            })),
            llm: Arc::new(ScriptedLlm::new(ScriptedLlmConfig {
                ttft: Latency::ms(100, 0),
                ..Default::default()
            })),
            tts: Arc::new(ScriptedTts::new(ScriptedTtsConfig {
                ttfb: Latency::ms(80, 0),
                ..Default::default()
            })),
        }
    }
}

/// A config with no greeting unless a test wants one.
pub fn quiet_config() -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    cfg.dialogue.greeting = String::new();
    cfg
}

pub async fn start(cfg: PipelineConfig, p: Providers) -> Harness {
    let store = Arc::new(MemoryStore::seeded());
    let recorder = Arc::new(Recorder::default());
    let deps = CallDeps {
        stt: p.stt,
        llm: p.llm,
        tts: p.tts,
        store: Arc::clone(&store) as Arc<dyn Store>,
        observer: Arc::clone(&recorder) as _,
        prices: Default::default(),
    };
    let (end, link) = LoopbackRoom::pair(64);
    let spec = CallSpec {
        call_id: "call-test".into(),
        room: "room-test".into(),
        caller: "caller".into(),
    };
    let call = spawn_call(spec, cfg, deps, link).await.unwrap();
    Harness {
        call,
        caller: Caller::new(end),
        store,
        recorder,
    }
}

/// The far end: sends 48 kHz caller audio in 20 ms frames at real-time pace and collects the
/// agent's frames.
pub struct Caller {
    end: frontdesk_actors::doubles::RoomEnd,
    t: Duration,
    pos: u64,
    pub agent_frames: Vec<AudioFrame>,
    /// When false the caller stops reading the agent's audio (a stalled room).
    pub listening: bool,
}

impl Caller {
    pub fn new(end: frontdesk_actors::doubles::RoomEnd) -> Self {
        Self {
            end,
            t: Duration::ZERO,
            pos: 0,
            agent_frames: vec![],
            listening: true,
        }
    }

    async fn frame(&mut self, samples: Vec<i16>) {
        let f = AudioFrame::new(samples, ROOM_RATE, self.t);
        self.t += FRAME_DURATION;
        let _ = self.end.audio.send(f).await;
        tokio::time::sleep(FRAME_DURATION).await;
        while self.listening {
            match self.end.from_agent.try_recv() {
                Ok(f) => self.agent_frames.push(f),
                Err(_) => break,
            }
        }
    }

    pub async fn speak(&mut self, d: Duration) {
        let n = samples_per_frame(ROOM_RATE);
        for _ in 0..d.as_millis() / 20 {
            let s = speechlike(ROOM_RATE, FRAME_DURATION, self.pos);
            self.pos += n as u64;
            self.frame(s).await;
        }
    }

    pub async fn silence(&mut self, d: Duration) {
        let n = samples_per_frame(ROOM_RATE);
        for _ in 0..d.as_millis() / 20 {
            self.frame(vec![0; n]).await;
        }
    }

    /// Keep sending silence until the agent has spoken and gone quiet for `quiet`.
    pub async fn wait_for_reply(&mut self, max: Duration, quiet: Duration) -> bool {
        let start = self.agent_frames.len();
        let mut silent = Duration::ZERO;
        let mut waited = Duration::ZERO;
        while waited < max {
            let before = self.agent_frames.len();
            self.silence(FRAME_DURATION).await;
            waited += FRAME_DURATION;
            silent = if self.agent_frames.len() > before {
                Duration::ZERO
            } else {
                silent + FRAME_DURATION
            };
            if self.agent_frames.len() > start && silent >= quiet {
                return true;
            }
        }
        false
    }

    /// Times the agent's playout stopped mid-sound so far.
    pub fn pauses(&self) -> u64 {
        self.end.pauses.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A participant or connection event from the room.
    pub async fn room_event(&mut self, ev: frontdesk_actors::provider::RoomEvent) {
        let _ = self.end.events.send(ev).await;
    }

    pub async fn hang_up(&mut self) {
        self.end.leave("caller").await;
    }
}

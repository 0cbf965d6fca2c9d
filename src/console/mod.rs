//! `frontdesk console`: one call from a WAV file through the real pipeline. The caller's audio is
//! played into a loopback room in real time after the agent's greeting; the agent's audio is
//! collected and written to a WAV. With every provider key set the real providers answer, else the
//! local emulators (whose STT cannot hear: it returns the `--say` lines in order).

pub mod taps;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::audio::resample::Resampler;
use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::call::{spawn_call, CallDeps, CallObserver, CallSpec, EndReason, TurnReport};
use frontdesk_actors::loopback::{LoopbackRoom, RoomEnd};
use tokio::time::Instant;

use self::taps::{SttTap, Transcript, TtsTap};
use crate::config::AppConfig;
use crate::providers::config::Providers;
use crate::simulate::wire::Wire;

#[derive(clap::Args, Clone, Debug)]
pub struct ConsoleArgs {
    /// The caller's audio: a 16-bit PCM WAV, any rate (channels are mixed down).
    #[arg(long)]
    pub input: PathBuf,
    /// Where the agent's audio goes (48 kHz mono, 16-bit).
    #[arg(long)]
    pub output: PathBuf,
    /// Emulated STT only: what the caller "said", one per utterance (repeatable). Default: the
    /// first line of the speech fixtures.
    #[arg(long = "say")]
    pub say: Vec<String>,
    /// Force the emulators even when provider keys are set.
    #[arg(long)]
    pub emulators: bool,
    /// Give up waiting for the agent after this long without its audio.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub reply_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The input cannot be read or the output written.
    #[error("{path}: {reason}")]
    Wav { path: String, reason: String },
    /// Providers, emulators or the store could not be set up.
    #[error("setting up the call: {0}")]
    Setup(String),
    #[error("the call did not end within 30 s of hang-up")]
    Stuck,
    #[error("the call ended without an outcome")]
    NoOutcome,
    /// Neither side hung up: a provider failed for good, the room broke, no caller audio came.
    #[error("the call did not end normally ({reason}) after {turns} turn(s); the agent's audio so far is in {output}")]
    Failed {
        reason: String,
        turns: u32,
        output: String,
    },
}

impl ConsoleError {
    /// A port or provider hiccup may pass; a bad file or a stuck call will not.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ConsoleError::Setup(_) | ConsoleError::Failed { .. })
    }
}

fn setup(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Setup(e.to_string())
}

fn wav_error(path: &Path, reason: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Wav {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// What one console call produced.
#[derive(Debug)]
pub struct ConsoleOutcome {
    /// This run's own call id (its record in the database is kept under it).
    pub call_id: String,
    pub transcript: Vec<taps::Line>,
    pub agent_samples: usize,
    pub turns: u32,
    pub end_reason: String,
    pub emulated: bool,
}

/// Agent silence that counts as the end of its reply.
const QUIET: Duration = Duration::from_millis(1_200);

/// Run the call and write `args.output`; lines are printed as they happen when `print`.
pub async fn run(
    cfg: &AppConfig,
    args: &ConsoleArgs,
    print: bool,
) -> Result<ConsoleOutcome, ConsoleError> {
    let caller = read_wav(&args.input)?;
    let transcript = Transcript::new(print);
    let (mut providers, wire) = providers(cfg, args).await?;
    providers.tts = crate::cache::tts::wrap(
        &cfg.cache.tts,
        providers.tts,
        crate::cache::tts::providers_voice(&cfg.providers, wire.is_some()),
        Some(&cfg.database),
        &cfg.pipeline.dialogue,
    )
    .await;
    let mut deps = call_deps(cfg, providers, &transcript, print)?;
    deps.llm = crate::cache::llm::wrap(
        &cfg.cache.llm,
        Arc::clone(&deps.llm),
        &crate::cache::llm::model_name(&cfg.providers.openai.model, wire.is_some()),
        Some(&cfg.database),
        Arc::clone(&deps.store),
    );
    let (end, link) = LoopbackRoom::pair(64);
    let call_id = new_call_id();
    let spec = CallSpec {
        call_id: call_id.clone(),
        room: "console".into(),
        caller: "console-caller".into(),
    };
    let call = spawn_call(spec, cfg.pipeline.clone(), deps, link)
        .await
        .map_err(setup)?;
    let agent = Driver::new(end, args.reply_timeout).run(&caller).await;
    let outcome = tokio::time::timeout(Duration::from_secs(30), call.wait())
        .await
        .map_err(|_| ConsoleError::Stuck)?
        .ok_or(ConsoleError::NoOutcome)?;
    write_wav(&args.output, &agent)?;
    drop(wire);
    transcript.finish();
    if print {
        crate::outln!("call id {call_id}");
    }
    if !ended_normally(&outcome.reason) {
        return Err(ConsoleError::Failed {
            reason: outcome.reason.to_string(),
            turns: outcome.turns,
            output: args.output.display().to_string(),
        });
    }
    Ok(ConsoleOutcome {
        call_id,
        transcript: transcript.lines(),
        agent_samples: agent.len(),
        turns: outcome.turns,
        end_reason: outcome.reason.to_string(),
        emulated: wire_was_used(args, cfg),
    })
}

/// A call id of its own for every console run ("console-20261201T221500Z-3f9a1c"), so no run's
/// record is mixed with or hidden by an older one's: the time, then random bits (std's
/// per-process random hash keys) for runs within the same second.
fn new_call_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    format!("console-{stamp}-{:06x}", h.finish() & 0xff_ffff)
}

/// The providers with the transcript's taps on STT and TTS, and the configured store.
fn call_deps(
    cfg: &AppConfig,
    providers: Providers,
    transcript: &Transcript,
    print: bool,
) -> Result<CallDeps, ConsoleError> {
    Ok(CallDeps {
        stt: Arc::new(SttTap {
            inner: providers.stt,
            transcript: transcript.clone(),
        }),
        llm: providers.llm,
        tts: Arc::new(TtsTap {
            inner: providers.tts,
            transcript: transcript.clone(),
        }),
        store: crate::store::open_store(&cfg.database).map_err(|e| setup(format!("{e:#}")))?,
        observer: Arc::new(Latencies { print }),
        prices: cfg.providers.prices.clone(),
    })
}

/// A hang-up by either side (the caller's is the end of the input) is how a call should end;
/// anything else means it died, and the console must not exit 0 on it.
fn ended_normally(reason: &EndReason) -> bool {
    matches!(reason, EndReason::CallerHungUp | EndReason::AgentHungUp)
}

/// Real providers need all three keys; anything less runs on the emulators.
fn wire_was_used(args: &ConsoleArgs, cfg: &AppConfig) -> bool {
    args.emulators || !cfg.providers.has_all_keys()
}

async fn providers(
    cfg: &AppConfig,
    args: &ConsoleArgs,
) -> Result<(Providers, Option<Wire>), ConsoleError> {
    if !wire_was_used(args, cfg) {
        let built = cfg.providers.build().map_err(|e| setup(format!("{e:#}")))?;
        return Ok((built, None));
    }
    let script = if args.say.is_empty() {
        crate::simulate::clips::Clips::load()
            .map_err(|e| setup(format!("{e:#}")))?
            .texts()
            .into_iter()
            .take(1)
            .collect()
    } else {
        args.say.clone()
    };
    let wire = emulators_for(cfg, script)
        .await
        .map_err(|e| setup(format!("emulators: {e:#}")))?;
    Ok((wire.providers.clone(), Some(wire)))
}

/// The provider emulators on loopback ports, reached through the real clients, the emulated STT
/// "hearing" `script` line by line (keyless runs: console, `dev`).
pub async fn emulators_for(cfg: &AppConfig, script: Vec<String>) -> anyhow::Result<Wire> {
    let sim = crate::simulate::SimArgs {
        calls: 1,
        duration: Duration::from_secs(60),
        ramp: Duration::ZERO,
        stt_latency_ms: 150,
        llm_ttft_ms: 300,
        llm_token_ms: 15,
        tts_ttfb_ms: 120,
        jitter_ms: 0,
        providers: crate::simulate::ProviderMode::Wire,
        fault_rate: 0.0,
        fallback: false,
        store: crate::simulate::StoreMode::Sqlite,
        report: None,
        pipeline: cfg.pipeline.clone(),
        prices: cfg.providers.prices.clone(),
        cache: cfg.cache.clone(),
        scenario: Default::default(),
    };
    Wire::start(&sim, script).await
}

/// Prints each turn's voice-to-voice latency.
struct Latencies {
    print: bool,
}

impl CallObserver for Latencies {
    fn turn_completed(&self, _call_id: &str, r: &TurnReport) {
        if let (true, Some(l)) = (self.print, r.turn_latency) {
            crate::outln!("  (turn {}: {} ms voice to voice)", r.turn, l.as_millis());
        }
    }
}

/// The caller's side: listen to the greeting, speak the input, listen to the reply, hang up.
struct Driver {
    end: RoomEnd,
    reply_timeout: Duration,
    agent: Vec<i16>,
    media_time: Duration,
}

impl Driver {
    fn new(end: RoomEnd, reply_timeout: Duration) -> Self {
        Self {
            end,
            reply_timeout,
            agent: vec![],
            media_time: Duration::ZERO,
        }
    }

    async fn run(mut self, caller: &[Arc<[i16]>]) -> Vec<i16> {
        let mut tick = tokio::time::interval(FRAME_DURATION);
        self.listen(&mut tick).await;
        for frame in caller {
            tick.tick().await;
            self.drain();
            self.send(Arc::clone(frame)).await;
        }
        self.listen(&mut tick).await;
        self.end.leave("console-caller").await;
        self.drain();
        self.agent
    }

    /// Send silence until the agent has spoken and gone quiet, or never started.
    async fn listen(&mut self, tick: &mut tokio::time::Interval) {
        let silence: Arc<[i16]> = vec![0; ROOM_RATE as usize / 50].into();
        let started = Instant::now();
        let mut last_heard: Option<Instant> = None;
        loop {
            tick.tick().await;
            if self.drain() {
                last_heard = Some(Instant::now());
            }
            let done = match last_heard {
                Some(t) => t.elapsed() >= QUIET,
                None => started.elapsed() >= self.reply_timeout,
            };
            if done {
                return;
            }
            self.send(Arc::clone(&silence)).await;
        }
    }

    async fn send(&mut self, samples: Arc<[i16]>) {
        let frame = AudioFrame::new(samples, ROOM_RATE, self.media_time);
        self.media_time += FRAME_DURATION;
        // A full queue means the pipeline is behind; dropping a frame is what a real room does.
        let _ = self.end.audio.try_send(frame);
    }

    /// Collect the agent's frames; true if any came.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while let Ok(frame) = self.end.from_agent.try_recv() {
            self.agent.extend_from_slice(&frame.samples);
            any = true;
        }
        any
    }
}

/// A WAV as 20 ms frames at the room rate. Refusals are plain words: the person running the
/// console sees them as they are.
pub fn read_wav(path: &Path) -> Result<Vec<Arc<[i16]>>, ConsoleError> {
    let bad = |e: &dyn std::fmt::Display| wav_error(path, e);
    let mut reader = hound::WavReader::open(path).map_err(|e| bad(&e))?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        let kind = match spec.sample_format {
            hound::SampleFormat::Int => "integer",
            hound::SampleFormat::Float => "float",
        };
        let got = format!("{}-bit {kind}", spec.bits_per_sample);
        return Err(bad(&format!("expected 16-bit integer PCM, got {got}")));
    }
    let raw: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&e))?;
    if raw.is_empty() {
        return Err(bad(&"the WAV has no samples"));
    }
    let channels = usize::from(spec.channels.max(1));
    let mono: Vec<i16> = raw
        .chunks(channels)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect();
    let mut resampler = Resampler::new(spec.sample_rate, ROOM_RATE).map_err(|e| bad(&e))?;
    let mut out = vec![];
    resampler.push(Duration::ZERO, &mono, &mut out);
    resampler.flush(&mut out);
    if out.is_empty() {
        return Err(bad(
            &"the WAV has no samples (shorter than one 20 ms frame)",
        ));
    }
    Ok(out.into_iter().map(|f| f.samples).collect())
}

fn write_wav(path: &Path, samples: &[i16]) -> Result<(), ConsoleError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: ROOM_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let bad = |e: hound::Error| wav_error(path, e);
    let mut w = hound::WavWriter::create(path, spec).map_err(bad)?;
    for &s in samples {
        w.write_sample(s).map_err(bad)?;
    }
    w.finalize().map_err(bad)
}

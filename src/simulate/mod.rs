//! `frontdesk simulate`: many concurrent calls, each a real call tree, against a simulated caller
//! that speaks recorded lines in real time. Providers are the emulators on loopback ports with the
//! real clients (`--providers wire`) or the in-process doubles with configurable latency
//! (`--providers doubles`, only in a build with the `simulate` feature, which is the default).

pub mod caller;
pub mod clips;
pub mod html;
pub mod parse;
pub mod progress;
pub mod report;
pub mod room;
pub mod scenario;
pub mod series;
pub mod sysstat;
pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::call::{spawn_call, CallDeps, CallSpec, EndReason};
#[cfg(feature = "simulate")]
use frontdesk_actors::doubles::{
    MemoryStore, ScriptedLlm, ScriptedLlmConfig, ScriptedStt, ScriptedSttConfig, ScriptedTts,
    ScriptedTtsConfig, TranscriptMode,
};
#[cfg(feature = "simulate")]
use frontdesk_actors::latency::Latency;
use frontdesk_actors::loopback::LoopbackRoom;
use frontdesk_actors::store::Store;
use frontdesk_actors::PipelineConfig;
use tokio::task::JoinSet;

use self::caller::{Caller, CallerConfig, CallerStats};
use self::clips::Clips;
use self::report::{secs, Collector, Report};

pub use crate::providers::config::Providers;

/// `simulate`'s log level unless `--log-level` or `RUST_LOG` says otherwise: problems only (the
/// table and the progress line tell how the run goes; a line per turn and call drowned them).
pub const DEFAULT_LOG_LEVEL: &str = "warn";
/// The TTS rate of the default config (Cartesia at 24 kHz), which the room's Opus track takes as
/// it is: a simulated call resamples exactly where a real one does (nowhere).
const TTS_RATE: u32 = 24_000;
/// Why `--providers doubles` / `--store memory` fail in a build without the test doubles.
#[cfg(not(feature = "simulate"))]
const NO_DOUBLES: &str =
    "this build has no test doubles (built without the `simulate` feature): use --providers wire and --store sqlite";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderMode {
    Wire,
    Doubles,
}

/// The store behind the calls' tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreMode {
    /// Embedded SQLite, in memory: the real SQL store, nothing left behind.
    Sqlite,
    /// The in-process test double.
    Memory,
}

#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Concurrent calls (at least 1).
    #[arg(long, default_value_t = 20, value_parser = parse::calls)]
    pub calls: usize,
    /// How long a caller without a scenario script keeps talking (e.g. 30s, 2m); a scenario's
    /// caller says its whole script (30-40 s), then hangs up. Also bounds the ramp.
    #[arg(long, default_value = "30s", value_parser = parse::positive_duration)]
    pub duration: Duration,
    /// Calls start spread over this period (the last must start before the first hangs up).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// STT: finalize to final transcript.
    #[arg(long, default_value_t = 150)]
    pub stt_latency_ms: u32,
    /// LLM time to first token.
    #[arg(long, default_value_t = 350)]
    pub llm_ttft_ms: u32,
    /// LLM time between tokens.
    #[arg(long, default_value_t = 20)]
    pub llm_token_ms: u32,
    /// TTS time to first audio.
    #[arg(long, default_value_t = 120)]
    pub tts_ttfb_ms: u32,
    /// Jitter added to each provider latency, uniform in [0, jitter].
    #[arg(long, default_value_t = 50)]
    pub jitter_ms: u32,
    /// `wire`: emulators on loopback ports and the real clients; `doubles`: in-process doubles.
    #[arg(long, value_enum, default_value = "wire")]
    pub providers: ProviderMode,
    /// Share of provider connections/requests that get an injected fault, 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse::share)]
    pub fault_rate: f64,
    /// Give each provider a fault-free secondary (wire mode) behind the fallback breaker.
    #[arg(long)]
    pub fallback: bool,
    /// Store behind the tools.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub store: StoreMode,
    /// Write the report as JSON here.
    #[arg(long, value_parser = parse::output_file)]
    pub report: Option<PathBuf>,
    /// What the callers want, round-robin over the calls: all, or one of new-patient, book,
    /// reschedule, cancel, full-day, invalid-date, questions. Each call's goal is checked in the
    /// database.
    #[arg(long, default_value = "all", value_parser = scenario::parse_selection)]
    pub scenario: scenario::Selection,
    /// Pipeline configuration (turn-taking, VAD, edges, budgets).
    #[arg(skip)]
    pub pipeline: PipelineConfig,
    /// Prices for the call records' cost.
    #[arg(skip)]
    pub prices: frontdesk_actors::pricing::Prices,
    /// The response caches (`[cache]`; the phrase cache keeps to memory here).
    #[arg(skip)]
    pub cache: crate::cache::CacheConfig,
}

impl SimArgs {
    /// What the value parsers cannot see alone: the ramp against the duration.
    pub fn check(&self) -> Result<(), String> {
        parse::ramp_fits(self.calls, self.ramp, self.duration)
    }

    fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self.store {
            #[cfg(feature = "simulate")]
            StoreMode::Memory => Arc::new(MemoryStore::seeded()),
            #[cfg(not(feature = "simulate"))]
            StoreMode::Memory => anyhow::bail!(NO_DOUBLES),
            StoreMode::Sqlite => Arc::new(crate::store::sqlite::SqliteStore::open(":memory:")?),
        })
    }

    #[cfg(not(feature = "simulate"))]
    fn doubles(&self, _clips: &Clips) -> anyhow::Result<Providers> {
        anyhow::bail!(NO_DOUBLES)
    }

    /// The in-process doubles, with this run's latencies.
    #[cfg(feature = "simulate")]
    fn doubles(&self, clips: &Clips) -> anyhow::Result<Providers> {
        let j = self.jitter_ms;
        let stt = ScriptedStt::new(ScriptedSttConfig {
            mode: TranscriptMode::PerCall {
                scripts: Arc::new(scenario::scripts(self.scenario, self.calls)),
                default: clips.texts(),
            },
            latency: Latency::ms(self.stt_latency_ms, j),
            ..Default::default()
        });
        let llm = ScriptedLlm::new(ScriptedLlmConfig {
            ttft: Latency::ms(self.llm_ttft_ms, j),
            token_interval: Duration::from_millis(u64::from(self.llm_token_ms)),
            // The emulator's receptionist, so both provider modes hold the same conversations.
            policy: Some(crate::emulators::openai::policy::double_policy()),
            ..Default::default()
        });
        let tts = ScriptedTts::new(ScriptedTtsConfig {
            ttfb: Latency::ms(self.tts_ttfb_ms, j),
            sample_rate: TTS_RATE,
            ..Default::default()
        });
        Ok(Providers {
            stt: Arc::new(stt),
            llm: Arc::new(llm),
            tts: Arc::new(tts),
            breakers: vec![],
        })
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("calls".into(), self.calls.to_string()),
            (
                "duration".into(),
                humantime::format_duration(self.duration).to_string(),
            ),
            (
                "ramp".into(),
                humantime::format_duration(self.ramp).to_string(),
            ),
            ("stt_latency_ms".into(), self.stt_latency_ms.to_string()),
            ("llm_ttft_ms".into(), self.llm_ttft_ms.to_string()),
            ("llm_token_ms".into(), self.llm_token_ms.to_string()),
            ("tts_ttfb_ms".into(), self.tts_ttfb_ms.to_string()),
            ("jitter_ms".into(), self.jitter_ms.to_string()),
            (
                "providers".into(),
                format!("{:?}", self.providers).to_lowercase(),
            ),
            ("fault_rate".into(), self.fault_rate.to_string()),
            ("fallback".into(), self.fallback.to_string()),
            ("scenario".into(), format!("{:?}", self.scenario)),
        ])
    }
}

/// Run the simulation to the end on the current runtime and report.
pub async fn run(args: SimArgs) -> anyhow::Result<Report> {
    let wire = providers(&args).await?;
    run_with(args, wire).await
}

/// [`run`] for a person at a terminal: the progress line on stderr while it runs (when stderr
/// is a terminal).
pub async fn run_shown(args: SimArgs) -> anyhow::Result<Report> {
    let wire = providers(&args).await?;
    run_inner(args, wire, true).await
}

/// The emulators and clients in `wire` mode.
async fn providers(args: &SimArgs) -> anyhow::Result<Option<wire::Wire>> {
    Ok(match args.providers {
        ProviderMode::Wire => Some(wire::Wire::start(args, Clips::load()?.texts()).await?),
        ProviderMode::Doubles => None,
    })
}

/// Run on providers set up by the caller (tests force particular faults on `wire`'s emulators).
pub async fn run_with(args: SimArgs, wire: Option<wire::Wire>) -> anyhow::Result<Report> {
    run_inner(args, wire, false).await
}

async fn run_inner(args: SimArgs, wire: Option<wire::Wire>, show: bool) -> anyhow::Result<Report> {
    let mut sim = Sim::new(&args, wire)?;
    // One process, one provider: the memory layer is all a simulation can share.
    sim.deps.tts = crate::cache::tts::wrap(
        &args.cache.tts,
        Arc::clone(&sim.deps.tts),
        Some(crate::cache::tts::Voice::new(
            "simulated",
            "simulated",
            TTS_RATE,
        )),
        None,
        &args.pipeline.dialogue,
    )
    .await;
    // The answer cache too keeps to memory (an in-memory SQLite cannot be shared).
    sim.deps.llm = crate::cache::llm::wrap(
        &args.cache.llm,
        Arc::clone(&sim.deps.llm),
        "simulated",
        None,
        Arc::clone(&sim.deps.store),
    );
    let start = sysstat::RunStart::now();
    let monitor = progress::Monitor::start(Arc::clone(&sim.collector), args.calls, show);
    let callers = sim.run_calls(&args).await;
    monitor.finish();
    Ok(sim.report(&args, &callers, &start.usage()))
}

/// What every call of a simulation shares.
struct Sim {
    clips: Arc<Clips>,
    deps: CallDeps,
    collector: Arc<Collector>,
    caller: CallerConfig,
    /// Emulators and clients, in `wire` mode (kept alive for the run).
    wire: Option<wire::Wire>,
    scenarios: Arc<scenario::Runs>,
}

impl Sim {
    fn new(args: &SimArgs, wire: Option<wire::Wire>) -> anyhow::Result<Self> {
        let clips = Clips::load()?;
        let p = match &wire {
            Some(w) => w.providers.clone(),
            None => args.doubles(&clips)?,
        };
        let collector = Arc::new(Collector::new()?);
        let deps = CallDeps {
            stt: p.stt,
            llm: p.llm,
            tts: p.tts,
            store: args.open_store()?,
            observer: Arc::clone(&collector) as _,
            prices: args.prices.clone(),
        };
        let caller = CallerConfig {
            duration: args.duration,
            reply_timeout: Duration::from_secs(15),
            quiet: Duration::from_millis(500),
            pause: Duration::from_millis(300),
        };
        Ok(Self {
            clips,
            deps,
            collector,
            caller,
            wire,
            scenarios: Arc::new(scenario::Runs::new(args.scenario)),
        })
    }

    async fn run_calls(&self, args: &SimArgs) -> Vec<CallerStats> {
        let mut calls = JoinSet::new();
        for i in 0..args.calls {
            // Real callers' 20 ms frame clocks are unrelated: give each its own phase in the frame
            // period, or a round ramp would make hundreds of calls tick at the same instant.
            let phase = Duration::from_micros((i as u64 * 7_919) % 20_000);
            let delay = args.ramp.mul_f64(i as f64 / args.calls.max(1) as f64) + phase;
            let (deps, clips, cfg) = (
                self.deps.clone(),
                Arc::clone(&self.clips),
                self.caller.clone(),
            );
            let pipeline = args.pipeline.clone();
            let collector = Arc::clone(&self.collector);
            let scenarios = Arc::clone(&self.scenarios);
            calls.spawn(async move {
                tokio::time::sleep(delay).await;
                collector.call_started();
                one_call(i, deps, clips, cfg, pipeline, &scenarios).await
            });
        }
        let mut out = vec![];
        while let Some(done) = calls.join_next().await {
            match done {
                Ok(Ok(stats)) => out.push(stats),
                Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "simulated call failed"),
                Err(e) => tracing::error!(error = %e, "simulated call task failed"),
            }
        }
        out
    }

    fn report(&self, args: &SimArgs, callers: &[CallerStats], usage: &sysstat::RunUsage) -> Report {
        let mut report = Report {
            calls: args.calls,
            settings: args.settings(),
            ..Default::default()
        };
        for s in callers {
            add_caller(&mut report, s);
        }
        for o in self.collector.outcomes() {
            report.add_outcome(&o);
        }
        report.stages = self.collector.stages();
        report.scenarios = self.scenarios.rows();
        report.histograms = self.collector.histograms();
        report.timeline = self.collector.timeline();
        if let Some(w) = &self.wire {
            report.faults = w.faults();
            report.failovers = w.failovers();
        }
        finish(&mut report, args, usage);
        report
    }
}

async fn one_call(
    i: usize,
    deps: CallDeps,
    clips: Arc<Clips>,
    cfg: CallerConfig,
    pipeline: PipelineConfig,
    scenarios: &scenario::Runs,
) -> anyhow::Result<CallerStats> {
    let store = Arc::clone(&deps.store);
    let (plan, script) = scenarios.before(i, &*store, &clips).await?;
    let (end, mut link) = LoopbackRoom::pair(32);
    // As the real room's Opus track: the TTS's own rate goes out as it is.
    link.output_rates = &crate::room::OPUS_RATES_PREFERRED;
    let spec = CallSpec {
        call_id: scenario::call_id(i),
        room: format!("sim-room-{i:05}"),
        caller: format!("caller-{i:05}"),
    };
    let call_id = spec.call_id.clone();
    let room = spec.room.clone();
    let call = spawn_call(spec, pipeline, deps, link).await?;
    // The caller stands in for the room transport's media side, which runs on the call's media
    // runtime.
    let caller = Caller::new(end, clips, cfg).with_script(script).run();
    let stats = frontdesk_actors::call::pump::spawn_on_media(Some(&room), caller)
        .await
        .map_err(|e| anyhow::anyhow!("simulated caller {i} failed: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(30), call.wait()).await {
        Ok(Some(o)) if o.reason == EndReason::CallerHungUp => {}
        Ok(Some(o)) => tracing::warn!(call = i, reason = %o.reason, "call ended abnormally"),
        Ok(None) => anyhow::bail!("call {i} ended without an outcome"),
        Err(_) => anyhow::bail!("call {i} did not end within 30 s of hang-up"),
    }
    scenarios.after(&plan, &call_id, &*store).await;
    Ok(stats)
}

fn add_caller(r: &mut Report, s: &CallerStats) {
    r.lines_spoken += u64::from(s.lines);
    r.replies_heard += u64::from(s.replies);
    r.missed_replies += u64::from(s.missed_replies);
    r.caller_frames_refused += s.refused_frames;
    r.caller_late_ticks += s.late_ticks;
    r.caller_max_lateness_ms = r
        .caller_max_lateness_ms
        .max(s.max_lateness.as_secs_f64() * 1e3);
}

fn finish(r: &mut Report, args: &SimArgs, usage: &sysstat::RunUsage) {
    let &sysstat::RunUsage {
        wall,
        cpu,
        baseline_rss,
        host_steal,
    } = usage;
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    r.host_steal = host_steal;
    let peak = sysstat::peak_rss().unwrap_or(0);
    r.wall_seconds = secs(wall);
    r.cpu_seconds = secs(cpu);
    r.cpu_utilisation = if wall.is_zero() {
        0.0
    } else {
        secs(cpu) / secs(wall)
    };
    // The calls' real length: scenario callers hang up when their script ends, not at --duration.
    let call_seconds = r.call_minutes * 60.0;
    r.cpu_ms_per_call_second = if call_seconds > 0.0 {
        secs(cpu) * 1e3 / call_seconds
    } else {
        0.0
    };
    r.peak_rss_mb = mb(peak);
    r.baseline_rss_mb = mb(baseline_rss);
    // Above the process's baseline: what each extra call costs, not the runtime's fixed share.
    r.peak_rss_per_call_kb =
        peak.saturating_sub(baseline_rss) as f64 / 1024.0 / args.calls.max(1) as f64;
}

//! Providers on the wire for the simulation: the emulators on loopback ports and the real clients
//! talking to them, built from a `ProvidersConfig` exactly as the service builds them, so the
//! simulation runs the same client and fallback code as production.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;

use frontdesk_actors::latency::Latency;

use super::SimArgs;
use crate::emulators::faults::FaultConfig;
use crate::emulators::{cartesia, deepgram, openai, Emulator};
use crate::providers::cartesia::CartesiaConfig;
use crate::providers::config::{Providers, ProvidersConfig, Secondaries};
use crate::providers::deepgram::DeepgramConfig;
use crate::providers::openai::OpenAiConfig;
use crate::secret::Secret;

/// The loopback address with any free port.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Fault settings of each primary emulator (secondaries never get faults).
#[derive(Clone, Debug, Default)]
pub struct WireFaults {
    pub deepgram: FaultConfig,
    pub openai: FaultConfig,
    pub cartesia: FaultConfig,
}

impl WireFaults {
    /// The same rate, every kind, on every provider.
    pub fn uniform(rate: f64) -> Self {
        let f = FaultConfig {
            rate,
            ..Default::default()
        };
        Self {
            deepgram: f.clone(),
            openai: f.clone(),
            cartesia: f,
        }
    }
}

/// Running emulators and the clients pointed at them.
pub struct Wire {
    /// Primaries first, then (with `--fallback`) the secondaries.
    pub emulators: Vec<Emulator>,
    pub providers: Providers,
    /// Where the emulators run; last, so it goes after them.
    _vendors: Vendors,
}

/// The emulators' own runtime. In production the providers are other machines: here they share
/// the process and its cores (their CPU is in the report), but not the run queue, so a burst of
/// emulator work never sits ahead of the calls' dialogues and replies (and the other way round).
/// Their threads also run at a lower OS priority ([`VENDOR_NICE`]), with the kernel's default
/// time slice rather than the short one they would inherit from the control runtime
/// (`crate::sched`): at equal priority a call's dialogue that wakes on a busy core waits for an
/// emulator thread's time slice, a contention remote vendors never cause (500 wire calls:
/// pipeline overhead p99 8-11 ms → 2.9-4.0 ms).
struct Vendors(Option<tokio::runtime::Runtime>);

/// How much nicer than the process the emulators' threads run.
const VENDOR_NICE: i32 = 10;

impl Vendors {
    fn start() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("frontdesk-vendors")
            .on_thread_start(|| crate::sched::background_thread(VENDOR_NICE))
            .enable_all()
            .build()?;
        Ok(Self(Some(rt)))
    }

    /// Start one emulator set on this runtime (its server tasks and connections stay there).
    async fn emulators(
        &self,
        args: &SimArgs,
        script: &[String],
        faults: WireFaults,
        scenarios: bool,
    ) -> anyhow::Result<EmulatorSet> {
        let rt = self.0.as_ref().context("vendor runtime stopped")?;
        let (args, script) = (args.clone(), script.to_vec());
        rt.spawn(async move { EmulatorSet::start(&args, &script, faults, scenarios).await })
            .await
            .context("starting the emulators")?
    }
}

impl Drop for Vendors {
    fn drop(&mut self) {
        // Dropped from async code (the simulation, tests): a blocking shutdown would panic there.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Wire {
    /// `script`: what the caller says, line by line (the STT emulator's transcripts).
    /// The STT emulator also "hears" each simulated call's scenario lines (by call id).
    pub async fn start(args: &SimArgs, script: Vec<String>) -> anyhow::Result<Self> {
        let faults = WireFaults::uniform(args.fault_rate);
        Self::start_inner(args, script, faults, true).await
    }

    /// Every call's STT hears `script` (tests that force faults on a known script).
    pub async fn start_with(
        args: &SimArgs,
        script: Vec<String>,
        faults: WireFaults,
    ) -> anyhow::Result<Self> {
        Self::start_inner(args, script, faults, false).await
    }

    async fn start_inner(
        args: &SimArgs,
        script: Vec<String>,
        faults: WireFaults,
        scenarios: bool,
    ) -> anyhow::Result<Self> {
        let vendors = Vendors::start()?;
        let primary = vendors.emulators(args, &script, faults, scenarios).await?;
        let mut cfg = ProvidersConfig {
            deepgram: primary.deepgram(),
            openai: primary.openai(),
            cartesia: primary.cartesia(),
            ..Default::default()
        };
        let mut emulators = primary.emulators;
        if args.fallback {
            let second = vendors
                .emulators(args, &script, WireFaults::default(), scenarios)
                .await?;
            cfg.secondary = Secondaries {
                deepgram: Some(second.deepgram()),
                openai: Some(second.openai()),
                cartesia: Some(second.cartesia()),
            };
            emulators.extend(second.emulators);
            // With a secondary waiting, a stalled request moves over at once.
            cfg.openai.ttft_retries = 0;
        }
        let errors = cfg.validate();
        anyhow::ensure!(errors.is_empty(), "providers: {}", errors.join("; "));
        Ok(Self {
            emulators,
            providers: cfg.build()?,
            _vendors: vendors,
        })
    }

    /// The primary emulator called `name` ("deepgram", "openai", "cartesia").
    pub fn emulator(&self, name: &str) -> Option<&Emulator> {
        self.emulators.iter().find(|e| e.name == name)
    }

    /// Faults injected so far, as "provider/kind".
    pub fn faults(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in &self.emulators {
            for (k, n) in e.faults.injected() {
                *out.entry(format!("{}/{}", e.name, k.as_str())).or_default() += n;
            }
        }
        out
    }

    /// Times each primary was declared unhealthy, by kind.
    pub fn failovers(&self) -> BTreeMap<String, u64> {
        let b = &self.providers.breakers;
        b.iter()
            .map(|b| (b.kind().to_string(), b.failovers()))
            .collect()
    }
}

/// One emulator of each kind: [stt, llm, tts].
struct EmulatorSet {
    emulators: Vec<Emulator>,
}

impl EmulatorSet {
    async fn start(
        args: &SimArgs,
        script: &[String],
        faults: WireFaults,
        scenarios: bool,
    ) -> anyhow::Result<Self> {
        let j = args.jitter_ms;
        let scripts = if scenarios {
            super::scenario::scripts(args.scenario, args.calls)
        } else {
            Default::default()
        };
        let stt = deepgram::DeepgramEmulatorConfig {
            // Each simulated call's own scenario lines, by call id.
            scripts: scripts.into_iter().collect(),
            default_script: script.to_vec(),
            latency: Latency::ms(args.stt_latency_ms, j),
            faults: faults.deepgram,
            ..Default::default()
        };
        let llm = openai::OpenAiEmulatorConfig {
            ttft: Latency::ms(args.llm_ttft_ms, j),
            token_interval_ms: u64::from(args.llm_token_ms),
            faults: faults.openai,
            ..Default::default()
        };
        let tts = cartesia::CartesiaEmulatorConfig {
            ttfb: Latency::ms(args.tts_ttfb_ms, j),
            faults: faults.cartesia,
            ..Default::default()
        };
        Ok(Self {
            emulators: vec![
                deepgram::start(stt, LOOPBACK).await?,
                openai::start(llm, LOOPBACK).await?,
                cartesia::start(tts, LOOPBACK).await?,
            ],
        })
    }

    fn deepgram(&self) -> DeepgramConfig {
        DeepgramConfig {
            url: format!("{}/v1/listen", self.emulators[0].ws_url()),
            api_key: Secret::new("simulation"),
            ..Default::default()
        }
    }

    fn openai(&self) -> OpenAiConfig {
        OpenAiConfig {
            base_url: self.emulators[1].http_url(),
            api_key: Secret::new("simulation"),
            ..Default::default()
        }
    }

    fn cartesia(&self) -> CartesiaConfig {
        CartesiaConfig {
            url: format!("{}/tts/websocket", self.emulators[2].ws_url()),
            api_key: Secret::new("simulation"),
            sample_rate: super::TTS_RATE,
            ..Default::default()
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value (field 19 of its stat; the name before it may hold spaces).
    #[allow(clippy::disallowed_methods)] // procfs is in memory: reading it never waits on a disk
    fn nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
        let after_name = stat.rsplit_once(") ").expect("stat has a name").1;
        let field = after_name
            .split(' ')
            .nth(16)
            .expect("stat has a nice field");
        field.parse().expect("nice is a number")
    }

    #[test]
    fn the_emulators_threads_run_nicer_than_the_calls() {
        let ours = nice();
        let vendors = Vendors::start().expect("vendor runtime");
        let rt = vendors.0.as_ref().expect("running");
        let theirs = rt.block_on(async { tokio::spawn(async { nice() }).await.expect("ran") });
        assert_eq!(theirs, (ours + i64::from(VENDOR_NICE)).min(19));
        assert_eq!(nice(), ours, "only the emulators' threads");
    }
}

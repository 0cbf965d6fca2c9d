//! Providers on the wire for the simulation: the emulators on loopback ports and the real clients
//! talking to them, so the simulation runs the same client code as production.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use frontdesk_actors::audio::ROOM_RATE;
use frontdesk_actors::doubles::Latency;

use super::{Providers, SimArgs};
use crate::emulators::faults::FaultConfig;
use crate::emulators::{cartesia, deepgram, openai, Emulator};
use crate::providers::cartesia::{CartesiaConfig, CartesiaTts};
use crate::providers::deepgram::{DeepgramConfig, DeepgramStt};
use crate::providers::openai::{OpenAiConfig, OpenAiLlm};
use crate::secret::Secret;

/// The loopback address with any free port.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Running emulators and the clients pointed at them.
pub struct Wire {
    pub emulators: Vec<Emulator>,
    /// The real clients, pointed at `emulators`.
    pub providers: Providers,
}

impl Wire {
    /// `script`: what the caller says, line by line (the STT emulator's transcripts).
    pub async fn start(args: &SimArgs, script: Vec<String>) -> anyhow::Result<Self> {
        let faults = FaultConfig {
            rate: args.fault_rate,
            ..Default::default()
        };
        let j = args.jitter_ms;
        let tts_emu = cartesia::start(
            cartesia::CartesiaEmulatorConfig {
                ttfb: Latency::ms(args.tts_ttfb_ms, j),
                faults: faults.clone(),
                ..Default::default()
            },
            LOOPBACK,
        )
        .await?;
        let tts = CartesiaTts::new(CartesiaConfig {
            url: format!("{}/tts/websocket", tts_emu.ws_url()),
            api_key: Secret::new("simulation"),
            // The room rate: no resampling on the way out.
            sample_rate: ROOM_RATE,
            ..Default::default()
        })?;
        let llm_emu = openai::start(
            openai::OpenAiEmulatorConfig {
                ttft: Latency::ms(args.llm_ttft_ms, j),
                token_interval_ms: u64::from(args.llm_token_ms),
                faults: faults.clone(),
                ..Default::default()
            },
            LOOPBACK,
        )
        .await?;
        let llm = OpenAiLlm::new(OpenAiConfig {
            base_url: llm_emu.http_url(),
            api_key: Secret::new("simulation"),
            ..Default::default()
        })?;
        let stt_emu = deepgram::start(
            deepgram::DeepgramEmulatorConfig {
                default_script: script,
                latency: Latency::ms(args.stt_latency_ms, j),
                faults: faults.clone(),
                ..Default::default()
            },
            LOOPBACK,
        )
        .await?;
        let stt = DeepgramStt::new(DeepgramConfig {
            url: format!("{}/v1/listen", stt_emu.ws_url()),
            api_key: Secret::new("simulation"),
            ..Default::default()
        });
        Ok(Self {
            emulators: vec![stt_emu, llm_emu, tts_emu],
            providers: Providers {
                stt: Arc::new(stt),
                llm: Arc::new(llm),
                tts: Arc::new(tts),
            },
        })
    }

    /// Faults injected so far, as "provider/kind".
    pub fn faults(&self) -> BTreeMap<String, u64> {
        self.emulators
            .iter()
            .flat_map(|e| {
                e.faults
                    .injected()
                    .into_iter()
                    .map(move |(k, n)| (format!("{}/{}", e.name, k.as_str()), n))
            })
            .collect()
    }
}

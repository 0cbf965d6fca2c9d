//! `frontdesk emulators`: the provider emulators standalone on loopback ports, so any client (the
//! official SDKs included) can be tried against them.

use std::net::SocketAddr;

use super::faults::FaultConfig;
use super::{cartesia, deepgram, openai, Emulator};

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Deepgram live STT websocket.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub deepgram: SocketAddr,
    /// OpenAI-compatible chat completions (HTTP + SSE).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub openai: SocketAddr,
    /// Cartesia TTS websocket.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub cartesia: SocketAddr,
    /// Share of connections/requests that get an injected fault.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
}

/// Start every emulator; refuses anything but loopback addresses.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Vec<Emulator>> {
    for addr in [args.deepgram, args.openai, args.cartesia] {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "emulators only listen on loopback, not {addr}"
        );
    }
    let faults = FaultConfig {
        rate: args.fault_rate,
        ..Default::default()
    };
    let llm = openai::start(
        openai::OpenAiEmulatorConfig {
            faults: faults.clone(),
            ..Default::default()
        },
        args.openai,
    )
    .await?;
    let tts = cartesia::start(
        cartesia::CartesiaEmulatorConfig {
            faults: faults.clone(),
            ..Default::default()
        },
        args.cartesia,
    )
    .await?;
    let stt = deepgram::start(
        deepgram::DeepgramEmulatorConfig {
            faults,
            ..Default::default()
        },
        args.deepgram,
    )
    .await?;
    Ok(vec![stt, llm, tts])
}

/// Where each emulator listens, for people and scripts.
pub fn describe(emulators: &[Emulator]) -> String {
    emulators
        .iter()
        .map(|e| match e.name {
            "deepgram" => format!(
                "deepgram  {}/v1/listen?encoding=linear16&sample_rate=16000\n",
                e.ws_url()
            ),
            "openai" => format!(
                "openai    base URL {}  (POST /v1/chat/completions)\n",
                e.http_url()
            ),
            "cartesia" => format!(
                "cartesia  {}/tts/websocket?cartesia_version=2025-04-16\n",
                e.ws_url()
            ),
            other => format!("{other:<9} {}\n", e.http_url()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_on_free_ports_and_refuses_non_loopback() -> anyhow::Result<()> {
        let any: SocketAddr = "127.0.0.1:0".parse()?;
        let emus = start(&ServeArgs {
            deepgram: any,
            openai: any,
            cartesia: any,
            fault_rate: 0.0,
        })
        .await?;
        let text = describe(&emus);
        assert!(
            text.contains("/v1/listen")
                && text.contains("openai")
                && text.contains("/tts/websocket"),
            "{text}"
        );
        assert_eq!(emus.len(), 3);
        assert!(emus.iter().all(|e| e.addr.port() != 0));
        let public: SocketAddr = "0.0.0.0:0".parse()?;
        assert!(start(&ServeArgs {
            deepgram: any,
            openai: public,
            cartesia: any,
            fault_rate: 0.0
        })
        .await
        .is_err());
        Ok(())
    }
}

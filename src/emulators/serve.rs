//! `frontdesk emulators`: the provider emulators standalone on loopback ports, so any client (the
//! official SDKs included) can be tried against them.

use std::net::SocketAddr;

use super::faults::{FaultConfig, FaultKind};
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
    /// Fault kinds to draw from (comma-separated: drop_socket, stall, rate_limited,
    /// server_error, malformed_json, wrong_close_code, error_event); default every kind each
    /// emulator supports. A test can also force the next fault: POST /_emulator/faults/next.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    pub fault_kinds: Vec<FaultKind>,
    /// Mid-stream faults strike after this many server messages.
    #[arg(long, default_value_t = 3)]
    pub fault_after: u32,
    /// Seed of the fault draws (the same seed repeats a run's faults).
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    /// Print where each emulator listens as one JSON line (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The transcript of each utterance the Deepgram emulator hears, in order (repeat the flag;
    /// each `tag` has its own place in the list, which starts over when used up). Default: the
    /// bundled caller lines of tests/fixtures/speech.
    #[arg(long = "deepgram-transcript", value_name = "TEXT")]
    pub deepgram_transcript: Vec<String>,
    /// Like --deepgram-transcript, from a file: one utterance a line.
    #[arg(
        long = "deepgram-transcripts",
        value_name = "FILE",
        conflicts_with = "deepgram_transcript"
    )]
    pub deepgram_transcripts: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// The Deepgram emulator's transcript lines: the flags, the file, else the fixture lines.
    #[allow(clippy::disallowed_methods)] // reads the script at startup, before the emulators serve
    fn deepgram_script(&self) -> anyhow::Result<Vec<String>> {
        let lines = if let Some(path) = &self.deepgram_transcripts {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--deepgram-transcripts {}: {e}", path.display()))?;
            deepgram::script_lines(&text)
        } else if !self.deepgram_transcript.is_empty() {
            self.deepgram_transcript.clone()
        } else {
            deepgram::script_lines(deepgram::FIXTURE_LINES)
        };
        anyhow::ensure!(!lines.is_empty(), "the Deepgram transcript has no lines");
        Ok(lines)
    }
}

fn parse_kind(s: &str) -> Result<FaultKind, String> {
    FaultKind::parse(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = FaultKind::EVERY.iter().map(|k| k.as_str()).collect();
        format!("unknown fault kind {s:?} (known: {})", known.join(", "))
    })
}

/// Start every emulator; refuses anything but loopback addresses.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Vec<Emulator>> {
    for addr in [args.deepgram, args.openai, args.cartesia] {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "emulators only listen on loopback, not {addr}"
        );
    }
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fault_rate),
        "--fault-rate must be between 0 and 1, not {}",
        args.fault_rate
    );
    let script = args.deepgram_script()?;
    let faults = FaultConfig {
        rate: args.fault_rate,
        kinds: args.fault_kinds.clone(),
        after_messages: args.fault_after,
        seed: args.fault_seed,
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
            default_script: script,
            repeat_script: true,
            ..Default::default()
        },
        args.deepgram,
    )
    .await?;
    Ok(vec![stt, llm, tts])
}

/// Where each emulator listens, as one JSON object line: `{"deepgram": "ws://...", ...}`.
pub fn describe_json(emulators: &[Emulator]) -> String {
    let urls: serde_json::Map<String, serde_json::Value> = emulators
        .iter()
        .map(|e| {
            let url = if e.name == "openai" {
                e.http_url()
            } else {
                e.ws_url()
            };
            (e.name.to_owned(), url.into())
        })
        .collect();
    format!("{}\n", serde_json::Value::Object(urls))
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
                "cartesia  {}/tts/websocket?cartesia_version=2026-08-14\n",
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
        let emus = start(&args(any, any)).await?;
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
        assert!(start(&args(any, public)).await.is_err());
        let json: serde_json::Value = serde_json::from_str(&describe_json(&emus))?;
        let openai = format!("http://{}", emus[1].addr);
        assert_eq!(json["openai"], openai.as_str());
        assert!(json["deepgram"]
            .as_str()
            .is_some_and(|u| u.starts_with("ws://")));
        Ok(())
    }

    fn args(any: SocketAddr, openai: SocketAddr) -> ServeArgs {
        ServeArgs {
            deepgram: any,
            openai,
            cartesia: any,
            fault_rate: 0.0,
            fault_kinds: vec![],
            fault_after: 3,
            fault_seed: 1,
            json: false,
            deepgram_transcript: vec![],
            deepgram_transcripts: None,
        }
    }

    #[test]
    fn fault_flags_are_checked() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ServeArgs,
        }
        let ok = Cli::try_parse_from(["x", "--fault-kinds", "stall,error_event"]);
        assert_eq!(
            ok.map(|c| c.args.fault_kinds).ok(),
            Some(vec![FaultKind::Stall, FaultKind::ErrorEvent])
        );
        let bad = Cli::try_parse_from(["x", "--fault-kinds", "stal"]).err();
        assert!(bad.is_some_and(|e| e.to_string().contains("unknown fault kind \"stal\"")));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's temporary file
    fn deepgram_transcripts_come_from_flags_a_file_or_the_fixtures() -> anyhow::Result<()> {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ServeArgs,
        }
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.args);
        let flags = parse(&[
            "x",
            "--deepgram-transcript",
            "one",
            "--deepgram-transcript",
            "two",
        ])?;
        assert_eq!(flags.deepgram_script()?, ["one", "two"]);
        let file = std::env::temp_dir().join(format!("dg-lines-{}.txt", std::process::id()));
        std::fs::write(&file, "first line\n\n  second line  \n")?;
        let path = file.to_string_lossy().into_owned();
        let from_file = parse(&["x", "--deepgram-transcripts", &path])?.deepgram_script();
        std::fs::remove_file(&file)?;
        assert_eq!(from_file?, ["first line", "second line"]);
        let fixtures = parse(&["x"])?.deepgram_script()?;
        assert_eq!(fixtures.len(), 6);
        assert!(fixtures[0].starts_with("Hello, I would like"));
        assert!(parse(&[
            "x",
            "--deepgram-transcript",
            "a",
            "--deepgram-transcripts",
            "f"
        ])
        .is_err());
        Ok(())
    }
}

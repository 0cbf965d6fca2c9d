//! The command line: global flags and subcommands. Each subcommand's work lives in its own module
//! or in the library; `main.rs` only loads the configuration and dispatches.

pub mod check;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use frontdesk::config::{AppConfig, Environment};
use frontdesk::simulate::SimArgs;
use frontdesk::telemetry::LogFormat;

/// Frontdesk: a real-time voice receptionist.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Environment: picks config/<env>.toml and its checks [default: FRONTDESK_ENV, else
    /// development].
    #[arg(long, global = true, value_enum)]
    pub env: Option<Environment>,
    /// Log level, over [log] level and FRONTDESK_LOG_LEVEL (RUST_LOG still wins).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log format, over [log] format and FRONTDESK_LOG_FORMAT.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent worker and its HTTP server (health, worker state, metrics).
    Start {
        #[command(flatten)]
        args: WorkerArgs,
    },
    /// `start` for development: debug logs, no load threshold (only max_calls limits).
    Dev {
        #[command(flatten)]
        args: WorkerArgs,
    },
    /// Join a LiveKit room directly as the agent (no dispatch) and hold the call until the
    /// caller leaves or ctrl-c: for trying the agent by hand.
    Connect {
        #[command(flatten)]
        args: ConnectArgs,
    },
    /// Validate the configuration, then reach the database, LiveKit and each provider.
    Check,
    /// Mint a LiveKit room join token for a test participant (prints the JWT).
    Token {
        #[command(flatten)]
        args: frontdesk::token::TokenArgs,
    },
    /// One call from a WAV file through the real pipeline; prints the transcript, writes the
    /// agent's audio. Without provider keys the local emulators answer.
    Console {
        #[command(flatten)]
        args: frontdesk::console::ConsoleArgs,
    },
    /// Serve the provider emulators on loopback ports (prints their URLs) until interrupted.
    Emulators {
        #[command(flatten)]
        args: frontdesk::emulators::serve::ServeArgs,
    },
    /// Apply, roll back, list or check database migrations (database.url / DATABASE_URL).
    Migrate {
        #[command(subcommand)]
        action: frontdesk::store::cli::MigrateAction,
    },
    /// Load the seed hospital (doctors, shifts, patients); running it twice changes nothing.
    Seed,
    /// N real WebRTC callers against the agent on a LiveKit server (like `lk load-test`): caller
    /// voice-to-voice, the agent's per-stage latencies, packet loss, CPU and memory per call.
    Loadtest {
        #[command(flatten)]
        args: frontdesk::loadtest::LoadtestArgs,
        #[command(flatten)]
        livekit: LiveKitArgs,
    },
    /// Run many concurrent calls offline against local providers and report latency per stage.
    Simulate {
        #[command(flatten)]
        args: SimArgs,
        /// Also write the Prometheus metrics at the end to this file.
        #[arg(long)]
        metrics_out: Option<PathBuf>,
    },
}

/// Overrides for `start` and `dev`, over the configuration.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WorkerArgs {
    /// LiveKit dispatch name [default: worker.agent_name].
    #[arg(long)]
    pub agent_name: Option<String>,
    /// Concurrent calls [default: worker.max_calls].
    #[arg(long)]
    pub max_calls: Option<u32>,
    /// Health/metrics port [default: http.port].
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Rooms get a simulated caller instead of real WebRTC media (tests, demos without media).
    #[arg(long)]
    pub simulated_caller: bool,
    #[command(flatten)]
    pub livekit: LiveKitArgs,
}

/// LiveKit server and credentials, over LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LiveKitArgs {
    /// LiveKit server URL [default: worker.url, LIVEKIT_URL].
    #[arg(long)]
    pub url: Option<String>,
    /// [default: LIVEKIT_API_KEY]
    #[arg(long)]
    pub api_key: Option<String>,
    /// [default: LIVEKIT_API_SECRET]
    #[arg(long)]
    pub api_secret: Option<String>,
}

impl LiveKitArgs {
    pub fn apply(&self, cfg: &mut AppConfig) {
        if let Some(url) = &self.url {
            cfg.worker.url = url.clone();
        }
        if let Some(key) = &self.api_key {
            cfg.worker.api_key = frontdesk::secret::Secret::new(key);
        }
        if let Some(secret) = &self.api_secret {
            cfg.worker.api_secret = frontdesk::secret::Secret::new(secret);
        }
    }
}

/// `connect`: which room, as whom.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Room to join (created by the server if it does not exist).
    #[arg(long)]
    pub room: String,
    /// The agent's identity in the room.
    #[arg(long, default_value = "frontdesk-agent")]
    pub identity: String,
    /// Talk to this participant only [default: the first one who publishes audio].
    #[arg(long)]
    pub participant_identity: Option<String>,
    #[command(flatten)]
    pub livekit: LiveKitArgs,
}

impl WorkerArgs {
    /// Apply the flags (and, for `dev`, no load threshold: only max_calls limits) to `cfg`.
    pub fn apply(&self, cfg: &mut AppConfig, dev: bool) {
        if let Some(name) = &self.agent_name {
            cfg.worker.agent_name = name.clone();
        }
        if let Some(n) = self.max_calls {
            cfg.worker.max_calls = n;
        }
        if let Some(port) = self.http_port {
            cfg.http.port = port;
        }
        self.livekit.apply(cfg);
        if dev {
            cfg.worker.load_threshold = 1.0;
        }
    }
}

impl Command {
    /// `dev` logs our crates at debug whatever the configuration says (libraries stay at info:
    /// rustls and tokio-postgres at debug drown everything else).
    pub fn log_level_override(&self) -> Option<&'static str> {
        matches!(self, Command::Dev { .. } | Command::Connect { .. })
            .then_some("info,frontdesk=debug,frontdesk_actors=debug")
    }
}

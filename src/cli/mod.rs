//! The command line: global flags and subcommands. Each subcommand's work lives in its own module
//! or in the library; `main.rs` only loads the configuration and dispatches.

pub mod check;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use frontdesk::config::source::Flag;
use frontdesk::config::Environment;
use frontdesk::simulate::SimArgs;
use frontdesk::telemetry::LogFormat;

/// Frontdesk: a real-time voice receptionist.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Config directory (its default.toml and <env>.toml over the embedded ones) or one TOML file
    /// [default: FRONTDESK_CONFIG, else ./config if it exists, else the embedded files only].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
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
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
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
    /// Usage of the calls in a window: calls, minutes, turns, tool calls, failures by reason,
    /// provider usage and cost, cache savings, p50/p95 turn latency (from the call record).
    Usage {
        #[command(flatten)]
        args: frontdesk::store::usage::cli::UsageArgs,
    },
    /// Show what the [retention] policy would remove (rows per table, oldest kept); --apply
    /// removes it in short batches. Appointments and patients are never touched.
    Retention {
        #[command(flatten)]
        args: frontdesk::store::retention::RetentionArgs,
    },
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
        #[arg(long, value_parser = frontdesk::simulate::parse::output_file)]
        metrics_out: Option<PathBuf>,
        /// Also write a self-contained HTML report (charts, no external files) to this file.
        #[arg(long, value_parser = frontdesk::simulate::parse::output_file)]
        html: Option<PathBuf>,
    },
}

/// `frontdesk config ...`
#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the merged configuration, each value with the layer it came from (secrets redacted);
    /// fails afterwards if it is invalid.
    Show {
        /// One JSON object: {"environment", "layers", "values": {"dotted.key": {"value", "origin"}}}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        livekit: LiveKitArgs,
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
    /// The flags given, as the configuration's top layer.
    pub fn flags(&self) -> Vec<Flag> {
        [
            ("--url", "worker.url", &self.url),
            ("--api-key", "worker.api_key", &self.api_key),
            ("--api-secret", "worker.api_secret", &self.api_secret),
        ]
        .into_iter()
        .filter_map(|(name, key, v)| v.as_ref().map(|v| flag(name, key, v.as_str())))
        .collect()
    }
}

fn flag(name: &'static str, key: &'static str, value: impl Into<toml::Value>) -> Flag {
    Flag {
        name,
        key,
        value: value.into(),
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
    /// The flags given (and, for `dev`, no load threshold and no CPU load: only max_calls limits).
    pub fn flags(&self, dev: bool) -> Vec<Flag> {
        let mut out = vec![];
        if dev {
            out.push(flag("dev", "worker.load_threshold", 1.0));
            // The server stops dispatching to a worker reporting load >= 0.7: on a developer's
            // busy machine (or CI) CPU load would starve the dev worker of calls.
            out.push(flag("dev", "worker.load_from_cpu", false));
            // `dev` serves the web playground; `start` only when the configuration says so.
            out.push(flag("dev", "http.playground", true));
        }
        if let Some(name) = &self.agent_name {
            out.push(flag("--agent-name", "worker.agent_name", name.as_str()));
        }
        if let Some(n) = self.max_calls {
            out.push(flag("--max-calls", "worker.max_calls", i64::from(n)));
        }
        if let Some(port) = self.http_port {
            out.push(flag("--http-port", "http.port", i64::from(port)));
        }
        out.extend(self.livekit.flags());
        out
    }
}

impl Command {
    /// The command's flags that override configuration keys: the top layer of the configuration.
    pub fn flags(&self) -> Vec<Flag> {
        match self {
            Command::Start { args } => args.flags(false),
            Command::Dev { args } => args.flags(true),
            Command::Connect { args } => args.livekit.flags(),
            Command::Loadtest { livekit, .. } => livekit.flags(),
            Command::Config {
                action: ConfigAction::Show { livekit, .. },
            } => livekit.flags(),
            _ => vec![],
        }
    }

    /// `dev` logs our crates at debug whatever the configuration says (libraries stay at info:
    /// rustls and tokio-postgres at debug drown everything else).
    pub fn log_level_override(&self) -> Option<&'static str> {
        matches!(self, Command::Dev { .. } | Command::Connect { .. })
            .then_some("info,frontdesk=debug,frontdesk_actors=debug")
    }

    /// Checks across arguments, which clap's value parsers see one at a time.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Command::Simulate { args, .. } => args.check(),
            _ => Ok(()),
        }
    }

    /// The level when `--log-level` is not given, over the configuration's: `simulate` is quiet.
    pub fn default_log_level(&self) -> Option<&'static str> {
        matches!(self, Command::Simulate { .. }).then_some(frontdesk::simulate::DEFAULT_LOG_LEVEL)
    }
}

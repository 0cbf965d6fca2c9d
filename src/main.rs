//! The binary: reads the process environment (the only place that does), loads the layered
//! configuration, sets up logs and dispatches the subcommand.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use frontdesk::config::vars::{Kind, VARS};
use frontdesk::config::{AppConfig, Environment, Vars};
use frontdesk::telemetry::LogFormat;
use frontdesk::{simulate, telemetry};
use tracing_subscriber::fmt::MakeWriter;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let vars: Vars = std::env::vars().collect();
    let mut failure = Failure::default();
    match run(cli, &vars, &mut failure) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            failure.report(&e);
            ExitCode::FAILURE
        }
    }
}

/// How a failure is reported: known once logs are set up.
#[derive(Default)]
struct Failure {
    secrets: Vec<String>,
    json: bool,
}

impl Failure {
    /// JSON logs: one error line for the collector. Otherwise plain text on stderr for whoever
    /// ran the command. Redacted either way (a library's message may quote a URL with a key).
    fn report(&self, e: &anyhow::Error) {
        if self.json {
            telemetry::log_error("frontdesk failed", e);
            return;
        }
        // One write of the whole text, so the redactor sees every secret whole.
        let text = format!("error: {e:#}\n");
        let redact = telemetry::Redact::new(std::io::stderr, &self.secrets);
        let _ = redact.make_writer().write_all(text.as_bytes());
    }
}

fn run(cli: Cli, vars: &Vars, failure: &mut Failure) -> anyhow::Result<()> {
    let env = Environment::resolve(cli.env, vars);
    let loaded = env.and_then(|env| AppConfig::load(env, vars));
    *failure = init_logs(&cli, loaded.as_ref().ok(), vars);
    let cfg = loaded?;
    tracing::debug!(environment = cfg.environment.name(), config = ?cfg, "configuration loaded");
    dispatch(cli.command, cfg)
}

/// Logs per the configuration (or its defaults when it failed to load, so the failure is still
/// reported), the CLI flags winning. Every secret the variables hold is redacted, loaded or not.
fn init_logs(cli: &Cli, cfg: Option<&AppConfig>, vars: &Vars) -> Failure {
    let fallback = frontdesk::config::LogConfig::default();
    let log = cfg.map_or(&fallback, |c| &c.log);
    let level = cli
        .command
        .log_level_override()
        .or(cli.log_level.as_deref())
        .unwrap_or(&log.level);
    let format = cli.log_format.unwrap_or(log.format);
    let mut secrets: Vec<String> = VARS
        .iter()
        .filter(|v| v.kind == Kind::Secret)
        .filter_map(|v| vars.get(v.name).cloned())
        .collect();
    secrets.extend(cfg.map(AppConfig::secrets).unwrap_or_default());
    telemetry::init_logs(level, format, &secrets);
    Failure {
        secrets,
        json: format == LogFormat::Json,
    }
}

fn dispatch(command: Command, mut cfg: AppConfig) -> anyhow::Result<()> {
    match command {
        Command::Start { args } => worker_command(cfg, &args, false),
        Command::Dev { args } => worker_command(cfg, &args, true),
        Command::Connect { args } => connect_command(cfg, &args),
        Command::Check => current_thread()?.block_on(cli::check::run(&cfg)),
        Command::Token { args } => {
            frontdesk::outln!("{}", frontdesk::token::mint(&cfg.worker, &args)?);
            Ok(())
        }
        Command::Console { args } => console_command(&cfg, &args),
        Command::Emulators { args } => multi_thread()?.block_on(async {
            let emulators = frontdesk::emulators::serve::start(&args).await?;
            let text = if args.json {
                frontdesk::emulators::serve::describe_json(&emulators)
            } else {
                frontdesk::emulators::serve::describe(&emulators)
            };
            // Flushed: scripts read the addresses through a pipe.
            frontdesk::stdout::write(&text);
            tokio::signal::ctrl_c().await?;
            Ok(())
        }),
        Command::Migrate { action } => {
            let db = database_config(&cfg)?;
            let env = cfg.environment;
            current_thread()?.block_on(frontdesk::store::cli::migrate(&db, action, env))
        }
        Command::Seed => {
            let db = database_config(&cfg)?;
            current_thread()?.block_on(frontdesk::store::cli::seed(&db))
        }
        Command::Loadtest { args, livekit } => {
            livekit.apply(&mut cfg);
            frontdesk::loadtest::main(&cfg, &args)
        }
        Command::Simulate {
            mut args,
            metrics_out,
        } => {
            args.pipeline = std::mem::take(&mut cfg.pipeline);
            args.prices = cfg.providers.prices.clone();
            simulate_command(args, metrics_out)
        }
    }
}

fn console_command(cfg: &AppConfig, args: &frontdesk::console::ConsoleArgs) -> anyhow::Result<()> {
    let outcome = multi_thread()?.block_on(frontdesk::console::run(cfg, args, true))?;
    let secs = outcome.agent_samples as f64 / f64::from(frontdesk_actors::audio::ROOM_RATE);
    let via = if outcome.emulated {
        "emulators"
    } else {
        "providers"
    };
    frontdesk::outln!(
        "call ended ({}) after {} turn(s) via the {via}; {secs:.1} s of agent audio in {}",
        outcome.end_reason,
        outcome.turns,
        args.output.display()
    );
    Ok(())
}

fn worker_command(mut cfg: AppConfig, args: &cli::WorkerArgs, dev: bool) -> anyhow::Result<()> {
    args.apply(&mut cfg, dev);
    let errors = cfg.validate();
    anyhow::ensure!(
        errors.is_empty(),
        "invalid flags:\n  {}",
        errors.join("\n  ")
    );
    let mode = frontdesk::service::WorkerMode {
        dev,
        simulated_caller: args.simulated_caller,
    };
    multi_thread()?.block_on(frontdesk::service::run_worker(cfg, mode))
}

fn connect_command(mut cfg: AppConfig, args: &cli::ConnectArgs) -> anyhow::Result<()> {
    args.livekit.apply(&mut cfg);
    let target = frontdesk::service::ConnectTarget {
        room: args.room.clone(),
        identity: args.identity.clone(),
        caller: args.participant_identity.clone(),
    };
    let outcome = multi_thread()?.block_on(frontdesk::service::connect(&cfg, target))?;
    frontdesk::outln!(
        "call ended ({}) after {} turn(s), {:.1} s",
        outcome.reason,
        outcome.turns,
        outcome.duration.as_secs_f64()
    );
    Ok(())
}

fn simulate_command(
    args: simulate::SimArgs,
    metrics_out: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let prometheus = telemetry::init_metrics()?;
    let report = multi_thread()?.block_on(simulate::run(args.clone()))?;
    frontdesk::stdout::write(&report.table());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        frontdesk::outln!("report written to {}", path.display());
    }
    if let Some(path) = metrics_out {
        std::fs::write(&path, prometheus.render())?;
    }
    anyhow::ensure!(
        report.all_calls_completed(),
        "{} of {} calls did not complete",
        report.calls - report.completed,
        report.calls
    );
    Ok(())
}

/// `[database]` from the layered configuration: PostgreSQL with a URL, else the SQLite file.
fn database_config(cfg: &AppConfig) -> anyhow::Result<frontdesk::store::DatabaseConfig> {
    Ok(cfg.database.clone())
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

//! The binary: reads the process environment and `.env` (the only place that does), loads the
//! layered configuration, sets up logs and dispatches the subcommand.

mod cli;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use frontdesk::config::source::{self, Flag, Inputs, Location, Merged};
use frontdesk::config::vars::{Kind, VARS};
use frontdesk::config::{show, AppConfig, ConfigError, Environment, Vars};
use frontdesk::telemetry::LogFormat;
use frontdesk::{simulate, telemetry};
use tracing_subscriber::fmt::MakeWriter;

use cli::{Cli, Command, ConfigAction};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What clap's value parsers cannot check alone, refused the same way before anything starts.
    if let Err(msg) = cli.command.check() {
        <Cli as clap::CommandFactory>::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    let mut failure = Failure::default();
    let result = environment(&cli)
        .map_err(anyhow::Error::from)
        .and_then(|(vars, from_dotenv)| run(cli, &vars, &from_dotenv, &mut failure));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            failure.report(&e);
            ExitCode::FAILURE
        }
    }
}

/// The process environment, with `.env` in the working directory filling in the variables it does
/// not set (a real variable wins), and the names `.env` gave. Those are also set in the process,
/// before any thread starts, for what reads the environment itself (RUST_LOG, child processes), and
/// so is `--config`: `loadtest`'s worker then reads the same files.
fn environment(cli: &Cli) -> Result<(Vars, BTreeSet<String>), ConfigError> {
    // A variable that is not UTF-8 is not one of ours; skipping it beats a panic.
    let mut vars: Vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let added = source::read_dotenv(Path::new(".env"), &vars)?;
    for (name, value) in &added {
        std::env::set_var(name, value);
    }
    if let Some(path) = &cli.config {
        std::env::set_var(source::CONFIG_VAR, path);
    }
    let names = added.keys().cloned().collect();
    vars.extend(added);
    Ok((vars, names))
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

fn run(
    cli: Cli,
    vars: &Vars,
    from_dotenv: &BTreeSet<String>,
    failure: &mut Failure,
) -> anyhow::Result<()> {
    let flags = cli.command.flags();
    let merged = match merge(&cli, vars, from_dotenv, &flags) {
        Ok(merged) => merged,
        Err(e) => {
            *failure = init_logs(&cli, None, vars, &flags);
            return Err(e.into());
        }
    };
    let built = merged.build();
    *failure = init_logs(&cli, built.as_ref().ok(), vars, &flags);
    if let Command::Config {
        action: ConfigAction::Show { json, .. },
    } = &cli.command
    {
        return config_show(&merged, built, *json);
    }
    let mut cfg = built?;
    // Caller transcripts are patient data: in debug logs in development only.
    cfg.pipeline.log_transcripts = cfg.environment == Environment::Development;
    tracing::debug!(environment = cfg.environment.name(), config = ?cfg, "configuration loaded");
    dispatch(cli.command, cfg)
}

/// Every layer: the files at `--config`/FRONTDESK_CONFIG/./config over the embedded ones, the
/// variables, the command's flags.
fn merge(
    cli: &Cli,
    vars: &Vars,
    from_dotenv: &BTreeSet<String>,
    flags: &[Flag],
) -> Result<Merged, ConfigError> {
    let env = Environment::resolve(cli.env, vars)?;
    let location = Location::resolve(cli.config.as_deref(), vars)?;
    Merged::load(Inputs {
        env,
        location: &location,
        vars,
        from_dotenv,
        flags,
    })
}

/// Print what was merged, then fail if it is not a valid configuration (so a script can use the
/// exit code and a person still sees the values).
fn config_show(
    merged: &Merged,
    built: Result<AppConfig, ConfigError>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        frontdesk::outln!("{}", show::json(merged));
    } else {
        frontdesk::stdout::write(&show::text(merged));
    }
    built?;
    Ok(())
}

/// Logs per the configuration (or its defaults when it failed to load, so the failure is still
/// reported), the CLI flags winning. Every secret the variables and flags hold is redacted, loaded
/// or not.
fn init_logs(cli: &Cli, cfg: Option<&AppConfig>, vars: &Vars, flags: &[Flag]) -> Failure {
    let fallback = frontdesk::config::LogConfig::default();
    let log = cfg.map_or(&fallback, |c| &c.log);
    let level = cli
        .command
        .log_level_override()
        .or(cli.log_level.as_deref())
        .or(cli.command.default_log_level())
        .unwrap_or(&log.level);
    let format = cli.log_format.unwrap_or(log.format);
    let mut secrets: Vec<String> = VARS
        .iter()
        .filter(|v| v.kind == Kind::Secret)
        .filter_map(|v| vars.get(v.name).cloned())
        .collect();
    secrets.extend(
        flags
            .iter()
            .filter(|f| show::is_secret(&f.key.split('.').collect::<Vec<_>>()))
            .filter_map(|f| f.value.as_str().map(str::to_owned)),
    );
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
        // Handled before dispatch: it prints even an invalid configuration.
        Command::Config { .. } => Ok(()),
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
        Command::Usage { args } => {
            let db = database_config(&cfg)?;
            current_thread()?.block_on(frontdesk::store::usage::cli::run(&db, &args))
        }
        Command::Retention { args } => {
            let db = database_config(&cfg)?;
            let run =
                frontdesk::store::retention::command(&db, &cfg.retention, cfg.environment, &args);
            current_thread()?.block_on(run)
        }
        // --url, --api-key, --api-secret are in `cfg` already (the flags layer).
        Command::Loadtest { args, .. } => frontdesk::loadtest::main(&cfg, &args),
        Command::Simulate {
            mut args,
            metrics_out,
            html,
        } => {
            args.pipeline = std::mem::take(&mut cfg.pipeline);
            args.prices = cfg.providers.prices.clone();
            args.cache = cfg.cache.clone();
            simulate_command(args, metrics_out, html)
        }
    }
}

fn console_command(cfg: &AppConfig, args: &frontdesk::console::ConsoleArgs) -> anyhow::Result<()> {
    // A closed reader of the transcript must not cut the call short (its record would be lost).
    frontdesk::stdout::keep_running_on_close();
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

/// The flags are in `cfg` already, validated with the rest (the top layer).
fn worker_command(cfg: AppConfig, args: &cli::WorkerArgs, dev: bool) -> anyhow::Result<()> {
    let mode = frontdesk::service::WorkerMode {
        dev,
        simulated_caller: args.simulated_caller,
    };
    multi_thread()?.block_on(frontdesk::service::run_worker(cfg, mode))
}

fn connect_command(cfg: AppConfig, args: &cli::ConnectArgs) -> anyhow::Result<()> {
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

#[allow(clippy::disallowed_methods)] // the reports are written after the runtime has finished
fn simulate_command(
    args: simulate::SimArgs,
    metrics_out: Option<std::path::PathBuf>,
    html: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let prometheus = telemetry::init_metrics()?;
    let report = multi_thread()?.block_on(simulate::run_shown(args.clone()))?;
    frontdesk::stdout::write(&report.table());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        frontdesk::outln!("report written to {}", path.display());
    }
    if let Some(path) = &html {
        std::fs::write(path, simulate::html::render(&report)?)?;
        frontdesk::outln!("HTML report written to {}", path.display());
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
    // Calls' frame pumps get runtimes of their own: one single-worker runtime per core, each call
    // on one of them (`pump::start_media_runtime`).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    frontdesk_actors::call::pump::start_media_runtime(cores)?;
    // The control runtime (dialogue, replies, mailboxes) wakes ahead of frame work (`sched`).
    tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(frontdesk::sched::control_thread)
        .enable_all()
        .build()
}

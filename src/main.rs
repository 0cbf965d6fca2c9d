use std::path::PathBuf;

use clap::{Parser, Subcommand};
use frontdesk::simulate::{self, SimArgs};
use frontdesk::telemetry::{self, LogFormat};

/// Frontdesk: a real-time voice receptionist.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Log level when RUST_LOG is unset.
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the provider emulators on loopback ports (prints their URLs) until interrupted.
    Emulators {
        #[command(flatten)]
        args: frontdesk::emulators::serve::ServeArgs,
    },
    /// Apply, roll back, list or check database migrations (DATABASE_URL, else embedded SQLite).
    Migrate {
        #[command(subcommand)]
        action: frontdesk::store::cli::MigrateAction,
    },
    /// Load the seed hospital (doctors, shifts, patients); running it twice changes nothing.
    Seed,
    /// Run many concurrent calls offline against local providers and report latency per stage.
    Simulate {
        #[command(flatten)]
        args: SimArgs,
        /// Also write the Prometheus metrics at the end to this file.
        #[arg(long)]
        metrics_out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logs(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Emulators { args } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let emulators = frontdesk::emulators::serve::start(&args).await?;
                print!("{}", frontdesk::emulators::serve::describe(&emulators));
                tokio::signal::ctrl_c().await?;
                Ok(())
            })
        }
        Command::Migrate { action } => {
            let cfg = database_config()?;
            current_thread()?.block_on(frontdesk::store::cli::migrate(&cfg, action))
        }
        Command::Seed => {
            let cfg = database_config()?;
            current_thread()?.block_on(frontdesk::store::cli::seed(&cfg))
        }
        Command::Simulate {
            mut args,
            metrics_out,
        } => {
            let cfg = frontdesk::config::AppConfig::embedded()?;
            args.pipeline = cfg.pipeline;
            args.prices = cfg.providers.prices;
            let prometheus = telemetry::init_metrics()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(simulate::run(args.clone()))?;
            print!("{}", report.table());
            if let Some(path) = &args.report {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
                println!("report written to {}", path.display());
            }
            if let Some(path) = metrics_out {
                std::fs::write(&path, prometheus.render())?;
            }
            if !report.all_calls_completed() {
                anyhow::bail!(
                    "{} of {} calls did not complete",
                    report.calls - report.completed,
                    report.calls
                );
            }
            Ok(())
        }
    }
}

/// The embedded configuration with `DATABASE_URL` applied (read here, at the top, only); without
/// one, the embedded SQLite database.
fn database_config() -> anyhow::Result<frontdesk::store::DatabaseConfig> {
    let mut cfg = frontdesk::config::AppConfig::embedded()?.database;
    if let Ok(url) = std::env::var("DATABASE_URL") {
        cfg.url = frontdesk::secret::Secret::new(url);
    }
    let errors = cfg.validate();
    anyhow::ensure!(
        errors.is_empty(),
        "invalid configuration:\n  {}",
        errors.join("\n  ")
    );
    Ok(cfg)
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

//! `frontdesk migrate …` and `frontdesk seed`.

use anyhow::Context;

use super::migrate::{Migrator, Status, POSTGRES, SQLITE};
use super::seed::SeedCounts;
use super::{Backend, DatabaseConfig};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last N applied migrations (default 1).
    Down {
        #[arg(default_value_t = 1)]
        n: usize,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Compare the live schema with what the migrations define.
    Verify,
}

/// One connection from the pool (the advisory lock is per session, so it must be held throughout).
async fn connection(cfg: &DatabaseConfig) -> anyhow::Result<deadpool_postgres::Object> {
    let pool = super::postgres::pool::build(cfg)?;
    super::postgres::pool::get(&pool)
        .await
        .context("connecting to the database")
}

pub async fn migrate(cfg: &DatabaseConfig, action: MigrateAction) -> anyhow::Result<()> {
    match cfg.backend() {
        Backend::Postgres => migrate_postgres(cfg, action).await,
        Backend::Sqlite(path) => {
            tokio::task::spawn_blocking(move || migrate_sqlite(&path, action)).await?
        }
    }
}

fn print_status(status: &[Status]) {
    for s in status {
        let state = if s.applied { "applied" } else { "pending" };
        println!("{:04} {:<24} {state}", s.version, s.name);
    }
}

fn migrate_sqlite(path: &str, action: MigrateAction) -> anyhow::Result<()> {
    let mut conn = super::sqlite::connect(path).with_context(|| format!("opening {path}"))?;
    let mut m = super::sqlite::migrate::Migrator::new(&mut conn, SQLITE);
    match action {
        MigrateAction::Up => {
            let done = m.up()?;
            println!("applied {} migration(s) {done:?} to {path}", done.len());
        }
        MigrateAction::Down { n } => {
            let done = m.down(n)?;
            println!("rolled back {} migration(s) {done:?} in {path}", done.len());
        }
        MigrateAction::Status => print_status(&m.status()?),
        MigrateAction::Verify => {
            m.verify()?;
            println!("schema of {path} matches the migrations");
        }
    }
    Ok(())
}

async fn migrate_postgres(cfg: &DatabaseConfig, action: MigrateAction) -> anyhow::Result<()> {
    let mut conn = connection(cfg).await?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let mut m = Migrator::new(client, POSTGRES);
    match action {
        MigrateAction::Up => {
            let done = m.up().await?;
            println!("applied {} migration(s) {done:?}", done.len());
        }
        MigrateAction::Down { n } => {
            let done = m.down(n).await?;
            println!("rolled back {} migration(s) {done:?}", done.len());
        }
        MigrateAction::Status => print_status(&m.status().await?),
        MigrateAction::Verify => {
            m.verify().await?;
            println!("schema matches the migrations");
        }
    }
    Ok(())
}

pub async fn seed(cfg: &DatabaseConfig) -> anyhow::Result<()> {
    let counts: SeedCounts = match cfg.backend() {
        Backend::Postgres => {
            let mut conn = connection(cfg).await?;
            super::seed::run(&mut conn).await.context("seeding")?
        }
        Backend::Sqlite(path) => {
            tokio::task::spawn_blocking(move || {
                let mut conn = super::sqlite::connect(&path)?;
                // Seeding needs the tables; on SQLite the schema comes with the file.
                super::sqlite::migrate::Migrator::new(&mut conn, SQLITE).up()?;
                anyhow::Ok(super::sqlite::seed::run(&mut conn)?)
            })
            .await??
        }
    };
    println!(
        "seeded: {} doctors, {} shifts, {} patients",
        counts.doctors, counts.shifts, counts.patients
    );
    Ok(())
}

//! `frontdesk migrate …` and `frontdesk seed`.

use anyhow::Context;

use super::migrate::{Migrator, POSTGRES};
use super::DatabaseConfig;

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
        MigrateAction::Status => {
            for s in m.status().await? {
                let state = if s.applied { "applied" } else { "pending" };
                println!("{:04} {:<24} {state}", s.version, s.name);
            }
        }
        MigrateAction::Verify => {
            m.verify().await?;
            println!("schema matches the migrations");
        }
    }
    Ok(())
}

pub async fn seed(cfg: &DatabaseConfig) -> anyhow::Result<()> {
    let mut conn = connection(cfg).await?;
    let counts = super::seed::run(&mut conn).await.context("seeding")?;
    println!(
        "seeded: {} doctors, {} shifts, {} patients",
        counts.doctors, counts.shifts, counts.patients
    );
    Ok(())
}

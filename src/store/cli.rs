//! `frontdesk migrate …` and `frontdesk seed`.

use anyhow::Context;

use crate::config::Environment;

use super::migrate::{rollback_plan, Migration, Migrator, Status, POSTGRES, SQLITE};
use super::seed::SeedCounts;
use super::{Backend, DatabaseConfig};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last N applied migrations (default 1), dropping their tables and every row
    /// in them; what will go is printed first.
    Down {
        #[arg(default_value_t = 1)]
        n: usize,
        /// Confirm the roll-back: required in production.
        #[arg(long)]
        yes: bool,
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

/// `env` decides whether `down` needs `--yes`.
pub async fn migrate(
    cfg: &DatabaseConfig,
    action: MigrateAction,
    env: Environment,
) -> anyhow::Result<()> {
    match cfg.backend() {
        Backend::Postgres => migrate_postgres(cfg, action, env).await,
        Backend::Sqlite(path) => {
            tokio::task::spawn_blocking(move || migrate_sqlite(&path, action, env)).await?
        }
    }
}

fn versions(plan: &[&Migration]) -> Vec<i64> {
    plan.iter().map(|m| m.version).collect()
}

/// Print what rolling back `plan` drops; in production, refuse unless `yes`. The tables hold
/// patients' appointments and call records: nothing brings them back.
fn confirm_rollback(plan: &[&Migration], env: Environment, yes: bool) -> anyhow::Result<()> {
    if plan.is_empty() {
        crate::outln!("no applied migration to roll back");
        return Ok(());
    }
    crate::outln!("{} migration(s) to roll back, newest first:", plan.len());
    for m in plan {
        let tables = m.dropped_tables();
        let drops = if tables.is_empty() {
            "drops no table".to_string()
        } else {
            format!("drops {}", tables.join(", "))
        };
        crate::outln!("  {}: {drops}", m.name);
    }
    anyhow::ensure!(
        yes || env != Environment::Production,
        "refusing to roll back in production without --yes: the tables above and every row in them would be dropped"
    );
    Ok(())
}

fn print_status(status: &[Status]) {
    for s in status {
        let state = if s.applied { "applied" } else { "pending" };
        crate::outln!("{:04} {:<24} {state}", s.version, s.name);
    }
}

fn migrate_sqlite(path: &str, action: MigrateAction, env: Environment) -> anyhow::Result<()> {
    let mut conn = super::sqlite::connect(path).with_context(|| format!("opening {path}"))?;
    let mut m = super::sqlite::migrate::Migrator::new(&mut conn, SQLITE);
    match action {
        MigrateAction::Up => {
            let done = m.up()?;
            crate::outln!("applied {} migration(s) {done:?} to {path}", done.len());
        }
        MigrateAction::Down { n, yes } => {
            let plan = rollback_plan(SQLITE, &m.status()?, n);
            confirm_rollback(&plan, env, yes)?;
            let done = m.down_expecting(&versions(&plan))?;
            crate::outln!("rolled back {} migration(s) {done:?} in {path}", done.len());
        }
        MigrateAction::Status => print_status(&m.status()?),
        MigrateAction::Verify => {
            m.verify()?;
            crate::outln!("schema of {path} matches the migrations");
        }
    }
    Ok(())
}

async fn migrate_postgres(
    cfg: &DatabaseConfig,
    action: MigrateAction,
    env: Environment,
) -> anyhow::Result<()> {
    let mut conn = connection(cfg).await?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let mut m = Migrator::new(client, POSTGRES);
    match action {
        MigrateAction::Up => {
            let done = m.up().await?;
            crate::outln!("applied {} migration(s) {done:?}", done.len());
        }
        MigrateAction::Down { n, yes } => {
            let status = m.status().await?;
            let plan = rollback_plan(POSTGRES, &status, n);
            confirm_rollback(&plan, env, yes)?;
            let done = m.down_expecting(&versions(&plan)).await?;
            crate::outln!("rolled back {} migration(s) {done:?}", done.len());
        }
        MigrateAction::Status => print_status(&m.status().await?),
        MigrateAction::Verify => {
            m.verify().await?;
            crate::outln!("schema matches the migrations");
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
    crate::outln!(
        "seeded: {} doctors, {} shifts, {} patients",
        counts.doctors,
        counts.shifts,
        counts.patients
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn applied(path: &str) -> Vec<i64> {
        let mut conn = super::super::sqlite::connect(path).unwrap();
        let mut m = super::super::sqlite::migrate::Migrator::new(&mut conn, SQLITE);
        let status = m.status().unwrap();
        status
            .iter()
            .filter(|s| s.applied)
            .map(|s| s.version)
            .collect()
    }

    #[tokio::test]
    async fn down_in_production_needs_yes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db").display().to_string();
        let cfg = DatabaseConfig {
            sqlite_path: path.clone(),
            ..Default::default()
        };
        migrate(&cfg, MigrateAction::Up, Environment::Production)
            .await
            .unwrap();
        let down = |yes| MigrateAction::Down { n: 2, yes };
        let err = migrate(&cfg, down(false), Environment::Production)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        assert_eq!(applied(&path), [1, 2, 3], "nothing rolled back");
        migrate(&cfg, down(true), Environment::Production)
            .await
            .unwrap();
        assert_eq!(applied(&path), [1]);
        migrate(&cfg, down(false), Environment::Development)
            .await
            .unwrap();
        assert!(applied(&path).is_empty(), "outside production no --yes");
    }

    #[test]
    fn the_plan_names_each_migration_and_its_tables() {
        let status: Vec<Status> = SQLITE
            .iter()
            .map(|m| Status {
                version: m.version,
                name: m.name.into(),
                applied: true,
            })
            .collect();
        let plan = rollback_plan(SQLITE, &status, 5);
        let names: Vec<_> = plan.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            ["0003_response_cache", "0002_call_record", "0001_hospital"]
        );
        assert_eq!(plan[0].dropped_tables()[0], "usage.saved_cost_usd");
        assert_eq!(
            plan[2].dropped_tables(),
            ["appointments", "doctor_shifts", "doctors", "patients"]
        );
        assert!(rollback_plan(SQLITE, &status[..1], 5).len() == 1);
        let tampered = Migration {
            down: "-- gone; really\nDROP TABLE IF EXISTS a, b CASCADE;\ndrop table c;\nALTER TABLE d DROP COLUMN e;",
            ..SQLITE[0]
        };
        assert_eq!(tampered.dropped_tables(), ["a", "b", "c", "d.e"]);
    }
}

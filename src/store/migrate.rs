//! Versioned migrations (`sql/postgres/NNNN_name.{up,down}.sql`, embedded in the binary): applied
//! under an advisory lock so two deploys cannot migrate at once, each in its own transaction,
//! recorded with a checksum; an applied migration whose file changed is refused; `verify` compares
//! the live schema with what the migrations build in a scratch schema.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// One migration pair.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        let digest = Sha256::digest(self.up.as_bytes());
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl Migration {
    /// The tables (`DROP TABLE [IF EXISTS] a, b`) and columns (`t.c`) its down script drops, in
    /// script order: what a roll-back destroys, to be shown before it happens.
    pub fn dropped_tables(&self) -> Vec<String> {
        // Comments out first: one may hold a `;`.
        let code: Vec<&str> = self
            .down
            .lines()
            .filter_map(|l| l.split("--").next())
            .collect();
        let mut out = vec![];
        for statement in code.join("\n").split(';') {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let is = |i: usize, w: &str| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
            // `ALTER TABLE t DROP COLUMN c` destroys data too: shown as `t.c`.
            if is(0, "ALTER") && is(1, "TABLE") && is(3, "DROP") && is(4, "COLUMN") {
                if let (Some(t), Some(c)) = (words.get(2), words.get(5)) {
                    out.push(format!("{t}.{c}"));
                }
                continue;
            }
            if !(is(0, "DROP") && is(1, "TABLE")) {
                continue;
            }
            let first = if is(2, "IF") && is(3, "EXISTS") { 4 } else { 2 };
            let names = words.iter().skip(first).flat_map(|w| w.split(','));
            out.extend(
                names
                    .filter(|n| !n.is_empty())
                    .filter(|n| {
                        !["CASCADE", "RESTRICT"]
                            .iter()
                            .any(|k| n.eq_ignore_ascii_case(k))
                    })
                    .map(str::to_owned),
            );
        }
        out
    }
}

/// The last `n` applied migrations of `status`, newest first: what `down(n)` rolls back.
pub fn rollback_plan<'m>(
    migrations: &'m [Migration],
    status: &[Status],
    n: usize,
) -> Vec<&'m Migration> {
    let applied = status.iter().filter(|s| s.applied).rev().take(n);
    applied
        .filter_map(|s| migrations.iter().find(|m| m.version == s.version))
        .collect()
}

macro_rules! migration {
    ($backend:literal, $v:expr, $name:literal) => {
        Migration {
            version: $v,
            name: $name,
            up: include_str!(concat!("../../sql/", $backend, "/", $name, ".up.sql")),
            down: include_str!(concat!("../../sql/", $backend, "/", $name, ".down.sql")),
        }
    };
}

/// Every PostgreSQL migration, in order.
pub const POSTGRES: &[Migration] = &[
    migration!("postgres", 1, "0001_hospital"),
    migration!("postgres", 2, "0002_call_record"),
    migration!("postgres", 3, "0003_response_cache"),
];

/// Every SQLite migration, in order (same versions and names as PostgreSQL's).
pub const SQLITE: &[Migration] = &[
    migration!("sqlite", 1, "0001_hospital"),
    migration!("sqlite", 2, "0002_call_record"),
    migration!("sqlite", 3, "0003_response_cache"),
];

/// Any number: both deploys only need to agree on it.
const LOCK_KEY: i64 = 0x6672_6f6e_7464_736b; // "frontdsk"

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Not a `#[source]`: the text already holds what the server said, and the driver's own
    /// chain would repeat it with its DETAIL (which may quote a patient's row).
    #[error("database: {}", super::postgres::pool::describe(.0))]
    Db(tokio_postgres::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {version} ({name}) was changed after it was applied (checksum {applied} in the database, {file} in the binary); add a new migration instead")]
    Tampered {
        version: i64,
        name: String,
        applied: String,
        file: String,
    },
    #[error("the database has migration {0}, which this binary does not know; it is newer than this binary")]
    Unknown(i64),
    #[error("the migrations to roll back changed since they were shown ({shown:?}, now {now:?}): another migrator ran; nothing was rolled back")]
    PlanChanged { shown: Vec<i64>, now: Vec<i64> },
    #[error("schema differs from the migrations:\n  {}", .0.join("\n  "))]
    Drift(Vec<String>),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Db(e)
    }
}

impl MigrateError {
    pub fn is_retriable(&self) -> bool {
        match self {
            MigrateError::Db(e) => e.code().is_none(),
            MigrateError::Sqlite(e) => super::sqlite::is_busy(e),
            _ => false,
        }
    }
}

/// The applied versions (from the runner's table), after checking each is known to this binary
/// and its file unchanged since it was applied. Shared by every backend's runner.
pub(crate) fn check_applied(
    migrations: &[Migration],
    rows: Vec<(i64, String)>,
) -> Result<Vec<i64>, MigrateError> {
    let mut out = vec![];
    for (version, sum) in rows {
        let m = migrations
            .iter()
            .find(|m| m.version == version)
            .ok_or(MigrateError::Unknown(version))?;
        if m.checksum() != sum {
            return Err(MigrateError::Tampered {
                version,
                name: m.name.into(),
                applied: sum,
                file: m.checksum(),
            });
        }
        out.push(version);
    }
    Ok(out)
}

/// The last `expected.len()` of `applied`, newest first, must be `expected`: a roll-back does what
/// was shown to the operator or nothing.
pub(crate) fn check_plan(applied: &[i64], expected: &[i64]) -> Result<(), MigrateError> {
    let now: Vec<i64> = applied.iter().rev().take(expected.len()).copied().collect();
    if now == expected {
        Ok(())
    } else {
        Err(MigrateError::PlanChanged {
            shown: expected.to_vec(),
            now,
        })
    }
}

/// One row of `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub version: i64,
    pub name: String,
    pub applied: bool,
}

/// Migrations against one connection (hold it: the advisory lock is per session).
pub struct Migrator<'a> {
    client: &'a mut Client,
    migrations: &'a [Migration],
}

impl<'a> Migrator<'a> {
    pub fn new(client: &'a mut Client, migrations: &'a [Migration]) -> Self {
        Self { client, migrations }
    }

    async fn ensure_table(&mut self) -> Result<(), MigrateError> {
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        Ok(())
    }

    /// Applied versions, after checking every applied file is unchanged.
    async fn applied(&mut self) -> Result<Vec<i64>, MigrateError> {
        let rows = self
            .client
            .query(
                "SELECT version, checksum FROM schema_migrations ORDER BY version",
                &[],
            )
            .await?;
        let rows = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        check_applied(self.migrations, rows)
    }

    /// Take the advisory lock (waiting for another migrator) and make sure the table exists.
    async fn lock(&mut self) -> Result<(), MigrateError> {
        self.client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await?;
        self.ensure_table().await
    }

    async fn unlock(&mut self) {
        // Ending the session releases it too; this only frees it sooner.
        let _ = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
    }

    /// Apply every pending migration; returns the versions applied.
    pub async fn up(&mut self) -> Result<Vec<i64>, MigrateError> {
        self.lock().await?;
        let result = self.up_locked().await;
        self.unlock().await;
        result
    }

    async fn up_locked(&mut self) -> Result<Vec<i64>, MigrateError> {
        let applied = self.applied().await?;
        let mut done = vec![];
        for mig in self
            .migrations
            .iter()
            .filter(|x| !applied.contains(&x.version))
        {
            let tx = self.client.transaction().await?;
            tx.batch_execute(mig.up).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&mig.version, &mig.name, &mig.checksum()],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = mig.version, name = mig.name, "migration applied");
            done.push(mig.version);
        }
        Ok(done)
    }

    /// Roll back the last `n` applied migrations; returns the versions rolled back.
    pub async fn down(&mut self, n: usize) -> Result<Vec<i64>, MigrateError> {
        self.lock().await?;
        let result = self.down_locked(n, None).await;
        self.unlock().await;
        result
    }

    /// Roll back exactly `expected` (newest first, as `rollback_plan` showed them), or nothing if
    /// the last applied migrations are no longer those.
    pub async fn down_expecting(&mut self, expected: &[i64]) -> Result<Vec<i64>, MigrateError> {
        self.lock().await?;
        let result = self.down_locked(expected.len(), Some(expected)).await;
        self.unlock().await;
        result
    }

    async fn down_locked(
        &mut self,
        n: usize,
        expected: Option<&[i64]>,
    ) -> Result<Vec<i64>, MigrateError> {
        let applied = self.applied().await?;
        if let Some(expected) = expected {
            check_plan(&applied, expected)?;
        }
        let mut done = vec![];
        for version in applied.iter().rev().take(n) {
            let Some(mig) = self.migrations.iter().find(|x| x.version == *version) else {
                return Err(MigrateError::Unknown(*version));
            };
            let tx = self.client.transaction().await?;
            tx.batch_execute(mig.down).await?;
            tx.execute(
                "DELETE FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version, name = mig.name, "migration rolled back");
            done.push(*version);
        }
        Ok(done)
    }

    pub async fn status(&mut self) -> Result<Vec<Status>, MigrateError> {
        self.lock().await?;
        let applied = self.applied().await;
        self.unlock().await;
        let applied = applied?;
        Ok(self
            .migrations
            .iter()
            .map(|x| Status {
                version: x.version,
                name: x.name.into(),
                applied: applied.contains(&x.version),
            })
            .collect())
    }

    /// Compare the live schema with the one the migrations build in a scratch schema.
    pub async fn verify(&mut self) -> Result<(), MigrateError> {
        let live_schema: String = self
            .client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        let live = super::introspect::schema(self.client, &live_schema).await?;
        let scratch = format!("frontdesk_verify_{}", std::process::id());
        let expected = self.build_scratch(&scratch).await;
        let drop = format!("DROP SCHEMA IF EXISTS {scratch} CASCADE");
        self.client.batch_execute(&drop).await?;
        let expected = expected?;
        let diff = diff(&expected, &live);
        if diff.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::Drift(diff))
        }
    }

    async fn build_scratch(&mut self, scratch: &str) -> Result<BTreeSet<String>, MigrateError> {
        let path: String = self.client.query_one("SHOW search_path", &[]).await?.get(0);
        self.client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {scratch} CASCADE; CREATE SCHEMA {scratch};
                 SET search_path = {scratch}, public"
            ))
            .await?;
        let mut result = Ok(());
        for m in self.migrations {
            if let Err(e) = self.client.batch_execute(m.up).await {
                result = Err(e);
                break;
            }
        }
        let built = match result {
            Ok(()) => super::introspect::schema(self.client, scratch).await,
            Err(e) => Err(e.into()),
        };
        self.client
            .batch_execute(&format!("SET search_path = {path}"))
            .await?;
        built
    }
}

/// What one side has that the other lacks, `schema_migrations` aside (the runner's own table).
pub(crate) fn diff(expected: &BTreeSet<String>, live: &BTreeSet<String>) -> Vec<String> {
    let ours = |s: &&String| !s.contains("schema_migrations");
    let missing = expected
        .difference(live)
        .filter(ours)
        .map(|s| format!("missing: {s}"));
    let extra = live
        .difference(expected)
        .filter(ours)
        .map(|s| format!("unexpected: {s}"));
    missing.chain(extra).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_holds_only_while_the_applied_tail_is_unchanged() {
        assert!(check_plan(&[1, 2], &[2, 1]).is_ok());
        assert!(check_plan(&[1, 2], &[2]).is_ok());
        assert!(check_plan(&[1, 2], &[]).is_ok());
        let err = check_plan(&[1, 2, 3], &[2, 1]).unwrap_err();
        assert!(matches!(err, MigrateError::PlanChanged { ref now, .. } if now == &[3, 2]));
    }
}

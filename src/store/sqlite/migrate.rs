//! Migrations on SQLite (`sql/sqlite/`): the same runner contract as PostgreSQL's. The whole run
//! is one IMMEDIATE transaction, SQLite's database-wide write lock, so two processes cannot
//! migrate at once; checksums refuse a changed file; `verify` compares the live schema with one
//! the migrations build in a scratch in-memory database.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use crate::store::migrate::{check_applied, check_plan, diff, MigrateError, Migration, Status};

pub struct Migrator<'a> {
    conn: &'a mut Connection,
    migrations: &'a [Migration],
}

fn ensure_table(tx: &Transaction) -> Result<(), MigrateError> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
    )?;
    Ok(())
}

/// Applied versions, after checking every applied file is unchanged.
fn applied(tx: &Transaction, migrations: &[Migration]) -> Result<Vec<i64>, MigrateError> {
    let mut stmt =
        tx.prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    check_applied(migrations, rows)
}

impl<'a> Migrator<'a> {
    pub fn new(conn: &'a mut Connection, migrations: &'a [Migration]) -> Self {
        Self { conn, migrations }
    }

    /// Run `f` holding the write lock, with the migrations table in place and checked.
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&Transaction, &[Migration], Vec<i64>) -> Result<T, MigrateError>,
    ) -> Result<T, MigrateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_table(&tx)?;
        let done = applied(&tx, self.migrations)?;
        let out = f(&tx, self.migrations, done)?;
        tx.commit()?;
        Ok(out)
    }

    /// Apply every pending migration; returns the versions applied.
    pub fn up(&mut self) -> Result<Vec<i64>, MigrateError> {
        self.locked(|tx, migrations, done| {
            let mut applied = vec![];
            for m in migrations.iter().filter(|m| !done.contains(&m.version)) {
                tx.execute_batch(m.up)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, m.checksum()],
                )?;
                tracing::info!(version = m.version, name = m.name, "migration applied");
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    /// Roll back the last `n` applied migrations; returns the versions rolled back.
    pub fn down(&mut self, n: usize) -> Result<Vec<i64>, MigrateError> {
        self.down_checked(n, None)
    }

    /// Roll back exactly `expected` (newest first, as `rollback_plan` showed them), or nothing if
    /// the last applied migrations are no longer those.
    pub fn down_expecting(&mut self, expected: &[i64]) -> Result<Vec<i64>, MigrateError> {
        self.down_checked(expected.len(), Some(expected))
    }

    fn down_checked(
        &mut self,
        n: usize,
        expected: Option<&[i64]>,
    ) -> Result<Vec<i64>, MigrateError> {
        self.locked(|tx, migrations, done| {
            if let Some(expected) = expected {
                check_plan(&done, expected)?;
            }
            let mut rolled = vec![];
            for version in done.iter().rev().take(n) {
                let m = migrations
                    .iter()
                    .find(|m| m.version == *version)
                    .ok_or(MigrateError::Unknown(*version))?;
                tx.execute_batch(m.down)?;
                tx.execute(
                    "DELETE FROM schema_migrations WHERE version = ?1",
                    [version],
                )?;
                tracing::info!(version, name = m.name, "migration rolled back");
                rolled.push(*version);
            }
            Ok(rolled)
        })
    }

    pub fn status(&mut self) -> Result<Vec<Status>, MigrateError> {
        self.locked(|_, migrations, done| {
            Ok(migrations
                .iter()
                .map(|m| Status {
                    version: m.version,
                    name: m.name.into(),
                    applied: done.contains(&m.version),
                })
                .collect())
        })
    }

    /// Compare the live schema with the one the migrations build from nothing.
    pub fn verify(&mut self) -> Result<(), MigrateError> {
        let live = schema(self.conn)?;
        let mut scratch = Connection::open_in_memory()?;
        let tx = scratch.transaction()?;
        for m in self.migrations {
            tx.execute_batch(m.up)?;
        }
        tx.commit()?;
        let expected = schema(&scratch)?;
        let drift = diff(&expected, &live);
        if drift.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::Drift(drift))
        }
    }
}

/// Every table, index and trigger with its defining SQL, whitespace-normalised.
pub fn schema(c: &Connection) -> Result<BTreeSet<String>, MigrateError> {
    let mut stmt = c.prepare(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master
          WHERE name NOT LIKE 'sqlite_%'",
    )?;
    let rows = stmt.query_map([], |r| {
        let (kind, name, table, sql): (String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(format!("{kind} {table}.{name}: {sql}"))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

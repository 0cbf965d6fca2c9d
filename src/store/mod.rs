//! The stores behind the `Store` trait: PostgreSQL (production) and embedded SQLite (the
//! zero-setup default without a `DATABASE_URL`), each with migrations and seed data.

pub mod cli;
pub mod config;
pub mod introspect;
pub mod migrate;
pub mod postgres;
pub mod retention;
pub mod seed;
pub mod sqlite;
pub mod usage;

use std::sync::Arc;

use frontdesk_actors::store::Store;

pub use config::{Backend, DatabaseConfig};

/// PostgreSQL for a `postgres://` URL (migrated by `frontdesk migrate up`, a deploy step); SQLite
/// otherwise, created, migrated and seeded on open so it needs no set-up at all.
pub fn open_store(cfg: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    match cfg.backend() {
        Backend::Postgres => {
            let pool = postgres::pool::build(cfg)?;
            Ok(Arc::new(postgres::PgStore::new(pool)))
        }
        Backend::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(&path)?)),
    }
}

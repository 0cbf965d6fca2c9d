//! The stores behind the `Store` trait: PostgreSQL (production), with migrations and seed data.
//! Without a `DATABASE_URL` the service runs on the in-process store.

pub mod cli;
pub mod config;
pub mod introspect;
pub mod migrate;
pub mod postgres;
pub mod seed;

use std::sync::Arc;

use frontdesk_actors::doubles::MemoryStore;
use frontdesk_actors::store::Store;

pub use config::DatabaseConfig;

/// PostgreSQL when a URL is configured, else the in-process seeded store (SQLite lands later).
pub fn open_store(cfg: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    if cfg.url.is_empty() {
        return Ok(Arc::new(MemoryStore::seeded()));
    }
    let pool = postgres::pool::build(cfg)?;
    Ok(Arc::new(postgres::PgStore::new(pool)))
}

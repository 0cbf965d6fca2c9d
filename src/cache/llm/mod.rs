//! The LLM answer cache (issue 14): completions whose answer does not depend on the caller
//! (opening hours, which doctors work on Saturday, the next question of a booking flow before the
//! caller said who they are), keyed by exact normalised conversation, prompt version, model and
//! the hospital's data version, kept `ttl`. `rule` decides what may be cached; nothing that
//! carries patient data ever is. The cache sits in front of the LLM provider (`CachedLlm`) and
//! reports its verdict as the stream's first event, so `CallDeps` is unchanged and the dialogue
//! only counts.

mod cache;
pub mod config;
pub mod metrics;
pub mod normalise;
mod provider;
pub mod rule;
pub mod store;

use std::sync::Arc;

use frontdesk_actors::provider::LlmProvider;
use frontdesk_actors::store::Store;

use crate::store::{Backend, DatabaseConfig};

pub use cache::{AnswerCache, CachedAnswer, Clock, Key, Lookup};
pub use config::LlmCacheConfig;
pub use provider::CachedLlm;
pub use store::{Answer, AnswerError, AnswerRow, AnswerStore, CachedCall};

/// The database layer on the configured database (a pool or connection of its own).
pub fn open_store(db: &DatabaseConfig) -> anyhow::Result<Arc<dyn AnswerStore>> {
    Ok(match db.backend() {
        Backend::Postgres => {
            let pool = crate::store::postgres::pool::build(db)?;
            Arc::new(crate::store::postgres::PgStore::new(pool))
        }
        Backend::Sqlite(path) => Arc::new(crate::store::sqlite::SqliteStore::open(&path)?),
    })
}

/// The model named in keys. The emulator's answers get a name of their own, so they are never
/// served where the real model is expected (a development database used both ways).
pub fn model_name(model: &str, emulated: bool) -> String {
    if emulated {
        format!("emulator:{model}")
    } else {
        model.to_string()
    }
}

/// `llm` behind the answer cache when it is enabled (else unchanged). `model` names what answers
/// (part of the key). Without a database (`db` None, an in-memory SQLite, or one that cannot be
/// opened: logged) the cache keeps to memory, and `hospital` gives the data version.
pub fn wrap(
    cfg: &LlmCacheConfig,
    llm: Arc<dyn LlmProvider>,
    model: &str,
    db: Option<&DatabaseConfig>,
    hospital: Arc<dyn Store>,
) -> Arc<dyn LlmProvider> {
    if !cfg.enabled {
        return llm;
    }
    // A private in-memory SQLite opened a second time would be another database.
    let shared = db.filter(|d| cfg.database && d.backend() != Backend::Sqlite(":memory:".into()));
    let store = match shared.map(open_store) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "llm answer cache: no database layer, memory only");
            None
        }
        None => None,
    };
    let cache = Arc::new(AnswerCache::new(cfg, model, store, hospital));
    Arc::new(CachedLlm::new(llm, cache))
}

//! The TTS phrase cache (issue 14): synthesised audio of caller-independent sentences (the
//! greeting, fixed prompts, answers the LLM answer cache serves), keyed by exact (voice, model,
//! format, text), so a repeated sentence plays without a provider round trip. Two layers: a
//! byte-bounded memory cache and the `tts_phrase_cache` table every worker shares.

mod cache;
pub mod config;
pub mod metrics;
pub mod phrase;
mod prewarm;
mod provider;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use frontdesk_actors::config::DialogueConfig;
use frontdesk_actors::provider::TtsProvider;

use crate::providers::cartesia::CartesiaConfig;
use crate::providers::config::ProvidersConfig;
use crate::store::{Backend, DatabaseConfig};

pub use cache::PhraseCache;
pub use config::TtsCacheConfig;
pub use phrase::{Phrase, PhraseError, StoredPhrase, Voice};
pub use prewarm::prewarm;
pub use provider::CachedTts;
pub use store::PhraseStore;

/// What the configured Cartesia voice produces. Emulated audio gets its own voice name so it is
/// never played where the real voice is expected (a development database used both ways).
pub fn cartesia_voice(c: &CartesiaConfig, emulated: bool) -> Voice {
    let voice = if emulated {
        format!("emulator:{}", c.voice_id)
    } else {
        c.voice_id.clone()
    };
    Voice::new(
        &voice,
        &format!("{}/{}", c.model_id, c.language),
        c.sample_rate,
    )
}

/// The voice the phrase cache keys the configured providers' audio by, or `None` when it cannot
/// tell which voice spoke: behind a fallback to a secondary Cartesia with another voice, model,
/// language or rate, audio made during a primary outage would be stored under the primary's key
/// and played in the wrong voice after it recovers. A secondary that only differs in endpoint or
/// key (another region or account) speaks the same audio and is fine.
pub fn providers_voice(p: &ProvidersConfig, emulated: bool) -> Option<Voice> {
    fn speaks(c: &CartesiaConfig) -> (&str, &str, &str, u32) {
        (&c.voice_id, &c.model_id, &c.language, c.sample_rate)
    }
    match &p.secondary.cartesia {
        Some(s) if speaks(s) != speaks(&p.cartesia) => None,
        _ => Some(cartesia_voice(&p.cartesia, emulated)),
    }
}

/// The database layer on the configured database (a pool or connection of its own).
pub fn open_store(db: &DatabaseConfig) -> anyhow::Result<Arc<dyn PhraseStore>> {
    Ok(match db.backend() {
        Backend::Postgres => {
            let pool = crate::store::postgres::pool::build(db)?;
            Arc::new(crate::store::postgres::PgStore::new(pool))
        }
        Backend::Sqlite(path) => Arc::new(crate::store::sqlite::SqliteStore::open(&path)?),
    })
}

/// `tts` behind the phrase cache when it is enabled and its voice is known (else unchanged; see
/// [`providers_voice`]), pre-warmed with the fixed prompts of `dialogue` when configured. A database layer that cannot be opened leaves the
/// memory layer working (logged): the cache is an optimisation, never a reason not to start.
pub async fn wrap(
    cfg: &TtsCacheConfig,
    tts: Arc<dyn TtsProvider>,
    voice: Option<Voice>,
    db: Option<&DatabaseConfig>,
    dialogue: &DialogueConfig,
) -> Arc<dyn TtsProvider> {
    if !cfg.enabled {
        return tts;
    }
    let Some(voice) = voice else {
        tracing::info!("tts phrase cache off: the secondary TTS speaks with another voice");
        return tts;
    };
    let store = match db.filter(|_| cfg.database).map(open_store) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "tts phrase cache: no database layer, memory only");
            None
        }
        None => None,
    };
    let cache = Arc::new(PhraseCache::new(cfg, voice, store));
    let cached = Arc::new(CachedTts::new(tts, cache));
    if cfg.prewarm {
        prewarm(&cached, dialogue).await;
    }
    cached
}

//! The database layer of the phrase cache, shared by every worker on the same database
//! (`tts_phrase_cache`; PostgreSQL and SQLite implement it in `store::{postgres,sqlite}`).

use async_trait::async_trait;

use super::phrase::{PhraseError, StoredPhrase};

#[async_trait]
pub trait PhraseStore: Send + Sync + 'static {
    /// The row under `key`, counting the hit on it; `None` when there is none.
    async fn load_phrase(&self, key: &str) -> Result<Option<StoredPhrase>, PhraseError>;
    /// Insert or replace (a corrupt row is overwritten by the fresh synthesis).
    async fn save_phrase(&self, phrase: &StoredPhrase) -> Result<(), PhraseError>;
}

//! The two layers: a byte-bounded in-process cache in front of the shared database table. A
//! database that is slow or down costs a call at most `lookup_timeout` per cacheable sentence
//! (then the provider speaks) and never delays a write: writes go behind, bounded in number.

use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use tokio::sync::Semaphore;

use super::config::TtsCacheConfig;
use super::metrics;
use super::phrase::{Phrase, PhraseError, StoredPhrase, Voice};
use super::store::PhraseStore;

/// Writes to the database in flight at once; more are dropped (counted): the memory layer
/// still has them and the next worker to miss will write them.
const MAX_WRITES_IN_FLIGHT: usize = 8;
/// A write behind gives up after this (counted as an error).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Typical phrase (a sentence of ~2 s at 24 kHz), to size the memory layer's index.
const TYPICAL_PHRASE_BYTES: u64 = 100_000;

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Arc<Phrase>> for ByBytes {
    fn weight(&self, key: &String, val: &Arc<Phrase>) -> u64 {
        key.len() as u64 + val.weight()
    }
}

pub struct PhraseCache {
    voice: Voice,
    memory: Cache<String, Arc<Phrase>, ByBytes>,
    store: Option<Arc<dyn PhraseStore>>,
    lookup_timeout: Duration,
    writes: Arc<Semaphore>,
}

impl std::fmt::Debug for PhraseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhraseCache")
            .field("voice", &self.voice)
            .field("entries", &self.memory.len())
            .field("bytes", &self.memory.weight())
            .field("database", &self.store.is_some())
            .finish()
    }
}

impl PhraseCache {
    /// `store`: the database layer, if `cfg.database` (the caller opens it).
    pub fn new(cfg: &TtsCacheConfig, voice: Voice, store: Option<Arc<dyn PhraseStore>>) -> Self {
        let bytes = cfg.memory_bytes().max(1);
        let items = usize::try_from((bytes / TYPICAL_PHRASE_BYTES).max(16)).unwrap_or(16);
        Self {
            voice,
            memory: Cache::with_weighter(items, bytes, ByBytes),
            store: store.filter(|_| cfg.database),
            lookup_timeout: cfg.lookup_timeout(),
            writes: Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT)),
        }
    }

    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.weight()
    }

    /// The phrase for `text`: from memory, else from the database (then kept in memory).
    /// `Ok(None)` is a miss; an error (counted, logged) is to be treated as one by the caller.
    pub async fn get(&self, text: &str) -> Result<Option<Arc<Phrase>>, PhraseError> {
        let key = self.voice.key(text);
        let found = self.lookup(&key, text).await;
        let label = match &found {
            Ok(Some(_)) => "hit",
            Ok(None) => "miss",
            Err(e) => {
                // The key and reason only: the text is fixed wording, but keep logs lean.
                tracing::warn!(error = %e, "tts phrase cache entry unusable; the provider speaks");
                e.label()
            }
        };
        metrics::lookup(label);
        found
    }

    async fn lookup(&self, key: &str, text: &str) -> Result<Option<Arc<Phrase>>, PhraseError> {
        if let Some(p) = self.memory.get(key) {
            if p.text != text {
                return Err(PhraseError::Collision {
                    key: key.to_owned(),
                });
            }
            return Ok(Some(p));
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let row = tokio::time::timeout(self.lookup_timeout, store.load_phrase(key))
            .await
            .map_err(|_| PhraseError::Timeout)??;
        let Some(row) = row else {
            return Ok(None);
        };
        let phrase = Arc::new(row.decode(&self.voice, text)?);
        self.remember(key.to_owned(), Arc::clone(&phrase));
        Ok(Some(phrase))
    }

    /// Keep a freshly synthesised phrase: in memory now, in the database behind the call.
    pub fn put(&self, phrase: Phrase) {
        if phrase.samples.is_empty() {
            return;
        }
        let key = self.voice.key(&phrase.text);
        let row = self
            .store
            .as_ref()
            .map(|s| (Arc::clone(s), StoredPhrase::encode(&self.voice, &phrase)));
        self.remember(key, Arc::new(phrase));
        let Some((store, row)) = row else {
            return;
        };
        let Ok(permit) = Arc::clone(&self.writes).try_acquire_owned() else {
            metrics::write("dropped");
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let result = tokio::time::timeout(WRITE_TIMEOUT, store.save_phrase(&row)).await;
            match result {
                Ok(Ok(())) => metrics::write("stored"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "tts phrase cache write failed");
                    metrics::write("error");
                }
                Err(_) => {
                    tracing::warn!("tts phrase cache write timed out");
                    metrics::write("error");
                }
            }
        });
    }

    fn remember(&self, key: String, phrase: Arc<Phrase>) {
        self.memory.insert(key, phrase);
        metrics::gauge_bytes(self.memory.weight());
    }

    /// Wait for the writes in flight (tests, and pre-warm before the first call).
    pub async fn flush_writes(&self) {
        let _all = self.writes.acquire_many(MAX_WRITES_IN_FLIGHT as u32).await;
    }
}

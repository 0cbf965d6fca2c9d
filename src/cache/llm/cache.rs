//! The answer cache itself: a count-bounded memory layer in front of the shared database layer,
//! keyed as `rule` says, entries living `ttl`. A lookup is bounded by `lookup_timeout`: a slow or
//! failing database costs a turn at most that, and the provider answers instead.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use frontdesk_actors::store::Store;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::config::LlmCacheConfig;
use super::metrics;
use super::rule::{to_hex, Question};
use super::store::{Answer, AnswerError, AnswerRow, AnswerStore};

/// "Now" for expiry (tests pin it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Database writes in flight at most; more are dropped (counted): the cache may miss, a call
/// never waits for it.
const MAX_WRITES_IN_FLIGHT: usize = 16;

/// An answer ready to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedAnswer {
    pub answer: Answer,
    /// What the answer cost when it was made.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub expires_at: DateTime<Utc>,
}

/// The key of a cacheable completion, kept to store its answer after a miss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub key: String,
    pub question: String,
    pub prompt_version: String,
    pub data_version: String,
}

#[derive(Debug)]
pub enum Lookup {
    Hit(Arc<CachedAnswer>),
    Miss(Key),
    /// The cache failed (counted and logged); with the key when the answer may still be stored
    /// (a corrupt entry is overwritten by the fresh one).
    Error(Option<Key>),
}

/// Where the hospital's data version comes from.
#[derive(Clone)]
enum Source {
    Db(Arc<dyn AnswerStore>),
    /// No database layer (the in-process store of a simulation): the doctors as the hospital
    /// store lists them. Their shifts are not visible through it; such a store's shifts do not
    /// change during a run.
    Hospital(Arc<dyn Store>),
}

pub struct AnswerCache {
    cfg: LlmCacheConfig,
    model: String,
    memory: Cache<String, Arc<CachedAnswer>>,
    store: Option<Arc<dyn AnswerStore>>,
    source: Source,
    clock: Clock,
    /// The data version and when it was read.
    version: Arc<Mutex<Option<(String, Instant)>>>,
    writes: Arc<Semaphore>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("model", &self.model)
            .field("entries", &self.memory.len())
            .field("database", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AnswerCache {
    /// `store` is the shared layer; without one, `hospital` gives the data version.
    pub fn new(
        cfg: &LlmCacheConfig,
        model: &str,
        store: Option<Arc<dyn AnswerStore>>,
        hospital: Arc<dyn Store>,
    ) -> Self {
        let source = match &store {
            Some(s) => Source::Db(Arc::clone(s)),
            None => Source::Hospital(hospital),
        };
        Self {
            cfg: cfg.clone(),
            model: model.to_string(),
            memory: Cache::new(
                usize::try_from(cfg.memory_entries)
                    .unwrap_or(usize::MAX)
                    .max(1),
            ),
            store,
            source,
            clock: Arc::new(Utc::now),
            version: Arc::new(Mutex::new(None)),
            writes: Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT)),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Look `q` up, within the configured time bound.
    pub async fn lookup(&self, q: &Question) -> Lookup {
        match tokio::time::timeout(self.cfg.lookup_timeout, self.lookup_inner(q)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                self.failed(&e);
                Lookup::Error(None)
            }
            Err(_) => {
                self.failed(&AnswerError::Timeout);
                Lookup::Error(None)
            }
        }
    }

    fn failed(&self, e: &AnswerError) {
        metrics::error(e.reason());
        tracing::warn!(error = %e, "llm answer cache: lookup failed; the provider answers");
    }

    async fn lookup_inner(&self, q: &Question) -> Result<Lookup, AnswerError> {
        let data_version = self.data_version().await?;
        let now = (self.clock)();
        let key = Key {
            key: q.key(&self.model, &data_version, now.date_naive()),
            question: q.question.clone(),
            prompt_version: q.prompt_version.clone(),
            data_version,
        };
        if let Some(hit) = self.memory.get(&key.key) {
            if hit.expires_at > now {
                self.touch(&key.key, now);
                return Ok(Lookup::Hit(hit));
            }
            self.memory.remove(&key.key);
        }
        let Some(store) = &self.store else {
            return Ok(Lookup::Miss(key));
        };
        let Some(row) = store.load_answer(&key.key, now).await? else {
            return Ok(Lookup::Miss(key));
        };
        match self.decode(&row, &key) {
            Ok(hit) => {
                let hit = Arc::new(hit);
                self.memory.insert(key.key.clone(), Arc::clone(&hit));
                Ok(Lookup::Hit(hit))
            }
            Err(e) => {
                self.failed(&e);
                Ok(Lookup::Error(Some(key)))
            }
        }
    }

    /// A row under our key made for another question or context is a collision: never served.
    fn decode(&self, row: &AnswerRow, key: &Key) -> Result<CachedAnswer, AnswerError> {
        let same = row.key == key.key
            && row.prompt_version == key.prompt_version
            && row.model == self.model
            && row.data_version == key.data_version
            && row.question == key.question;
        if !same {
            return Err(AnswerError::Corrupt("key collision".into()));
        }
        Ok(CachedAnswer {
            answer: Answer::decode(&row.answer)?,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            expires_at: row.expires_at,
        })
    }

    /// Count a memory hit in the shared row too (in the background: nothing waits on it).
    fn touch(&self, key: &str, now: DateTime<Utc>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let Ok(permit) = Arc::clone(&self.writes).try_acquire_owned() else {
            metrics::write("dropped");
            return;
        };
        let key = key.to_string();
        tokio::spawn(async move {
            if let Err(e) = store.touch_answer(&key, now).await {
                metrics::error(e.reason());
            }
            drop(permit);
        });
    }

    /// Keep the answer of a cacheable miss: in memory at once, in the database behind.
    pub fn store(&self, key: Key, answer: Answer, prompt_tokens: u64, completion_tokens: u64) {
        let now = (self.clock)();
        let ttl = chrono::Duration::from_std(self.cfg.ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let row = AnswerRow {
            key: key.key.clone(),
            prompt_version: key.prompt_version,
            model: self.model.clone(),
            data_version: key.data_version,
            question: key.question,
            answer: answer.encode(),
            prompt_tokens,
            completion_tokens,
            created_at: now,
            expires_at,
            hits: 0,
        };
        let cached = CachedAnswer {
            answer,
            prompt_tokens,
            completion_tokens,
            expires_at,
        };
        self.memory.insert(key.key, Arc::new(cached));
        let Some(store) = self.store.clone() else {
            return;
        };
        let Ok(permit) = Arc::clone(&self.writes).try_acquire_owned() else {
            metrics::write("dropped");
            return;
        };
        tokio::spawn(async move {
            match store.save_answer(&row).await {
                Ok(()) => metrics::write("stored"),
                Err(e) => {
                    metrics::write("error");
                    tracing::warn!(error = %e, "llm answer cache: write failed");
                }
            }
            drop(permit);
        });
    }

    /// Wait until the writes in flight are done (tests, end of a simulation).
    pub async fn flush_writes(&self) {
        let _all = self.writes.acquire_many(MAX_WRITES_IN_FLIGHT as u32).await;
    }

    /// The hospital's data version, re-read at most every `data_version_every`. The read runs
    /// in a task of its own, so a lookup that gives up on it still leaves it for the next turn.
    /// When it changes, stale rows are removed (their keys no longer match anyway).
    pub async fn data_version(&self) -> Result<String, AnswerError> {
        let previous = lock(&self.version).clone();
        if let Some((v, at)) = &previous {
            if at.elapsed() < self.cfg.data_version_every {
                return Ok(v.clone());
            }
        }
        let source = self.source.clone();
        let slot = Arc::clone(&self.version);
        let store = self.store.clone();
        let now = (self.clock)();
        let task = tokio::spawn(async move {
            let v = read_version(&source).await?;
            let changed = previous.as_ref().is_none_or(|(old, _)| *old != v);
            *lock(&slot) = Some((v.clone(), Instant::now()));
            if let (true, Some(store)) = (changed, store) {
                let current = v.clone();
                tokio::spawn(async move {
                    match store.purge_answers(&current, now).await {
                        Ok(n) if n > 0 => {
                            tracing::info!(removed = n, "llm answer cache: stale answers removed")
                        }
                        Ok(_) => {}
                        Err(e) => metrics::error(e.reason()),
                    }
                });
            }
            Ok(v)
        });
        task.await
            .map_err(|e| AnswerError::Unavailable(format!("data version task: {e}")))?
    }
}

async fn read_version(source: &Source) -> Result<String, AnswerError> {
    match source {
        Source::Db(s) => s.data_version().await,
        Source::Hospital(h) => {
            let doctors = h
                .list_doctors(None)
                .await
                .map_err(|e| AnswerError::Unavailable(e.to_string()))?;
            let json = serde_json::to_vec(&doctors).unwrap_or_default();
            Ok(to_hex(&Sha256::digest(&json)))
        }
    }
}

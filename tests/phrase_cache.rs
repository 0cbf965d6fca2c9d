//! The TTS phrase cache (issue 14): its database layer on SQLite and PostgreSQL (`DATABASE_URL`;
//! skipped loudly without it), shared by two workers, with corrupt rows refused and healed; and
//! end to end, a simulated second call hears its greeting from the cache.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

mod pg;

use chrono::Utc;
use frontdesk::cache::tts::{Phrase, PhraseCache, PhraseError, PhraseStore, TtsCacheConfig, Voice};
use frontdesk::cache::CacheConfig;
use frontdesk::simulate::{self, SimArgs};

const GREETING: &str = "Saint Mary's hospital, how can I help you?";

fn voice() -> Voice {
    Voice::new("voice-1", "sonic-3/en", 24_000)
}

fn cache_on(store: Arc<dyn PhraseStore>) -> PhraseCache {
    PhraseCache::new(&TtsCacheConfig::default(), voice(), Some(store))
}

fn greeting_audio() -> Phrase {
    Phrase {
        text: GREETING.into(),
        samples: (0..4800).map(|i| (i % 300) as i16 - 150).collect(),
        sample_rate: 24_000,
    }
}

/// Worker A synthesises, worker B (its own cache, same database) hits; a corrupted row is a
/// named error and the next write heals it. `corrupt` damages the stored audio.
async fn shared_by_two_workers<F, Fut>(a: Arc<dyn PhraseStore>, b: Arc<dyn PhraseStore>, corrupt: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let worker_a = cache_on(Arc::clone(&a));
    assert!(worker_a.get(GREETING).await.unwrap().is_none());
    worker_a.put(greeting_audio());
    worker_a.flush_writes().await;

    let worker_b = cache_on(Arc::clone(&b));
    let hit = worker_b.get(GREETING).await.unwrap().unwrap();
    assert_eq!(*hit, greeting_audio());
    // Another voice never gets it.
    let other = PhraseCache::new(
        &TtsCacheConfig::default(),
        Voice::new("voice-2", "sonic-3/en", 24_000),
        Some(Arc::clone(&b)),
    );
    assert!(other.get(GREETING).await.unwrap().is_none());

    corrupt().await;
    let fresh = cache_on(Arc::clone(&b));
    let e = fresh.get(GREETING).await.unwrap_err();
    assert!(matches!(e, PhraseError::Corrupt { .. }), "{e}");
    fresh.put(greeting_audio());
    fresh.flush_writes().await;
    let healed = cache_on(b).get(GREETING).await.unwrap().unwrap();
    assert_eq!(*healed, greeting_audio());
}

#[tokio::test]
async fn sqlite_layer_is_shared_counted_and_refuses_corrupt_rows() {
    use frontdesk::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phrases.db");
    let path = path.to_str().unwrap().to_owned();
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    let key = voice().key(GREETING);
    let raw = path.clone();
    let k = key.clone();
    shared_by_two_workers(a, b, || async move {
        let c = rusqlite::Connection::open(&raw).unwrap();
        c.execute(
            "UPDATE tts_phrase_cache SET audio = substr(audio, 1, 100) WHERE key = ?1",
            [&k],
        )
        .unwrap();
    })
    .await;
    let c = rusqlite::Connection::open(&path).unwrap();
    let (hits, last): (i64, Option<String>) = c
        .query_row(
            "SELECT hits, last_hit_at FROM tts_phrase_cache WHERE key = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // B's hit, the corrupt read and the healed read.
    assert_eq!(hits, 3);
    assert!(last.is_some());
}

#[tokio::test]
async fn postgres_layer_is_shared_counted_and_refuses_corrupt_rows() {
    let Some(url) = pg::database_url() else {
        return;
    };
    let schema = pg::unique_schema("phrases");
    let a = Arc::new(pg::seeded_store(&url, &schema, Arc::new(Utc::now)).await);
    let b = Arc::new(pg::seeded_store(&url, &schema, Arc::new(Utc::now)).await);
    let key = voice().key(GREETING);
    let (u, s, k) = (url.clone(), schema.clone(), key.clone());
    shared_by_two_workers(a, b, || async move {
        let c = pg::connect(&u, &s).await;
        c.execute(
            "UPDATE tts_phrase_cache SET audio_sha256 = 'not-the-digest' WHERE key = $1",
            &[&k],
        )
        .await
        .unwrap();
    })
    .await;
    let c = pg::connect(&url, &schema).await;
    let row = c
        .query_one(
            "SELECT hits, last_hit_at IS NOT NULL FROM tts_phrase_cache WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap();
    let (hits, hit_at): (i64, bool) = (row.get(0), row.get(1));
    assert_eq!(hits, 3);
    assert!(hit_at);
    pg::drop_schema(&url, &schema).await;
}

fn args(cache: CacheConfig) -> SimArgs {
    SimArgs {
        calls: 2,
        duration: Duration::from_secs(12),
        ramp: Duration::from_secs(6),
        stt_latency_ms: 150,
        llm_ttft_ms: 300,
        llm_token_ms: 20,
        tts_ttfb_ms: 120,
        jitter_ms: 0,
        providers: simulate::ProviderMode::Doubles,
        fault_rate: 0.0,
        fallback: false,
        store: simulate::StoreMode::Sqlite,
        report: None,
        pipeline: Default::default(),
        prices: Default::default(),
        cache,
        scenario: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_call_hears_its_greeting_from_the_cache() -> anyhow::Result<()> {
    let greeting = frontdesk_actors::config::DialogueConfig::default().greeting;
    let chars = greeting.chars().count() as u64;
    // Not pre-warmed: the first call's greeting is synthesised, the second's is a hit.
    let mut cfg = CacheConfig::default();
    cfg.tts.prewarm = false;
    let on = simulate::run(args(cfg.clone())).await?;
    assert!(on.all_calls_completed(), "{:?}", on.end_reasons);
    assert!(on.cache.tts_misses >= 1, "{:?}", on.cache);
    assert!(on.cache.tts_hits >= 1, "{:?}", on.cache);
    assert!(on.cache.tts_saved_characters >= chars, "{:?}", on.cache);
    assert!(on.cache.saved_cost_usd > 0.0, "{:?}", on.cache);
    assert!(on.table().contains("cache: tts "), "{}", on.table());

    cfg.tts.enabled = false;
    let off = simulate::run(args(cfg)).await?;
    assert!(off.all_calls_completed(), "{:?}", off.end_reasons);
    assert_eq!(
        (off.cache.tts_hits, off.cache.tts_misses),
        (0, 0),
        "{:?}",
        off.cache
    );
    // Cached characters are not billed: the same calls cost less by (about) the greeting.
    let greeting_cost = frontdesk_actors::pricing::Prices::default().tts_saved_cost(chars);
    assert!(
        off.cost_usd - on.cost_usd > 0.9 * greeting_cost,
        "off ${} on ${}",
        off.cost_usd,
        on.cost_usd
    );
    Ok(())
}

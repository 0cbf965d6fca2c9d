//! The decorator against a counting provider and an in-memory database layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use frontdesk_actors::provider::{
    TtsCacheUsage, TtsError, TtsEvent, TtsInput, TtsProvider, TtsRequest, TtsSession,
};
use tokio::sync::mpsc;

use super::*;

const RATE: u32 = 24_000;

/// Audio that tells which text it was made from.
fn audio_of(text: &str) -> Vec<i16> {
    text.bytes().map(i16::from).collect()
}

#[derive(Default)]
struct CountingTts {
    opens: AtomicUsize,
    cancels: Arc<AtomicUsize>,
    /// Sessions emit their first audio and then never finish.
    stall: bool,
}

struct CountingInput {
    text: String,
    tx: Option<mpsc::Sender<Result<TtsEvent, TtsError>>>,
    stall: bool,
    cancels: Arc<AtomicUsize>,
}

#[async_trait]
impl TtsInput for CountingInput {
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError> {
        self.text.push_str(text);
        Ok(())
    }
    async fn finish(&mut self) -> Result<(), TtsError> {
        let tx = self.tx.take().ok_or(TtsError::Closed("finished".into()))?;
        let samples = audio_of(&self.text);
        let stall = self.stall;
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(TtsEvent::Audio {
                    samples,
                    sample_rate: RATE,
                }))
                .await;
            if stall {
                tx.closed().await;
            } else {
                let _ = tx.send(Ok(TtsEvent::Done)).await;
            }
        });
        Ok(())
    }
    async fn cancel(&mut self) -> Result<(), TtsError> {
        self.cancels.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl TtsProvider for CountingTts {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn open(&self, _req: &TtsRequest) -> Result<TtsSession, TtsError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(8);
        Ok(TtsSession {
            input: Box::new(CountingInput {
                text: String::new(),
                tx: Some(tx),
                stall: self.stall,
                cancels: Arc::clone(&self.cancels),
            }),
            events: rx,
        })
    }
}

#[derive(Default)]
struct MemStore {
    rows: Mutex<HashMap<String, StoredPhrase>>,
    down: AtomicBool,
}

#[async_trait]
impl PhraseStore for MemStore {
    async fn load_phrase(&self, key: &str) -> Result<Option<StoredPhrase>, PhraseError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PhraseError::Store("connection refused".into()));
        }
        Ok(self.rows.lock().unwrap().get(key).cloned())
    }
    async fn save_phrase(&self, p: &StoredPhrase) -> Result<(), PhraseError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PhraseError::Store("connection refused".into()));
        }
        self.rows.lock().unwrap().insert(p.key.clone(), p.clone());
        Ok(())
    }
}

fn voice() -> Voice {
    Voice::new("v", "m", RATE)
}

struct Rig {
    provider: Arc<CountingTts>,
    store: Arc<MemStore>,
    tts: CachedTts,
}

fn rig_with(provider: CountingTts) -> Rig {
    let provider = Arc::new(provider);
    let store = Arc::new(MemStore::default());
    let cache = PhraseCache::new(
        &TtsCacheConfig::default(),
        voice(),
        Some(Arc::clone(&store) as Arc<dyn PhraseStore>),
    );
    let tts = CachedTts::new(Arc::clone(&provider) as _, Arc::new(cache));
    Rig {
        provider,
        store,
        tts,
    }
}

fn rig() -> Rig {
    rig_with(CountingTts::default())
}

fn req(cacheable: bool) -> TtsRequest {
    TtsRequest {
        call_id: "c".into(),
        reply_id: 1,
        cacheable,
    }
}

/// Speak `text` as one reply: (audio in order, whether Done came, the session's cache usage).
async fn speak(
    tts: &dyn TtsProvider,
    text: &str,
    cacheable: bool,
) -> (Vec<i16>, bool, TtsCacheUsage) {
    let mut s = tts.open(&req(cacheable)).await.unwrap();
    s.input.push_text(text).await.unwrap();
    s.input.finish().await.unwrap();
    let mut audio = vec![];
    let mut done = false;
    while let Some(ev) = s.events.recv().await {
        match ev.unwrap() {
            TtsEvent::Audio { samples, .. } => audio.extend(samples),
            TtsEvent::Done => {
                done = true;
                break;
            }
        }
    }
    (audio, done, s.input.take_cache_usage())
}

const GREETING: &str = "Saint Mary's hospital, how can I help you?";

#[tokio::test]
async fn a_cached_phrase_plays_without_the_provider() {
    let r = rig();
    r.tts.cache().put(Phrase {
        text: GREETING.into(),
        samples: vec![7; 480].into(),
        sample_rate: RATE,
    });
    let (audio, done, usage) = speak(&r.tts, GREETING, true).await;
    assert!(done);
    assert_eq!(audio, vec![7; 480]);
    assert_eq!(r.provider.opens.load(Ordering::SeqCst), 0);
    let chars = GREETING.chars().count() as u64;
    assert_eq!(
        usage,
        TtsCacheUsage {
            hits: 1,
            misses: 0,
            saved_characters: chars
        }
    );
}

#[tokio::test]
async fn a_miss_is_synthesised_kept_and_then_a_hit_everywhere() {
    let r = rig();
    let (first, done, usage) = speak(&r.tts, GREETING, true).await;
    assert!(done);
    assert_eq!(first, audio_of(GREETING));
    assert_eq!((usage.hits, usage.misses), (0, 1));
    let (second, _, usage) = speak(&r.tts, GREETING, true).await;
    assert_eq!(second, first);
    assert_eq!((usage.hits, usage.misses), (1, 0));
    assert_eq!(r.provider.opens.load(Ordering::SeqCst), 1);
    // Written behind to the database layer, where another worker finds it.
    r.tts.cache().flush_writes().await;
    let key = voice().key(GREETING);
    let row = r.store.rows.lock().unwrap().get(&key).cloned().unwrap();
    let other = PhraseCache::new(
        &TtsCacheConfig::default(),
        voice(),
        Some(Arc::clone(&r.store) as Arc<dyn PhraseStore>),
    );
    let found = other.get(GREETING).await.unwrap().unwrap();
    assert_eq!(&*found.samples, first.as_slice());
    assert_eq!(
        row.decode(&voice(), GREETING).unwrap().samples,
        found.samples
    );
}

#[tokio::test]
async fn sentences_keep_their_order_with_hits_and_misses_mixed() {
    let r = rig();
    let (a, b) = (
        "Our opening hours are eight to six. ",
        "Is there anything else?",
    );
    r.tts.cache().put(Phrase {
        text: b.into(),
        samples: vec![-1; 10].into(),
        sample_rate: RATE,
    });
    let (audio, done, usage) = speak(&r.tts, &format!("{a}{b}"), true).await;
    assert!(done);
    let mut expected = audio_of(a);
    expected.extend([-1; 10]);
    assert_eq!(audio, expected);
    assert_eq!((usage.hits, usage.misses), (1, 1));
}

#[tokio::test]
async fn replies_with_caller_data_go_straight_to_the_provider() {
    let r = rig();
    let text = "Your appointment with Dr Hart is on Monday at nine.";
    for _ in 0..2 {
        let (audio, done, usage) = speak(&r.tts, text, false).await;
        assert!(done);
        assert_eq!(audio, audio_of(text));
        assert_eq!(usage, TtsCacheUsage::default());
    }
    assert_eq!(r.provider.opens.load(Ordering::SeqCst), 2);
    r.tts.cache().flush_writes().await;
    assert_eq!(r.tts.cache().memory_bytes(), 0);
    assert!(r.store.rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_corrupt_row_is_ignored_and_replaced() {
    let r = rig();
    let mut row = StoredPhrase::encode(
        &voice(),
        &Phrase {
            text: GREETING.into(),
            samples: vec![3; 100].into(),
            sample_rate: RATE,
        },
    );
    row.audio[0] ^= 0x55;
    r.store
        .rows
        .lock()
        .unwrap()
        .insert(row.key.clone(), row.clone());
    let e = r.tts.cache().get(GREETING).await.unwrap_err();
    assert!(matches!(e, PhraseError::Corrupt { .. }), "{e}");
    let (audio, done, usage) = speak(&r.tts, GREETING, true).await;
    assert!(done);
    assert_eq!(audio, audio_of(GREETING));
    assert_eq!((usage.hits, usage.misses), (0, 1));
    r.tts.cache().flush_writes().await;
    let healed = r.store.rows.lock().unwrap()[&row.key].clone();
    assert_eq!(
        &*healed.decode(&voice(), GREETING).unwrap().samples,
        audio_of(GREETING).as_slice()
    );
}

#[tokio::test]
async fn a_store_outage_leaves_the_call_speaking() {
    let r = rig();
    r.store.down.store(true, Ordering::SeqCst);
    let e = r.tts.cache().get(GREETING).await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    let (audio, done, _) = speak(&r.tts, GREETING, true).await;
    assert!(done);
    assert_eq!(audio, audio_of(GREETING));
    r.tts.cache().flush_writes().await;
    // The write failed, but the memory layer has it: the next call still hits.
    let (_, _, usage) = speak(&r.tts, GREETING, true).await;
    assert_eq!(usage.hits, 1);
    assert_eq!(r.provider.opens.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_costs_at_most_the_lookup_timeout() {
    struct Hanging;
    #[async_trait]
    impl PhraseStore for Hanging {
        async fn load_phrase(&self, _: &str) -> Result<Option<StoredPhrase>, PhraseError> {
            std::future::pending().await
        }
        async fn save_phrase(&self, _: &StoredPhrase) -> Result<(), PhraseError> {
            std::future::pending().await
        }
    }
    let provider = Arc::new(CountingTts::default());
    let cache = PhraseCache::new(&TtsCacheConfig::default(), voice(), Some(Arc::new(Hanging)));
    let tts = CachedTts::new(Arc::clone(&provider) as _, Arc::new(cache));
    let (audio, done, _) = speak(&tts, GREETING, true).await;
    assert!(done);
    assert_eq!(audio, audio_of(GREETING));
}

#[tokio::test]
async fn cancel_mid_reply_stops_events_and_keeps_nothing_partial() {
    let r = rig_with(CountingTts {
        stall: true,
        ..Default::default()
    });
    let mut s = r.tts.open(&req(true)).await.unwrap();
    s.input
        .push_text("First sentence is long enough. Second one never comes.")
        .await
        .unwrap();
    s.input.finish().await.unwrap();
    let first = s.events.recv().await.unwrap().unwrap();
    assert!(matches!(first, TtsEvent::Audio { .. }));
    s.input.cancel().await.unwrap();
    // No Done and no more audio: the stream just ends.
    assert!(s.events.recv().await.is_none());
    assert_eq!(r.provider.cancels.load(Ordering::SeqCst), 1);
    assert_eq!(r.provider.opens.load(Ordering::SeqCst), 1);
    assert_eq!(r.tts.cache().memory_bytes(), 0);
    assert_eq!(s.input.take_cache_usage().misses, 1);
}

#[tokio::test]
async fn a_secondary_with_another_voice_turns_the_cache_off() {
    let mut p = ProvidersConfig::default();
    let primary = cartesia_voice(&p.cartesia, false);
    assert_eq!(providers_voice(&p, false), Some(primary.clone()));
    // Another region or key, same voice: the audio is the same, the cache stays.
    let mut same = p.cartesia.clone();
    same.url = "wss://eu.example.test/tts/websocket".into();
    p.secondary.cartesia = Some(same.clone());
    assert_eq!(providers_voice(&p, false), Some(primary));
    // Another voice: its outage audio must never be stored under the primary's key.
    same.voice_id = "another-voice".into();
    p.secondary.cartesia = Some(same);
    assert_eq!(providers_voice(&p, false), None);
    let provider = Arc::new(CountingTts::default());
    let tts = wrap(
        &TtsCacheConfig::default(),
        provider.clone(),
        None,
        None,
        &frontdesk_actors::config::DialogueConfig::default(),
    )
    .await;
    for _ in 0..2 {
        let (audio, done, usage) = speak(&*tts, GREETING, true).await;
        assert!(done);
        assert_eq!(audio, audio_of(GREETING));
        assert_eq!(usage, TtsCacheUsage::default());
    }
    assert_eq!(
        provider.opens.load(Ordering::SeqCst),
        2,
        "every reply synthesised"
    );
}

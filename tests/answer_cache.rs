//! The LLM answer cache (issue 14): a repeated caller-independent question is answered without the
//! provider, caller data is never cached, entries expire and follow the hospital's data version,
//! and a corrupt entry, a key collision or a store outage never affects the call. Store layers on
//! SQLite and PostgreSQL (`DATABASE_URL`; skipped loudly without it).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod pg;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use frontdesk::cache::llm::{
    AnswerCache, AnswerError, AnswerRow, AnswerStore, CachedLlm, LlmCacheConfig,
};
use frontdesk_actors::doubles::MemoryStore;
use frontdesk_actors::provider::{
    CacheLookup, ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, ToolCall, Usage,
};
use frontdesk_actors::store::Store;
use tokio::sync::mpsc;

const HOURS: &str = "We're open nine to five on weekdays.";
const USAGE: Usage = Usage {
    prompt_tokens: 420,
    completion_tokens: 12,
};

/// A provider that counts its requests and answers with fixed text and tool calls.
struct Counting {
    requests: AtomicU64,
    text: String,
    calls: Vec<ToolCall>,
}

impl Counting {
    fn new(text: &str, calls: Vec<ToolCall>) -> Arc<Self> {
        Arc::new(Self {
            requests: AtomicU64::new(0),
            text: text.into(),
            calls,
        })
    }
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl LlmProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn stream(
        &self,
        _req: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(Ok(LlmEvent::TextDelta(self.text.clone())))
            .unwrap();
        for c in &self.calls {
            tx.try_send(Ok(LlmEvent::ToolCall(c.clone()))).unwrap();
        }
        tx.try_send(Ok(LlmEvent::Usage(USAGE))).unwrap();
        tx.try_send(Ok(LlmEvent::Done)).unwrap();
        Ok(rx)
    }
}

fn request(messages: Vec<ChatMessage>) -> ChatRequest {
    let mut all = vec![ChatMessage::system("You are the front desk.")];
    all.extend(messages);
    ChatRequest {
        messages: all,
        tools: frontdesk_actors::tools::tool_specs(),
    }
}

fn ask(q: &str) -> ChatRequest {
    request(vec![ChatMessage::user(q)])
}

fn config() -> LlmCacheConfig {
    LlmCacheConfig {
        // Generous: these tests are about results, not speed (no timed assertions).
        lookup_timeout: Duration::from_secs(5),
        data_version_every: Duration::ZERO,
        ..Default::default()
    }
}

fn hospital() -> Arc<dyn Store> {
    Arc::new(MemoryStore::seeded())
}

fn cache_on(store: Option<Arc<dyn AnswerStore>>) -> Arc<AnswerCache> {
    Arc::new(AnswerCache::new(&config(), "test-model", store, hospital()))
}

/// Every event of one completion.
async fn run(llm: &CachedLlm, req: ChatRequest) -> Vec<LlmEvent> {
    let mut rx = llm.stream(req).await.unwrap();
    let mut out = vec![];
    while let Some(ev) = rx.recv().await {
        out.push(ev.unwrap());
    }
    out
}

fn verdict(events: &[LlmEvent]) -> CacheLookup {
    match events.first() {
        Some(LlmEvent::Cache(c)) => *c,
        other => panic!("no verdict first: {other:?}"),
    }
}

fn text(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn hit(ends_reply: bool) -> CacheLookup {
    CacheLookup::Hit {
        saved: USAGE,
        ends_reply,
    }
}

#[tokio::test]
async fn a_repeated_question_is_answered_without_the_provider() {
    let provider = Counting::new(HOURS, vec![]);
    let llm = CachedLlm::new(provider.clone(), cache_on(None));
    let first = run(&llm, ask("What are your opening hours?")).await;
    assert_eq!(verdict(&first), CacheLookup::Miss);
    assert_eq!(text(&first), HOURS);
    // Case and punctuation do not matter.
    let again = run(&llm, ask("what are your opening hours")).await;
    assert_eq!(verdict(&again), hit(true));
    assert_eq!(text(&again), HOURS);
    assert!(
        !again.iter().any(|e| matches!(e, LlmEvent::Usage(_))),
        "a hit spends no tokens"
    );
    assert_eq!(provider.requests(), 1);
    // A follow-up only hits after the same exchange.
    let follow = request(vec![
        ChatMessage::user("What are your opening hours?"),
        ChatMessage::assistant(HOURS),
        ChatMessage::user("And on Saturday?"),
    ]);
    assert_eq!(verdict(&run(&llm, follow).await), CacheLookup::Miss);
    assert_eq!(
        verdict(&run(&llm, ask("And on Saturday?")).await),
        CacheLookup::Miss
    );
    assert_eq!(provider.requests(), 3);
}

#[tokio::test]
async fn tool_steps_with_hospital_data_replay_their_calls() {
    let list = ToolCall {
        id: "call_7".into(),
        name: "list_doctors".into(),
        arguments: "{}".into(),
    };
    let provider = Counting::new("Let me check. ", vec![list]);
    let llm = CachedLlm::new(provider.clone(), cache_on(None));
    run(&llm, ask("Which doctors do you have?")).await;
    let again = run(&llm, ask("Which doctors do you have?")).await;
    assert_eq!(verdict(&again), hit(false));
    let calls: Vec<&ToolCall> = again
        .iter()
        .filter_map(|e| match e {
            LlmEvent::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "list_doctors");
    assert_ne!(calls[0].id, "call_7", "replayed calls get fresh ids");
    assert_eq!(provider.requests(), 1);
}

#[tokio::test]
async fn caller_data_is_never_cached() {
    let provider = Counting::new(HOURS, vec![]);
    let llm = CachedLlm::new(provider.clone(), cache_on(None));
    let mut find = ChatMessage::assistant("");
    find.tool_calls = vec![ToolCall {
        id: "a".into(),
        name: "find_patient".into(),
        arguments: "{}".into(),
    }];
    let after_lookup = request(vec![
        ChatMessage::user("Can you look someone up?"),
        find,
        ChatMessage::tool_result("a", "[{\"id\":4}]"),
        ChatMessage::user("What are your opening hours?"),
    ]);
    let phone = ask("Can you call me back on 020 7946 0018?");
    for req in [after_lookup, phone] {
        for _ in 0..2 {
            let ev = run(&llm, req.clone()).await;
            assert_eq!(verdict(&ev), CacheLookup::Uncacheable);
            assert_eq!(text(&ev), HOURS);
        }
    }
    assert_eq!(provider.requests(), 4);

    // A clean question whose answer turns to caller data: the answer is not kept.
    let turns = Counting::new(
        "Let me look you up. ",
        vec![ToolCall {
            id: "b".into(),
            name: "find_patient".into(),
            arguments: "{}".into(),
        }],
    );
    let llm = CachedLlm::new(turns.clone(), cache_on(None));
    for _ in 0..2 {
        let ev = run(&llm, ask("Can you look someone up?")).await;
        assert_eq!(verdict(&ev), CacheLookup::Miss);
    }
    assert_eq!(turns.requests(), 2);
}

/// A clock tests move by hand.
fn manual_clock() -> (Arc<Mutex<DateTime<Utc>>>, frontdesk::cache::llm::Clock) {
    let now = Arc::new(Mutex::new(Utc::now()));
    let read = Arc::clone(&now);
    (now, Arc::new(move || *read.lock().unwrap()))
}

#[tokio::test]
async fn answers_expire_after_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttl.db");
    let db: Arc<dyn AnswerStore> =
        Arc::new(frontdesk::store::sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap());
    let (now, clock) = manual_clock();
    let cache = Arc::new(
        AnswerCache::new(&config(), "test-model", Some(db.clone()), hospital())
            .with_clock(clock.clone()),
    );
    let provider = Counting::new(HOURS, vec![]);
    let llm = CachedLlm::new(provider.clone(), Arc::clone(&cache));
    run(&llm, ask("What are your opening hours?")).await;
    cache.flush_writes().await;
    *now.lock().unwrap() += TimeDelta::days(7) - TimeDelta::seconds(1);
    assert_eq!(
        verdict(&run(&llm, ask("What are your opening hours?")).await),
        hit(true)
    );
    *now.lock().unwrap() += TimeDelta::seconds(2);
    assert_eq!(
        verdict(&run(&llm, ask("What are your opening hours?")).await),
        CacheLookup::Miss,
        "expired in memory"
    );
    // Nor from the database, for a worker that never had it in memory.
    let fresh = CachedLlm::new(
        provider.clone(),
        Arc::new(AnswerCache::new(&config(), "test-model", Some(db), hospital()).with_clock(clock)),
    );
    *now.lock().unwrap() += TimeDelta::days(7) + TimeDelta::seconds(2);
    assert_eq!(
        verdict(&run(&fresh, ask("What are your opening hours?")).await),
        CacheLookup::Miss,
        "expired in the database"
    );
    assert_eq!(provider.requests(), 3);
}

/// A SQLite file two caches (workers) share, and a plain connection to poke at it.
struct SqliteFile {
    _dir: tempfile::TempDir,
    path: String,
    store: Arc<dyn AnswerStore>,
}

impl SqliteFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db").to_str().unwrap().to_string();
        let store = Arc::new(frontdesk::store::sqlite::SqliteStore::open(&path).unwrap());
        Self {
            _dir: dir,
            path,
            store,
        }
    }
    fn worker(&self) -> Arc<AnswerCache> {
        cache_on(Some(Arc::clone(&self.store)))
    }
    fn sql(&self, sql: &str) -> usize {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.execute(sql, []).unwrap()
    }
    fn count(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

#[tokio::test]
async fn workers_share_answers_through_sqlite_and_count_hits() {
    let db = SqliteFile::new();
    let provider = Counting::new(HOURS, vec![]);
    let a = db.worker();
    run(
        &CachedLlm::new(provider.clone(), Arc::clone(&a)),
        ask("What are your opening hours?"),
    )
    .await;
    a.flush_writes().await;
    let b = CachedLlm::new(provider.clone(), db.worker());
    let ev = run(&b, ask("What are your opening hours?")).await;
    assert_eq!(verdict(&ev), hit(true));
    assert_eq!(text(&ev), HOURS);
    assert_eq!(provider.requests(), 1);
    assert_eq!(
        db.count("SELECT hits FROM llm_answer_cache"),
        1,
        "the hit is counted"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM llm_answer_cache
              WHERE question = 'what are your opening hours' AND prompt_tokens = 420
                AND last_hit_at IS NOT NULL"
        ),
        1
    );
}

#[tokio::test]
async fn a_shift_change_invalidates_answers_and_removes_them() {
    let db = SqliteFile::new();
    let provider = Counting::new(HOURS, vec![]);
    let cache = db.worker();
    let llm = CachedLlm::new(provider.clone(), Arc::clone(&cache));
    let before = db.store.data_version().await.unwrap();
    run(&llm, ask("What are your opening hours?")).await;
    cache.flush_writes().await;
    assert_eq!(
        verdict(&run(&llm, ask("What are your opening hours?")).await),
        hit(true)
    );
    assert_eq!(
        db.sql("UPDATE doctor_shifts SET end_time = '16:00:00' WHERE id = (SELECT min(id) FROM doctor_shifts)"),
        1
    );
    let after = db.store.data_version().await.unwrap();
    assert_ne!(before, after);
    assert_eq!(
        verdict(&run(&llm, ask("What are your opening hours?")).await),
        CacheLookup::Miss
    );
    assert_eq!(provider.requests(), 2);
    // The stale row goes (removed in the background once the new version is seen).
    let stale = format!("SELECT count(*) FROM llm_answer_cache WHERE data_version = '{before}'");
    for _ in 0..500 {
        if db.count(&stale) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(db.count(&stale), 0);
    // A doctor change does too.
    db.sql("UPDATE doctors SET specialty = 'Dermatology' WHERE id = 1");
    assert_ne!(db.store.data_version().await.unwrap(), after);
}

#[tokio::test]
async fn a_corrupt_entry_is_counted_ignored_and_replaced() {
    let db = SqliteFile::new();
    let provider = Counting::new(HOURS, vec![]);
    let a = db.worker();
    run(
        &CachedLlm::new(provider.clone(), Arc::clone(&a)),
        ask("What are your opening hours?"),
    )
    .await;
    a.flush_writes().await;
    db.sql("UPDATE llm_answer_cache SET answer = '{not json'");
    let b = db.worker();
    let ev = run(
        &CachedLlm::new(provider.clone(), Arc::clone(&b)),
        ask("What are your opening hours?"),
    )
    .await;
    assert_eq!(verdict(&ev), CacheLookup::Error);
    assert_eq!(text(&ev), HOURS, "the provider answered");
    b.flush_writes().await;
    // The fresh answer replaced the corrupt one.
    let c = CachedLlm::new(provider.clone(), db.worker());
    assert_eq!(
        verdict(&run(&c, ask("What are your opening hours?")).await),
        hit(true)
    );
    assert_eq!(provider.requests(), 2);
}

#[tokio::test]
async fn a_key_collision_is_never_served() {
    let db = SqliteFile::new();
    let provider = Counting::new(HOURS, vec![]);
    let a = db.worker();
    run(
        &CachedLlm::new(provider.clone(), Arc::clone(&a)),
        ask("What are your opening hours?"),
    )
    .await;
    a.flush_writes().await;
    // Another question's answer under this key.
    db.sql(
        "UPDATE llm_answer_cache SET question = 'do you do x rays', answer = '{\"text\":\"Yes.\"}'",
    );
    let ev = run(
        &CachedLlm::new(provider.clone(), db.worker()),
        ask("What are your opening hours?"),
    )
    .await;
    assert_eq!(verdict(&ev), CacheLookup::Error);
    assert_eq!(text(&ev), HOURS);
}

/// A database layer that is down, or hangs.
struct Outage {
    hang: bool,
}

impl Outage {
    async fn fail<T>(&self) -> Result<T, AnswerError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(AnswerError::Unavailable("connection refused".into()))
    }
}

#[async_trait]
impl AnswerStore for Outage {
    async fn data_version(&self) -> Result<String, AnswerError> {
        self.fail().await
    }
    async fn load_answer(
        &self,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<Option<AnswerRow>, AnswerError> {
        self.fail().await
    }
    async fn touch_answer(&self, _: &str, _: DateTime<Utc>) -> Result<(), AnswerError> {
        self.fail().await
    }
    async fn save_answer(&self, _: &AnswerRow) -> Result<(), AnswerError> {
        self.fail().await
    }
    async fn purge_answers(&self, _: &str, _: DateTime<Utc>) -> Result<u64, AnswerError> {
        self.fail().await
    }
}

#[tokio::test]
async fn a_store_outage_does_not_affect_the_call() {
    for hang in [false, true] {
        let cfg = LlmCacheConfig {
            lookup_timeout: Duration::from_millis(50),
            ..config()
        };
        let store: Arc<dyn AnswerStore> = Arc::new(Outage { hang });
        let cache = Arc::new(AnswerCache::new(&cfg, "m", Some(store), hospital()));
        let provider = Counting::new(HOURS, vec![]);
        let llm = CachedLlm::new(provider.clone(), cache);
        for _ in 0..2 {
            let ev = run(&llm, ask("What are your opening hours?")).await;
            assert_eq!(verdict(&ev), CacheLookup::Error, "hang: {hang}");
            assert_eq!(text(&ev), HOURS);
            assert!(matches!(ev.last(), Some(LlmEvent::Done)));
        }
        assert_eq!(provider.requests(), 2);
    }
}

#[path = "answer_cache/dialogue.rs"]
mod dialogue;
#[path = "answer_cache/store_layer.rs"]
mod store_layer;

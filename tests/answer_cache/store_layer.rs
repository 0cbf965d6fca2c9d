//! The database layer on SQLite and PostgreSQL (`DATABASE_URL`; skipped loudly without it): rows
//! saved, served while live and counted, purged by data version and expiry; a shift change moves
//! the data version.
use super::*;

async fn store_layer_conformance(store: Arc<dyn AnswerStore>) {
    let now = Utc::now();
    let version = store.data_version().await.unwrap();
    assert_eq!(store.data_version().await.unwrap(), version, "stable");
    let row = |key: &str, data_version: &str, expires: DateTime<Utc>| AnswerRow {
        key: key.into(),
        prompt_version: "p".into(),
        model: "m".into(),
        data_version: data_version.into(),
        question: "what are your opening hours".into(),
        answer: "{\"text\":\"Nine to five.\"}".into(),
        prompt_tokens: 420,
        completion_tokens: 12,
        created_at: now,
        expires_at: expires,
        hits: 0,
    };
    let live = row("live", &version, now + TimeDelta::days(7));
    store.save_answer(&live).await.unwrap();
    store.save_answer(&live).await.unwrap();
    store
        .save_answer(&row("old", "other-version", now + TimeDelta::days(7)))
        .await
        .unwrap();
    store
        .save_answer(&row("expired", &version, now - TimeDelta::seconds(1)))
        .await
        .unwrap();
    let got = store.load_answer("live", now).await.unwrap().unwrap();
    assert_eq!(got.hits, 1);
    assert_eq!(got.answer, live.answer);
    assert_eq!(got.prompt_tokens, 420);
    assert_eq!(
        got.expires_at.timestamp_micros(),
        live.expires_at.timestamp_micros()
    );
    store.touch_answer("live", now).await.unwrap();
    assert_eq!(
        store.load_answer("live", now).await.unwrap().unwrap().hits,
        3
    );
    assert!(store.load_answer("expired", now).await.unwrap().is_none());
    assert!(store.load_answer("missing", now).await.unwrap().is_none());
    assert_eq!(store.purge_answers(&version, now).await.unwrap(), 2);
    assert!(store.load_answer("old", now).await.unwrap().is_none());
    assert!(store.load_answer("live", now).await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_store_layer() {
    store_layer_conformance(Arc::new(
        frontdesk::store::sqlite::SqliteStore::open(":memory:").unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_layer() {
    let Some(url) = pg::database_url() else {
        return;
    };
    let schema = pg::unique_schema("answers");
    let store = Arc::new(pg::seeded_store(&url, &schema, Arc::new(Utc::now)).await);
    store_layer_conformance(store.clone()).await;
    // A shift change moves the data version.
    let before = store.data_version().await.unwrap();
    let c = pg::connect(&url, &schema).await;
    c.execute(
        "UPDATE doctor_shifts SET end_time = '16:00' WHERE id = (SELECT min(id) FROM doctor_shifts)",
        &[],
    )
    .await
    .unwrap();
    assert_ne!(store.data_version().await.unwrap(), before);
    pg::drop_schema(&url, &schema).await;
}

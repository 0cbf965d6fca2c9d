//! The PostgreSQL store against a real server (`DATABASE_URL`; skipped loudly without it): the
//! conformance suite, migrations up/down/verify/tamper, idempotent seed, and an outage in the
//! middle of writing the call record. Each test works in its own schema, dropped at the end.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

mod pg;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk::secret::Secret;
use frontdesk::store::migrate::{MigrateError, Migration, Migrator, POSTGRES};
use frontdesk::store::postgres::pool;
use frontdesk::store::{seed, DatabaseConfig};
use frontdesk_actors::doubles::conformance::{self, StoreMaker};
use frontdesk_actors::store::{BookingRequest, Clock, RecordKind, RecordOp, Store, StoreError};
use pg::{connect, database_url, drop_schema, proxied_store, seeded_store, unique_schema};
use tokio_postgres::Client;

struct Pg {
    url: String,
    schemas: Mutex<Vec<String>>,
}

#[async_trait]
impl StoreMaker for Pg {
    async fn make(&self, clock: Clock) -> Arc<dyn Store> {
        let schema = unique_schema("conf");
        self.schemas.lock().unwrap().push(schema.clone());
        Arc::new(seeded_store(&self.url, &schema, clock).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let Some(url) = database_url() else { return };
    let pg = Pg {
        url: url.clone(),
        schemas: Mutex::new(vec![]),
    };
    conformance::run_all(&pg).await;
    let schemas = pg.schemas.lock().unwrap().clone();
    for s in schemas {
        drop_schema(&url, &s).await;
    }
}

async fn tables(c: &Client, schema: &str) -> Vec<String> {
    let rows = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = $1 AND table_name <> 'schema_migrations' ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn migrations_up_down_up_verify_and_refuse_tampering() {
    let Some(url) = database_url() else { return };
    let schema = unique_schema("mig");
    let mut c = connect(&url, &schema).await;
    assert_eq!(
        Migrator::new(&mut c, POSTGRES).up().await.unwrap(),
        vec![1, 2, 3]
    );
    assert!(Migrator::new(&mut c, POSTGRES)
        .up()
        .await
        .unwrap()
        .is_empty());
    Migrator::new(&mut c, POSTGRES).verify().await.unwrap();
    let before = tables(&c, &schema).await;
    assert!(before.contains(&"appointments".to_string()) && before.contains(&"usage".to_string()));
    assert_eq!(
        Migrator::new(&mut c, POSTGRES).down(1).await.unwrap(),
        vec![3]
    );
    assert_eq!(
        Migrator::new(&mut c, POSTGRES).down(5).await.unwrap(),
        vec![2, 1]
    );
    assert!(
        tables(&c, &schema).await.is_empty(),
        "down to zero leaves nothing"
    );
    let status = Migrator::new(&mut c, POSTGRES).status().await.unwrap();
    assert!(status.iter().all(|s| !s.applied));
    Migrator::new(&mut c, POSTGRES).up().await.unwrap();
    assert_eq!(tables(&c, &schema).await, before);
    Migrator::new(&mut c, POSTGRES).verify().await.unwrap();
    // Drift: an index dropped by hand is reported.
    c.batch_execute("DROP INDEX patients_phone_idx")
        .await
        .unwrap();
    let err = Migrator::new(&mut c, POSTGRES).verify().await.unwrap_err();
    assert!(
        matches!(&err, MigrateError::Drift(d) if d.iter().any(|x| x.contains("patients_phone_idx"))),
        "{err}"
    );
    // A migration whose file changed after it was applied is refused.
    let mut tampered: Vec<Migration> = POSTGRES.to_vec();
    tampered[0].up = "CREATE TABLE sneaky (id INT);";
    let err = Migrator::new(&mut c, &tampered).up().await.unwrap_err();
    assert!(
        matches!(err, MigrateError::Tampered { version: 1, .. }),
        "{err}"
    );
    assert!(!tables(&c, &schema).await.contains(&"sneaky".to_string()));
    drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_once() {
    let Some(url) = database_url() else { return };
    let schema = unique_schema("lock");
    let runs = (0..4).map(|_| {
        let (url, schema) = (url.clone(), schema.clone());
        tokio::spawn(async move {
            let mut c = connect(&url, &schema).await;
            Migrator::new(&mut c, POSTGRES).up().await.unwrap()
        })
    });
    let mut applied = vec![];
    for r in runs {
        applied.extend(r.await.unwrap());
    }
    applied.sort();
    assert_eq!(applied, vec![1, 2, 3], "the advisory lock serialised them");
    drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn seed_twice_changes_nothing() {
    let Some(url) = database_url() else { return };
    let schema = unique_schema("seed");
    let mut c = connect(&url, &schema).await;
    Migrator::new(&mut c, POSTGRES).up().await.unwrap();
    let first = seed::run(&mut c).await.unwrap();
    let second = seed::run(&mut c).await.unwrap();
    assert_eq!(first, second);
    assert_eq!((first.doctors, first.patients), (6, 20));
    // New rows after the seed get fresh ids (the identity sequences moved past it).
    let id: i64 = c
        .query_one(
            "INSERT INTO patients (first_name, last_name, date_of_birth, phone)
             VALUES ('New', 'Caller', '1990-01-01', '+15559990000') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 21);
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_and_the_retried_record_lands_once() {
    let Some(url) = database_url() else { return };
    let schema = unique_schema("down");
    let now: Clock = Arc::new(|| "2030-01-07T08:00:00Z".parse::<DateTime<Utc>>().unwrap());
    drop(seeded_store(&url, &schema, Arc::clone(&now)).await);
    let (proxy, store) = proxied_store(&url, &schema, now).await;
    let op = |seq| RecordOp {
        call_id: "call-outage".into(),
        seq,
        at: Utc::now(),
        kind: RecordKind::CallEnded {
            reason: format!("op {seq}"),
        },
    };
    store.write_records(&[op(1)]).await.unwrap();
    proxy.down().await;
    let batch = [op(1), op(2), op(3)];
    let err = store.write_records(&batch).await.unwrap_err();
    assert!(err.is_retriable(), "{err:?}");
    let booking = BookingRequest {
        patient_id: 1,
        doctor_id: 1,
        start: "2030-01-14T10:00:00Z".parse().unwrap(),
        duration_min: 30,
        reason: "checkup".into(),
    };
    let err = store.book(&booking).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
        "{err:?}"
    );
    proxy.restore();
    // The gateway retries the same batch until it lands; a second retry changes nothing.
    let mut landed = store.write_records(&batch).await;
    for _ in 0..20 {
        if landed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        landed = store.write_records(&batch).await;
    }
    landed.unwrap();
    store.write_records(&batch).await.unwrap();
    let seqs: Vec<u64> = store
        .call_record("call-outage")
        .await
        .unwrap()
        .iter()
        .map(|o| o.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert!(store.book(&booking).await.is_ok());
    drop_schema(&url, &schema).await;
}

/// sslmode is honoured: disable is plaintext, require encrypts (the local server's certificate is
/// self-signed), verify-full refuses a certificate no public root vouches for.
#[tokio::test]
async fn sslmode_is_honoured() {
    let Some(url) = database_url() else { return };
    let probe = connect(&url, "public").await;
    let ssl: String = probe.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if ssl != "on" {
        use std::io::Write;
        let _ = std::io::stderr()
            .write_all(b"SKIPPED: the server has ssl off; sslmode test did not run\n");
        return;
    }
    let with_mode = |mode: &str| {
        let mut u = url::Url::parse(&url).unwrap();
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != "sslmode")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        u.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("sslmode", mode);
        DatabaseConfig {
            url: Secret::new(u.as_str()),
            ..Default::default()
        }
    };
    let encrypted = async |mode: &str| -> Result<bool, StoreError> {
        let p = pool::build(&with_mode(mode)).unwrap();
        let c = pool::get(&p).await?;
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        Ok(row.get(0))
    };
    assert_eq!(encrypted("disable").await, Ok(false));
    assert_eq!(encrypted("require").await, Ok(true));
    assert_eq!(encrypted("prefer").await, Ok(true));
    assert!(
        encrypted("verify-full").await.is_err(),
        "self-signed must not verify"
    );
}

/// A database that does not exist is named, with its SQLSTATE, by the store, by the dependency
/// check and by the migrator (the driver alone says only "db error").
#[tokio::test]
async fn a_missing_database_is_named_with_its_sqlstate() {
    let Some(url) = database_url() else { return };
    let missing = format!("frontdesk_missing_{}", std::process::id());
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path(&missing);
    let cfg = DatabaseConfig {
        url: Secret::new(u.as_str()),
        ..Default::default()
    };
    let named = |text: &str| {
        assert!(text.contains(&missing), "database not named: {text}");
        assert!(text.contains("3D000"), "no SQLSTATE: {text}");
    };
    let p = pool::build(&cfg).unwrap();
    let err = pool::get(&p).await.err().unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    named(&err.to_string());
    let store = frontdesk::store::open_store(&cfg).unwrap();
    named(&store.list_doctors(None).await.unwrap_err().to_string());
    let target = frontdesk::checks::Target {
        name: "database",
        critical: true,
        probe: frontdesk::checks::Probe::Database(cfg.clone()),
    };
    let check = frontdesk::checks::probe(&target, Duration::from_secs(5)).await;
    named(&check.unwrap_err().to_string());
    let connect = tokio_postgres::connect(u.as_str(), tokio_postgres::NoTls).await;
    named(&MigrateError::from(connect.err().unwrap()).to_string());
}

/// `migrate down` through the CLI's entry point: refused in production without `--yes` (nothing
/// dropped), done with it.
#[tokio::test]
async fn migrate_down_in_production_needs_yes() {
    use frontdesk::config::Environment::Production;
    use frontdesk::store::cli::{migrate, MigrateAction};
    let Some(url) = database_url() else { return };
    let schema = unique_schema("down");
    let c = connect(&url, &schema).await;
    let cfg = DatabaseConfig {
        url: Secret::new(&url),
        schema: schema.clone(),
        ..Default::default()
    };
    migrate(&cfg, MigrateAction::Up, Production).await.unwrap();
    let before = tables(&c, &schema).await;
    assert!(before.contains(&"appointments".to_string()), "{before:?}");
    let down = |yes| MigrateAction::Down { n: 3, yes };
    let err = migrate(&cfg, down(false), Production).await.unwrap_err();
    assert!(err.to_string().contains("--yes"), "{err}");
    assert_eq!(tables(&c, &schema).await, before, "nothing dropped");
    migrate(&cfg, down(true), Production).await.unwrap();
    assert!(tables(&c, &schema).await.is_empty());
    drop_schema(&url, &schema).await;
}

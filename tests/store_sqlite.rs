//! The embedded SQLite store: the conformance suite every store passes, the overlap rule held by
//! the database across connections, migrations (up, down to zero, up again, verify, tampering,
//! two migrators at once) and an idempotent seed. Always runs: SQLite needs no server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use frontdesk::store::migrate::{MigrateError, Migration, SQLITE};
use frontdesk::store::sqlite::migrate::{schema, Migrator};
use frontdesk::store::sqlite::{connect, seed, SqliteStore};
use frontdesk_actors::doubles::conformance::{self, mon, now, req, StoreMaker};
use frontdesk_actors::store::{BookingRequest, Clock, Store, StoreError};

struct Sqlite;

#[async_trait::async_trait]
impl StoreMaker for Sqlite {
    async fn make(&self, clock: Clock) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(":memory:").unwrap().with_clock(clock))
    }
}

/// A file-backed database, as `frontdesk start` uses without DATABASE_URL.
struct SqliteFile(tempfile::TempDir);

#[async_trait::async_trait]
impl StoreMaker for SqliteFile {
    async fn make(&self, clock: Clock) -> Arc<dyn Store> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("conf-{n}.db");
        let path = self.0.path().join(name);
        Arc::new(
            SqliteStore::open(path.to_str().unwrap())
                .unwrap()
                .with_clock(clock),
        )
    }
}

fn pinned() -> Clock {
    Arc::new(now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_in_memory() {
    conformance::run_all(&Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_a_file() {
    conformance::run_all(&SqliteFile(tempfile::tempdir().unwrap())).await;
}

/// Two processes' worth of connections on one file, 100 bookings of one slot between them: the
/// triggers and SQLite's single writer let exactly one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_winner_across_connections_to_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let path = path.to_str().unwrap();
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(path).unwrap().with_clock(pinned())) as _)
        .collect();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = Arc::clone(&stores[i % 2]);
            let r = BookingRequest {
                patient_id: 1 + (i as i64) % 20,
                ..req(3, mon("09:00"), 30)
            };
            tokio::spawn(async move { s.book(&r).await })
        })
        .collect();
    let (mut ok, mut taken) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::SlotTaken) => taken += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 99));
}

/// Even SQL written by hand cannot double-book: the rule lives in the schema.
#[test]
fn the_database_itself_refuses_an_overlap() {
    let mut c = connect(":memory:").unwrap();
    Migrator::new(&mut c, SQLITE).up().unwrap();
    seed::run(&mut c).unwrap();
    let insert = "INSERT INTO appointments (patient_id, doctor_id, starts_at, ends_at)
                  VALUES (1, 1, ?1, ?2)";
    c.execute(
        insert,
        ["2030-01-14T10:00:00.000000Z", "2030-01-14T11:00:00.000000Z"],
    )
    .unwrap();
    let err = c
        .execute(
            insert,
            ["2030-01-14T10:30:00.000000Z", "2030-01-14T11:00:00.000000Z"],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("appointments_no_double_booking"),
        "{err}"
    );
    // Back to back is fine; so is overlapping a cancelled one.
    c.execute(
        insert,
        ["2030-01-14T11:00:00.000000Z", "2030-01-14T11:30:00.000000Z"],
    )
    .unwrap();
    c.execute(
        "UPDATE appointments SET status = 'cancelled' WHERE id = 1",
        [],
    )
    .unwrap();
    c.execute(
        insert,
        ["2030-01-14T10:30:00.000000Z", "2030-01-14T11:00:00.000000Z"],
    )
    .unwrap();
    let reopen = c.execute(
        "UPDATE appointments SET status = 'scheduled' WHERE id = 1",
        [],
    );
    assert!(
        reopen.is_err(),
        "reviving a cancelled appointment must not overlap"
    );
    let too_long = c.execute(
        insert,
        ["2030-01-15T10:00:00.000000Z", "2030-01-15T14:00:01.000000Z"],
    );
    assert!(too_long.is_err(), "longer than 240 minutes");
}

fn user_tables(c: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = c
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
              AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY 1",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn up_down_to_zero_and_up_again_gives_the_same_schema() {
    let mut c = connect(":memory:").unwrap();
    assert_eq!(Migrator::new(&mut c, SQLITE).up().unwrap(), vec![1, 2, 3]);
    assert!(Migrator::new(&mut c, SQLITE).up().unwrap().is_empty());
    let first = schema(&c).unwrap();
    Migrator::new(&mut c, SQLITE).verify().unwrap();
    assert_eq!(Migrator::new(&mut c, SQLITE).down(1).unwrap(), vec![3]);
    let status = Migrator::new(&mut c, SQLITE).status().unwrap();
    assert_eq!(
        status.iter().map(|s| s.applied).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(Migrator::new(&mut c, SQLITE).down(5).unwrap(), vec![2, 1]);
    assert!(user_tables(&c).is_empty(), "{:?}", user_tables(&c));
    Migrator::new(&mut c, SQLITE).up().unwrap();
    assert_eq!(schema(&c).unwrap(), first);
    Migrator::new(&mut c, SQLITE).verify().unwrap();
}

#[test]
fn verify_names_what_drifted() {
    let mut c = connect(":memory:").unwrap();
    Migrator::new(&mut c, SQLITE).up().unwrap();
    c.execute_batch(
        "DROP INDEX patients_phone_idx; ALTER TABLE doctors ADD COLUMN notes TEXT;
         DROP TRIGGER appointments_no_double_booking_insert;",
    )
    .unwrap();
    let err = Migrator::new(&mut c, SQLITE).verify().unwrap_err();
    let msg = err.to_string();
    for what in [
        "patients_phone_idx",
        "doctors",
        "appointments_no_double_booking_insert",
    ] {
        assert!(msg.contains(what), "{what} missing from: {msg}");
    }
}

#[test]
fn a_changed_applied_migration_is_refused() {
    let mut c = connect(":memory:").unwrap();
    Migrator::new(&mut c, SQLITE).up().unwrap();
    let mut tampered: Vec<Migration> = SQLITE.to_vec();
    tampered[0].up = "CREATE TABLE patients (id INTEGER PRIMARY KEY);";
    for attempt in 0..2 {
        let err = match attempt {
            0 => Migrator::new(&mut c, &tampered).up().unwrap_err(),
            _ => Migrator::new(&mut c, &tampered).down(1).unwrap_err(),
        };
        assert!(
            matches!(err, MigrateError::Tampered { version: 1, .. }),
            "{err}"
        );
    }
    let known_less = &SQLITE[..1];
    let err = Migrator::new(&mut c, known_less).status().unwrap_err();
    assert!(matches!(err, MigrateError::Unknown(2)), "{err}");
}

/// Two deploys migrating one file at once: the write lock serialises them, each version once.
#[test]
fn concurrent_migrators_apply_each_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deploy.db");
    let path = path.to_str().unwrap().to_owned();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = connect(&path).unwrap();
                Migrator::new(&mut c, SQLITE).up().unwrap()
            })
        })
        .collect();
    let mut applied: Vec<i64> = runs.into_iter().flat_map(|r| r.join().unwrap()).collect();
    applied.sort();
    assert_eq!(applied, vec![1, 2, 3]);
    let mut c = connect(&path).unwrap();
    Migrator::new(&mut c, SQLITE).verify().unwrap();
}

#[test]
fn seeding_twice_changes_nothing() {
    let mut c = connect(":memory:").unwrap();
    Migrator::new(&mut c, SQLITE).up().unwrap();
    let first = seed::run(&mut c).unwrap();
    assert!(first.doctors > 0 && first.shifts > 0 && first.patients > 0);
    assert_eq!(seed::run(&mut c).unwrap(), first);
    // New rows get ids after the seed's.
    c.execute(
        "INSERT INTO patients (first_name, last_name, date_of_birth, phone)
         VALUES ('New', 'Caller', '1990-01-01', '+15550199999')",
        [],
    )
    .unwrap();
    assert_eq!(c.last_insert_rowid(), first.patients + 1);
}

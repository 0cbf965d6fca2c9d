//! Retention on SQLite and PostgreSQL (`DATABASE_URL`; skipped loudly without it) with two years
//! of calls written through the real record path plus cache rows inserted directly: the dry run
//! counts what `--apply` then removes, exactly the rows older than the policy (one second either
//! side of each cut-off), in batches smaller than the data; hospital data untouched; production
//! without `--yes` refuses and removes nothing; a bad period is a clear error.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

mod pg;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use frontdesk::config::{AppConfig, Environment};
use frontdesk::secret::Secret;
use frontdesk::store::retention::{self, RetentionArgs, RetentionConfig, RetentionError, Run};
use frontdesk::store::sqlite::{ts, SqliteStore};
use frontdesk::store::DatabaseConfig;
use frontdesk_actors::doubles::conformance::{mon, now as store_now};
use frontdesk_actors::store::{BookingRequest, RecordKind, RecordOp, Store};

/// The retention run's "now" (also the store's clock, so a booking is in its future).
fn now() -> DateTime<Utc> {
    store_now()
}

/// Small batches, so every table needs several.
fn policy() -> RetentionConfig {
    RetentionConfig {
        batch_size: 3,
        ..Default::default()
    }
}

const HOSPITAL: [&str; 4] = ["appointments", "patients", "doctors", "doctor_shifts"];

enum Db {
    Sqlite(String),
    Pg { url: String, schema: String },
}

impl Db {
    fn config(&self) -> DatabaseConfig {
        match self {
            Db::Sqlite(path) => DatabaseConfig {
                sqlite_path: path.clone(),
                ..Default::default()
            },
            Db::Pg { url, schema } => DatabaseConfig {
                url: Secret::new(url),
                schema: schema.clone(),
                ..Default::default()
            },
        }
    }

    async fn store(&self) -> Arc<dyn Store> {
        let clock: frontdesk_actors::store::Clock = Arc::new(store_now);
        match self {
            Db::Sqlite(path) => Arc::new(SqliteStore::open(path).unwrap().with_clock(clock)),
            Db::Pg { url, schema } => Arc::new(pg::seeded_store(url, schema, clock).await),
        }
    }

    /// Plain SQL with `$n` placeholders; times bound as each store stores them.
    async fn execute(&self, sql: &str, key: &str, times: [Option<DateTime<Utc>>; 2]) {
        match self {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let [a, b] = times.map(|t| t.map(ts));
                c.execute(&sql.replace('$', "?"), rusqlite::params![key, a, b])
                    .unwrap();
            }
            Db::Pg { url, schema } => {
                let c = pg::connect(url, schema).await;
                c.execute(sql, &[&key, &times[0], &times[1]]).await.unwrap();
            }
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.query_row(&sql, [], |r| r.get(0)).unwrap()
            }
            Db::Pg { url, schema } => {
                let c = pg::connect(url, schema).await;
                c.query_one(&sql, &[]).await.unwrap().get(0)
            }
        }
    }

    async fn counts(&self, tables: &[&str]) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for t in tables {
            out.insert(t.to_string(), self.count(t).await);
        }
        out
    }
}

/// One call's record: started at `start`, a turn, a tool call, usage, the end.
fn call_ops(id: &str, start: DateTime<Utc>, with_start: bool) -> Vec<RecordOp> {
    let kinds = [
        RecordKind::CallStarted {
            room: format!("room-{id}"),
            caller: "+15550100002".into(),
        },
        RecordKind::Turn {
            index: 1,
            transcript: "When is Dr Smith in?".into(),
            reply: "Monday.".into(),
            interrupted: false,
            latencies: Default::default(),
        },
        RecordKind::ToolCall {
            name: "free_slots".into(),
            arguments: "{}".into(),
            result: "[]".into(),
            error: None,
            duration_ms: 1.0,
        },
        RecordKind::Usage {
            stt_audio_seconds: 10.0,
            prompt_tokens: 100,
            completion_tokens: 10,
            tts_characters: 50,
            cost_usd: 0.001,
            cache: Default::default(),
        },
        RecordKind::CallEnded {
            reason: "caller_hung_up".into(),
        },
    ];
    let skip = usize::from(!with_start);
    (0i64..)
        .zip(kinds)
        .skip(skip)
        .map(|(i, kind)| RecordOp {
            call_id: id.into(),
            seq: i as u64 + 1,
            at: start + Duration::seconds(10 * i),
            kind,
        })
        .collect()
}

/// What the default policy removes from the data written by `fill`.
#[derive(Debug, Default)]
struct Expected {
    calls: u64,
    ops: u64,
    usage: u64,
}

/// Calls every 10 days over two years, plus one second either side of both call cut-offs and an
/// old call whose CallStarted never arrived; cache rows either side of theirs.
async fn fill(db: &Db, store: &dyn Store) -> Expected {
    let cut = policy().cutoffs(now());
    let second = Duration::seconds(1);
    let mut starts: Vec<DateTime<Utc>> = (1..=73).map(|i| now() - Duration::days(10 * i)).collect();
    starts.extend([
        cut.conversations - second,
        cut.conversations + second,
        cut.usage - second,
        cut.usage + second,
    ]);
    let mut expected = Expected::default();
    for (i, start) in starts.iter().enumerate() {
        let ops = call_ops(&format!("call-{i}"), *start, true);
        store.write_records(&ops).await.unwrap();
        if *start < cut.conversations {
            expected.calls += 1;
            expected.ops += ops.len() as u64;
        }
        expected.usage += u64::from(*start < cut.usage);
    }
    let headless = call_ops("call-headless", now() - Duration::days(700), false);
    store.write_records(&headless).await.unwrap();
    expected.calls += 1;
    expected.ops += headless.len() as u64;
    expected.usage += 1;

    let phrase = "INSERT INTO tts_phrase_cache (key, voice, model, format, text, audio, audio_sha256, created_at, last_hit_at)
                  VALUES ($1, 'v', 'm', 'pcm_s16le@24000', 'Hello.', '', '', $2, $3)";
    let old = cut.tts_unused - second;
    let fresh = cut.tts_unused + second;
    db.execute(phrase, "p-old-never-hit", [Some(old), None])
        .await;
    db.execute(
        phrase,
        "p-old-hit-old",
        [Some(old - Duration::days(30)), Some(old)],
    )
    .await;
    db.execute(
        phrase,
        "p-old-hit-recently",
        [Some(old - Duration::days(300)), Some(fresh)],
    )
    .await;
    db.execute(phrase, "p-fresh", [Some(fresh), None]).await;
    let answer =
        "INSERT INTO llm_answer_cache (key, prompt_version, model, data_version, question, answer,
                    prompt_tokens, completion_tokens, created_at, expires_at)
                  VALUES ($1, 'p1', 'm', 'd1', 'hours?', '8 to 5', 10, 5, $2, $3)";
    let week = Duration::days(7);
    db.execute(
        answer,
        "a-expired",
        [Some(now() - week - second), Some(now() - second)],
    )
    .await;
    db.execute(
        answer,
        "a-long-expired",
        [Some(now() - week * 20), Some(now() - week * 19)],
    )
    .await;
    db.execute(
        answer,
        "a-live",
        [Some(now() - week + second), Some(now() + second)],
    )
    .await;
    expected
}

fn request(apply: bool, yes: bool, env: Environment) -> Run {
    Run {
        now: now(),
        apply,
        yes,
        env,
        archive: None,
    }
}

/// A store with two years of data, and the row counts before any run.
struct Fixture {
    cfg: DatabaseConfig,
    store: Arc<dyn Store>,
    exp: Expected,
    hospital: BTreeMap<String, i64>,
    before: BTreeMap<String, i64>,
}

const ALL: [&str; 7] = [
    "calls",
    "call_record_ops",
    "turns",
    "tool_calls",
    "usage",
    "tts_phrase_cache",
    "llm_answer_cache",
];

impl Fixture {
    async fn new(db: &Db) -> Self {
        let store = db.store().await;
        let booking = BookingRequest {
            patient_id: 1,
            doctor_id: 1,
            start: mon("10:00"),
            duration_min: 30,
            reason: "checkup".into(),
        };
        store.book(&booking).await.unwrap();
        let exp = fill(db, store.as_ref()).await;
        let hospital = db.counts(&HOSPITAL).await;
        assert!(hospital.values().all(|n| *n > 0), "{hospital:?}");
        Self {
            cfg: db.config(),
            store,
            exp,
            hospital,
            before: db.counts(&ALL).await,
        }
    }

    /// Rows the default policy removes, per table.
    fn want(&self) -> BTreeMap<&'static str, u64> {
        let e = &self.exp;
        [
            ("calls", e.calls),
            ("call_record_ops", e.ops),
            ("turns", e.calls),
            ("tool_calls", e.calls),
            ("usage", e.usage),
            ("tts_phrase_cache", 2),
            ("llm_answer_cache", 2),
        ]
        .into()
    }
}

fn oldest(o: &retention::Outcome, table: &str) -> Option<DateTime<Utc>> {
    o.tables
        .iter()
        .find(|x| x.table == table)
        .unwrap()
        .oldest_kept
}

/// The dry run counts exactly what will go and removes nothing; production without --yes
/// refuses before touching anything.
async fn dry_run_then_refusal(db: &Db, f: &Fixture) {
    let dry = request(false, false, Environment::Production);
    let plan = retention::run(&f.cfg, &policy(), &dry).await.unwrap();
    for (table, n) in f.want() {
        assert_eq!(plan.rows(table), n, "dry run, {table}\n{}", plan.text());
    }
    let cut = policy().cutoffs(now());
    let second = Duration::seconds(1);
    assert_eq!(oldest(&plan, "calls"), Some(cut.conversations + second));
    assert_eq!(oldest(&plan, "usage"), Some(cut.usage + second));
    assert_eq!(db.counts(&ALL).await, f.before, "a dry run removes nothing");

    let no_yes = request(true, false, Environment::Production);
    let refused = retention::run(&f.cfg, &policy(), &no_yes).await;
    assert!(
        matches!(refused, Err(RetentionError::Refused)),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("--yes"));
    assert_eq!(
        db.counts(&ALL).await,
        f.before,
        "a refused run removes nothing"
    );
}

/// Applied in batches of 3 with an archive: exactly the expired rows go, one second either side
/// of each cut-off decides, the hospital stays.
async fn apply_removes_exactly_the_expired_rows(db: &Db, f: &Fixture, archive: &std::path::Path) {
    let mut apply = request(true, true, Environment::Production);
    apply.archive = Some(archive.to_owned());
    let done = retention::run(&f.cfg, &policy(), &apply).await.unwrap();
    for (table, n) in f.want() {
        assert_eq!(done.rows(table), n, "applied, {table}\n{}", done.text());
        let left = db.count(table).await;
        assert_eq!(left, f.before[table] - n as i64, "{table} after the run");
    }
    assert_eq!(
        db.counts(&HOSPITAL).await,
        f.hospital,
        "hospital data untouched"
    );
    let cut = policy().cutoffs(now());
    assert_eq!(
        oldest(&done, "calls"),
        Some(cut.conversations + Duration::seconds(1))
    );
    // Calls 73 and 74 started a second before and after the cut-off.
    let outside = f.store.call_record("call-73").await.unwrap();
    assert!(
        outside.is_empty(),
        "the call a second past the cut-off is gone"
    );
    let inside = f.store.call_record("call-74").await.unwrap();
    assert_eq!(
        inside.len(),
        5,
        "the call a second inside the cut-off is whole"
    );
    for key in ["p-old-hit-recently", "p-fresh"] {
        let sql = format!("tts_phrase_cache WHERE key = '{key}'");
        assert_eq!(db.count(&sql).await, 1, "{key} kept");
    }
    assert_eq!(db.count("llm_answer_cache WHERE key = 'a-live'").await, 1);
}

/// The archive holds every removed call's record, once.
fn check_archive(path: &std::path::Path, exp: &Expected) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, exp.calls);
    let ops: usize = lines
        .iter()
        .map(|l| l["ops"].as_array().unwrap().len())
        .sum();
    assert_eq!(ops as u64, exp.ops);
    assert!(lines.iter().any(|l| l["call_id"] == "call-headless"));
}

async fn scenario(db: &Db, dir: &std::path::Path) {
    let f = Fixture::new(db).await;
    dry_run_then_refusal(db, &f).await;
    let archive = dir.join("removed.jsonl");
    apply_removes_exactly_the_expired_rows(db, &f, &archive).await;
    check_archive(&archive, &f.exp);
    let again = request(true, true, Environment::Development);
    let again = retention::run(&f.cfg, &policy(), &again).await.unwrap();
    assert!(
        again.tables.iter().all(|t| t.rows == 0),
        "nothing left: {}",
        again.text()
    );
}

#[tokio::test]
async fn sqlite_removes_exactly_what_the_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("f.db").display().to_string());
    scenario(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_removes_exactly_what_the_policy_says() {
    let Some(url) = pg::database_url() else {
        return;
    };
    let schema = pg::unique_schema("ret");
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Pg {
        url: url.clone(),
        schema: schema.clone(),
    };
    scenario(&db, dir.path()).await;
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn the_command_refuses_in_production_without_yes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("f.db").display().to_string());
    let store = db.store().await;
    let old = call_ops("call-old", Utc::now() - Duration::days(800), true);
    store.write_records(&old).await.unwrap();
    let args = RetentionArgs {
        apply: true,
        ..Default::default()
    };
    let cfg = db.config();
    let err = retention::command(&cfg, &policy(), Environment::Production, &args)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refusing") && err.to_string().contains("--yes"),
        "{err}"
    );
    assert_eq!(db.count("calls").await, 1, "nothing removed");
    let yes = RetentionArgs { yes: true, ..args };
    retention::command(&cfg, &policy(), Environment::Production, &yes)
        .await
        .unwrap();
    assert_eq!(db.count("calls").await, 0);
}

#[tokio::test]
async fn an_invalid_period_is_a_clear_error() {
    for (toml, key) in [
        ("conversations = \"-1year\"", "retention.conversations"),
        ("usage = \"half a year\"", "retention.usage"),
        (
            "tts_phrase_cache_unused = \"0s\"",
            "retention.tts_phrase_cache_unused",
        ),
        ("usage = \"2years\"", "retention.usage"),
        ("batch_size = 0", "retention.batch_size"),
    ] {
        let err = AppConfig::from_toml(&format!("[retention]\n{toml}\n")).unwrap_err();
        assert!(err.to_string().contains(key), "{toml}: {err}");
    }
    // Built in code instead of parsed: the run itself refuses it, and touches nothing.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("f.db").display().to_string());
    let store = db.store().await;
    store
        .write_records(&call_ops("call-old", now() - Duration::days(800), true))
        .await
        .unwrap();
    let zero = RetentionConfig {
        conversations: std::time::Duration::ZERO,
        ..policy()
    };
    let err = retention::run(
        &db.config(),
        &zero,
        &request(true, true, Environment::Development),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RetentionError::Policy(_))
            && err.to_string().contains("retention.conversations"),
        "{err}"
    );
    assert_eq!(db.count("calls").await, 1);
}

/// `start`'s job: off by default; when set, each tick is an applied run (no --yes needed: the
/// setting is the consent). The clock is paused, so the first tick comes without waiting.
#[tokio::test(start_paused = true)]
async fn the_schedule_runs_the_job_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("f.db").display().to_string());
    let store = db.store().await;
    let old = call_ops("call-old", Utc::now() - Duration::days(800), true);
    store.write_records(&old).await.unwrap();
    let cfg = db.config();
    assert!(retention::spawn_schedule(&policy(), &cfg, Environment::Production).is_none());
    let every = RetentionConfig {
        every: Some(std::time::Duration::from_secs(3600)),
        ..policy()
    };
    let job = retention::spawn_schedule(&every, &cfg, Environment::Production).unwrap();
    assert_eq!(db.count("calls").await, 1, "nothing before the first tick");
    // Each pass lets the paused clock jump to the next tick; the run itself is on a real thread.
    let mut left = 1;
    for _ in 0..1000 {
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        left = db.count("calls").await;
        if left == 0 {
            break;
        }
    }
    job.abort();
    assert_eq!(left, 0, "the scheduled run removed the expired call");
}

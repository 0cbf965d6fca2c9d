//! The store under the load of 50 concurrent calls: each call asks a doctor's free slots for a day
//! and books one (losing a race is a "slot taken" answer, as in production), about once a second
//! (a busy call makes a tool call every few seconds, so this is a heavy 50). Criterion times single
//! operations, a slot query and a booking, made while those 50 calls run. Embedded SQLite always;
//! local PostgreSQL when `DATABASE_URL` is set, with the default pool size. Target on PostgreSQL:
//! slot query and booking p99 ≤ 5 ms, the pool never exhausted (no `pool.get()` timeout).
//!
//! Every operation, measured or background, is also recorded in an HDR histogram; p50/p99/max per
//! operation and the pool's peak use are printed at the end. Run it on a quiet machine.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::secret::Secret;
use frontdesk::store::migrate::{Migrator, POSTGRES};
use frontdesk::store::postgres::{pool, PgStore};
use frontdesk::store::sqlite::SqliteStore;
use frontdesk::store::{seed, DatabaseConfig};
use frontdesk_actors::store::{BookingRequest, Slot, Store, StoreError};
use hdrhistogram::Histogram;
use tokio::runtime::Runtime;

const CALLS: usize = 50;

#[derive(Clone, Copy)]
enum Op {
    Slots,
    Book,
}
const DOCTORS: i64 = 6;

fn now() -> DateTime<Utc> {
    "2030-01-07T08:00:00Z".parse().expect("time")
}

/// What one backend's run measured.
struct Stats {
    slots: Histogram<u64>,
    book: Histogram<u64>,
    taken: u64,
    failures: Vec<String>,
}

impl Stats {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        Self {
            slots: h(),
            book: h(),
            taken: 0,
            failures: vec![],
        }
    }
}

struct Bench {
    store: Arc<dyn Store>,
    /// Per doctor, how many days past the first one are full.
    day_offset: Vec<AtomicI64>,
    stats: Mutex<Stats>,
    pool: Option<deadpool_postgres::Pool>,
    peak_waiting: AtomicU64,
    peak_in_use: AtomicU64,
}

impl Bench {
    fn new(store: Arc<dyn Store>, pool: Option<deadpool_postgres::Pool>) -> Arc<Self> {
        Arc::new(Self {
            store,
            day_offset: (0..DOCTORS).map(|_| AtomicI64::new(0)).collect(),
            stats: Mutex::new(Stats::new()),
            pool,
            peak_waiting: AtomicU64::new(0),
            peak_in_use: AtomicU64::new(0),
        })
    }

    fn sample_pool(&self) {
        if let Some(p) = &self.pool {
            let s = p.status();
            let in_use = s.size.saturating_sub(s.available);
            self.peak_in_use.fetch_max(in_use as u64, Ordering::Relaxed);
            self.peak_waiting
                .fetch_max(s.waiting as u64, Ordering::Relaxed);
        }
    }

    /// A free slot of `doctor` on the first day that has one; a full day moves everyone on.
    async fn find_slot(&self, doctor: i64, pick: usize) -> Result<Slot, String> {
        let offset = &self.day_offset[(doctor - 1) as usize];
        let first: NaiveDate = now().date_naive() + TimeDelta::days(1);
        for _ in 0..400 {
            let seen = offset.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let slots = self
                .store
                .free_slots(doctor, first + TimeDelta::days(seen))
                .await;
            self.record(Op::Slots, t0);
            let slots = slots.map_err(|e| format!("free_slots: {e}"))?;
            if let Some(slot) = slots.get(pick % slots.len().max(1)) {
                return Ok(slot.clone());
            }
            let _ = offset.compare_exchange(seen, seen + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
        Err("no free slot in 400 days".into())
    }

    /// Book `slot`; a lost race is an answer, anything else a failure.
    async fn book(&self, slot: &Slot, i: usize) {
        let req = BookingRequest {
            patient_id: 1 + (i as i64 % 20),
            doctor_id: slot.doctor_id,
            start: slot.start,
            duration_min: 30,
            reason: "bench".into(),
        };
        let t0 = Instant::now();
        let booked = self.store.book(&req).await;
        self.record(Op::Book, t0);
        match booked {
            Ok(_) => {}
            Err(StoreError::SlotTaken) => self.lock().taken += 1,
            Err(e) => self.fail(format!("book: {e}")),
        }
    }

    fn record(&self, op: Op, t0: Instant) {
        let us = (t0.elapsed().as_micros() as u64).max(1);
        self.sample_pool();
        let mut s = self.lock();
        match op {
            Op::Slots => s.slots.saturating_record(us),
            Op::Book => s.book.saturating_record(us),
        }
    }

    /// One background call: a slot query and a booking about once a second until `stop`.
    async fn call(self: Arc<Self>, i: usize, stop: Arc<AtomicBool>) {
        let doctor = (i as i64 % DOCTORS) + 1;
        // Spread the calls' phases, as real calls are unrelated.
        tokio::time::sleep(Duration::from_millis((i as u64 * 211) % 1000)).await;
        while !stop.load(Ordering::Relaxed) {
            match self.find_slot(doctor, i).await {
                Ok(slot) => self.book(&slot, i).await,
                Err(e) => self.fail(e),
            }
            let think = 500 + (i as u64 * 7_919 + self.lock().book.len()) % 1000;
            tokio::time::sleep(Duration::from_millis(think)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, why: String) {
        self.lock().failures.push(why);
    }

    /// Print the figures; returns the failures (a pool timeout is one: a broken target).
    fn report(&self, name: &str) -> Vec<String> {
        let s = self.lock();
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        for (op, h) in [("free_slots", &s.slots), ("book", &s.book)] {
            println!(
                "{name} {op}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
                h.len(),
                ms(h, 0.5),
                ms(h, 0.99),
                h.max() as f64 / 1000.0
            );
        }
        println!("{name}: {} bookings lost a race (slot taken)", s.taken);
        if self.pool.is_some() {
            println!(
                "{name} pool: peak in use {}, peak waiting {}, failures {}",
                self.peak_in_use.load(Ordering::Relaxed),
                self.peak_waiting.load(Ordering::Relaxed),
                s.failures.len()
            );
        }
        s.failures.clone()
    }
}

fn run(c: &mut Criterion, rt: &Runtime, name: &str, bench: Arc<Bench>) -> Vec<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let calls: Vec<_> = (0..CALLS)
        .map(|i| rt.spawn(Arc::clone(&bench).call(i, Arc::clone(&stop))))
        .collect();
    let picks = AtomicU64::new(0);
    let mut group = c.benchmark_group(format!("store_{name}_under_{CALLS}_calls"));
    group.bench_function("free_slots", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut spent = Duration::ZERO;
                for i in 0..iters {
                    let day = now().date_naive() + TimeDelta::days(1 + (i % 5) as i64);
                    let t0 = Instant::now();
                    let slots = bench.store.free_slots(1 + (i as i64 % DOCTORS), day).await;
                    spent += t0.elapsed();
                    bench.record(Op::Slots, t0);
                    if let Err(e) = slots {
                        bench.fail(format!("free_slots: {e}"));
                    }
                }
                spent
            })
        })
    });
    group.bench_function("book", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let i = picks.fetch_add(1, Ordering::Relaxed) as usize;
                    let Ok(slot) = bench.find_slot(1 + (i as i64 % DOCTORS), i).await else {
                        continue;
                    };
                    let t0 = Instant::now();
                    bench.book(&slot, i).await;
                    spent += t0.elapsed();
                }
                spent
            })
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    for call in calls {
        let _ = rt.block_on(call);
    }
    bench.report(name)
}

fn assert_no_failures(name: &str, failures: &[String]) {
    // A pool timeout or any other failure is a broken target, not a slow sample.
    assert!(
        failures.is_empty(),
        "{name}: {:?}",
        &failures[..failures.len().min(5)]
    );
}

fn sqlite(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(path.to_str().expect("path"))
        .expect("sqlite")
        .with_clock(Arc::new(now));
    let failures = run(c, rt, "sqlite", Bench::new(Arc::new(store), None));
    assert_no_failures("sqlite", &failures);
}

async fn postgres_store(url: &str, schema: &str) -> anyhow::Result<PgStore> {
    let (mut client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let sql = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}, public"
    );
    client.batch_execute(&sql).await?;
    Migrator::new(&mut client, POSTGRES).up().await?;
    seed::run(&mut client).await?;
    let cfg = DatabaseConfig {
        url: Secret::new(url),
        schema: schema.into(),
        ..Default::default()
    };
    Ok(PgStore::new(pool::build(&cfg)?).with_clock(Arc::new(now)))
}

fn postgres(c: &mut Criterion, rt: &Runtime) {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        println!("SKIPPED: DATABASE_URL unset; the PostgreSQL store bench did not run");
        return;
    };
    let schema = format!("bench_store_{}", std::process::id());
    let store = match rt.block_on(postgres_store(&url, &schema)) {
        Ok(s) => s,
        Err(e) => {
            println!("SKIPPED: PostgreSQL at DATABASE_URL unusable: {e:#}");
            return;
        }
    };
    let pool = store.pool().clone();
    let failures = run(c, rt, "postgres", Bench::new(Arc::new(store), Some(pool)));
    let drop = async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
    };
    if let Err(e) = rt.block_on(drop) {
        println!("could not drop {schema}: {e}");
    }
    assert_no_failures("postgres", &failures);
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    sqlite(c, &rt);
    postgres(c, &rt);
}

criterion_group! {
    name = benches;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = store
}
criterion_main!(benches);

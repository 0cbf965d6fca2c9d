//! What the PostgreSQL tests share: the skip rule, per-test schemas, a seeded store, and a TCP
//! proxy that plays a database outage.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use frontdesk::secret::Secret;
use frontdesk::store::migrate::{Migrator, POSTGRES};
use frontdesk::store::postgres::{pool, PgStore};
use frontdesk::store::{seed, DatabaseConfig};
use frontdesk_actors::doubles::memory_store::Clock;
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::{Client, NoTls};

pub fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        // Straight to the process's stderr: libtest would swallow eprintln! in a passing test.
        use std::io::Write;
        let msg = b"SKIPPED: DATABASE_URL unset; PostgreSQL store test did not run\n";
        let _ = std::io::stderr().write_all(msg);
    }
    url
}

/// A connection whose search path is `schema` (then public, for the btree_gist operators).
pub async fn connect(url: &str, schema: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path = {schema}, public");
    client.batch_execute(&sql).await.unwrap();
    client
}

pub fn unique_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("t_{tag}_{}_{n}_{nanos}", std::process::id())
}

pub async fn drop_schema(url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    client.batch_execute(&sql).await.unwrap();
}

/// A migrated, seeded schema and a store on it.
pub async fn seeded_store(url: &str, schema: &str, clock: Clock) -> PgStore {
    let mut c = connect(url, schema).await;
    Migrator::new(&mut c, POSTGRES).up().await.unwrap();
    seed::run(&mut c).await.unwrap();
    let cfg = DatabaseConfig {
        url: Secret::new(url),
        schema: schema.into(),
        ..Default::default()
    };
    PgStore::new(pool::build(&cfg).unwrap()).with_clock(clock)
}

/// A TCP proxy to PostgreSQL that a test can take down (refusing and cutting connections) and
/// bring back, to play a database outage without touching the server.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    up: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicUsize::new(1));
        let flag = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let generation = flag.load(Ordering::SeqCst);
                if generation == 0 {
                    continue; // dropped at once: connection refused, in effect
                }
                let (target, flag) = (target.clone(), Arc::clone(&flag));
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while flag.load(Ordering::SeqCst) == generation {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, () = cut => {} }
                });
            }
        });
        Self { addr, up }
    }

    pub fn down(&self) {
        self.up.store(0, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.up.store(2, Ordering::SeqCst);
    }
}

/// A proxy in front of the server at `url` and a store on `schema` reached through it, with short
/// waits so an outage shows quickly.
pub async fn proxied_store(url: &str, schema: &str, clock: Clock) -> (Proxy, PgStore) {
    let parsed = url::Url::parse(url).unwrap();
    let target = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target).await;
    let mut via = parsed;
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.addr.port())).unwrap();
    let cfg = DatabaseConfig {
        url: Secret::new(via.as_str()),
        schema: schema.into(),
        pool_wait_timeout_ms: 300,
        pool_create_timeout_ms: 300,
        ..Default::default()
    };
    let store = PgStore::new(pool::build(&cfg).unwrap()).with_clock(clock);
    (proxy, store)
}

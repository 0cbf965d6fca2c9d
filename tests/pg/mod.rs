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
use frontdesk_actors::store::Clock;
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
    /// 0: down; any other value: up, and connections opened under an older value are cut.
    generation: tokio::sync::watch::Sender<usize>,
    /// Connections still relaying; `down` returns once they are all gone.
    open: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = tokio::sync::watch::Sender::new(1);
        let open = Arc::new(AtomicUsize::new(0));
        let (gen, count) = (generation.clone(), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut rx = gen.subscribe();
                let g = *rx.borrow_and_update();
                if g == 0 {
                    continue; // dropped at once: connection refused, in effect
                }
                // Counted before the task runs, so `down` cannot miss it.
                count.fetch_add(1, Ordering::SeqCst);
                let (target, count) = (target.clone(), Arc::clone(&count));
                tokio::spawn(async move {
                    relay(inbound, &target, &mut rx, g).await;
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            generation,
            open,
        }
    }

    /// Cut every connection and refuse new ones; returns once no connection relays any more.
    pub async fn down(&self) {
        self.generation.send_replace(0);
        for _ in 0..1000 {
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("proxy connections still open after going down");
    }

    pub fn restore(&self) {
        self.generation.send_modify(|g| *g = (*g).max(1) + 1);
    }
}

/// Relay one connection until either side closes or the generation changes; both sockets are
/// closed when this returns.
async fn relay(
    mut inbound: TcpStream,
    target: &str,
    rx: &mut tokio::sync::watch::Receiver<usize>,
    g: usize,
) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
    tokio::select! {
        _ = copy => {}
        _ = rx.wait_for(|now| *now != g) => {}
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

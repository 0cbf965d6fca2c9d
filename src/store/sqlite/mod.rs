//! The embedded SQLite store: the zero-setup default when no `DATABASE_URL` is set. Same trait and
//! behaviour as PostgreSQL; one connection behind a mutex (SQLite has one writer anyway), every
//! operation on the blocking pool so the runtime never waits on disk.

mod answer_cache;
pub mod migrate;
mod ops;
mod phrase_cache;
mod records;
pub mod seed;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use frontdesk_actors::store::{normalise_name, normalise_phone, Clock, StoreError};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ErrorCode};

/// How long a statement waits for another process's write lock before reporting a timeout.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
}

impl SqliteStore {
    /// Open (or create) the database at `path` (`:memory:` for a private in-memory one), bring
    /// its schema up to date and load the seed hospital if it is empty.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let mut conn = connect(path).map_err(sqlite_error)?;
        migrate::Migrator::new(&mut conn, crate::store::migrate::SQLITE)
            .up()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        seed::run(&mut conn).map_err(sqlite_error)?;
        Ok(Self::from_connection(conn))
    }

    /// Wrap a connection whose schema is already in place.
    pub fn from_connection(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
            clock: Arc::new(Utc::now),
        }
    }

    /// Read "now" from `clock` (tests pin it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Run `f` on the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, DateTime<Utc>) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let now = (self.clock)();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard, now)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite task: {e}")))?
    }
}

/// A connection with our pragmas and SQL functions.
#[allow(clippy::disallowed_methods)] // runs on the store's blocking thread
pub fn connect(path: &str) -> rusqlite::Result<Connection> {
    let conn = if path == ":memory:" {
        Connection::open_in_memory()?
    } else {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            // A missing directory would otherwise surface as a puzzling "unable to open".
            let _ = std::fs::create_dir_all(dir);
        }
        Connection::open(path)?
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    use_wal(&conn)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    register_functions(&conn)?;
    Ok(conn)
}

/// WAL lets readers go on while one call writes (a no-op in memory). Switching needs the file to
/// itself and SQLite does not wait for that, so a process opening the file while another
/// migrates retries here.
#[allow(clippy::disallowed_methods)] // runs on the store's blocking thread
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: rusqlite::Result<String> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0));
        match mode {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.map(|_| ()),
        }
    }
}

/// The stores' shared normalisation as SQL functions, so SQLite matches names and phones exactly
/// as the other stores do (SQLite has no regexp_replace).
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("norm_phone", 1, flags, |ctx| {
        Ok(normalise_phone(&ctx.get::<String>(0)?))
    })?;
    conn.create_scalar_function("norm_name", 1, flags, |ctx| {
        Ok(normalise_name(&ctx.get::<String>(0)?))
    })
}

/// The one text form of an instant: fixed width, so text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("stored time {s:?}: {e}")))
}

/// Busy or locked: another writer holds the database; worth retrying.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

pub fn sqlite_error(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Timeout
    } else if e.to_string().contains("appointments_no_double_booking") {
        StoreError::SlotTaken
    } else {
        StoreError::Unavailable(format!("sqlite: {e}"))
    }
}

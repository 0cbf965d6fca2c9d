//! The usage queries on SQLite. Same definitions as [`super::postgres`]. SQLite has no
//! `percentile_cont`, so the percentiles are ranked with a window function and interpolated in
//! the query exactly as PostgreSQL does: position p * (n - 1), linear between its two ranks.

use std::sync::{Arc, Mutex};

use frontdesk_actors::cache::CacheSavings;
use frontdesk_actors::store::StoreError;
use rusqlite::{params, Connection};

use super::{count, reasons, ProviderUsage, Summary, ToolCount, TurnStats, Window};
use crate::store::sqlite::{connect, sqlite_error, ts};

type Shared = Arc<Mutex<Connection>>;

/// The database at `path`, migrated first when `migrate` (a fresh file then reports zeros).
/// Without `migrate` a missing file is an error, not created: the store creates it.
pub fn open(path: &str, migrate: bool) -> Result<Shared, StoreError> {
    if !migrate && path != ":memory:" && !std::path::Path::new(path).exists() {
        return Err(StoreError::Unavailable(format!(
            "no database at {path} yet"
        )));
    }
    let mut conn = connect(path).map_err(sqlite_error)?;
    if migrate {
        crate::store::sqlite::migrate::Migrator::new(&mut conn, crate::store::migrate::SQLITE)
            .up()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    Ok(Arc::new(Mutex::new(conn)))
}

/// `f` on the connection, on the blocking pool (SQLite reads the disk).
pub async fn run<T, F>(conn: &Shared, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard).map_err(sqlite_error)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("sqlite task: {e}")))?
}

// Timestamps are fixed-width UTC text: comparing the text compares the instants.
const CALLS: &str = "SELECT COUNT(*),
        COALESCE(SUM((julianday(ended_at) - julianday(started_at)) * 86400.0), 0.0) / 60.0
   FROM calls WHERE started_at >= ?1 AND started_at < ?2";

const END_REASONS: &str = "SELECT CASE
          WHEN ended_at IS NOT NULL THEN CASE WHEN instr(end_reason, ':') > 0
               THEN substr(end_reason, 1, instr(end_reason, ':') - 1)
               ELSE COALESCE(end_reason, '') END
          WHEN started_at < ?3 THEN 'not_ended' ELSE 'in_progress' END AS reason,
        COUNT(*)
   FROM calls WHERE started_at >= ?1 AND started_at < ?2
  GROUP BY 1 ORDER BY 1";

const USAGE: &str = "SELECT COALESCE(SUM(u.stt_audio_seconds), 0.0),
        COALESCE(SUM(u.prompt_tokens), 0), COALESCE(SUM(u.completion_tokens), 0),
        COALESCE(SUM(u.tts_characters), 0), COALESCE(SUM(u.cost_usd), 0.0),
        COALESCE(SUM(u.tts_cache_hits), 0), COALESCE(SUM(u.tts_cache_misses), 0),
        COALESCE(SUM(u.tts_saved_characters), 0),
        COALESCE(SUM(u.llm_cache_hits), 0), COALESCE(SUM(u.llm_cache_misses), 0),
        COALESCE(SUM(u.llm_saved_prompt_tokens), 0),
        COALESCE(SUM(u.llm_saved_completion_tokens), 0),
        COALESCE(SUM(u.saved_cost_usd), 0.0)
   FROM usage u JOIN calls c ON c.id = u.call_id
  WHERE c.started_at >= ?1 AND c.started_at < ?2";

const TURNS: &str = "SELECT COUNT(*) FROM turns t JOIN calls c ON c.id = t.call_id
  WHERE c.started_at >= ?1 AND c.started_at < ?2";

/// Rank i (0-based) of n latencies; for each p, x = p * (n - 1) and the value
/// v[floor x] + (x - floor x) * (v[floor x + 1] - v[floor x]). No latency: no row.
const PERCENTILES: &str = "WITH l AS (
        SELECT t.turn_latency_ms AS v,
               ROW_NUMBER() OVER (ORDER BY t.turn_latency_ms) - 1 AS i,
               COUNT(*) OVER () AS n
          FROM turns t JOIN calls c ON c.id = t.call_id
         WHERE c.started_at >= ?1 AND c.started_at < ?2 AND t.turn_latency_ms IS NOT NULL),
      q(p) AS (VALUES (0.5), (0.95)),
      pos AS (SELECT q.p AS p, q.p * (MAX(l.n) - 1) AS x FROM q, l GROUP BY q.p),
      b AS (SELECT p, x, CAST(x AS INTEGER) AS lo FROM pos)
 SELECT b.p,
        (SELECT v FROM l WHERE i = b.lo) + (b.x - b.lo) *
          (COALESCE((SELECT v FROM l WHERE i = b.lo + 1), 0.0) - (SELECT v FROM l WHERE i = b.lo))
   FROM b ORDER BY b.p";

const TOOLS: &str = "SELECT t.name, COUNT(*), COUNT(t.error)
   FROM tool_calls t JOIN calls c ON c.id = t.call_id
  WHERE c.started_at >= ?1 AND c.started_at < ?2
  GROUP BY t.name ORDER BY t.name";

pub fn summary(c: &Connection, w: &Window) -> rusqlite::Result<Summary> {
    let (since, until) = (ts(w.since), ts(w.until));
    let (calls, minutes): (i64, f64) =
        c.query_row(CALLS, params![since, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut stmt = c.prepare_cached(END_REASONS)?;
    let rows = stmt
        .query_map(params![since, until, ts(w.unended_before)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
    let (provider, cache) = c.query_row(USAGE, params![since, until], usage_row)?;
    Ok(Summary {
        calls: count(calls),
        minutes,
        end_reasons: reasons(rows),
        provider,
        cache,
    })
}

fn usage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ProviderUsage, CacheSavings)> {
    let n = |i: usize| r.get::<_, i64>(i).map(count);
    let provider = ProviderUsage {
        stt_audio_seconds: r.get(0)?,
        prompt_tokens: n(1)?,
        completion_tokens: n(2)?,
        tts_characters: n(3)?,
        cost_usd: r.get(4)?,
    };
    let cache = CacheSavings {
        tts_hits: n(5)?,
        tts_misses: n(6)?,
        tts_saved_characters: n(7)?,
        llm_hits: n(8)?,
        llm_misses: n(9)?,
        llm_saved_prompt_tokens: n(10)?,
        llm_saved_completion_tokens: n(11)?,
        saved_cost_usd: r.get(12)?,
    };
    Ok((provider, cache))
}

pub fn turn_stats(c: &Connection, w: &Window) -> rusqlite::Result<TurnStats> {
    let (since, until) = (ts(w.since), ts(w.until));
    let turns: i64 = c.query_row(TURNS, params![since, until], |r| r.get(0))?;
    let mut stmt = c.prepare_cached(PERCENTILES)?;
    let percentiles = stmt
        .query_map(params![since, until], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let at = |p: f64| {
        percentiles
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|(_, v)| *v)
    };
    let mut stmt = c.prepare_cached(TOOLS)?;
    let tools = stmt
        .query_map(params![since, until], |r| {
            Ok(ToolCount {
                name: r.get(0)?,
                calls: count(r.get(1)?),
                errors: count(r.get(2)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(TurnStats {
        turns: count(turns),
        turn_latency_p50_ms: at(0.5),
        turn_latency_p95_ms: at(0.95),
        tools,
    })
}

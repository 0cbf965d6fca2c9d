//! Retention on SQLite: the same statements as PostgreSQL, each batch an IMMEDIATE transaction
//! of its own so the write lock is held for one batch only; ids travel as one JSON array.

use chrono::{DateTime, Utc};
use frontdesk_actors::store::StoreError;
use rusqlite::{params, Connection, TransactionBehavior};

use super::archive::{self, Archive};
use super::config::Cutoffs;
use super::sql::{self, Cut};
use super::{Counts, RetentionError, TableCount};
use crate::store::sqlite::{parse_ts, sqlite_error, ts};

fn cut(c: &Cutoffs, which: Cut) -> String {
    ts(match which {
        Cut::Conversations => c.conversations,
        Cut::Usage => c.usage,
        Cut::TtsUnused => c.tts_unused,
        Cut::Now => c.now,
    })
}

fn limit(batch: usize) -> i64 {
    i64::try_from(batch).unwrap_or(i64::MAX)
}

/// Rows each table would lose, and its oldest row kept.
pub fn survey(conn: &Connection, c: &Cutoffs) -> Result<Vec<TableCount>, StoreError> {
    let mut out = vec![];
    for (table, which, statement) in sql::survey() {
        let (rows, oldest): (i64, Option<String>) = conn
            .query_row(&sql::for_sqlite(&statement), [cut(c, which)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sqlite_error)?;
        out.push(TableCount {
            table,
            rows: u64::try_from(rows).unwrap_or(0),
            oldest_kept: oldest.as_deref().map(parse_ts).transpose()?,
        });
    }
    Ok(out)
}

/// Remove everything older than the cut-offs, `batch` rows at a time.
pub fn apply(
    conn: &mut Connection,
    c: &Cutoffs,
    batch: usize,
    mut archive: Option<&mut Archive>,
    removed: &mut Counts,
) -> Result<(), RetentionError> {
    while conversations_batch(
        conn,
        c.conversations,
        batch,
        archive.as_deref_mut(),
        removed,
    )? {}
    let steps = [
        ("usage", sql::delete_usage(""), c.usage),
        ("tts_phrase_cache", sql::delete_phrases(""), c.tts_unused),
        ("llm_answer_cache", sql::delete_answers(""), c.now),
    ];
    for (table, statement, cutoff) in steps {
        let statement = sql::for_sqlite(&statement);
        loop {
            let n = conn
                .execute(&statement, params![ts(cutoff), limit(batch)])
                .map_err(sqlite_error)?;
            removed.committed(table, n as u64);
            if n < batch {
                break;
            }
        }
    }
    Ok(())
}

/// One transaction: up to `batch` expired calls archived (when asked), then deleted with their
/// rows. False once no full batch is left.
fn conversations_batch(
    conn: &mut Connection,
    cutoff: DateTime<Utc>,
    batch: usize,
    archive: Option<&mut Archive>,
    removed: &mut Counts,
) -> Result<bool, RetentionError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let ids: Vec<String> = {
        let mut stmt = tx
            .prepare(&sql::for_sqlite(&sql::expired_calls("")))
            .map_err(sqlite_error)?;
        let rows = stmt
            .query_map(params![ts(cutoff), limit(batch)], |r| r.get(0))
            .map_err(sqlite_error)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_error)?
    };
    if ids.is_empty() {
        return Ok(false);
    }
    let ids_json = serde_json::to_string(&ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if let Some(archive) = archive {
        archive.write(&archived(&tx, &ids_json)?)?;
    }
    let mut batch_counts = Counts::default();
    for table in sql::CALL_CHILDREN {
        let statement =
            format!("DELETE FROM {table} WHERE call_id IN (SELECT value FROM json_each(?1))");
        let n = tx.execute(&statement, [&ids_json]).map_err(sqlite_error)?;
        batch_counts.add(table, n as u64);
    }
    let n = tx
        .execute(
            "DELETE FROM calls WHERE id IN (SELECT value FROM json_each(?1))",
            [&ids_json],
        )
        .map_err(sqlite_error)?;
    batch_counts.add("calls", n as u64);
    tx.commit().map_err(sqlite_error)?;
    // Counted once committed: a batch rolled back removed nothing.
    removed.committed_all(&batch_counts);
    Ok(ids.len() == batch)
}

/// The records of the calls in `ids_json`, grouped per call.
fn archived(c: &Connection, ids_json: &str) -> Result<Vec<archive::ArchivedCall>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT call_id, op FROM call_record_ops WHERE call_id IN (SELECT value FROM json_each(?1))
             ORDER BY call_id, applied",
        )
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map([ids_json], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sqlite_error)?;
    let mut pairs = vec![];
    for row in rows {
        let (call, op) = row.map_err(sqlite_error)?;
        // The column is CHECK (json_valid(op)); a value that still fails is kept as text.
        let op = serde_json::from_str(&op).unwrap_or(serde_json::Value::String(op));
        pairs.push((call, op));
    }
    Ok(archive::group(pairs))
}

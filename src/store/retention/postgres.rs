//! Retention on PostgreSQL: each batch is its own short transaction, and a batch's rows are
//! locked with SKIP LOCKED so two workers' scheduled runs split the work instead of queueing.

use chrono::{DateTime, Utc};
use frontdesk_actors::store::StoreError;
use tokio_postgres::Client;

use super::archive::{self, Archive};
use super::config::Cutoffs;
use super::sql::{self, Cut};
use super::{Counts, RetentionError, TableCount};
use crate::store::postgres::pool::db_error;

fn cut(c: &Cutoffs, which: Cut) -> DateTime<Utc> {
    match which {
        Cut::Conversations => c.conversations,
        Cut::Usage => c.usage,
        Cut::TtsUnused => c.tts_unused,
        Cut::Now => c.now,
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Rows each table would lose, and its oldest row kept.
pub async fn survey(client: &Client, c: &Cutoffs) -> Result<Vec<TableCount>, StoreError> {
    let mut out = vec![];
    for (table, which, sql) in sql::survey() {
        let row = client
            .query_one(&sql, &[&cut(c, which)])
            .await
            .map_err(db_error)?;
        let rows: i64 = row.try_get(0).map_err(db_error)?;
        out.push(TableCount {
            table,
            rows: u64::try_from(rows).unwrap_or(0),
            oldest_kept: row.try_get(1).map_err(db_error)?,
        });
    }
    Ok(out)
}

/// Remove everything older than the cut-offs, `batch` rows at a time.
pub async fn apply(
    client: &mut Client,
    c: &Cutoffs,
    batch: usize,
    mut archive: Option<&mut Archive>,
    removed: &mut Counts,
) -> Result<(), RetentionError> {
    while conversations_batch(
        client,
        c.conversations,
        batch,
        archive.as_deref_mut(),
        removed,
    )
    .await?
    {}
    let steps = [
        (
            "usage",
            sql::delete_usage("FOR UPDATE OF x SKIP LOCKED"),
            c.usage,
        ),
        (
            "tts_phrase_cache",
            sql::delete_phrases("FOR UPDATE SKIP LOCKED"),
            c.tts_unused,
        ),
        (
            "llm_answer_cache",
            sql::delete_answers("FOR UPDATE SKIP LOCKED"),
            c.now,
        ),
    ];
    for (table, statement, cutoff) in steps {
        loop {
            let n = client
                .execute(&statement, &[&cutoff, &count(batch as u64)])
                .await
                .map_err(db_error)?;
            removed.committed(table, n);
            if n < batch as u64 {
                break;
            }
        }
    }
    Ok(())
}

/// One transaction: up to `batch` expired calls archived (when asked), then deleted with their
/// rows. False once no full batch is left.
async fn conversations_batch(
    client: &mut Client,
    cutoff: DateTime<Utc>,
    batch: usize,
    archive: Option<&mut Archive>,
    removed: &mut Counts,
) -> Result<bool, RetentionError> {
    let tx = client.transaction().await.map_err(db_error)?;
    let select = sql::expired_calls("FOR UPDATE SKIP LOCKED");
    let ids: Vec<String> = tx
        .query(&select, &[&cutoff, &count(batch as u64)])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    if ids.is_empty() {
        return Ok(false);
    }
    if let Some(archive) = archive {
        archive.write(&archived(&tx, &ids).await?)?;
    }
    let mut batch_counts = Counts::default();
    for table in sql::CALL_CHILDREN {
        let statement = format!("DELETE FROM {table} WHERE call_id = ANY($1)");
        let n = tx.execute(&statement, &[&ids]).await.map_err(db_error)?;
        batch_counts.add(table, n);
    }
    let n = tx
        .execute("DELETE FROM calls WHERE id = ANY($1)", &[&ids])
        .await
        .map_err(db_error)?;
    batch_counts.add("calls", n);
    tx.commit().await.map_err(db_error)?;
    // Counted once committed: a batch rolled back removed nothing.
    removed.committed_all(&batch_counts);
    Ok(ids.len() == batch)
}

/// The records of the calls `ids`, grouped per call.
async fn archived(
    tx: &tokio_postgres::Transaction<'_>,
    ids: &[String],
) -> Result<Vec<archive::ArchivedCall>, StoreError> {
    let rows = tx
        .query(
            "SELECT call_id, op FROM call_record_ops WHERE call_id = ANY($1) ORDER BY call_id, applied",
            &[&ids],
        )
        .await
        .map_err(db_error)?;
    let pairs = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(db_error)?;
    Ok(archive::group(pairs))
}

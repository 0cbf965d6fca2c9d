//! The LLM answer cache's database layer on PostgreSQL (`llm_answer_cache`), shared by every
//! worker on the database, and the hospital's data version it is keyed by.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::pool::db_error;
use super::PgStore;
use crate::cache::llm::{AnswerError, AnswerRow, AnswerStore};

fn unavailable(e: frontdesk_actors::store::StoreError) -> AnswerError {
    AnswerError::Unavailable(e.to_string())
}

fn pg(e: tokio_postgres::Error) -> AnswerError {
    unavailable(db_error(e))
}

const COLUMNS: &str = "key, prompt_version, model, data_version, question, answer, \
    prompt_tokens, completion_tokens, created_at, expires_at, hits";

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn row(r: &Row) -> Result<AnswerRow, AnswerError> {
    let corrupt = |e: tokio_postgres::Error| AnswerError::Corrupt(e.to_string());
    Ok(AnswerRow {
        key: r.try_get(0).map_err(corrupt)?,
        prompt_version: r.try_get(1).map_err(corrupt)?,
        model: r.try_get(2).map_err(corrupt)?,
        data_version: r.try_get(3).map_err(corrupt)?,
        question: r.try_get(4).map_err(corrupt)?,
        answer: r.try_get(5).map_err(corrupt)?,
        prompt_tokens: count(r.try_get(6).map_err(corrupt)?),
        completion_tokens: count(r.try_get(7).map_err(corrupt)?),
        created_at: r.try_get(8).map_err(corrupt)?,
        expires_at: r.try_get(9).map_err(corrupt)?,
        hits: count(r.try_get(10).map_err(corrupt)?),
    })
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl AnswerStore for PgStore {
    /// md5 of every doctor and shift row as text, in id order: any change to either table
    /// (a row added, edited or removed) changes it. Both tables are small.
    async fn data_version(&self) -> Result<String, AnswerError> {
        let c = self.conn().await.map_err(unavailable)?;
        let r = c
            .query_one(
                "SELECT md5(
                   coalesce((SELECT string_agg(d::text, ';' ORDER BY d.id) FROM doctors d), '')
                   || '|' ||
                   coalesce((SELECT string_agg(s::text, ';' ORDER BY s.id) FROM doctor_shifts s), ''))",
                &[],
            )
            .await
            .map_err(pg)?;
        r.try_get(0).map_err(pg)
    }

    async fn load_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AnswerRow>, AnswerError> {
        let c = self.conn().await.map_err(unavailable)?;
        let sql = format!(
            "UPDATE llm_answer_cache SET hits = hits + 1, last_hit_at = $2
             WHERE key = $1 AND expires_at > $2 RETURNING {COLUMNS}"
        );
        let r = c.query_opt(&sql, &[&key, &now]).await.map_err(pg)?;
        r.as_ref().map(row).transpose()
    }

    async fn touch_answer(&self, key: &str, now: DateTime<Utc>) -> Result<(), AnswerError> {
        let c = self.conn().await.map_err(unavailable)?;
        c.execute(
            "UPDATE llm_answer_cache SET hits = hits + 1, last_hit_at = $2 WHERE key = $1",
            &[&key, &now],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn save_answer(&self, a: &AnswerRow) -> Result<(), AnswerError> {
        let c = self.conn().await.map_err(unavailable)?;
        let sql = format!(
            "INSERT INTO llm_answer_cache ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
             ON CONFLICT (key) DO UPDATE SET prompt_version = EXCLUDED.prompt_version,
               model = EXCLUDED.model, data_version = EXCLUDED.data_version,
               question = EXCLUDED.question, answer = EXCLUDED.answer,
               prompt_tokens = EXCLUDED.prompt_tokens,
               completion_tokens = EXCLUDED.completion_tokens,
               created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at"
        );
        c.execute(
            &sql,
            &[
                &a.key,
                &a.prompt_version,
                &a.model,
                &a.data_version,
                &a.question,
                &a.answer,
                &signed(a.prompt_tokens),
                &signed(a.completion_tokens),
                &a.created_at,
                &a.expires_at,
                &signed(a.hits),
            ],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn purge_answers(
        &self,
        data_version: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, AnswerError> {
        let c = self.conn().await.map_err(unavailable)?;
        c.execute(
            "DELETE FROM llm_answer_cache WHERE data_version <> $1 OR expires_at <= $2",
            &[&data_version, &now],
        )
        .await
        .map_err(pg)
    }
}

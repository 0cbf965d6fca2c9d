//! The LLM answer cache's database layer on SQLite (`llm_answer_cache`), and the hospital's data
//! version it is keyed by.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use sha2::{Digest, Sha256};

use super::{parse_ts, sqlite_error, ts, SqliteStore};
use crate::cache::llm::{AnswerError, AnswerRow, AnswerStore};

fn unavailable(e: frontdesk_actors::store::StoreError) -> AnswerError {
    AnswerError::Unavailable(e.to_string())
}

const COLUMNS: &str = "key, prompt_version, model, data_version, question, answer, \
    prompt_tokens, completion_tokens, created_at, expires_at, hits";

/// The row as stored; decoding its timestamps may find it corrupt.
type Raw = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    i64,
);

fn raw(r: &Row) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn decode(r: Raw) -> Result<AnswerRow, AnswerError> {
    let time = |s: &str| parse_ts(s).map_err(|e| AnswerError::Corrupt(e.to_string()));
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(AnswerRow {
        created_at: time(&r.8)?,
        expires_at: time(&r.9)?,
        key: r.0,
        prompt_version: r.1,
        model: r.2,
        data_version: r.3,
        question: r.4,
        answer: r.5,
        prompt_tokens: count(r.6),
        completion_tokens: count(r.7),
        hits: count(r.10),
    })
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl AnswerStore for SqliteStore {
    /// SHA-256 of every doctor and shift row, in id order: any change to either table changes it.
    async fn data_version(&self) -> Result<String, AnswerError> {
        let text = self
            .run(|c, _| {
                c.query_row(
                    "SELECT coalesce((SELECT group_concat(v, ';') FROM
                         (SELECT id || ',' || name || ',' || specialty AS v FROM doctors ORDER BY id)), '')
                     || '|' ||
                     coalesce((SELECT group_concat(v, ';') FROM
                         (SELECT id || ',' || doctor_id || ',' || weekday || ',' || start_time
                                 || ',' || end_time AS v FROM doctor_shifts ORDER BY id)), '')",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sqlite_error)
            })
            .await
            .map_err(unavailable)?;
        Ok(crate::cache::llm::rule::to_hex(&Sha256::digest(
            text.as_bytes(),
        )))
    }

    async fn load_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AnswerRow>, AnswerError> {
        let key = key.to_owned();
        let sql = format!(
            "UPDATE llm_answer_cache SET hits = hits + 1, last_hit_at = ?2
             WHERE key = ?1 AND expires_at > ?2 RETURNING {COLUMNS}"
        );
        let found = self
            .run(move |c, _| {
                c.query_row(&sql, params![key, ts(now)], raw)
                    .optional()
                    .map_err(sqlite_error)
            })
            .await
            .map_err(unavailable)?;
        found.map(decode).transpose()
    }

    async fn touch_answer(&self, key: &str, now: DateTime<Utc>) -> Result<(), AnswerError> {
        let key = key.to_owned();
        self.run(move |c, _| {
            c.execute(
                "UPDATE llm_answer_cache SET hits = hits + 1, last_hit_at = ?2 WHERE key = ?1",
                params![key, ts(now)],
            )
            .map_err(sqlite_error)
        })
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn save_answer(&self, a: &AnswerRow) -> Result<(), AnswerError> {
        let a = a.clone();
        let sql = format!(
            "INSERT INTO llm_answer_cache ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
             ON CONFLICT (key) DO UPDATE SET prompt_version = excluded.prompt_version,
               model = excluded.model, data_version = excluded.data_version,
               question = excluded.question, answer = excluded.answer,
               prompt_tokens = excluded.prompt_tokens,
               completion_tokens = excluded.completion_tokens,
               created_at = excluded.created_at, expires_at = excluded.expires_at"
        );
        self.run(move |c, _| {
            c.execute(
                &sql,
                params![
                    a.key,
                    a.prompt_version,
                    a.model,
                    a.data_version,
                    a.question,
                    a.answer,
                    signed(a.prompt_tokens),
                    signed(a.completion_tokens),
                    ts(a.created_at),
                    ts(a.expires_at),
                    signed(a.hits),
                ],
            )
            .map_err(sqlite_error)
        })
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn purge_answers(
        &self,
        data_version: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, AnswerError> {
        let v = data_version.to_owned();
        let n = self
            .run(move |c, _| {
                c.execute(
                    "DELETE FROM llm_answer_cache WHERE data_version <> ?1 OR expires_at <= ?2",
                    params![v, ts(now)],
                )
                .map_err(sqlite_error)
            })
            .await
            .map_err(unavailable)?;
        Ok(n as u64)
    }
}

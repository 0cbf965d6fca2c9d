//! The database layer of the answer cache, shared by every worker on the same database
//! (`llm_answer_cache`; PostgreSQL and SQLite implement it in `store::{postgres,sqlite}`), and
//! the stored form of an answer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rule::CALLER_INDEPENDENT_TOOLS;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("answer cache database unavailable: {0}")]
    Unavailable(String),
    #[error("answer cache lookup timed out")]
    Timeout,
    /// A row that does not decode, or was made for another key (a collision): ignored.
    #[error("corrupt answer cache entry: {0}")]
    Corrupt(String),
}

impl AnswerError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, AnswerError::Unavailable(_) | AnswerError::Timeout)
    }

    /// Metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            AnswerError::Unavailable(_) => "unavailable",
            AnswerError::Timeout => "timeout",
            AnswerError::Corrupt(_) => "corrupt",
        }
    }
}

/// A tool call of a cached answer (its id is made afresh on every replay).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedCall {
    pub name: String,
    pub arguments: String,
}

/// What the model answered: its text and the (caller-independent) tool calls it asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<CachedCall>,
}

impl Answer {
    /// The `answer` column's JSON.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decode the `answer` column; anything off (bad JSON, an empty answer, a tool that is not
    /// caller-independent) is a corrupt entry.
    pub fn decode(s: &str) -> Result<Self, AnswerError> {
        let a: Answer =
            serde_json::from_str(s).map_err(|e| AnswerError::Corrupt(format!("answer: {e}")))?;
        if a.text.trim().is_empty() && a.tool_calls.is_empty() {
            return Err(AnswerError::Corrupt("empty answer".into()));
        }
        if let Some(c) = a
            .tool_calls
            .iter()
            .find(|c| !CALLER_INDEPENDENT_TOOLS.contains(&c.name.as_str()))
        {
            return Err(AnswerError::Corrupt(format!("tool {:?} in answer", c.name)));
        }
        Ok(a)
    }
}

/// One `llm_answer_cache` row.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRow {
    pub key: String,
    pub prompt_version: String,
    pub model: String,
    pub data_version: String,
    /// The normalised last caller turn (it passed the rule).
    pub question: String,
    /// `Answer` as JSON.
    pub answer: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub hits: u64,
}

#[async_trait]
pub trait AnswerStore: Send + Sync + 'static {
    /// A digest of the hospital data answers are computed from (the doctors and their shifts):
    /// it changes whenever a doctor or a shift is added, changed or removed.
    async fn data_version(&self) -> Result<String, AnswerError>;
    /// The live row under `key` (not expired at `now`), counting the hit on it.
    async fn load_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AnswerRow>, AnswerError>;
    /// Count a hit served from a worker's memory layer.
    async fn touch_answer(&self, key: &str, now: DateTime<Utc>) -> Result<(), AnswerError>;
    /// Insert or replace (a corrupt row is overwritten by the fresh answer).
    async fn save_answer(&self, row: &AnswerRow) -> Result<(), AnswerError>;
    /// Remove rows made from another data version, and expired ones; how many went.
    async fn purge_answers(
        &self,
        data_version: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, AnswerError>;
}

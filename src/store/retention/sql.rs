//! The SQL both stores run, written once with `$n` placeholders (SQLite's copy turns them into
//! `?n`). Rows are aged by their call: a call started before the cut-off goes with every row that
//! belongs to it.

/// When a call happened: its start, else (its CallStarted op never arrived) its first op.
const CALL_TIME: &str =
    "COALESCE(c.started_at, (SELECT min(o.at) FROM call_record_ops o WHERE o.call_id = c.id))";

/// A call older than `$1`. Written as an OR so each branch can use calls_started_idx.
const CALL_EXPIRED: &str = "(c.started_at < $1 OR (c.started_at IS NULL AND \
     (SELECT min(o.at) FROM call_record_ops o WHERE o.call_id = c.id) < $1))";

/// When a TTS phrase was last used: created or hit, whichever is later.
const PHRASE_USED: &str = "CASE WHEN last_hit_at > created_at THEN last_hit_at ELSE created_at END";

/// Tables holding a call's rows, deleted before the call itself.
pub const CALL_CHILDREN: [&str; 4] = ["call_record_ops", "turns", "tool_calls", "usage"];

/// Which cut-off a survey query takes as `$1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    Conversations,
    Usage,
    TtsUnused,
    Now,
}

/// Per table: (rows older than `$1`, oldest row kept), in report order.
pub fn survey() -> Vec<(&'static str, Cut, String)> {
    let t = CALL_TIME;
    let child = |table: &'static str| {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE {t} < $1), min(x.at) FILTER (WHERE {t} >= $1) \
             FROM {table} x JOIN calls c ON c.id = x.call_id"
        );
        (table, Cut::Conversations, sql)
    };
    let u = PHRASE_USED;
    vec![
        (
            "calls",
            Cut::Conversations,
            format!("SELECT count(*) FILTER (WHERE {t} < $1), min({t}) FILTER (WHERE {t} >= $1) FROM calls c"),
        ),
        child("call_record_ops"),
        child("turns"),
        child("tool_calls"),
        (
            "usage",
            Cut::Usage,
            format!(
                "SELECT count(*) FILTER (WHERE {t} < $1), min({t}) FILTER (WHERE {t} >= $1) \
                 FROM usage x JOIN calls c ON c.id = x.call_id"
            ),
        ),
        (
            "tts_phrase_cache",
            Cut::TtsUnused,
            format!("SELECT count(*) FILTER (WHERE {u} < $1), min({u}) FILTER (WHERE {u} >= $1) FROM tts_phrase_cache"),
        ),
        (
            "llm_answer_cache",
            Cut::Now,
            "SELECT count(*) FILTER (WHERE expires_at < $1), min(created_at) FILTER (WHERE expires_at >= $1) \
             FROM llm_answer_cache"
                .into(),
        ),
    ]
}

/// Up to `$2` calls older than `$1`; `lock` is PostgreSQL's row-lock clause (another worker's
/// scheduled run skips the calls this one is removing).
pub fn expired_calls(lock: &str) -> String {
    format!("SELECT c.id FROM calls c WHERE {CALL_EXPIRED} LIMIT $2 {lock}")
}

/// One statement removing up to `$2` usage rows of calls older than `$1`.
pub fn delete_usage(lock: &str) -> String {
    format!(
        "DELETE FROM usage WHERE call_id IN (SELECT x.call_id FROM usage x \
         JOIN calls c ON c.id = x.call_id WHERE {CALL_EXPIRED} LIMIT $2 {lock})"
    )
}

/// One statement removing up to `$2` TTS phrases unused since `$1`.
pub fn delete_phrases(lock: &str) -> String {
    format!(
        "DELETE FROM tts_phrase_cache WHERE key IN (SELECT key FROM tts_phrase_cache \
         WHERE {PHRASE_USED} < $1 LIMIT $2 {lock})"
    )
}

/// One statement removing up to `$2` LLM answers expired at `$1`.
pub fn delete_answers(lock: &str) -> String {
    format!(
        "DELETE FROM llm_answer_cache WHERE key IN (SELECT key FROM llm_answer_cache \
         WHERE expires_at < $1 LIMIT $2 {lock})"
    )
}

/// PostgreSQL's spelling of a statement for SQLite.
pub fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

//! The call record on SQLite: each op inserted once by (call_id, seq) and, when new, projected
//! into the queryable tables in the same transaction (as on PostgreSQL).

use frontdesk_actors::store::{RecordKind, RecordOp, StoreError};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::{sqlite_error, ts};

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn write(c: &mut Connection, batch: &[RecordOp]) -> Result<(), StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    for op in batch {
        let json = serde_json::to_string(op).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let seq = i64::try_from(op.seq).map_err(|_| StoreError::Invalid("seq too large".into()))?;
        tx.execute(
            "INSERT INTO calls (id) VALUES (?1) ON CONFLICT DO NOTHING",
            [&op.call_id],
        )
        .map_err(sqlite_error)?;
        let fresh = tx
            .execute(
                "INSERT INTO call_record_ops (call_id, seq, at, op) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![op.call_id, seq, ts(op.at), json],
            )
            .map_err(sqlite_error)?;
        if fresh == 1 {
            project(&tx, op, seq).map_err(sqlite_error)?;
        }
    }
    tx.commit().map_err(sqlite_error)
}

fn project(c: &Transaction, op: &RecordOp, seq: i64) -> rusqlite::Result<usize> {
    let (id, at) = (&op.call_id, ts(op.at));
    match &op.kind {
        RecordKind::CallStarted { room, caller } => c.execute(
            "UPDATE calls SET room = ?2, caller = ?3, started_at = ?4 WHERE id = ?1",
            params![id, room, caller, at],
        ),
        RecordKind::Turn {
            index,
            transcript,
            reply,
            interrupted,
            latencies: l,
        } => c.execute(
            "INSERT INTO turns (call_id, turn_index, at, transcript, reply, interrupted,
               transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms, tts_ttfb_ms,
               turn_latency_ms, pipeline_overhead_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (call_id, turn_index) DO NOTHING",
            params![
                id, index, at, transcript, reply, interrupted,
                l.transcription_delay_ms, l.end_of_turn_delay_ms, l.llm_ttft_ms,
                l.tts_ttfb_ms, l.turn_latency_ms, l.pipeline_overhead_ms,
            ],
        ),
        RecordKind::ToolCall {
            name,
            arguments,
            result,
            error,
            duration_ms,
        } => c.execute(
            "INSERT INTO tool_calls (call_id, seq, at, name, arguments, result, error, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, seq, at, name, arguments, result, error, duration_ms],
        ),
        RecordKind::Usage {
            stt_audio_seconds,
            prompt_tokens,
            completion_tokens,
            tts_characters,
            cost_usd,
            cache,
        } => c.execute(
            "INSERT INTO usage (call_id, stt_audio_seconds, prompt_tokens, completion_tokens,
               tts_characters, cost_usd, tts_cache_hits, tts_cache_misses, tts_saved_characters,
                   llm_cache_hits, llm_cache_misses, llm_saved_prompt_tokens, llm_saved_completion_tokens,
                   saved_cost_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (call_id) DO UPDATE SET stt_audio_seconds = excluded.stt_audio_seconds,
               prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
               tts_characters = excluded.tts_characters, cost_usd = excluded.cost_usd,
                   tts_cache_hits = excluded.tts_cache_hits, tts_cache_misses = excluded.tts_cache_misses, tts_saved_characters = excluded.tts_saved_characters, llm_cache_hits = excluded.llm_cache_hits,
                   llm_cache_misses = excluded.llm_cache_misses, llm_saved_prompt_tokens = excluded.llm_saved_prompt_tokens, llm_saved_completion_tokens = excluded.llm_saved_completion_tokens, saved_cost_usd = excluded.saved_cost_usd",
            params![
                id, stt_audio_seconds, as_i64(*prompt_tokens), as_i64(*completion_tokens),
                as_i64(*tts_characters), cost_usd, as_i64(cache.tts_hits), as_i64(cache.tts_misses),
                as_i64(cache.tts_saved_characters), as_i64(cache.llm_hits), as_i64(cache.llm_misses),
                as_i64(cache.llm_saved_prompt_tokens), as_i64(cache.llm_saved_completion_tokens),
                cache.saved_cost_usd,
            ],
        ),
        RecordKind::CallEnded { reason } => c.execute(
            "UPDATE calls SET ended_at = ?2, end_reason = ?3 WHERE id = ?1",
            params![id, at, reason],
        ),
    }
}

pub fn read(c: &Connection, call_id: &str) -> Result<Vec<RecordOp>, StoreError> {
    let mut stmt = c
        .prepare_cached("SELECT op FROM call_record_ops WHERE call_id = ?1 ORDER BY applied")
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map([call_id], |r| r.get::<_, String>(0))
        .map_err(sqlite_error)?;
    rows.map(|r| {
        let json = r.map_err(sqlite_error)?;
        serde_json::from_str(&json).map_err(|e| StoreError::Invalid(format!("stored op: {e}")))
    })
    .collect()
}

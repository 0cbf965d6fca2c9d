//! The call record: each op is inserted once by (call_id, seq) and, when new, projected into the
//! queryable tables (calls, turns, tool_calls, usage) in the same transaction.

use deadpool_postgres::Object;
use frontdesk_actors::store::{RecordKind, RecordOp, StoreError};
use tokio_postgres::GenericClient;

use super::pool::db_error;

pub async fn write(c: &mut Object, batch: &[RecordOp]) -> Result<(), StoreError> {
    let tx = c.transaction().await.map_err(db_error)?;
    for op in batch {
        let json = serde_json::to_value(op).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let seq = i64::try_from(op.seq).map_err(|_| StoreError::Invalid("seq too large".into()))?;
        tx.execute(
            "INSERT INTO calls (id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&op.call_id],
        )
        .await
        .map_err(db_error)?;
        let fresh = tx
            .execute(
                "INSERT INTO call_record_ops (call_id, seq, at, op) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&op.call_id, &seq, &op.at, &json],
            )
            .await
            .map_err(db_error)?;
        if fresh == 1 {
            project(&*tx, op, seq).await?;
        }
    }
    tx.commit().await.map_err(db_error)
}

async fn project(c: &impl GenericClient, op: &RecordOp, seq: i64) -> Result<(), StoreError> {
    let id = &op.call_id;
    let result = match &op.kind {
        RecordKind::CallStarted { room, caller } => {
            c.execute(
                "UPDATE calls SET room = $2, caller = $3, started_at = $4 WHERE id = $1",
                &[id, room, caller, &op.at],
            )
            .await
        }
        RecordKind::Turn {
            index,
            transcript,
            reply,
            interrupted,
            latencies: l,
        } => {
            let index = i32::try_from(*index).unwrap_or(i32::MAX);
            c.execute(
                "INSERT INTO turns (call_id, turn_index, at, transcript, reply, interrupted,
                   transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms, tts_ttfb_ms,
                   turn_latency_ms, pipeline_overhead_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (call_id, turn_index) DO NOTHING",
                &[
                    id, &index, &op.at, transcript, reply, interrupted,
                    &l.transcription_delay_ms, &l.end_of_turn_delay_ms, &l.llm_ttft_ms,
                    &l.tts_ttfb_ms, &l.turn_latency_ms, &l.pipeline_overhead_ms,
                ],
            )
            .await
        }
        RecordKind::ToolCall {
            name,
            arguments,
            result,
            error,
            duration_ms,
        } => {
            c.execute(
                "INSERT INTO tool_calls (call_id, seq, at, name, arguments, result, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[id, &seq, &op.at, name, arguments, result, error, duration_ms],
            )
            .await
        }
        RecordKind::Usage {
            stt_audio_seconds,
            prompt_tokens,
            completion_tokens,
            tts_characters,
            cost_usd,
            cache,
        } => {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            c.execute(
                "INSERT INTO usage (call_id, stt_audio_seconds, prompt_tokens, completion_tokens,
                   tts_characters, cost_usd, tts_cache_hits, tts_cache_misses, tts_saved_characters,
                   llm_cache_hits, llm_cache_misses, llm_saved_prompt_tokens, llm_saved_completion_tokens,
                   saved_cost_usd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (call_id) DO UPDATE SET stt_audio_seconds = EXCLUDED.stt_audio_seconds,
                   prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,
                   tts_characters = EXCLUDED.tts_characters, cost_usd = EXCLUDED.cost_usd,
                   tts_cache_hits = EXCLUDED.tts_cache_hits, tts_cache_misses = EXCLUDED.tts_cache_misses, tts_saved_characters = EXCLUDED.tts_saved_characters, llm_cache_hits = EXCLUDED.llm_cache_hits,
                   llm_cache_misses = EXCLUDED.llm_cache_misses, llm_saved_prompt_tokens = EXCLUDED.llm_saved_prompt_tokens, llm_saved_completion_tokens = EXCLUDED.llm_saved_completion_tokens, saved_cost_usd = EXCLUDED.saved_cost_usd",
                &[
                    id, stt_audio_seconds, &n(*prompt_tokens), &n(*completion_tokens),
                    &n(*tts_characters), cost_usd, &n(cache.tts_hits), &n(cache.tts_misses),
                    &n(cache.tts_saved_characters), &n(cache.llm_hits), &n(cache.llm_misses),
                    &n(cache.llm_saved_prompt_tokens), &n(cache.llm_saved_completion_tokens),
                    &cache.saved_cost_usd,
                ],
            )
            .await
        }
        RecordKind::CallEnded { reason } => {
            c.execute(
                "UPDATE calls SET ended_at = $2, end_reason = $3 WHERE id = $1",
                &[id, &op.at, reason],
            )
            .await
        }
    };
    result.map(|_| ()).map_err(db_error)
}

pub async fn read(c: &impl GenericClient, call_id: &str) -> Result<Vec<RecordOp>, StoreError> {
    let rows = c
        .query(
            "SELECT op FROM call_record_ops WHERE call_id = $1 ORDER BY applied",
            &[&call_id],
        )
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let v: serde_json::Value = r.get(0);
            serde_json::from_value(v).map_err(|e| StoreError::Invalid(format!("stored op: {e}")))
        })
        .collect()
}

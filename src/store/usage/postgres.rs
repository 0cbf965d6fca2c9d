//! The usage queries on PostgreSQL. Same definitions as [`super::sqlite`]: calls started in
//! `[$1, $2)`, the end reason's label before any `:`, percentiles by `percentile_cont`.

use deadpool_postgres::Pool;
use frontdesk_actors::cache::CacheSavings;
use frontdesk_actors::store::StoreError;
use tokio_postgres::GenericClient;

use super::{count, reasons, ProviderUsage, Summary, ToolCount, TurnStats, Window};
use crate::store::postgres::pool::{db_error, describe_pool};

const CALLS: &str = "SELECT COUNT(*),
        COALESCE(SUM(EXTRACT(EPOCH FROM (ended_at - started_at))), 0)::float8 / 60.0
   FROM calls WHERE started_at >= $1 AND started_at < $2";

const END_REASONS: &str = "SELECT CASE
          WHEN ended_at IS NOT NULL THEN split_part(COALESCE(end_reason, ''), ':', 1)
          WHEN started_at < $3 THEN 'not_ended' ELSE 'in_progress' END AS reason,
        COUNT(*)
   FROM calls WHERE started_at >= $1 AND started_at < $2
  GROUP BY 1 ORDER BY 1";

const USAGE: &str = "SELECT COALESCE(SUM(u.stt_audio_seconds), 0)::float8,
        COALESCE(SUM(u.prompt_tokens), 0)::bigint, COALESCE(SUM(u.completion_tokens), 0)::bigint,
        COALESCE(SUM(u.tts_characters), 0)::bigint, COALESCE(SUM(u.cost_usd), 0)::float8,
        COALESCE(SUM(u.tts_cache_hits), 0)::bigint, COALESCE(SUM(u.tts_cache_misses), 0)::bigint,
        COALESCE(SUM(u.tts_saved_characters), 0)::bigint,
        COALESCE(SUM(u.llm_cache_hits), 0)::bigint, COALESCE(SUM(u.llm_cache_misses), 0)::bigint,
        COALESCE(SUM(u.llm_saved_prompt_tokens), 0)::bigint,
        COALESCE(SUM(u.llm_saved_completion_tokens), 0)::bigint,
        COALESCE(SUM(u.saved_cost_usd), 0)::float8
   FROM usage u JOIN calls c ON c.id = u.call_id
  WHERE c.started_at >= $1 AND c.started_at < $2";

const TURNS: &str = "SELECT COUNT(*),
        percentile_cont(0.5) WITHIN GROUP (ORDER BY t.turn_latency_ms),
        percentile_cont(0.95) WITHIN GROUP (ORDER BY t.turn_latency_ms)
   FROM turns t JOIN calls c ON c.id = t.call_id
  WHERE c.started_at >= $1 AND c.started_at < $2";

const TOOLS: &str = "SELECT t.name, COUNT(*), COUNT(t.error)
   FROM tool_calls t JOIN calls c ON c.id = t.call_id
  WHERE c.started_at >= $1 AND c.started_at < $2
  GROUP BY t.name ORDER BY t.name";

/// A connection of the usage pool. Not `pool::get`: its gauges describe the store's own pool,
/// which this one must not overwrite.
async fn conn(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Timeout,
        other => StoreError::Unavailable(describe_pool(&other)),
    })
}

pub async fn summary(pool: &Pool, w: &Window) -> Result<Summary, StoreError> {
    let c = conn(pool).await?;
    let calls = c
        .query_one(CALLS, &[&w.since, &w.until])
        .await
        .map_err(db_error)?;
    let rows = c
        .query(END_REASONS, &[&w.since, &w.until, &w.unended_before])
        .await
        .map_err(db_error)?;
    let end_reasons = reasons(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
    let (provider, cache) = usage(&**c, w).await?;
    Ok(Summary {
        calls: count(calls.get(0)),
        minutes: calls.get(1),
        end_reasons,
        provider,
        cache,
    })
}

async fn usage(
    c: &impl GenericClient,
    w: &Window,
) -> Result<(ProviderUsage, CacheSavings), StoreError> {
    let r = c
        .query_one(USAGE, &[&w.since, &w.until])
        .await
        .map_err(db_error)?;
    let n = |i: usize| count(r.get(i));
    let provider = ProviderUsage {
        stt_audio_seconds: r.get(0),
        prompt_tokens: n(1),
        completion_tokens: n(2),
        tts_characters: n(3),
        cost_usd: r.get(4),
    };
    let cache = CacheSavings {
        tts_hits: n(5),
        tts_misses: n(6),
        tts_saved_characters: n(7),
        llm_hits: n(8),
        llm_misses: n(9),
        llm_saved_prompt_tokens: n(10),
        llm_saved_completion_tokens: n(11),
        saved_cost_usd: r.get(12),
    };
    Ok((provider, cache))
}

pub async fn turn_stats(pool: &Pool, w: &Window) -> Result<TurnStats, StoreError> {
    let c = conn(pool).await?;
    let turns = c
        .query_one(TURNS, &[&w.since, &w.until])
        .await
        .map_err(db_error)?;
    let tools = c
        .query(TOOLS, &[&w.since, &w.until])
        .await
        .map_err(db_error)?;
    Ok(TurnStats {
        turns: count(turns.get(0)),
        turn_latency_p50_ms: turns.get(1),
        turn_latency_p95_ms: turns.get(2),
        tools: tools
            .iter()
            .map(|r| ToolCount {
                name: r.get(0),
                calls: count(r.get(1)),
                errors: count(r.get(2)),
            })
            .collect(),
    })
}

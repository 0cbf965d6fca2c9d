-- The call record, written behind by the DB gateway. Every write is an op keyed by
-- (call_id, seq), so a retried batch is applied once; each op is also projected into the
-- queryable tables below in the same transaction.
CREATE TABLE calls (
    id         TEXT PRIMARY KEY,
    room       TEXT NOT NULL DEFAULT '',
    caller     TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ,
    ended_at   TIMESTAMPTZ,
    end_reason TEXT
);
CREATE INDEX calls_started_idx ON calls (started_at);

CREATE TABLE call_record_ops (
    applied    BIGINT GENERATED ALWAYS AS IDENTITY,
    call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    op         JSONB NOT NULL,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE turns (
    call_id            TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    turn_index         INTEGER NOT NULL,
    at                 TIMESTAMPTZ NOT NULL,
    transcript         TEXT NOT NULL,
    reply              TEXT NOT NULL,
    interrupted        BOOLEAN NOT NULL,
    transcription_delay_ms DOUBLE PRECISION,
    end_of_turn_delay_ms   DOUBLE PRECISION,
    llm_ttft_ms            DOUBLE PRECISION,
    tts_ttfb_ms            DOUBLE PRECISION,
    turn_latency_ms        DOUBLE PRECISION,
    pipeline_overhead_ms   DOUBLE PRECISION,
    PRIMARY KEY (call_id, turn_index)
);

CREATE TABLE tool_calls (
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    name        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    result      TEXT NOT NULL,
    error       TEXT,
    duration_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX tool_calls_name_idx ON tool_calls (name, at);

CREATE TABLE usage (
    call_id           TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    stt_audio_seconds DOUBLE PRECISION NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    tts_characters    BIGINT NOT NULL,
    cost_usd          DOUBLE PRECISION NOT NULL
);

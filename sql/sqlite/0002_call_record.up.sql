-- The call record, written behind by the DB gateway: every write is an op keyed by
-- (call_id, seq), so a retried batch is applied once; each new op is also projected into the
-- queryable tables below in the same transaction. Same shape as the PostgreSQL schema.
CREATE TABLE calls (
    id         TEXT PRIMARY KEY,
    room       TEXT NOT NULL DEFAULT '',
    caller     TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    ended_at   TEXT,
    end_reason TEXT
);
CREATE INDEX calls_started_idx ON calls (started_at);

CREATE TABLE call_record_ops (
    applied INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    at      TEXT NOT NULL,
    op      TEXT NOT NULL CHECK (json_valid(op)),
    CONSTRAINT call_record_ops_once UNIQUE (call_id, seq)
);

CREATE TABLE turns (
    call_id                TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    turn_index             INTEGER NOT NULL,
    at                     TEXT NOT NULL,
    transcript             TEXT NOT NULL,
    reply                  TEXT NOT NULL,
    interrupted            INTEGER NOT NULL CHECK (interrupted IN (0, 1)),
    transcription_delay_ms REAL,
    end_of_turn_delay_ms   REAL,
    llm_ttft_ms            REAL,
    tts_ttfb_ms            REAL,
    turn_latency_ms        REAL,
    pipeline_overhead_ms   REAL,
    PRIMARY KEY (call_id, turn_index)
);

CREATE TABLE tool_calls (
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    name        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    result      TEXT NOT NULL,
    error       TEXT,
    duration_ms REAL NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX tool_calls_name_idx ON tool_calls (name, at);

CREATE TABLE usage (
    call_id           TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    stt_audio_seconds REAL NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    tts_characters    INTEGER NOT NULL,
    cost_usd          REAL NOT NULL
);

-- Response caches (issue 14): synthesised agent phrases and caller-independent LLM answers,
-- shared by every worker on this database, and what the caches saved per call. Nothing here
-- may carry patient data: only replies that depend on no caller are ever written.
CREATE TABLE tts_phrase_cache (
    -- Hex SHA-256 of (voice, model, format, text).
    key         TEXT PRIMARY KEY,
    voice       TEXT NOT NULL,
    model       TEXT NOT NULL,
    -- Sample format and rate of audio, e.g. 'pcm_s16le@24000'.
    format      TEXT NOT NULL,
    text        TEXT NOT NULL,
    audio       BLOB NOT NULL,
    -- Hex SHA-256 of audio: a corrupt entry is detected, counted and ignored.
    audio_sha256 TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_hit_at TEXT,
    hits        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tts_phrase_cache_created_idx ON tts_phrase_cache (created_at);

CREATE TABLE llm_answer_cache (
    -- Hex SHA-256 of (prompt version, model, data version, normalised question and context).
    key            TEXT PRIMARY KEY,
    prompt_version TEXT NOT NULL,
    model          TEXT NOT NULL,
    -- The hospital data (doctors, shifts) the answer was computed from.
    data_version   TEXT NOT NULL,
    question       TEXT NOT NULL,
    answer         TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    last_hit_at    TEXT,
    hits           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX llm_answer_cache_expires_idx ON llm_answer_cache (expires_at);

ALTER TABLE usage ADD COLUMN tts_cache_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN tts_cache_misses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN tts_saved_characters INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN llm_cache_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN llm_cache_misses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN llm_saved_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN llm_saved_completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN saved_cost_usd REAL NOT NULL DEFAULT 0;

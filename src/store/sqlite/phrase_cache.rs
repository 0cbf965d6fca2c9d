//! The TTS phrase cache's database layer on SQLite (`tts_phrase_cache`).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{sqlite_error, ts, SqliteStore};
use crate::cache::tts::{PhraseError, PhraseStore, StoredPhrase};

fn store_error(e: frontdesk_actors::store::StoreError) -> PhraseError {
    PhraseError::Store(e.to_string())
}

#[async_trait]
impl PhraseStore for SqliteStore {
    async fn load_phrase(&self, key: &str) -> Result<Option<StoredPhrase>, PhraseError> {
        let key = key.to_owned();
        self.run(move |c, now| {
            c.query_row(
                "UPDATE tts_phrase_cache SET hits = hits + 1, last_hit_at = ?2 WHERE key = ?1
                 RETURNING key, voice, model, format, text, audio, audio_sha256",
                params![key, ts(now)],
                |r| {
                    Ok(StoredPhrase {
                        key: r.get(0)?,
                        voice: r.get(1)?,
                        model: r.get(2)?,
                        format: r.get(3)?,
                        text: r.get(4)?,
                        audio: r.get(5)?,
                        audio_sha256: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite_error)
        })
        .await
        .map_err(store_error)
    }

    async fn save_phrase(&self, p: &StoredPhrase) -> Result<(), PhraseError> {
        let p = p.clone();
        self.run(move |c, now| {
            c.execute(
                "INSERT INTO tts_phrase_cache
                   (key, voice, model, format, text, audio, audio_sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (key) DO UPDATE SET voice = excluded.voice, model = excluded.model,
                   format = excluded.format, text = excluded.text, audio = excluded.audio,
                   audio_sha256 = excluded.audio_sha256, created_at = excluded.created_at",
                params![
                    p.key,
                    p.voice,
                    p.model,
                    p.format,
                    p.text,
                    p.audio,
                    p.audio_sha256,
                    ts(now)
                ],
            )
            .map(|_| ())
            .map_err(sqlite_error)
        })
        .await
        .map_err(store_error)
    }
}

//! The TTS phrase cache's database layer on PostgreSQL (`tts_phrase_cache`), shared by every
//! worker on the database.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::pool::db_error;
use super::PgStore;
use crate::cache::tts::{PhraseError, PhraseStore, StoredPhrase};

fn store_error(e: frontdesk_actors::store::StoreError) -> PhraseError {
    PhraseError::Store(e.to_string())
}

fn phrase(r: &Row) -> StoredPhrase {
    StoredPhrase {
        key: r.get(0),
        voice: r.get(1),
        model: r.get(2),
        format: r.get(3),
        text: r.get(4),
        audio: r.get(5),
        audio_sha256: r.get(6),
    }
}

#[async_trait]
impl PhraseStore for PgStore {
    async fn load_phrase(&self, key: &str) -> Result<Option<StoredPhrase>, PhraseError> {
        let now = (self.clock)();
        let c = self.conn().await.map_err(store_error)?;
        let row = c
            .query_opt(
                "UPDATE tts_phrase_cache SET hits = hits + 1, last_hit_at = $2 WHERE key = $1
                 RETURNING key, voice, model, format, text, audio, audio_sha256",
                &[&key, &now],
            )
            .await
            .map_err(|e| store_error(db_error(e)))?;
        Ok(row.as_ref().map(phrase))
    }

    async fn save_phrase(&self, p: &StoredPhrase) -> Result<(), PhraseError> {
        let now = (self.clock)();
        let c = self.conn().await.map_err(store_error)?;
        c.execute(
            "INSERT INTO tts_phrase_cache
               (key, voice, model, format, text, audio, audio_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (key) DO UPDATE SET voice = EXCLUDED.voice, model = EXCLUDED.model,
               format = EXCLUDED.format, text = EXCLUDED.text, audio = EXCLUDED.audio,
               audio_sha256 = EXCLUDED.audio_sha256, created_at = EXCLUDED.created_at",
            &[
                &p.key,
                &p.voice,
                &p.model,
                &p.format,
                &p.text,
                &p.audio,
                &p.audio_sha256,
                &now,
            ],
        )
        .await
        .map_err(|e| store_error(db_error(e)))?;
        Ok(())
    }
}

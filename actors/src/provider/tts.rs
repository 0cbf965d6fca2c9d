//! Streaming text-to-speech, one session (provider context) per reply.

use async_trait::async_trait;
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct TtsRequest {
    pub call_id: String,
    pub reply_id: u64,
    /// The reply carries no caller data (the greeting, fixed prompts, answers the LLM answer
    /// cache may keep): only such replies may be kept in the TTS phrase cache.
    pub cacheable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TtsEvent {
    /// PCM s16 mono at `sample_rate`, any length.
    Audio { samples: Vec<i16>, sample_rate: u32 },
    /// All text pushed before `finish` has been synthesised.
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("tts authentication failed: {0}")]
    Auth(String),
    #[error("tts connection failed: {0}")]
    Connect(String),
    #[error("tts rejected the request: {0}")]
    Rejected(String),
    #[error("tts stream closed: {0}")]
    Closed(String),
    #[error("tts timed out: {0}")]
    Timeout(String),
}

impl TtsError {
    pub fn is_retriable(&self) -> bool {
        !matches!(self, TtsError::Auth(_) | TtsError::Rejected(_))
    }
}

/// Text going into one reply's synthesis.
#[async_trait]
pub trait TtsInput: Send + 'static {
    /// Append text (whole sentences; spaces are kept verbatim).
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError>;
    /// No more text for this reply.
    async fn finish(&mut self) -> Result<(), TtsError>;
    /// Stop synthesis now (barge-in); no more events follow.
    async fn cancel(&mut self) -> Result<(), TtsError>;
    /// What a caching session served from its phrase cache since the last call (the TTS actor
    /// moves it into the call's usage). Plain provider sessions cache nothing.
    fn take_cache_usage(&mut self) -> TtsCacheUsage {
        TtsCacheUsage::default()
    }
}

/// Phrase cache use of one session (see `TtsInput::take_cache_usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtsCacheUsage {
    /// Sentences played from the cache / synthesised by the provider.
    pub hits: u64,
    pub misses: u64,
    /// Characters of the hits: pushed to the session but never sent to the provider.
    pub saved_characters: u64,
}

impl TtsCacheUsage {
    pub fn add(&mut self, other: TtsCacheUsage) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.saved_characters += other.saved_characters;
    }
}

pub struct TtsSession {
    pub input: Box<dyn TtsInput>,
    pub events: mpsc::Receiver<Result<TtsEvent, TtsError>>,
}

#[async_trait]
pub trait TtsProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError>;
}

//! Streaming speech-to-text.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::audio::AudioFrame;

#[derive(Clone, Debug)]
pub struct SttSessionConfig {
    pub call_id: String,
    pub sample_rate: u32,
    pub language: String,
}

/// Times are seconds of audio since the start of this session's stream (they restart at zero on
/// every connection, as Deepgram's do).
#[derive(Clone, Debug, PartialEq)]
pub enum SttEvent {
    Interim {
        text: String,
    },
    Final {
        text: String,
        start: Duration,
        end: Duration,
        /// The provider's endpointing saw the end of the utterance.
        speech_final: bool,
    },
    SpeechStarted,
    UtteranceEnd,
}

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("stt authentication failed: {0}")]
    Auth(String),
    #[error("stt connection failed: {0}")]
    Connect(String),
    #[error("stt stream closed: {0}")]
    Closed(String),
    #[error("stt protocol error: {0}")]
    Protocol(String),
    #[error("stt timed out: {0}")]
    Timeout(String),
}

impl SttError {
    pub fn is_retriable(&self) -> bool {
        !matches!(self, SttError::Auth(_))
    }
}

/// The sending half of a session.
#[async_trait]
pub trait SttSink: Send + 'static {
    async fn send_audio(&mut self, frame: &AudioFrame) -> Result<(), SttError>;
    /// Flush: transcribe everything sent so far now (end of the caller's turn).
    async fn finalize(&mut self) -> Result<(), SttError>;
    /// End the stream (hang-up).
    async fn close(&mut self) -> Result<(), SttError>;
}

/// One streaming session. The events channel ends when the stream does; an `Err` on it means the
/// session failed and must be replaced.
pub struct SttSession {
    pub sink: Box<dyn SttSink>,
    pub events: mpsc::Receiver<Result<SttEvent, SttError>>,
}

#[async_trait]
pub trait SttProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError>;
}

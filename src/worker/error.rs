//! What can stop the worker or one of its connections. Messages name the config keys and
//! environment variables to check, never a secret's value.

/// `Clone` so every `WorkerHandle::wait` caller gets the same final outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    /// Missing or invalid settings: fixing them needs a restart.
    #[error("worker configuration: {0}")]
    Config(String),
    /// The worker token could not be signed (empty key or secret).
    #[error(
        "could not sign the LiveKit worker token: {0}; check LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
    )]
    Token(String),
    /// The server refused the token (HTTP 401). Retried with backoff: credentials may be rotated
    /// on the server side while we wait.
    #[error(
        "LiveKit at {url} rejected the worker token (HTTP 401): check LIVEKIT_API_KEY and \
         LIVEKIT_API_SECRET (worker.api_key / worker.api_secret) and that they belong to this server"
    )]
    Unauthorized { url: String },
    #[error("could not connect to LiveKit at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server broke the protocol (bad frame, no registration reply).
    #[error("LiveKit protocol error: {0}")]
    Protocol(String),
    /// The connection went away after registration.
    #[error("LiveKit connection lost: {0}")]
    Closed(String),
    #[error("gave up after {attempts} consecutive failed connection attempts; last error: {last}")]
    GaveUp { attempts: u32, last: String },
}

impl WorkerError {
    /// Whether the reconnect loop should try again.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            WorkerError::Unauthorized { .. }
                | WorkerError::Connect { .. }
                | WorkerError::Protocol(_)
                | WorkerError::Closed(_)
        )
    }
}

//! What can go wrong with a playground request, each with its status and a sentence for the page.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A rejected playground request. The messages name the problem and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("too many token requests: try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("cannot reach the LiveKit server at {url}: is it running?")]
    LiveKitDown { url: String },
    #[error("the playground cannot mint tokens: {0}")]
    NotConfigured(String),
}

impl PlaygroundError {
    /// Rate limits and an unreachable server pass; bad input and missing configuration do not.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            PlaygroundError::RateLimited { .. } | PlaygroundError::LiveKitDown { .. }
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PlaygroundError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PlaygroundError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PlaygroundError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            PlaygroundError::LiveKitDown { .. } | PlaygroundError::NotConfigured(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The `outcome` label of `frontdesk_playground_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            PlaygroundError::BadRequest(_) => "bad_request",
            PlaygroundError::TooLarge { .. } => "too_large",
            PlaygroundError::RateLimited { .. } => "rate_limited",
            PlaygroundError::LiveKitDown { .. } => "livekit_down",
            PlaygroundError::NotConfigured(_) => "not_configured",
        }
    }
}

#[derive(serde::Serialize)]
struct Body {
    error: String,
}

impl IntoResponse for PlaygroundError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: self.to_string(),
        });
        match self {
            PlaygroundError::RateLimited { retry_after_s } => (
                self.status(),
                [(header::RETRY_AFTER, retry_after_s.to_string())],
                body,
            )
                .into_response(),
            _ => (self.status(), body).into_response(),
        }
    }
}

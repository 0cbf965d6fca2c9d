//! Deepgram live speech-to-text over a websocket (protocols.md §3): the `SttProvider` the call tree
//! uses in production, and against `emulators::deepgram` in tests and simulation.

mod config;
mod session;
pub mod wire;

use async_trait::async_trait;
use frontdesk_actors::provider::{SttError, SttProvider, SttSession, SttSessionConfig};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

pub(crate) use config::duration_str;
pub use config::DeepgramConfig;
pub use wire::{decode, DecodeError};

/// The Deepgram STT provider: one websocket per session.
pub struct DeepgramStt {
    cfg: DeepgramConfig,
}

impl DeepgramStt {
    pub fn new(cfg: DeepgramConfig) -> Self {
        Self { cfg }
    }

    pub fn config(&self) -> &DeepgramConfig {
        &self.cfg
    }
}

#[async_trait]
impl SttProvider for DeepgramStt {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
        let (dg, cfg) = (self.cfg.clone(), cfg.clone());
        // The socket and its reader and writer carry 50 frames a second: media work, so they
        // live on the media runtime (and its I/O driver), off the one running dialogues.
        frontdesk_actors::call::pump::spawn_on_media(None, async move { open(&dg, &cfg).await })
            .await
            .map_err(|e| SttError::Connect(format!("connect task failed: {e}")))?
    }
}

async fn open(dg: &DeepgramConfig, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
    let url = wire::listen_url(dg, cfg)?;
    let ws = handshake(dg, url.as_str()).await?;
    tracing::debug!(call_id = %cfg.call_id, "deepgram session open");
    let timers = session::Timers {
        keepalive: dg.keepalive_every,
        result: dg.result_timeout,
    };
    Ok(session::start(ws, timers, cfg.sample_rate))
}

async fn handshake(cfg: &DeepgramConfig, url: &str) -> Result<session::Ws, SttError> {
    // rustls needs a process-wide crypto provider; a second install is a harmless no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = url
        .into_client_request()
        .map_err(|e| SttError::Connect(format!("bad request: {e}")))?;
    let auth = HeaderValue::from_str(&format!("Token {}", cfg.api_key.expose()))
        .map_err(|_| SttError::Auth("api key is not a valid header value".into()))?;
    req.headers_mut().insert("authorization", auth);
    let connect = tokio_tungstenite::connect_async_with_config(
        req,
        Some(crate::providers::ws_config()),
        true,
    );
    match tokio::time::timeout(cfg.connect_timeout, connect).await {
        Err(_) => Err(SttError::Connect(format!(
            "handshake timed out after {:?}",
            cfg.connect_timeout
        ))),
        Ok(Err(e)) => Err(classify_connect_error(e)),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

fn classify_connect_error(e: tungstenite::Error) -> SttError {
    match e {
        tungstenite::Error::Http(resp) => {
            let dg_error = resp.headers().get("dg-error").and_then(|v| v.to_str().ok());
            wire::handshake_error(resp.status().as_u16(), dg_error, resp.body().as_deref())
        }
        other => SttError::Connect(other.to_string()),
    }
}

//! The signal websocket, checked. `livekit-signaling` logs a frame it cannot decode and skips
//! it; we want every piece of bad input from the server counted (and never a panic), so the
//! process-wide websocket client it uses is the native one wrapped: each received frame is
//! decoded once here, and a malformed one is counted, logged and dropped before the signal
//! client sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use livekit_net::{Header, TransportError, WsClient, WsConnectResult, WsConnection};
use livekit_protocol as proto;
use prost::Message;

use super::metrics as m;

/// Malformed signal frames seen by this process (also in `frontdesk_input_rejected_total`).
pub static MALFORMED_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Install the checked client once per process, before the first connection.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let inner = livekit_net::testing::native_ws_client();
        livekit_net::set_ws_client(Arc::new(CheckedClient { inner }));
    });
}

struct CheckedClient {
    inner: Arc<dyn WsClient>,
}

#[async_trait::async_trait]
impl WsClient for CheckedClient {
    async fn connect(
        &self,
        url: String,
        headers: Vec<Header>,
        timeout_ms: u64,
    ) -> Result<WsConnectResult, TransportError> {
        let conn = self.inner.connect(url, headers, timeout_ms).await?;
        Ok(WsConnectResult {
            connection: Arc::new(Checked {
                inner: conn.connection,
            }),
        })
    }
}

/// A connection whose received frames all decode as `SignalResponse`.
pub struct Checked {
    pub inner: Arc<dyn WsConnection>,
}

#[async_trait::async_trait]
impl WsConnection for Checked {
    async fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.inner.send(frame).await
    }

    async fn recv(&self) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            let Some(frame) = self.inner.recv().await? else {
                return Ok(None);
            };
            match proto::SignalResponse::decode(frame.as_slice()) {
                Ok(_) => return Ok(Some(frame)),
                Err(e) => {
                    MALFORMED_FRAMES.fetch_add(1, Ordering::Relaxed);
                    m::rejected("malformed_signal");
                    tracing::warn!(bytes = frame.len(), error = %e, "malformed signal frame from the server dropped");
                }
            }
        }
    }

    async fn close(&self) {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Replays frames, then reports the peer closed.
    struct Replay(Mutex<Vec<Vec<u8>>>);

    #[async_trait::async_trait]
    impl WsConnection for Replay {
        async fn send(&self, _frame: Vec<u8>) -> Result<(), TransportError> {
            Ok(())
        }
        async fn recv(&self) -> Result<Option<Vec<u8>>, TransportError> {
            let mut frames = self.0.lock().unwrap_or_else(|p| p.into_inner());
            Ok((!frames.is_empty()).then(|| frames.remove(0)))
        }
        async fn close(&self) {}
    }

    #[tokio::test]
    async fn malformed_frames_are_counted_and_dropped_and_good_ones_pass() {
        let good = proto::SignalResponse {
            message: Some(proto::signal_response::Message::Pong(42)),
        }
        .encode_to_vec();
        // A truncated varint field, a wire type 7 (invalid), then a good frame.
        let frames = vec![vec![0x08, 0xFF], vec![0x0F, 0x01, 0x02], good.clone()];
        let checked = Checked {
            inner: Arc::new(Replay(Mutex::new(frames))),
        };
        let before = MALFORMED_FRAMES.load(Ordering::Relaxed);
        assert_eq!(checked.recv().await.unwrap(), Some(good));
        assert_eq!(MALFORMED_FRAMES.load(Ordering::Relaxed) - before, 2);
        assert_eq!(checked.recv().await.unwrap(), None);
    }
}

//! Real provider clients implementing the call tree's seams: Deepgram (STT), OpenAI-compatible chat
//! completions (LLM), Cartesia (TTS).

pub mod cartesia;
pub mod config;
pub mod deepgram;
pub mod fallback;
pub mod openai;

pub use frontdesk_actors::pricing;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Websocket settings of the streaming clients. Provider messages are small (a 50 ms audio frame,
/// a JSON result, a 40 ms base64 chunk), so the 128 KiB default buffers would only cost memory:
/// with a socket or two per call they were most of a call's footprint.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(8 << 20))
}

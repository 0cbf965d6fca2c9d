//! What our client puts on the wire, seen by a bare server: the SDK's API version and its shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The handshake callback's signature is tungstenite's.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};

use frontdesk_actors::provider::{TtsProvider, TtsRequest};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use super::{CartesiaConfig, CartesiaTts};

/// The `Cartesia-Version` header of the handshake, then every text frame, as JSON.
type Seen = Arc<Mutex<(Option<String>, Vec<Value>)>>;

async fn recording_server() -> (std::net::SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let header = Arc::clone(&log);
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp| {
            let v = req
                .headers()
                .get("cartesia-version")
                .map(|v| v.to_str().unwrap().to_string());
            header.lock().unwrap().0 = v;
            Ok::<Response, _>(resp)
        })
        .await
        .unwrap();
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            log.lock()
                .unwrap()
                .1
                .push(serde_json::from_str(&t).unwrap());
        }
    });
    (addr, seen)
}

/// Our client sent 2025-04-16 with `{"mode": "id", ...}`; the SDK's reading of the API is
/// 2026-08-14 with `{"id": ...}`, and the SDK wins.
#[tokio::test]
async fn client_speaks_the_sdks_api_version() {
    let (addr, seen) = recording_server().await;
    let tts = CartesiaTts::new(CartesiaConfig {
        url: format!("ws://{addr}/tts/websocket"),
        voice_id: "v1".into(),
        ..Default::default()
    })
    .unwrap();
    let req = TtsRequest {
        call_id: "call".into(),
        reply_id: 1,
        cacheable: false,
    };
    let mut s = tts.open(&req).await.unwrap();
    s.input.push_text("Hello.").await.unwrap();
    s.input.finish().await.unwrap();
    for _ in 0..100 {
        if seen.lock().unwrap().1.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (version, frames) = seen.lock().unwrap().clone();
    assert_eq!(version.as_deref(), Some("2026-08-14"));
    assert_eq!(frames.len(), 2, "{frames:?}");
    for f in &frames {
        assert_eq!(f["voice"], json!({"id": "v1"}));
        assert_eq!(f["output_format"]["encoding"], "pcm_s16le");
    }
    assert_eq!(frames[1]["continue"], false);
}

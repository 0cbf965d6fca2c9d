//! The emulator over a raw websocket, speaking as the official SDK (cartesia 4.x, API version
//! 2026-08-14) does: voice shapes, output formats, timestamps, version precedence, fault shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{start, CartesiaEmulatorConfig};
use crate::emulators::faults::FaultKind;
use crate::emulators::Emulator;
use frontdesk_actors::latency::Latency;

const SDK_VERSION: &str = "2026-08-14";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn emulator() -> Emulator {
    let cfg = CartesiaEmulatorConfig {
        ttfb: Latency::ms(5, 0),
        realtime_factor: 50.0,
        chars_per_second: 10.0,
        ..Default::default()
    };
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Connect as the SDK does: version in the header, a bearer key; `query` is appended to the URL.
async fn connect(emu: &Emulator, query: &str) -> Result<Ws, tungstenite::Error> {
    let url = format!("{}/tts/websocket{query}", emu.ws_url());
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("cartesia-version", HeaderValue::from_static(SDK_VERSION));
    h.insert("authorization", HeaderValue::from_static("Bearer dummy"));
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

fn sdk_request(id: &str, transcript: &str, cont: bool, extra: Value) -> Message {
    let mut v = json!({"context_id": id, "model_id": "sonic-3", "transcript": transcript,
        "voice": {"id": "v"}, "continue": cont,
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    Message::text(v.to_string())
}

/// Messages until `done`/`error` (or a quiet second).
async fn until_end(ws: &mut Ws) -> Vec<Value> {
    let mut out = vec![];
    while let Ok(Some(Ok(msg))) = timeout(Duration::from_secs(1), ws.next()).await {
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        let end = v["type"] == "done" || v["type"] == "error";
        out.push(v);
        if end {
            break;
        }
    }
    out
}

fn audio_bytes(msgs: &[Value]) -> Vec<u8> {
    msgs.iter()
        .filter(|m| m["type"] == "chunk")
        .flat_map(|m| {
            base64::engine::general_purpose::STANDARD
                .decode(m["data"].as_str().unwrap())
                .unwrap()
        })
        .collect()
}

/// The SDK sends the voice as a bare id or `{"id": ...}`; both were refused for lacking `mode`.
#[tokio::test]
async fn sdk_voice_shapes_are_accepted() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    for (i, voice) in [
        json!("v"),
        json!({"id": "v"}),
        json!({"mode": "id", "id": "v"}),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("c{i}");
        ws.send(sdk_request(&id, "Hi.", false, json!({"voice": voice})))
            .await
            .unwrap();
        let msgs = until_end(&mut ws).await;
        assert_eq!(msgs.last().unwrap()["type"], "done", "{voice}: {msgs:?}");
        assert_eq!(audio_bytes(&msgs).len(), 2 * 4_800, "{voice}");
    }
}

/// `no_more_inputs()` ends a context with the SDK's stock voice (and defaults) when the context was
/// opened without them: that end must not be refused as a changed context.
#[tokio::test]
async fn sdk_end_of_context_with_its_stock_fields_is_accepted() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    ws.send(sdk_request("c", "Hello. ", true, json!({})))
        .await
        .unwrap();
    let end = json!({"voice": "6ccbfb76-1fc6-48f7-b71d-91ac6298247b", "model_id": "sonic-latest",
        "output_format": {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}});
    ws.send(sdk_request("c", "", false, end)).await.unwrap();
    let msgs = until_end(&mut ws).await;
    assert_eq!(msgs.last().unwrap()["type"], "done", "{msgs:?}");
    // The context keeps its own format: s16 at 16 kHz, 7 chars at 10 chars/s.
    assert_eq!(audio_bytes(&msgs).len(), 2 * 11_200);
}

/// Each encoding at its rate: the byte count is samples × width, the samples follow the text.
#[tokio::test]
async fn every_raw_encoding_is_generated_at_its_rate() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    let cases = [
        ("pcm_f32le", 44_100, 4),
        ("pcm_mulaw", 8_000, 1),
        ("pcm_alaw", 8_000, 1),
        ("pcm_s16le", 22_050, 2),
    ];
    for (i, (encoding, rate, width)) in cases.into_iter().enumerate() {
        let fmt = json!({"output_format":
            {"container": "raw", "encoding": encoding, "sample_rate": rate}});
        ws.send(sdk_request(&format!("c{i}"), "One two.", false, fmt))
            .await
            .unwrap();
        let msgs = until_end(&mut ws).await;
        assert_eq!(msgs.last().unwrap()["type"], "done", "{encoding}: {msgs:?}");
        let bytes = audio_bytes(&msgs);
        // 8 chars at 10 chars/s = 0.8 s.
        assert_eq!(bytes.len(), width * rate * 8 / 10, "{encoding}@{rate}");
        if encoding == "pcm_f32le" {
            let peak = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).abs())
                .fold(0.0f32, f32::max);
            assert!(peak > 0.05 && peak < 1.0, "{peak}");
        }
    }
}

#[tokio::test]
async fn invalid_formats_get_the_new_error_shape() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    for fmt in [
        json!({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 11025}),
        json!({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 8000}),
        json!({"container": "raw", "encoding": "opus", "sample_rate": 8000}),
    ] {
        let bad = json!({ "output_format": fmt });
        ws.send(sdk_request("bad", "Hi.", false, bad))
            .await
            .unwrap();
        let msgs = until_end(&mut ws).await;
        let e = msgs.last().unwrap();
        assert_eq!(e["type"], "error", "{fmt}");
        assert_eq!(e["status_code"], 400);
        assert_eq!(e["context_id"], "bad");
        for k in ["error_code", "title", "message", "request_id"] {
            assert!(e[k].is_string(), "{k} in {e}");
        }
    }
}

/// `add_timestamps` used to be ignored: now word timestamps follow the audio actually sent.
#[tokio::test]
async fn word_timestamps_follow_the_audio_sent() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    let ts = json!({"add_timestamps": true});
    ws.send(sdk_request("c", "Good morning, ", true, ts.clone()))
        .await
        .unwrap();
    ws.send(sdk_request("c", "Ms Smith.", false, ts))
        .await
        .unwrap();
    let msgs = until_end(&mut ws).await;
    assert_eq!(msgs.last().unwrap()["type"], "done");
    let (mut words, mut ends, mut sent) = (vec![], vec![], 0usize);
    for m in &msgs {
        match m["type"].as_str().unwrap() {
            "chunk" => sent += audio_bytes(std::slice::from_ref(m)).len() / 2,
            "timestamps" => {
                let w = &m["word_timestamps"];
                for (word, end) in w["words"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(w["end"].as_array().unwrap())
                {
                    let end = end.as_f64().unwrap();
                    assert!(
                        end <= sent as f64 / 16_000.0 + 1e-9,
                        "{word} announced early"
                    );
                    words.push(word.as_str().unwrap().to_string());
                    ends.push(end);
                }
                assert_eq!(m["status_code"], 206);
                assert_eq!(m["done"], false);
            }
            other => assert_eq!(other, "done"),
        }
    }
    assert_eq!(words, ["Good", "morning,", "Ms", "Smith."]);
    // "Good morning, " is 14 chars = 1.4 s; "Ms Smith." ends the 2.3 s of audio.
    assert_eq!(ends, [0.4, 1.3, 1.6, 2.3]);
    assert_eq!(sent, 16_000 * 23 / 10);
}

#[tokio::test]
async fn phoneme_timestamps_come_as_their_own_type() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    let ph = json!({"add_phoneme_timestamps": true});
    ws.send(sdk_request("c", "Hi there.", false, ph))
        .await
        .unwrap();
    let msgs = until_end(&mut ws).await;
    let ph: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "phoneme_timestamps")
        .collect();
    assert!(msgs.iter().all(|m| m["type"] != "timestamps"));
    let phonemes: Vec<&Value> = ph
        .iter()
        .flat_map(|m| m["phoneme_timestamps"]["phonemes"].as_array().unwrap())
        .collect();
    assert_eq!(phonemes, ["h", "i", "t", "h", "e", "r", "e"]);
    let last_end = ph.last().unwrap()["phoneme_timestamps"]["end"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((last_end - 0.9).abs() < 1e-9, "{last_end}");
}

/// The API takes `?cartesia_version` over the header; the emulator took the header.
#[tokio::test]
async fn version_query_wins_over_the_header() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "?cartesia_version=2025-04-16").await.unwrap();
    let bad = json!({"model_id": "no-such-model"});
    ws.send(sdk_request("c", "Hi.", false, bad)).await.unwrap();
    let e = until_end(&mut ws).await.pop().unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("no-such-model"),
        "{e}"
    );
    assert!(e.get("title").is_none(), "{e}");
}

/// A refused handshake carries the version's HTTP error object.
#[tokio::test]
async fn refused_handshake_body_follows_the_version() {
    let emu = emulator().await;
    emu.faults.force_next(FaultKind::RateLimited);
    let Err(tungstenite::Error::Http(resp)) = connect(&emu, "").await else {
        panic!("handshake not refused");
    };
    assert_eq!(resp.status(), 429);
    let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error_code", "message", "request_id", "title"]);
}

/// `error_event`: the API's in-band error for a context, after some of its audio.
#[tokio::test]
async fn error_event_fault_fails_the_context_mid_stream() {
    let emu = emulator().await;
    let mut ws = connect(&emu, "").await.unwrap();
    emu.faults.force_next_inner(FaultKind::ErrorEvent);
    ws.send(sdk_request(
        "bad",
        "A long enough reply to fail.",
        false,
        json!({}),
    ))
    .await
    .unwrap();
    let msgs = until_end(&mut ws).await;
    let kinds: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["chunk", "chunk", "chunk", "error"]);
    assert_eq!(msgs[3]["status_code"], 500);
    assert_eq!(msgs[3]["context_id"], "bad");
    ws.send(sdk_request("good", "Fine.", false, json!({})))
        .await
        .unwrap();
    assert_eq!(until_end(&mut ws).await.pop().unwrap()["type"], "done");
    assert_eq!(emu.faults.injected().get(&FaultKind::ErrorEvent), Some(&1));
}

/// A context still waiting for its first audio takes at most `INPUT_QUEUE` more requests; past
/// that it fails with a 429 error instead of queueing without bound.
#[tokio::test]
async fn a_context_flooded_with_requests_fails_with_429() {
    let cfg = CartesiaEmulatorConfig {
        // The context sits in its time to first audio while the requests pile up.
        ttfb: Latency::ms(60_000, 0),
        ..Default::default()
    };
    let emu = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut ws = connect(&emu, "").await.unwrap();
    for _ in 0..super::INPUT_QUEUE + 2 {
        ws.send(sdk_request("c", "word ", true, json!({})))
            .await
            .unwrap();
    }
    let msgs = until_end(&mut ws).await;
    let last = msgs.last().expect("an error");
    assert_eq!(last["type"], "error", "{msgs:?}");
    assert_eq!(last["status_code"], 429);
    assert_eq!(last["context_id"], "c");
    assert!(audio_bytes(&msgs).is_empty());
}

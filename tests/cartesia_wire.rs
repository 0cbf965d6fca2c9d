//! The real Cartesia client against the Cartesia emulator over loopback websockets.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontdesk::emulators::cartesia::{self, CartesiaEmulatorConfig};
use frontdesk::emulators::faults::FaultKind;
use frontdesk::emulators::Emulator;
use frontdesk::providers::cartesia::{CartesiaConfig, CartesiaConfigError, CartesiaTts};
use frontdesk::secret::Secret;
use frontdesk_actors::latency::Latency;
use frontdesk_actors::provider::{TtsError, TtsEvent, TtsProvider, TtsRequest, TtsSession};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const RATE: u32 = 24_000;

async fn emulator(cfg: CartesiaEmulatorConfig) -> Emulator {
    cartesia::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Fast but realistic: short TTFB, 50× real time.
fn fast() -> CartesiaEmulatorConfig {
    CartesiaEmulatorConfig {
        api_key: Some("key".into()),
        ttfb: Latency::ms(20, 0),
        realtime_factor: 50.0,
        ..Default::default()
    }
}

fn client_cfg(emu: &Emulator) -> CartesiaConfig {
    CartesiaConfig {
        url: format!("{}/tts/websocket", emu.ws_url()),
        api_key: Secret::new("key"),
        ..Default::default()
    }
}

fn client(emu: &Emulator) -> CartesiaTts {
    CartesiaTts::new(client_cfg(emu)).unwrap()
}

fn req(reply_id: u64) -> TtsRequest {
    TtsRequest {
        call_id: "call".into(),
        reply_id,
        cacheable: false,
    }
}

/// Samples a text should produce at 15 chars/s.
fn expected(texts: &[&str]) -> usize {
    texts
        .iter()
        .map(|t| (t.chars().count() as f64 * f64::from(RATE) / 15.0).round() as usize)
        .sum()
}

/// Read a session to its end: (samples, Ok(Done) or the error).
async fn drain(s: &mut TtsSession) -> (usize, Result<(), TtsError>) {
    let mut samples = 0;
    loop {
        match timeout(Duration::from_secs(5), s.events.recv())
            .await
            .unwrap()
        {
            Some(Ok(TtsEvent::Audio {
                samples: a,
                sample_rate,
            })) => {
                assert_eq!(sample_rate, RATE);
                samples += a.len();
            }
            Some(Ok(TtsEvent::Done)) => return (samples, Ok(())),
            Some(Err(e)) => return (samples, Err(e)),
            None => return (samples, Err(TtsError::Closed("channel closed".into()))),
        }
    }
}

async fn speak(tts: &CartesiaTts, reply_id: u64, texts: &[&str]) -> (usize, Result<(), TtsError>) {
    let mut s = tts.open(&req(reply_id)).await.unwrap();
    for t in texts {
        s.input.push_text(t).await.unwrap();
    }
    s.input.finish().await.unwrap();
    drain(&mut s).await
}

#[tokio::test]
async fn happy_path_audio_length_follows_text() {
    let emu = emulator(fast()).await;
    let tts = client(&emu);
    let texts = [
        "Hello there, how can I help you today? ",
        "We open at nine.",
    ];
    let (samples, end) = speak(&tts, 1, &texts).await;
    end.unwrap();
    assert_eq!(samples, expected(&texts));
    // ~55 chars at 15 chars/s ≈ 3.7 s of audio.
    assert!((3.5..3.9).contains(&(samples as f64 / f64::from(RATE))));
}

#[tokio::test]
async fn concurrent_contexts_share_one_socket_and_are_demultiplexed() {
    let emu = emulator(fast()).await;
    let tts = CartesiaTts::new(CartesiaConfig {
        contexts_per_socket: 2,
        ..client_cfg(&emu)
    })
    .unwrap();
    let mut a = tts.open(&req(1)).await.unwrap();
    // A second handshake would be refused: both contexts must ride the first socket.
    emu.faults.force_next(FaultKind::RateLimited);
    let mut b = tts.open(&req(2)).await.unwrap();
    let (ta, tb) = (
        "A short one. ",
        "A noticeably longer sentence for the other reply.",
    );
    a.input.push_text(ta).await.unwrap();
    b.input.push_text(tb).await.unwrap();
    a.input.finish().await.unwrap();
    b.input.finish().await.unwrap();
    let ((na, ea), (nb, eb)) = tokio::join!(drain(&mut a), drain(&mut b));
    ea.unwrap();
    eb.unwrap();
    assert_eq!(na, expected(&[ta]));
    assert_eq!(nb, expected(&[tb]));
    assert_eq!(tts.sockets(), 1);
}

/// By default each socket carries one reply at a time: a socket failure fails only the reply on
/// it, and a finished reply's socket is reused by the next one.
#[tokio::test]
async fn one_reply_per_socket_isolates_socket_failures() {
    let emu = emulator(fast()).await;
    let tts = client(&emu);
    let mut a = tts.open(&req(1)).await.unwrap();
    a.input.push_text("The first reply. ").await.unwrap();
    emu.faults.force_next(FaultKind::DropSocket);
    let mut b = tts.open(&req(2)).await.unwrap();
    b.input
        .push_text("The second reply, whose socket drops.")
        .await
        .unwrap();
    assert_eq!(tts.sockets(), 2);
    a.input.finish().await.unwrap();
    b.input.finish().await.unwrap();
    let ((na, ea), (_, eb)) = tokio::join!(drain(&mut a), drain(&mut b));
    ea.unwrap();
    assert_eq!(na, expected(&["The first reply. "]));
    assert!(eb.unwrap_err().is_retriable());
    drop((a, b));
    // The dropped socket is gone; the first one is free again and serves the next reply.
    assert_eq!(tts.sockets(), 1);
    speak(&tts, 3, &["Reused."]).await.1.unwrap();
    assert_eq!(tts.sockets(), 1);
}

#[tokio::test]
async fn cancel_stops_only_that_context() {
    let emu = emulator(CartesiaEmulatorConfig {
        realtime_factor: 10.0,
        ..fast()
    })
    .await;
    let tts = client(&emu);
    let text = "This reply is long enough to still be streaming when we cancel it.";
    let mut a = tts.open(&req(1)).await.unwrap();
    let mut b = tts.open(&req(2)).await.unwrap();
    a.input.push_text(text).await.unwrap();
    b.input.push_text(text).await.unwrap();
    a.input.finish().await.unwrap();
    b.input.finish().await.unwrap();
    let first = timeout(Duration::from_secs(2), a.events.recv())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(TtsEvent::Audio { .. }))));
    a.input.cancel().await.unwrap();
    // Nothing more (in particular no Done) reaches the cancelled session.
    let rest = timeout(Duration::from_secs(2), a.events.recv())
        .await
        .unwrap();
    assert!(rest.is_none(), "event after cancel: {rest:?}");
    let (nb, eb) = drain(&mut b).await;
    eb.unwrap();
    assert_eq!(nb, expected(&[text]));
}

#[tokio::test]
async fn wrong_key_is_auth_and_not_retriable() {
    let emu = emulator(fast()).await;
    let tts = CartesiaTts::new(CartesiaConfig {
        api_key: Secret::new("wrong"),
        ..client_cfg(&emu)
    })
    .unwrap();
    let err = tts.open(&req(1)).await.err().unwrap();
    assert!(matches!(err, TtsError::Auth(_)), "{err:?}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn handshake_429_is_retriable_then_recovers() {
    let emu = emulator(fast()).await;
    let tts = client(&emu);
    emu.faults.force_next(FaultKind::RateLimited);
    let err = tts.open(&req(1)).await.err().unwrap();
    assert!(matches!(err, TtsError::Connect(_)), "{err:?}");
    assert!(err.is_retriable());
    let (_, end) = speak(&tts, 2, &["Second try works."]).await;
    end.unwrap();
}

#[tokio::test]
async fn server_errors_in_both_shapes_are_mapped() {
    let emu = emulator(fast()).await;
    for version in ["2025-04-16", "2026-03-01"] {
        let tts = CartesiaTts::new(CartesiaConfig {
            version: version.into(),
            model_id: "no-such-model".into(),
            ..client_cfg(&emu)
        })
        .unwrap();
        let (_, end) = speak(&tts, 1, &["Hello."]).await;
        let err = end.err().unwrap();
        assert!(matches!(err, TtsError::Rejected(_)), "{version}: {err:?}");
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("no-such-model"), "{err}");
        // The new shape carries an error_code, the old one does not.
        assert_eq!(
            err.to_string().contains("invalid_request"),
            version == "2026-03-01"
        );
    }
}

/// The emulator's raw error messages follow the version's shape.
#[tokio::test]
async fn emulator_error_shape_follows_version() {
    let emu = emulator(fast()).await;
    for (version, new) in [("2025-04-16", false), ("2026-03-01", true)] {
        let url = format!(
            "{}/tts/websocket?cartesia_version={version}&api_key=key",
            emu.ws_url()
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
            .await
            .unwrap();
        let bad = r#"{"model_id":"sonic-3","transcript":"Hi","voice":{"mode":"id","id":"v"},"output_format":{"container":"raw","encoding":"pcm_s16le","sample_rate":12345},"context_id":"c"}"#;
        ws.send(Message::text(bad)).await.unwrap();
        let msg = timeout(Duration::from_secs(2), ws.next()).await.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(msg.unwrap().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["status_code"], 400);
        assert_eq!(v["context_id"], "c");
        assert_eq!(v.get("error_code").is_some(), new, "{v}");
        assert_eq!(v.get("title").is_some(), new, "{v}");
        assert_eq!(v.get("error").is_some(), !new, "{v}");
    }
}

#[tokio::test]
async fn dropped_socket_fails_open_contexts_and_next_open_reconnects() {
    let emu = emulator(CartesiaEmulatorConfig {
        realtime_factor: 10.0,
        ..fast()
    })
    .await;
    // Two contexts on one socket (the pool's setting): a drop fails both.
    let tts = CartesiaTts::new(CartesiaConfig {
        contexts_per_socket: 2,
        ..client_cfg(&emu)
    })
    .unwrap();
    emu.faults.force_next(FaultKind::DropSocket);
    let text = "Long enough that the socket drops in the middle of this reply.";
    let mut a = tts.open(&req(1)).await.unwrap();
    let mut b = tts.open(&req(2)).await.unwrap();
    a.input.push_text(text).await.unwrap();
    b.input.push_text(text).await.unwrap();
    let ((na, ea), (_, eb)) = tokio::join!(drain(&mut a), drain(&mut b));
    assert!(na < expected(&[text]));
    assert!(matches!(ea, Err(TtsError::Closed(_))), "{ea:?}");
    assert!(matches!(eb, Err(TtsError::Closed(_))), "{eb:?}");
    assert!(ea.unwrap_err().is_retriable());
    let (n, end) = speak(&tts, 3, &["After the reconnect."]).await;
    end.unwrap();
    assert_eq!(n, expected(&["After the reconnect."]));
    assert_eq!(emu.faults.injected().get(&FaultKind::DropSocket), Some(&1));
}

#[tokio::test]
async fn wrong_close_code_fails_open_contexts() {
    let emu = emulator(fast()).await;
    let tts = client(&emu);
    emu.faults.force_next(FaultKind::WrongCloseCode);
    let (_, end) = speak(&tts, 1, &["Closed with 1011 part way through this one."]).await;
    let err = end.err().unwrap();
    assert!(err.to_string().contains("1011"), "{err}");
    assert!(err.is_retriable());
}

#[tokio::test]
async fn stalled_server_hits_first_chunk_timeout_quickly() {
    let emu = emulator(fast()).await;
    let tts = CartesiaTts::new(CartesiaConfig {
        first_chunk_timeout_ms: 250,
        ..client_cfg(&emu)
    })
    .unwrap();
    emu.faults.force_next(FaultKind::Stall);
    let mut s = tts.open(&req(1)).await.unwrap();
    s.input
        .push_text("Nobody will ever hear this.")
        .await
        .unwrap();
    s.input.finish().await.unwrap();
    let (n, end) = drain(&mut s).await;
    assert_eq!(n, 0);
    let err = end.err().unwrap();
    // The first-chunk timeout fired (the drain itself would wait 5 s, then panic).
    assert!(matches!(err, TtsError::Timeout(_)), "{err:?}");
    assert!(err.is_retriable());
    // The stalled socket was dropped: the re-speak gets a fresh one.
    let (_, end) = speak(&tts, 1, &["Re-spoken."]).await;
    end.unwrap();
}

/// The client multiplexes every reply over one socket, so the emulator also draws faults per
/// context: each fails only its own context, retriably, and the next reply is spoken.
#[tokio::test]
async fn per_context_faults_fail_only_that_context() {
    let emu = emulator(fast()).await;
    let tts = CartesiaTts::new(CartesiaConfig {
        first_chunk_timeout_ms: 250,
        ..client_cfg(&emu)
    })
    .unwrap();
    speak(&tts, 1, &["Warm up the socket."]).await.1.unwrap();
    let kinds = [
        FaultKind::ServerError,
        FaultKind::RateLimited,
        FaultKind::Stall,
        FaultKind::ErrorEvent,
    ];
    for (i, kind) in (2..).step_by(2).zip(kinds) {
        emu.faults.force_next_inner(kind);
        let (n, end) = speak(&tts, i, &["This context fails."]).await;
        let err = end.expect_err(&format!("{kind:?}: no error"));
        // The in-band error comes after the context's first chunks (`after_messages`: 3).
        let heard = if kind == FaultKind::ErrorEvent {
            3 * 960
        } else {
            0
        };
        assert_eq!(n, heard, "{kind:?}");
        assert!(err.is_retriable(), "{kind:?}: {err:?}");
        let texts = ["The next reply is spoken."];
        let (n, end) = speak(&tts, i + 1, &texts).await;
        end.unwrap();
        assert_eq!(n, expected(&texts), "{kind:?}");
        assert_eq!(emu.faults.injected().get(&kind), Some(&1), "{kind:?}");
    }
}

#[tokio::test]
async fn malformed_frame_is_skipped() {
    let emu = emulator(fast()).await;
    let tts = client(&emu);
    emu.faults.force_next(FaultKind::MalformedJson);
    let texts = ["A garbage frame arrives somewhere in this reply."];
    let (n, end) = speak(&tts, 1, &texts).await;
    end.unwrap();
    assert_eq!(n, expected(&texts));
    assert_eq!(
        emu.faults.injected().get(&FaultKind::MalformedJson),
        Some(&1)
    );
}

#[test]
fn bad_config_is_rejected() {
    let bad_rate = CartesiaConfig {
        sample_rate: 12_345,
        ..Default::default()
    };
    assert_eq!(
        CartesiaTts::new(bad_rate).err(),
        Some(CartesiaConfigError::SampleRate(12_345))
    );
    let bad_url = CartesiaConfig {
        url: "https://api.cartesia.ai/tts/websocket".into(),
        ..Default::default()
    };
    assert!(matches!(
        CartesiaTts::new(bad_url).err(),
        Some(CartesiaConfigError::Url(_))
    ));
    let parsed: Result<CartesiaConfig, _> = toml::from_str("sample_rate = 16000\nvoice = \"x\"");
    assert!(parsed.is_err(), "unknown field accepted");
    let parsed: CartesiaConfig = toml::from_str("sample_rate = 16000").unwrap();
    assert_eq!(parsed.first_chunk_timeout_ms, 600);
    assert!(CartesiaTts::new(parsed).is_ok());
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_socket(emu: &Emulator) -> RawWs {
    let url = format!(
        "{}/tts/websocket?cartesia_version=2025-04-16&api_key=key",
        emu.ws_url()
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

fn request(context_id: &str, transcript: &str, cont: bool, extra: serde_json::Value) -> Message {
    let mut v = serde_json::json!({"model_id":"sonic-3","transcript":transcript,
        "voice":{"mode":"id","id":"v"},"language":"en","context_id":context_id,"continue":cont,
        "output_format":{"container":"raw","encoding":"pcm_s16le","sample_rate":16000}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    Message::text(v.to_string())
}

/// Server messages until `done`/`error` (or `limit` of quiet), as JSON.
async fn read_until_end(ws: &mut RawWs, limit: Duration) -> Vec<serde_json::Value> {
    let mut out = vec![];
    while let Ok(Some(Ok(msg))) = timeout(limit, ws.next()).await {
        let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        let end = v["type"] == "done" || v["type"] == "error";
        out.push(v);
        if end {
            break;
        }
    }
    out
}

#[tokio::test]
async fn emulator_flush_marks_chunks_and_confirms() {
    let emu = emulator(fast()).await;
    let mut ws = raw_socket(&emu).await;
    let none = serde_json::json!({});
    ws.send(request("c", "Hello, ", true, none.clone()))
        .await
        .unwrap();
    ws.send(request("c", "", true, serde_json::json!({"flush": true})))
        .await
        .unwrap();
    ws.send(request("c", "world.", true, none.clone()))
        .await
        .unwrap();
    ws.send(request("c", "", false, none)).await.unwrap();
    let msgs = read_until_end(&mut ws, Duration::from_secs(2)).await;
    let kinds: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
    let flush_at = kinds.iter().position(|k| *k == "flush_done").unwrap();
    assert_eq!(msgs[flush_at]["flush_id"], 1);
    assert!(msgs[..flush_at].iter().all(|m| m.get("flush_id").is_none()));
    assert!(msgs[flush_at + 1..]
        .iter()
        .filter(|m| m["type"] == "chunk")
        .all(|m| m["flush_id"] == 1));
    assert_eq!(kinds.last(), Some(&"done"));
    let samples: usize = msgs
        .iter()
        .filter(|m| m["type"] == "chunk")
        .map(|m| {
            assert_eq!(m["status_code"], 206);
            frontdesk::providers::cartesia::wire::decode_pcm(m["data"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum();
    // Each input rounds on its own: "Hello, " (7 chars) and "world." (6 chars) at 16 kHz.
    assert_eq!(samples, 7_467 + 6_400);
}

#[tokio::test]
async fn emulator_rejects_fields_changed_within_a_context() {
    let emu = emulator(fast()).await;
    let mut ws = raw_socket(&emu).await;
    ws.send(request("c", "Hi. ", true, serde_json::json!({})))
        .await
        .unwrap();
    ws.send(request(
        "c",
        "More.",
        true,
        serde_json::json!({"language": "fr"}),
    ))
    .await
    .unwrap();
    let msgs = read_until_end(&mut ws, Duration::from_secs(2)).await;
    let last = msgs.last().unwrap();
    assert_eq!(last["type"], "error", "{msgs:?}");
    assert_eq!(last["context_id"], "c");
}

#[tokio::test]
async fn emulator_context_expires_after_its_last_audio() {
    let emu = emulator(CartesiaEmulatorConfig {
        context_expiry_ms: 100,
        ..fast()
    })
    .await;
    let mut ws = raw_socket(&emu).await;
    ws.send(request("c", "Hi.", true, serde_json::json!({})))
        .await
        .unwrap();
    let first = read_until_end(&mut ws, Duration::from_millis(400)).await;
    assert!(first.iter().all(|m| m["type"] == "chunk") && !first.is_empty());
    // Expired: ending it now is a fresh, empty context, done at once without audio.
    ws.send(request("c", "", false, serde_json::json!({})))
        .await
        .unwrap();
    let end = read_until_end(&mut ws, Duration::from_secs(1)).await;
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!(end[0]["type"], "done");
}

#[tokio::test]
async fn emulator_requires_a_version() {
    let emu = emulator(fast()).await;
    let url = format!("{}/tts/websocket?api_key=key", emu.ws_url());
    let err = tokio_tungstenite::connect_async(url).await.err().unwrap();
    assert!(err.to_string().contains("400"), "{err}");
}

/// A bare server that answers every context except reply 1's, which it silently ignores.
async fn partly_silent_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let id = v["context_id"].as_str().unwrap().to_string();
            if id.starts_with("call-1-") {
                continue;
            }
            let data = frontdesk::providers::cartesia::wire::encode_pcm(&[1; 240]);
            let reply = if v["continue"] == true {
                serde_json::json!({"type":"chunk","data":data,"done":false,"status_code":206,"context_id":id})
            } else {
                serde_json::json!({"type":"done","done":true,"status_code":200,"context_id":id})
            };
            ws.send(Message::text(reply.to_string())).await.unwrap();
        }
    });
    addr
}

#[tokio::test]
async fn first_chunk_timeout_on_a_live_socket_fails_only_the_silent_context() {
    let addr = partly_silent_server().await;
    let tts = CartesiaTts::new(CartesiaConfig {
        url: format!("ws://{addr}/tts/websocket"),
        first_chunk_timeout_ms: 250,
        contexts_per_socket: 2,
        ..Default::default()
    })
    .unwrap();
    let mut silent = tts.open(&req(1)).await.unwrap();
    let mut live = tts.open(&req(2)).await.unwrap();
    silent.input.push_text("Never answered.").await.unwrap();
    live.input.push_text("Answered.").await.unwrap();
    let (n, end) = drain(&mut silent).await;
    assert_eq!(n, 0);
    assert!(matches!(end, Err(TtsError::Timeout(_))), "{end:?}");
    // The socket was not dropped: the other context carries on and finishes.
    live.input.push_text(" Still here.").await.unwrap();
    live.input.finish().await.unwrap();
    let (n, end) = drain(&mut live).await;
    end.unwrap();
    assert_eq!(n, 480);
}

/// A context whose consumer falls behind overflows its bounded queue: it ends with a clear,
/// retriable error (the TTS actor re-speaks from there), is counted, and the socket's other
/// contexts never notice, because the socket's reader never waits for a consumer.
#[tokio::test]
async fn a_slow_consumer_overflows_only_its_own_context() {
    let emu = emulator(CartesiaEmulatorConfig {
        realtime_factor: 200.0,
        ..fast()
    })
    .await;
    let buffer_ms = 500;
    let tts = CartesiaTts::new(CartesiaConfig {
        contexts_per_socket: 3,
        context_buffer_ms: buffer_ms,
        ..client_cfg(&emu)
    })
    .unwrap();
    let mut slow = tts.open(&req(1)).await.unwrap();
    let mut other = tts.open(&req(2)).await.unwrap();
    // 10 s of audio for the slow one; less than the bound for the other, so only a stuck reader
    // could overflow it.
    let long = "This reply is far longer than the half second the queue may hold ahead. ".repeat(2);
    let short = "Fine. ";
    slow.input.push_text(&long).await.unwrap();
    slow.input.finish().await.unwrap();
    other.input.push_text(short).await.unwrap();
    other.input.finish().await.unwrap();
    // Nobody reads the slow context until its queue has overflowed.
    timeout(Duration::from_secs(10), async {
        while tts.overflows() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    let (n, end) = drain(&mut other).await;
    end.unwrap();
    assert_eq!(n, expected(&[short]), "the other context got all its audio");

    let (n, end) = drain(&mut slow).await;
    let err = end.unwrap_err();
    assert!(err.to_string().contains("overflow"), "{err}");
    assert!(err.is_retriable(), "the TTS actor restarts and re-speaks");
    let bound = (buffer_ms as usize) * RATE as usize / 1000;
    // What was queued, plus the few chunks between the queue and the session (40 ms each).
    let slack = 6 * RATE as usize / 25;
    assert!(n > 0 && n <= bound + slack, "{n} samples");
    assert!(n < expected(&[&long]));
    assert_eq!(tts.overflows(), 1);

    // The socket is still fine for the next reply (shorter than the bound: read only at the end).
    let (n, end) = speak(&tts, 3, &["Bye."]).await;
    end.unwrap();
    assert_eq!(n, expected(&["Bye."]));
    assert_eq!(tts.sockets(), 1, "one socket carried all three contexts");
}

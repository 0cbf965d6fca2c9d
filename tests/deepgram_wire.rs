//! The real Deepgram client against the Deepgram emulator over loopback websockets.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use frontdesk::emulators::deepgram::{self as emu, DeepgramEmulatorConfig};
use frontdesk::emulators::faults::FaultKind;
use frontdesk::emulators::Emulator;
use frontdesk::providers::deepgram::{DeepgramConfig, DeepgramStt};
use frontdesk::secret::Secret;
use frontdesk_actors::doubles::{signal, Latency};
use frontdesk_actors::provider::{
    SttError, SttEvent, SttProvider, SttSession, SttSessionConfig, SttSink,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

const RATE: u32 = 16_000;
const KEY: &str = "test-key";
const CALL: &str = "call-1";
const LINES: [&str; 3] = ["hello there", "book a table for two please", "thanks"];

type Events = mpsc::Receiver<Result<SttEvent, SttError>>;

fn emu_cfg() -> DeepgramEmulatorConfig {
    DeepgramEmulatorConfig {
        api_key: Some(KEY.into()),
        scripts: BTreeMap::from([(CALL.to_string(), LINES.map(String::from).to_vec())]),
        default_script: vec!["default line".into()],
        latency: Latency::ms(20, 10),
        interim_every_ms: 100,
        endpointing_ms: 300,
        idle_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

async fn emulator(cfg: DeepgramEmulatorConfig) -> Emulator {
    emu::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Client settings for `emu`, keepalive off (tests that need it turn it on).
fn client_cfg(emu: &Emulator, key: &str) -> DeepgramConfig {
    DeepgramConfig {
        url: format!("{}/v1/listen", emu.ws_url()),
        api_key: Secret::new(key),
        keepalive_every: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        // The emulator honours it: 300 ms keeps a test's voice one final.
        endpointing_ms: 300,
        ..Default::default()
    }
}

fn session_cfg(call: &str) -> SttSessionConfig {
    SttSessionConfig {
        call_id: call.into(),
        sample_rate: RATE,
        language: "en".into(),
    }
}

async fn connect_with(cfg: DeepgramConfig, call: &str) -> Result<SttSession, SttError> {
    DeepgramStt::new(cfg).connect(&session_cfg(call)).await
}

async fn connect(emu: &Emulator, call: &str) -> Result<SttSession, SttError> {
    connect_with(client_cfg(emu, KEY), call).await
}

fn voice(ms: u64) -> Vec<i16> {
    signal::speechlike(RATE, Duration::from_millis(ms), 0)
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * RATE as usize / 1000]
}

async fn send(sink: &mut Box<dyn SttSink>, samples: &[i16]) {
    for frame in signal::frames(samples, RATE, Duration::ZERO) {
        sink.send_audio(&frame).await.unwrap();
    }
}

/// The next event; `None` when the channel ended. Panics after 2 s of nothing.
async fn next(events: &mut Events) -> Option<Result<SttEvent, SttError>> {
    tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("no stt event within 2 s")
}

/// Events up to and including the first final (or error).
async fn until_final(events: &mut Events) -> Vec<Result<SttEvent, SttError>> {
    let mut seen = vec![];
    loop {
        let ev = next(events).await.expect("channel ended before a final");
        let done = matches!(ev, Ok(SttEvent::Final { .. }) | Err(_));
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// The error the session ends with, skipping events.
async fn until_error(events: &mut Events) -> SttError {
    loop {
        match next(events).await.expect("channel ended without an error") {
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

fn final_of(events: &[Result<SttEvent, SttError>]) -> (String, Duration, Duration, bool) {
    match events.last() {
        Some(Ok(SttEvent::Final {
            text,
            start,
            end,
            speech_final,
        })) => (text.clone(), *start, *end, *speech_final),
        other => panic!("expected a final, got {other:?}"),
    }
}

fn near(d: Duration, secs: f64) -> bool {
    (d.as_secs_f64() - secs).abs() < 0.03
}

#[tokio::test]
async fn happy_path_interims_then_scripted_final_at_endpoint() {
    let emu = emulator(emu_cfg()).await;
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    send(&mut sink, &voice(1_000)).await;
    send(&mut sink, &silence(500)).await;
    let seen = until_final(&mut events).await;
    assert!(matches!(seen[0], Ok(SttEvent::SpeechStarted)), "{seen:?}");
    let interims: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Ok(SttEvent::Interim { text }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert!(interims.len() >= 5, "{interims:?}");
    assert!(interims.iter().all(|t| LINES[0].starts_with(t.as_str())));
    let (text, start, end, speech_final) = final_of(&seen);
    assert_eq!(text, LINES[0]);
    assert!(speech_final);
    assert!(near(start, 0.0) && near(end, 1.3), "{start:?}..{end:?}");
}

#[tokio::test]
async fn finalize_flushes_the_partial_chunk_and_gets_a_final() {
    let emu = emulator(emu_cfg()).await;
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    // 17 frames = 5440 samples: 6 whole 50 ms chunks plus 640 samples only `finalize` sends.
    send(&mut sink, &voice(340)).await;
    sink.finalize().await.unwrap();
    let (text, _, end, speech_final) = final_of(&until_final(&mut events).await);
    assert_eq!(text, LINES[0]);
    assert!(!speech_final, "a Finalize final is not an endpoint");
    assert!(near(end, 0.34), "{end:?}");
}

type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A plain websocket client on `/v1/listen` (16 kHz linear16, the call's tag) with `query` added.
async fn raw_connect(emu: &Emulator, query: &str) -> RawSocket {
    let url = format!(
        "{}/v1/listen?encoding=linear16&sample_rate=16000&{query}&tag={CALL}",
        emu.ws_url()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Token {KEY}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

#[tokio::test]
async fn raw_wire_shapes_finalize_and_close_stream() {
    let emu = emulator(emu_cfg()).await;
    let mut ws = raw_connect(&emu, "vad_events=true").await;
    let pcm: Vec<u8> = voice(200).iter().flat_map(|s| s.to_le_bytes()).collect();
    ws.send(Message::Binary(pcm.into())).await.unwrap();
    ws.send(Message::text(r#"{"type":"Finalize"}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .unwrap();
    let mut texts = vec![];
    let close = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => texts.push(serde_json::from_str::<serde_json::Value>(&t).unwrap()),
            Message::Close(frame) => break frame.map(|f| u16::from(f.code)),
            _ => {}
        }
    };
    assert_eq!(close, Some(1000));
    let types: Vec<_> = texts.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["SpeechStarted", "Results", "Metadata"], "{texts:?}");
    let fin = &texts[1];
    assert_eq!(fin["is_final"], true);
    assert_eq!(fin["from_finalize"], true);
    assert_eq!(fin["speech_final"], false);
    assert_eq!(fin["channel_index"], serde_json::json!([0, 1]));
    assert_eq!(fin["channel"]["alternatives"][0]["transcript"], LINES[0]);
    assert!(fin["metadata"]["model_info"]["name"].is_string());
    assert!(fin["metadata"]["request_id"].is_string());
}

#[tokio::test]
async fn bad_query_is_refused_with_400() {
    let emu = emulator(DeepgramEmulatorConfig::default()).await;
    let url = format!("{}/v1/listen?encoding=linear16", emu.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn wrong_key_is_an_auth_error_never_retried() {
    let emu = emulator(emu_cfg()).await;
    let err = connect_with(client_cfg(&emu, "wrong"), CALL)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, SttError::Auth(m) if m.contains("401") && m.contains("Invalid credentials")),
        "{err}"
    );
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn rate_limit_and_server_errors_are_retriable_connect_errors() {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(FaultKind::RateLimited);
    emu.faults.force_next(FaultKind::ServerError);
    for want in ["429", "50"] {
        let err = connect(&emu, CALL).await.err().unwrap();
        assert!(
            matches!(&err, SttError::Connect(m) if m.contains(want)),
            "{err}"
        );
        assert!(err.is_retriable());
    }
    assert!(
        connect(&emu, CALL).await.is_ok(),
        "the next attempt succeeds"
    );
    assert_eq!(emu.faults.injected().len(), 2);
}

async fn fault_ends_stream(kind: FaultKind) -> SttError {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(kind);
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    send(&mut sink, &voice(1_000)).await;
    let err = until_error(&mut events).await;
    assert_eq!(emu.faults.injected().get(&kind), Some(&1));
    err
}

#[tokio::test]
async fn dropped_socket_mid_stream_is_an_error_on_the_channel() {
    let err = fault_ends_stream(FaultKind::DropSocket).await;
    assert!(
        matches!(err, SttError::Closed(_)) && err.is_retriable(),
        "{err}"
    );
}

#[tokio::test]
async fn unexpected_close_code_is_an_error_on_the_channel() {
    let err = fault_ends_stream(FaultKind::WrongCloseCode).await;
    assert!(
        matches!(&err, SttError::Closed(m) if m.contains("1011") && m.contains("NET-0000")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_json_is_skipped_and_the_stream_continues() {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(FaultKind::MalformedJson);
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    send(&mut sink, &voice(1_000)).await;
    send(&mut sink, &silence(400)).await;
    let seen = until_final(&mut events).await;
    assert_eq!(final_of(&seen).0, LINES[0]);
    assert_eq!(
        emu.faults.injected().get(&FaultKind::MalformedJson),
        Some(&1)
    );
}

#[tokio::test]
async fn stalled_server_goes_quiet_and_finalize_times_out() {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(FaultKind::Stall);
    let cfg = DeepgramConfig {
        result_timeout: Duration::from_millis(300),
        ..client_cfg(&emu, KEY)
    };
    let SttSession {
        mut sink,
        mut events,
    } = connect_with(cfg, CALL).await.unwrap();
    send(&mut sink, &voice(1_000)).await;
    send(&mut sink, &silence(400)).await;
    // Three messages go out: SpeechStarted and two interims too early for a word (the client
    // skips empty interims, as Deepgram sends them), then nothing.
    assert!(matches!(
        next(&mut events).await,
        Some(Ok(SttEvent::SpeechStarted))
    ));
    let quiet = tokio::time::timeout(Duration::from_millis(300), events.recv()).await;
    assert!(quiet.is_err(), "stalled server sent {quiet:?}");
    sink.finalize().await.unwrap();
    let err = until_error(&mut events).await;
    assert!(
        matches!(err, SttError::Timeout(_)) && err.is_retriable(),
        "{err}"
    );
}

#[tokio::test]
async fn utterance_end_follows_the_final_when_asked_for() {
    let emu = emulator(emu_cfg()).await;
    let cfg = DeepgramConfig {
        utterance_end_ms: Some(1_000),
        ..client_cfg(&emu, KEY)
    };
    let SttSession {
        mut sink,
        mut events,
    } = connect_with(cfg, CALL).await.unwrap();
    send(&mut sink, &voice(500)).await;
    send(&mut sink, &silence(1_100)).await;
    let (_, _, _, speech_final) = final_of(&until_final(&mut events).await);
    assert!(speech_final);
    assert!(matches!(
        next(&mut events).await,
        Some(Ok(SttEvent::UtteranceEnd))
    ));
}

fn short_idle() -> DeepgramEmulatorConfig {
    DeepgramEmulatorConfig {
        idle_timeout: Duration::from_millis(300),
        ..emu_cfg()
    }
}

#[tokio::test]
async fn idle_session_is_closed_with_net_0001() {
    let emu = emulator(short_idle()).await;
    let mut session = connect(&emu, CALL).await.unwrap();
    let err = until_error(&mut session.events).await;
    assert!(
        matches!(&err, SttError::Closed(m) if m.contains("1011") && m.contains("NET-0001")),
        "{err}"
    );
}

#[tokio::test]
async fn keepalive_keeps_an_idle_session_open() {
    let emu = emulator(short_idle()).await;
    let cfg = DeepgramConfig {
        keepalive_every: Duration::from_millis(100),
        ..client_cfg(&emu, KEY)
    };
    let SttSession {
        mut sink,
        mut events,
    } = connect_with(cfg, CALL).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(900), events.recv()).await;
    assert!(quiet.is_err(), "idle session got {quiet:?}");
    send(&mut sink, &voice(500)).await;
    send(&mut sink, &silence(400)).await;
    assert_eq!(final_of(&until_final(&mut events).await).0, LINES[0]);
}

#[tokio::test]
async fn close_stream_delivers_the_last_final_then_ends_cleanly() {
    let emu = emulator(emu_cfg()).await;
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    send(&mut sink, &voice(500)).await;
    sink.close().await.unwrap();
    drop(sink);
    let seen = until_final(&mut events).await;
    assert_eq!(final_of(&seen).0, LINES[0]);
    assert!(
        next(&mut events).await.is_none(),
        "channel ends without an error"
    );
}

#[tokio::test]
async fn reconnect_on_the_same_tag_continues_the_script() {
    let emu = emulator(emu_cfg()).await;
    let mut first = connect(&emu, CALL).await.unwrap();
    send(&mut first.sink, &voice(400)).await;
    first.sink.finalize().await.unwrap();
    assert_eq!(final_of(&until_final(&mut first.events).await).0, LINES[0]);
    drop(first);

    let mut second = connect(&emu, CALL).await.unwrap();
    // A final without voice is empty and does not use up a line.
    send(&mut second.sink, &silence(200)).await;
    second.sink.finalize().await.unwrap();
    let (text, start, _, _) = final_of(&until_final(&mut second.events).await);
    assert_eq!(
        (text.as_str(), start),
        ("", Duration::ZERO),
        "times restart per connection"
    );
    send(&mut second.sink, &voice(400)).await;
    second.sink.finalize().await.unwrap();
    assert_eq!(final_of(&until_final(&mut second.events).await).0, LINES[1]);

    let mut other = connect(&emu, "unscripted").await.unwrap();
    send(&mut other.sink, &voice(300)).await;
    other.sink.finalize().await.unwrap();
    assert_eq!(
        final_of(&until_final(&mut other.events).await).0,
        "default line"
    );
}

#[tokio::test]
async fn the_clients_endpointing_is_honoured_and_splits_the_utterance_at_a_pause() {
    let emu = emulator(emu_cfg()).await;
    // Our default: endpointing=25, so a 100 ms pause ends speech (after the emulator's shortest
    // pause, 60 ms).
    let cfg = DeepgramConfig {
        endpointing_ms: DeepgramConfig::default().endpointing_ms,
        ..client_cfg(&emu, KEY)
    };
    let SttSession {
        mut sink,
        mut events,
    } = connect_with(cfg, CALL).await.unwrap();
    send(&mut sink, &voice(400)).await;
    send(&mut sink, &silence(100)).await;
    send(&mut sink, &voice(600)).await;
    send(&mut sink, &silence(200)).await;
    let (first, _, end, speech_final) = final_of(&until_final(&mut events).await);
    assert!(speech_final && near(end, 0.46), "{end:?}");
    let (second, start, end, _) = final_of(&until_final(&mut events).await);
    assert!(near(start, 0.46) && near(end, 1.16), "{start:?}..{end:?}");
    // The utterance's finals add up to its line.
    assert_eq!(format!("{first} {second}"), LINES[0]);
}

#[tokio::test]
async fn an_in_band_error_does_not_end_the_session() {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(FaultKind::ErrorEvent);
    let SttSession {
        mut sink,
        mut events,
    } = connect(&emu, CALL).await.unwrap();
    send(&mut sink, &voice(1_000)).await;
    send(&mut sink, &silence(400)).await;
    let seen = until_final(&mut events).await;
    assert_eq!(final_of(&seen).0, LINES[0]);
    assert_eq!(emu.faults.injected().get(&FaultKind::ErrorEvent), Some(&1));
}

/// A dropped socket must not take the messages sent before it: a client that streams audio
/// without pause can still read them for a while before its writes fail, as the Python SDK
/// needs (it tears the connection down at its first failed write).
#[tokio::test]
async fn a_dropped_socket_lets_a_streaming_client_read_what_was_sent_first() {
    let emu = emulator(emu_cfg()).await;
    emu.faults.force_next(FaultKind::DropSocket);
    let (mut tx, mut rx) = raw_connect(&emu, "interim_results=true").await.split();
    let reader = tokio::spawn(async move {
        let mut texts = vec![];
        while let Some(Ok(msg)) = rx.next().await {
            if msg.is_text() {
                texts.push(tokio::time::Instant::now());
            }
        }
        texts
    });
    let audio: Vec<i16> = voice(1_000).into_iter().chain(silence(2_000)).collect();
    let mut failed_at = None;
    for chunk in audio.chunks(320) {
        let pcm: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        if tx.send(Message::Binary(pcm.into())).await.is_err() {
            failed_at = Some(tokio::time::Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let texts = reader.await.unwrap();
    assert_eq!(texts.len(), 3, "the fault strikes after three messages");
    let failed_at = failed_at.expect("the dropped socket fails the client's writes");
    let readable_for = failed_at.duration_since(texts[2]);
    assert!(
        readable_for >= frontdesk::emulators::DROP_LINGER / 2,
        "the client's writes failed {readable_for:?} after the last message"
    );
    assert_eq!(emu.faults.injected().get(&FaultKind::DropSocket), Some(&1));
}

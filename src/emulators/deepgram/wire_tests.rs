//! The emulator's raw protocol over a loopback websocket: what each query parameter and control
//! changes in what the server sends (the official SDK's reading of the API).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message};

use super::*;

const LINE: &str = "Hello, I would like to book an appointment with a heart doctor.";
const WAV: &[u8] = include_bytes!("../../../tests/fixtures/speech/line01.wav");

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn emulator() -> Emulator {
    let cfg = DeepgramEmulatorConfig {
        default_script: vec![LINE.into(), "Second line.".into()],
        latency: Latency::ms(5, 0),
        ..Default::default()
    };
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn open(emu: &Emulator, query: &str) -> Ws {
    let url = format!(
        "{}/v1/listen?encoding=linear16&sample_rate=16000&{query}",
        emu.ws_url()
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

fn speech() -> Vec<i16> {
    let mut r = hound::WavReader::new(std::io::Cursor::new(WAV)).unwrap();
    r.samples::<i16>().collect::<Result<_, _>>().unwrap()
}

fn pcm(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Send the audio, then `CloseStream`; every message up to the close, and the close code.
async fn run(ws: &mut Ws, audio: &[u8], controls: &[&str]) -> (Vec<Value>, Option<u16>) {
    for piece in audio.chunks(3_200) {
        ws.send(Message::Binary(piece.to_vec().into()))
            .await
            .unwrap();
    }
    for c in controls.iter().chain(&[r#"{"type":"CloseStream"}"#]) {
        ws.send(Message::text(*c)).await.unwrap();
    }
    let mut out = vec![];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => out.push(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(f)))) => return (out, f.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close: {other:?} after {out:?}"),
        }
    }
}

fn of_type<'a>(msgs: &'a [Value], t: &str) -> Vec<&'a Value> {
    msgs.iter().filter(|m| m["type"] == t).collect()
}

fn finals(msgs: &[Value]) -> Vec<&Value> {
    of_type(msgs, "Results")
        .into_iter()
        .filter(|m| m["is_final"] == true)
        .collect()
}

fn text(m: &Value) -> &str {
    m["channel"]["alternatives"][0]["transcript"]
        .as_str()
        .unwrap()
}

fn end(m: &Value) -> f64 {
    m["start"].as_f64().unwrap() + m["duration"].as_f64().unwrap()
}

fn with_silence(samples: &[i16], ms: usize) -> Vec<u8> {
    let mut all = samples.to_vec();
    all.extend(std::iter::repeat_n(0, ms * 16));
    pcm(&all)
}

#[tokio::test]
async fn endpointing_decides_when_speech_final_comes() {
    let emu = emulator().await;
    let voice = speech();
    let mut at = BTreeMap::new();
    for ms in [10, 300, 800] {
        let mut ws = open(&emu, &format!("endpointing={ms}&punctuate=true&tag=e{ms}")).await;
        let (msgs, _) = run(&mut ws, &with_silence(&voice, 1_500), &[]).await;
        let finals = finals(&msgs);
        let joined: Vec<&str> = finals
            .iter()
            .map(|m| text(m))
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(
            joined.join(" "),
            LINE,
            "endpointing={ms}: the finals add up to the line"
        );
        let endpoints: Vec<_> = finals
            .iter()
            .filter(|m| m["speech_final"] == true)
            .collect();
        let last = endpoints.last().unwrap();
        at.insert(ms, (endpoints.len(), end(last)));
    }
    // The espeak clip pauses 160 ms after "Hello,": 10 ms splits the line there (not at the
    // 20-40 ms dips inside words; it waits for the shortest pause, 60 ms), 300 ms does not.
    assert_eq!((at[&10].0, at[&300].0, at[&800].0), (2, 1, 1), "{at:?}");
    assert!((at[&10].1 - 3.44 - 0.06).abs() < 0.03, "{at:?}");
    let speech_end = 3.44;
    assert!((at[&300].1 - speech_end - 0.3).abs() < 0.03, "{at:?}");
    assert!((at[&800].1 - speech_end - 0.8).abs() < 0.03, "{at:?}");
}

#[tokio::test]
async fn endpointing_false_gives_no_speech_final() {
    let emu = emulator().await;
    let mut ws = open(&emu, "endpointing=false&tag=off").await;
    let (msgs, _) = run(&mut ws, &with_silence(&speech(), 1_200), &[]).await;
    let finals = finals(&msgs);
    assert!(
        finals.iter().all(|m| m["speech_final"] == false),
        "{msgs:?}"
    );
    let said: Vec<&str> = finals
        .iter()
        .map(|m| text(m))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(
        said,
        ["hello i would like to book an appointment with a heart doctor"]
    );
    // It came when the line gap (1 s) had passed, not at a short pause.
    assert!((end(finals[0]) - 4.44).abs() < 0.03, "{}", finals[0]);
}

#[tokio::test]
async fn optional_messages_only_when_asked_for() {
    let emu = emulator().await;
    let audio = with_silence(&speech(), 1_200);
    let mut plain = open(&emu, "tag=p1").await;
    let (msgs, close) = run(&mut plain, &audio, &[]).await;
    assert_eq!(close, Some(1000));
    let types: Vec<&str> = msgs.iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(
        types.iter().all(|t| *t == "Results" || *t == "Metadata"),
        "{types:?}"
    );
    assert!(
        finals(&msgs).len() == of_type(&msgs, "Results").len(),
        "interims without asking"
    );

    let q = "interim_results=true&vad_events=true&utterance_end_ms=1000&endpointing=300&tag=p2";
    let mut all = open(&emu, q).await;
    let (msgs, _) = run(&mut all, &audio, &[]).await;
    assert!(of_type(&msgs, "Results")
        .iter()
        .any(|m| m["is_final"] == false));
    let started = of_type(&msgs, "SpeechStarted");
    assert_eq!(started[0]["timestamp"], 0.02);
    let ends = of_type(&msgs, "UtteranceEnd");
    assert_eq!(ends.len(), 1, "{msgs:?}");
    assert_eq!(ends[0]["last_word_end"], 3.44);
}

#[tokio::test]
async fn words_are_timed_over_the_speech_heard() {
    let emu = emulator().await;
    let mut ws = open(&emu, "endpointing=300&smart_format=true&tag=w").await;
    let mut audio = pcm(&vec![0; 16_000]);
    audio.extend(with_silence(&speech(), 500));
    let (msgs, _) = run(&mut ws, &audio, &[]).await;
    let fin = finals(&msgs)[0];
    assert_eq!(text(fin), LINE);
    let words = fin["channel"]["alternatives"][0]["words"]
        .as_array()
        .unwrap();
    let first = words[0]["start"].as_f64().unwrap();
    let last = words[words.len() - 1]["end"].as_f64().unwrap();
    assert!(
        (first - 1.02).abs() < 0.01 && (last - 4.44).abs() < 0.01,
        "{first}..{last}"
    );
    assert_eq!(words[0]["punctuated_word"], "Hello,");
    assert_eq!(words[0]["word"], "hello");
}

#[tokio::test]
async fn configure_is_answered() {
    let emu = emulator().await;
    let mut ws = open(&emu, "model=nova-3&tag=c").await;
    let punctuate = r#"{"type":"Configure","features":{"punctuate":true}}"#;
    ws.send(Message::text(punctuate)).await.unwrap();
    let controls = [
        r#"{"type":"Configure","keyterms":["cardiology"]}"#,
        r#"{"type":"Configure","keyterms":"cardiology"}"#,
        r#"{"type":"Finalize"}"#,
    ];
    let (msgs, _) = run(&mut ws, &with_silence(&speech(), 100), &controls).await;
    let ok = of_type(&msgs, "ConfigureSuccess");
    assert_eq!(ok.len(), 2, "{msgs:?}");
    assert!(ok[0].get("keyterms").is_none() && ok[0]["request_id"].is_string());
    assert_eq!(ok[1]["keyterms"], serde_json::json!(["cardiology"]));
    let err = of_type(&msgs, "Error");
    assert_eq!(err[0]["variant"], "SchemaError");
    assert_eq!(err[0]["message"], controls[1]);
    let fin = finals(&msgs);
    assert_eq!(
        fin.last().map(|m| m["from_finalize"].clone()),
        Some(true.into())
    );
    let said: Vec<&str> = fin
        .iter()
        .map(|m| text(m))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(said.join(" "), LINE, "punctuate switched on");

    let mut old = open(&emu, "model=nova-2&tag=c2").await;
    let (msgs, _) = run(&mut old, &[], &[controls[0]]).await;
    let failed = of_type(&msgs, "ConfigureFailure");
    assert_eq!(failed[0]["code"], "CONFIGURE_KEYTERMS_NOT_SUPPORTED");
}

#[tokio::test]
async fn channels_are_split_or_mixed() {
    let emu = emulator().await;
    let voice = speech();
    // Left speaks, right is silent.
    let stereo: Vec<i16> = voice
        .iter()
        .chain(&vec![0; 8_000])
        .flat_map(|s| [*s, 0])
        .collect();
    let mut split = open(&emu, "channels=2&multichannel=true&tag=ch1").await;
    let (msgs, _) = run(&mut split, &pcm(&stereo), &[]).await;
    let index: Vec<&Value> = finals(&msgs).iter().map(|m| &m["channel_index"]).collect();
    assert!(index.contains(&&serde_json::json!([0, 2])), "{index:?}");
    assert!(finals(&msgs)
        .iter()
        .all(|m| m["channel_index"] != serde_json::json!([1, 2]) || text(m).is_empty()));
    assert_eq!(of_type(&msgs, "Metadata")[0]["channels"], 2);

    let mut mixed = open(&emu, "channels=2&tag=ch2").await;
    let (msgs, _) = run(&mut mixed, &pcm(&stereo), &[]).await;
    assert!(finals(&msgs)
        .iter()
        .all(|m| m["channel_index"] == serde_json::json!([0, 1])));
    let duration = of_type(&msgs, "Metadata")[0]["duration"].as_f64().unwrap();
    assert!((duration - (voice.len() as f64 + 8_000.0) / 16_000.0).abs() < 0.02);
}

#[tokio::test]
async fn bad_encoding_or_rate_is_a_400_with_deepgrams_body() {
    let emu = emulator().await;
    for q in [
        "encoding=wav&sample_rate=16000",
        "encoding=linear16",
        "encoding=linear16&sample_rate=16k",
    ] {
        let url = format!("{}/v1/listen?{q}", emu.ws_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 400, "{q}");
                let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert!(
                    body["err_msg"].is_string() && body["request_id"].is_string(),
                    "{body}"
                );
                assert!(resp.headers().contains_key("dg-error"));
            }
            other => panic!("{q}: expected HTTP 400, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn error_event_fault_is_an_in_band_error_and_the_stream_goes_on() {
    let emu = emulator().await;
    emu.faults.force_next(FaultKind::ErrorEvent);
    let mut ws = open(&emu, "interim_results=true&endpointing=300&tag=f").await;
    let (msgs, close) = run(&mut ws, &with_silence(&speech(), 500), &[]).await;
    let err = of_type(&msgs, "Error");
    assert_eq!(err.len(), 1);
    assert_eq!(close, Some(1000));
    assert_eq!(
        text(finals(&msgs)[0]),
        LINE.to_lowercase().replace([',', '.'], "")
    );
    assert_eq!(emu.faults.injected().get(&FaultKind::ErrorEvent), Some(&1));
}

#[tokio::test]
async fn livekit_plugins_query_is_accepted() {
    let emu = emulator().await;
    // What livekit-plugins-deepgram 1.8 sends (repeated `tag`/`keyterm`, lowercase booleans).
    let q = "model=nova-3&punctuate=true&smart_format=false&no_delay=true&interim_results=true\
             &vad_events=true&channels=1&endpointing=25&filler_words=true\
             &profanity_filter=false&numerals=false&mip_opt_out=false&keyterm=a&keyterm=b\
             &language=en-US&tag=lk1&tag=lk2";
    let mut ws = open(&emu, q).await;
    let (msgs, close) = run(&mut ws, &with_silence(&speech(), 300), &[]).await;
    assert_eq!(close, Some(1000));
    assert!(finals(&msgs).iter().any(|m| m["speech_final"] == true));
}

#[tokio::test]
async fn mulaw_and_alaw_telephone_audio_is_heard() {
    let emu = emulator().await;
    // 8 kHz G.711: 0.5 s of a loud square wave (codes for +/-32124 and +/-32256), 0.5 s of zero.
    for (encoding, loud, zero) in [
        ("mulaw", [0x80u8, 0x00], 0xFFu8),
        ("alaw", [0xAA, 0x2A], 0xD5),
    ] {
        let mut audio: Vec<u8> = loud.iter().copied().cycle().take(4_000).collect();
        audio.extend(std::iter::repeat_n(zero, 4_000));
        let url = format!(
            "{}/v1/listen?encoding={encoding}&sample_rate=8000&endpointing=300&tag={encoding}",
            emu.ws_url()
        );
        let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
        let (msgs, _) = run(&mut ws, &audio, &[]).await;
        let fin = finals(&msgs)[0];
        assert_eq!(fin["speech_final"], true, "{encoding}: {msgs:?}");
        assert!((end(fin) - 0.8).abs() < 0.03, "{encoding}: {fin}");
        assert_eq!(text(fin), "hello i", "{encoding}: 0.5 s of voice");
    }
}

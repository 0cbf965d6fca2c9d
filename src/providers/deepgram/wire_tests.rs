use proptest::prelude::*;

use super::*;

const FINAL: &str = r#"{"type":"Results","channel_index":[0,1],"duration":1.5,"start":2.25,"is_final":true,"speech_final":true,"from_finalize":false,"channel":{"alternatives":[{"transcript":"hello there","confidence":0.99,"words":[]}]},"metadata":{"request_id":"r","model_info":{"name":"n","version":"v","arch":"a"},"model_uuid":"u"}}"#;

#[test]
fn decodes_each_message_type() {
    assert_eq!(
        decode(FINAL).unwrap(),
        Some(SttEvent::Final {
            text: "hello there".into(),
            start: Duration::from_millis(2250),
            end: Duration::from_millis(3750),
            speech_final: true,
        })
    );
    let interim = FINAL.replace(r#""is_final":true"#, r#""is_final":false"#);
    assert_eq!(
        decode(&interim).unwrap(),
        Some(SttEvent::Interim {
            text: "hello there".into()
        })
    );
    let empty = interim.replace("hello there", "");
    assert_eq!(decode(&empty).unwrap(), None);
    let started = r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":9.54}"#;
    assert_eq!(decode(started).unwrap(), Some(SttEvent::SpeechStarted));
    let ue = r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.395}"#;
    assert_eq!(decode(ue).unwrap(), Some(SttEvent::UtteranceEnd));
    assert_eq!(
        classify(r#"{"type":"Metadata","request_id":"x"}"#).unwrap(),
        Inbound::Ignored
    );
    assert_eq!(
        classify(r#"{"type":"Brand new"}"#).unwrap(),
        Inbound::Unknown
    );
}

#[test]
fn error_and_configure_replies_are_known_messages() {
    let err = r#"{"type":"Error","variant":"SchemaError","description":"bad","message":"{}"}"#;
    assert_eq!(
        classify(err).unwrap(),
        Inbound::ServerError {
            variant: "SchemaError".into(),
            description: "bad".into()
        }
    );
    assert_eq!(decode(err).unwrap(), None);
    let ok = r#"{"type":"ConfigureSuccess","request_id":"r"}"#;
    assert_eq!(classify(ok).unwrap(), Inbound::Ignored);
    let failed = r#"{"type":"ConfigureFailure","request_id":"r","code":"CONFIGURE_INTERNAL_ERROR","description":"d"}"#;
    assert_eq!(classify(failed).unwrap(), Inbound::Ignored);
}

#[test]
fn rejects_bad_messages() {
    assert!(decode("not json").is_err());
    assert!(decode(r#"{"no_type":1}"#).is_err());
    assert!(decode(&FINAL.replace("2.25", "-3")).is_err());
    assert!(decode(&FINAL.replace(r#""transcript":"hello there","#, "")).is_ok());
    let no_alt = r#"{"type":"Results","is_final":true,"channel":{"alternatives":[]}}"#;
    assert!(matches!(decode(no_alt), Err(DecodeError::NoAlternatives)));
}

#[test]
fn handshake_errors_are_classified() {
    let body = br#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"x"}"#;
    let e = handshake_error(401, None, Some(body));
    assert!(matches!(&e, SttError::Auth(m) if m.contains("Invalid credentials")));
    assert!(!e.is_retriable());
    assert!(
        matches!(handshake_error(403, Some("nope"), None), SttError::Auth(m) if m.contains("nope"))
    );
    for status in [429, 500, 503, 400] {
        assert!(handshake_error(status, None, None).is_retriable());
    }
}

#[test]
fn close_outcomes() {
    assert!(close_outcome(Some(1000), "", true).is_none());
    assert!(close_outcome(Some(1000), "", false).is_some());
    assert!(close_outcome(Some(1011), "NET-0001", true).is_some());
    assert!(close_outcome(None, "", true).is_some());
}

#[test]
fn url_has_the_reference_query() {
    let cfg = DeepgramConfig::default();
    let s = SttSessionConfig {
        call_id: "call 1".into(),
        sample_rate: 16_000,
        language: "en".into(),
    };
    let url = listen_url(&cfg, &s).unwrap();
    assert_eq!(
        url.as_str(),
        "wss://api.deepgram.com/v1/listen?model=nova-3&punctuate=true&smart_format=false&no_delay=true\
         &interim_results=true&encoding=linear16&vad_events=true&sample_rate=16000&channels=1\
         &endpointing=25&filler_words=true&language=en-US&tag=call+1"
    );
    assert_eq!(encode_pcm(&[1, -2]), vec![1, 0, 0xfe, 0xff]);
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_text(s in ".{0,300}") {
        let _ = decode(&s);
    }

    #[test]
    fn decode_never_panics_on_mutated_messages(
        cut in 0usize..400,
        pos in 0usize..400,
        ins in "[-0-9eE.\":,{}\\[\\]a-z ]{0,6}",
    ) {
        let mut s: String = FINAL.chars().take(cut.max(1) * 2).collect();
        let at = s.char_indices().map(|(i, _)| i).nth(pos % s.len().max(1)).unwrap_or(0);
        s.insert_str(at, &ins);
        let _ = decode(&s);
        let _ = decode(&FINAL.replace("2.25", &ins));
        let _ = decode(&FINAL.replace("1.5", &ins));
    }
}

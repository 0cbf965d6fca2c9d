//! Cartesia TTS websocket messages (protocols.md §4): pure encoding and decoding, no I/O, so every
//! path can be property-tested and a hostile frame can never panic the connection task.

use base64::Engine as _;
use frontdesk_actors::provider::TtsError;
use serde::Deserialize;
use serde_json::{json, Value};

/// Output sample rates Cartesia accepts for raw PCM.
pub const SAMPLE_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// The API version we send: the one the official SDK (cartesia 4.x) sends.
pub const API_VERSION: &str = "2026-08-14";

/// From this version on the voice is sent as the SDK sends it, `{"id": ...}`; before it, as the
/// older reference has it, `{"mode": "id", "id": ...}`.
const VOICE_WITHOUT_MODE_FROM: &str = "2026-08-14";

/// The fields every input of one context repeats unchanged (only `transcript`/`continue` vary).
#[derive(Clone, Debug, PartialEq)]
pub struct ContextTemplate {
    pub context_id: String,
    pub model_id: String,
    pub voice_id: String,
    pub language: String,
    pub sample_rate: u32,
    /// The `Cartesia-Version` of the socket: it picks the voice's shape.
    pub version: String,
}

impl ContextTemplate {
    /// A generation request: `transcript` verbatim, `continue` says whether more text follows.
    pub fn request(&self, transcript: &str, cont: bool) -> String {
        json!({
            "model_id": self.model_id,
            "transcript": transcript,
            "voice": self.voice(),
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.sample_rate,
            },
            "context_id": self.context_id,
            "continue": cont,
            "language": self.language,
        })
        .to_string()
    }

    fn voice(&self) -> Value {
        if self.version.as_str() >= VOICE_WITHOUT_MODE_FROM {
            json!({"id": self.voice_id})
        } else {
            json!({"mode": "id", "id": self.voice_id})
        }
    }

    /// The request that ends the context: no more text, send `done` after the audio.
    pub fn finish(&self) -> String {
        self.request("", false)
    }
}

/// Stop a context now; the server sends nothing more for it.
pub fn cancel(context_id: &str) -> String {
    json!({"context_id": context_id, "cancel": true}).to_string()
}

/// A server message the client acts on.
#[derive(Debug, PartialEq)]
pub enum ServerMsg {
    Chunk {
        context_id: String,
        samples: Vec<i16>,
    },
    Timestamps,
    FlushDone,
    Done {
        context_id: String,
    },
    Error {
        context_id: Option<String>,
        error: WireError,
    },
}

/// An `error` message, from either shape (old: `error`; ≥ 2026-03-01: `error_code`/`title`/`message`).
#[derive(Clone, Debug, PartialEq)]
pub struct WireError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

impl WireError {
    /// 401/403 are not worth retrying, nor is a request the server refuses; 429 and 5xx are.
    pub fn to_tts_error(&self) -> TtsError {
        let text = match (&self.status, &self.code) {
            (Some(s), Some(c)) => format!("{s} {c}: {}", self.message),
            (Some(s), None) => format!("{s}: {}", self.message),
            (None, Some(c)) => format!("{c}: {}", self.message),
            (None, None) => self.message.clone(),
        };
        match self.status {
            Some(401 | 403) => TtsError::Auth(text),
            Some(429) => TtsError::Connect(text),
            Some(400..=499) => TtsError::Rejected(text),
            _ => TtsError::Closed(text),
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON message: {0}")]
    Json(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("{0} message without context_id")]
    NoContext(&'static str),
    #[error("bad audio: {0}")]
    Audio(String),
}

/// Every field optional and loosely typed: a missing or odd field must not make us drop an error.
#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    context_id: Option<String>,
    data: Option<String>,
    status_code: Option<Value>,
    error_code: Option<Value>,
    title: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

/// Decode one text frame from the server.
pub fn decode(text: &str) -> Result<ServerMsg, DecodeError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| DecodeError::Json(e.to_string()))?;
    match raw.kind.as_str() {
        "chunk" => {
            let context_id = raw.context_id.ok_or(DecodeError::NoContext("chunk"))?;
            let data = raw
                .data
                .ok_or_else(|| DecodeError::Audio("chunk without data".into()))?;
            Ok(ServerMsg::Chunk {
                context_id,
                samples: decode_pcm(&data)?,
            })
        }
        "timestamps" | "phoneme_timestamps" => Ok(ServerMsg::Timestamps),
        "flush_done" => Ok(ServerMsg::FlushDone),
        "done" => Ok(ServerMsg::Done {
            context_id: raw.context_id.ok_or(DecodeError::NoContext("done"))?,
        }),
        "error" => Ok(ServerMsg::Error {
            error: wire_error(&raw),
            context_id: raw.context_id,
        }),
        other => Err(DecodeError::UnknownType(other.chars().take(64).collect())),
    }
}

fn wire_error(raw: &Raw) -> WireError {
    let status = raw
        .status_code
        .as_ref()
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|s| u16::try_from(s).ok());
    let code = raw.error_code.as_ref().map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    // New shape: "title: message"; old shape: `error`.
    let message = match (&raw.title, &raw.message, &raw.error) {
        (Some(t), Some(m), _) => format!("{t}: {m}"),
        (_, Some(m), _) | (Some(m), None, _) => m.clone(),
        (None, None, Some(e)) => e.clone(),
        (None, None, None) => "unspecified error".into(),
    };
    WireError {
        status,
        code,
        message,
    }
}

/// base64 → little-endian s16 samples.
pub fn decode_pcm(b64: &str) -> Result<Vec<i16>, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| DecodeError::Audio(e.to_string()))?;
    if bytes.len() % 2 != 0 {
        return Err(DecodeError::Audio(format!(
            "odd byte length {}",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// s16 samples → base64 of little-endian bytes (the emulator's side of `decode_pcm`).
pub fn encode_pcm(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_error_shapes_decode() {
        let new = r#"{"type":"error","done":true,"status_code":400,"error_code":"invalid_voice","title":"Invalid voice","message":"no such voice","context_id":"c1"}"#;
        let ServerMsg::Error { context_id, error } = decode(new).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(context_id.as_deref(), Some("c1"));
        assert_eq!(error.status, Some(400));
        assert_eq!(error.code.as_deref(), Some("invalid_voice"));
        assert!(matches!(error.to_tts_error(), TtsError::Rejected(_)));
        let old = r#"{"type":"error","done":true,"error":"bad key","status_code":401}"#;
        let ServerMsg::Error { context_id, error } = decode(old).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(context_id, None);
        assert_eq!(error.message, "bad key");
        assert!(matches!(error.to_tts_error(), TtsError::Auth(_)));
    }

    #[test]
    fn request_keeps_fields_and_transcript_verbatim() {
        let t = ContextTemplate {
            context_id: "c".into(),
            model_id: "sonic-3".into(),
            voice_id: "v".into(),
            language: "en".into(),
            sample_rate: 24_000,
            version: API_VERSION.into(),
        };
        let a: Value = serde_json::from_str(&t.request("Hello, ", true)).unwrap();
        let mut b: Value = serde_json::from_str(&t.finish()).unwrap();
        assert_eq!(a["transcript"], "Hello, ");
        assert_eq!(b["continue"], false);
        b["transcript"] = a["transcript"].clone();
        b["continue"] = a["continue"].clone();
        assert_eq!(a, b);
    }

    /// The SDK (4.x, Cartesia-Version 2026-08-14) sends the voice as `{"id": ...}`; older
    /// versions want the `mode`.
    #[test]
    fn voice_shape_follows_the_version() {
        let mut t = ContextTemplate {
            context_id: "c".into(),
            model_id: "sonic-3".into(),
            voice_id: "v".into(),
            language: "en".into(),
            sample_rate: 24_000,
            version: API_VERSION.into(),
        };
        let now: Value = serde_json::from_str(&t.request("Hi", true)).unwrap();
        assert_eq!(now["voice"], json!({"id": "v"}));
        t.version = "2025-04-16".into();
        let old: Value = serde_json::from_str(&t.request("Hi", true)).unwrap();
        assert_eq!(old["voice"], json!({"mode": "id", "id": "v"}));
    }

    #[test]
    fn phoneme_timestamps_are_known() {
        let m = r#"{"type":"phoneme_timestamps","done":false,"status_code":206,"context_id":"c","phoneme_timestamps":{"phonemes":["h"],"start":[0.0],"end":[0.1]}}"#;
        assert_eq!(decode(m), Ok(ServerMsg::Timestamps));
    }

    #[test]
    fn odd_pcm_is_rejected() {
        assert!(decode_pcm("AAAA").is_err()); // 3 bytes
        assert!(decode_pcm("not base64!").is_err());
    }

    proptest! {
        #[test]
        fn pcm_round_trips(samples in proptest::collection::vec(any::<i16>(), 0..512)) {
            prop_assert_eq!(decode_pcm(&encode_pcm(&samples)).unwrap(), samples);
        }

        #[test]
        fn decode_never_panics_on_arbitrary_text(s in ".{0,256}") {
            let _ = decode(&s);
        }

        #[test]
        fn decode_never_panics_on_mutated_messages(
            idx in 0usize..4,
            cut in 0usize..200,
            byte in any::<u8>(),
            pos in 0usize..200,
        ) {
            let samples = [
                format!(r#"{{"type":"chunk","data":"{}","done":false,"status_code":206,"context_id":"a"}}"#, encode_pcm(&[1, -2, 3])),
                r#"{"type":"done","done":true,"status_code":200,"context_id":"a"}"#.to_string(),
                r#"{"type":"error","done":true,"status_code":400,"error_code":"x","title":"t","message":"m"}"#.to_string(),
                r#"{"type":"error","error":"e","status_code":"500","context_id":"a"}"#.to_string(),
            ];
            let mut bytes = samples[idx].clone().into_bytes();
            if !bytes.is_empty() {
                let p = pos % bytes.len();
                bytes[p] = byte;
                bytes.truncate(cut.max(1).min(bytes.len()));
            }
            let _ = decode(&String::from_utf8_lossy(&bytes));
        }
    }
}

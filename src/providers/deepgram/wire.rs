//! Pure encode/decode of the Deepgram live protocol (protocols.md §3), kept apart from the I/O so it
//! can be unit-tested, fuzzed and benched.

use std::time::Duration;

use frontdesk_actors::provider::{SttError, SttEvent, SttSessionConfig};
use serde::Deserialize;
use url::Url;

use super::DeepgramConfig;

pub const KEEPALIVE: &str = r#"{"type":"KeepAlive"}"#;
pub const FINALIZE: &str = r#"{"type":"Finalize"}"#;
pub const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid time: start {start}, duration {duration}")]
    BadTime { start: f64, duration: f64 },
    #[error("results without alternatives")]
    NoAlternatives,
}

/// What a server text message means to the client.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Event(SttEvent),
    /// Known but of no use to the call tree (`Metadata`, empty interims).
    Ignored,
    /// Deepgram's in-band `Error` frame (`variant`: `SchemaError` when it could not parse one of
    /// our messages); the stream goes on, so it is logged, not fatal.
    ServerError {
        variant: String,
        description: String,
    },
    /// A message type this client does not know.
    Unknown,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    Results(ResultsMsg),
    SpeechStarted {},
    UtteranceEnd {},
    Metadata {},
    /// Replies to `Configure`, which this client does not send.
    ConfigureSuccess {},
    ConfigureFailure {},
    Error {
        #[serde(default)]
        variant: String,
        #[serde(default)]
        description: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct ResultsMsg {
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    channel: ResultsChannel,
}

#[derive(Deserialize)]
struct ResultsChannel {
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
}

/// Decode one server text message into an event (`None`: nothing for the call tree).
pub fn decode(text: &str) -> Result<Option<SttEvent>, DecodeError> {
    Ok(match classify(text)? {
        Inbound::Event(ev) => Some(ev),
        Inbound::Ignored | Inbound::ServerError { .. } | Inbound::Unknown => None,
    })
}

/// Like [`decode`], but tells unknown message types apart (they are counted).
pub fn classify(text: &str) -> Result<Inbound, DecodeError> {
    Ok(match serde_json::from_str::<ServerMsg>(text)? {
        ServerMsg::Results(r) => results(r)?,
        ServerMsg::SpeechStarted {} => Inbound::Event(SttEvent::SpeechStarted),
        ServerMsg::UtteranceEnd {} => Inbound::Event(SttEvent::UtteranceEnd),
        ServerMsg::Metadata {}
        | ServerMsg::ConfigureSuccess {}
        | ServerMsg::ConfigureFailure {} => Inbound::Ignored,
        ServerMsg::Error {
            variant,
            description,
        } => Inbound::ServerError {
            variant,
            description,
        },
        ServerMsg::Unknown => Inbound::Unknown,
    })
}

fn results(r: ResultsMsg) -> Result<Inbound, DecodeError> {
    let text = r
        .channel
        .alternatives
        .into_iter()
        .next()
        .ok_or(DecodeError::NoAlternatives)?
        .transcript;
    if !r.is_final {
        // Deepgram sends empty interims over silence; they carry nothing.
        return Ok(if text.is_empty() {
            Inbound::Ignored
        } else {
            Inbound::Event(SttEvent::Interim { text })
        });
    }
    let bad = || DecodeError::BadTime {
        start: r.start,
        duration: r.duration,
    };
    // try_from: negative, NaN or huge values must not panic.
    let start = Duration::try_from_secs_f64(r.start).map_err(|_| bad())?;
    let end = Duration::try_from_secs_f64(r.start + r.duration).map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(Inbound::Event(SttEvent::Final {
        text,
        start,
        end,
        speech_final: r.speech_final,
    }))
}

/// Little-endian 16-bit PCM (`encoding=linear16`).
pub fn encode_pcm(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The listen URL with the query LiveKit's plugin sends, plus our call id as `tag`.
pub fn listen_url(cfg: &DeepgramConfig, session: &SttSessionConfig) -> Result<Url, SttError> {
    let mut url =
        Url::parse(&cfg.url).map_err(|e| SttError::Connect(format!("bad url {}: {e}", cfg.url)))?;
    let b = |v: bool| if v { "true" } else { "false" };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("model", &cfg.model)
            .append_pair("punctuate", b(cfg.punctuate))
            .append_pair("smart_format", "false")
            .append_pair("no_delay", "true")
            .append_pair("interim_results", "true")
            .append_pair("encoding", "linear16")
            .append_pair("vad_events", "true")
            .append_pair("sample_rate", &session.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("endpointing", &cfg.endpointing_ms.to_string())
            .append_pair("filler_words", b(cfg.filler_words))
            .append_pair("language", &cfg.language);
        if let Some(ms) = cfg.utterance_end_ms {
            q.append_pair("utterance_end_ms", &ms.to_string());
        }
        q.append_pair("tag", &session.call_id);
    }
    Ok(url)
}

/// A failed handshake: 401/403 are credentials (never retried), anything else may pass.
pub fn handshake_error(status: u16, dg_error: Option<&str>, body: Option<&[u8]>) -> SttError {
    #[derive(Deserialize)]
    struct Body {
        err_msg: Option<String>,
        err_code: Option<String>,
    }
    let parsed = body.and_then(|b| serde_json::from_slice::<Body>(b).ok());
    let detail = parsed
        .and_then(|b| match (b.err_code, b.err_msg) {
            (Some(c), Some(m)) => Some(format!("{c}: {m}")),
            (c, m) => m.or(c),
        })
        .or_else(|| dg_error.map(str::to_string))
        .unwrap_or_default();
    let msg = format!("HTTP {status} {detail}").trim_end().to_string();
    match status {
        401 | 403 => SttError::Auth(msg),
        _ => SttError::Connect(msg),
    }
}

/// How a close frame ends the session: `None` is the clean end (1000 after our CloseStream).
pub fn close_outcome(code: Option<u16>, reason: &str, close_sent: bool) -> Option<SttError> {
    match code {
        Some(1000) if close_sent => None,
        Some(c) => Some(SttError::Closed(format!("close {c} {reason}"))),
        None => Some(SttError::Closed("close without a code".into())),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

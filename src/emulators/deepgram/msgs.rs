//! Server messages in Deepgram's shapes (protocols.md §3): every field the official SDK's models
//! require (`is_final`, `speech_final`, `from_finalize`, `channel_index`, `metadata`) and none
//! they do not define.

use serde_json::{json, Value};

use super::script::{round, Transcript};
use super::speech::Span;

pub(super) const MODEL_UUID: &str = "1dbdfb4d-85b2-4659-9fe9-0a1e1de3c3a6";

/// Per-connection facts repeated in every message.
pub(super) struct Meta {
    pub request_id: String,
    pub model: String,
}

impl Meta {
    fn model_info(&self) -> Value {
        json!({"name": format!("general-{}", self.model), "version": "2025-01-01.0", "arch": self.model})
    }
}

/// Where a message belongs: `[channel, channels]`.
pub(super) type ChannelIndex = [u16; 2];

pub(super) fn results(
    meta: &Meta,
    channel: ChannelIndex,
    span: &Span,
    is_final: bool,
    t: &Transcript,
) -> String {
    json!({
        "type": "Results",
        "channel_index": channel,
        "duration": round(span.duration),
        "start": round(span.start),
        "is_final": is_final,
        "speech_final": is_final && span.speech_final,
        "from_finalize": is_final && span.from_finalize,
        "channel": {"alternatives": [{
            "transcript": t.text,
            "confidence": if t.text.is_empty() { 0.0 } else { 0.98 },
            "words": t.words,
        }]},
        "metadata": {
            "request_id": meta.request_id,
            "model_info": meta.model_info(),
            "model_uuid": MODEL_UUID,
        },
    })
    .to_string()
}

pub(super) fn speech_started(channel: ChannelIndex, at: f64) -> String {
    json!({"type": "SpeechStarted", "channel": channel, "timestamp": round(at)}).to_string()
}

pub(super) fn utterance_end(channel: ChannelIndex, last_word_end: f64) -> String {
    json!({"type": "UtteranceEnd", "channel": channel, "last_word_end": round(last_word_end)})
        .to_string()
}

/// The summary `CloseStream` ends with (the fields the SDK's `ListenV1Metadata` and Deepgram's
/// CloseStream page show).
pub(super) fn metadata(meta: &Meta, duration: f64, channels: u16) -> String {
    json!({
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": meta.request_id,
        "sha256": "0".repeat(64),
        "created": "2026-01-01T00:00:00.000Z",
        "duration": round(duration),
        "channels": channels,
    })
    .to_string()
}

/// The reply to an accepted `Configure`; `keyterms` only when it replaced them.
pub(super) fn configure_success(meta: &Meta, keyterms: Option<&[String]>) -> String {
    let mut v = json!({"type": "ConfigureSuccess", "request_id": meta.request_id});
    if let Some(k) = keyterms {
        v["keyterms"] = json!(k);
    }
    v.to_string()
}

pub(super) fn configure_failure(meta: &Meta, code: &str, description: &str) -> String {
    json!({
        "type": "ConfigureFailure",
        "request_id": meta.request_id,
        "code": code,
        "description": description,
    })
    .to_string()
}

/// An in-band error (`ListenV1Error`); `message`: the client text it is about, if any.
pub(super) fn error(variant: &str, description: &str, message: Option<&str>) -> String {
    let mut v = json!({"type": "Error", "variant": variant, "description": description});
    if let Some(m) = message {
        v["message"] = m.into();
    }
    v.to_string()
}

/// A handshake error body, as Deepgram sends them.
pub(super) fn error_body(code: &str, msg: &str, request_id: &str) -> String {
    json!({"err_code": code, "err_msg": msg, "request_id": request_id}).to_string()
}

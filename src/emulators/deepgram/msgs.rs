//! Server messages in Deepgram's shapes (protocols.md §3), with every field the official SDKs
//! require (`is_final`, `speech_final`, `from_finalize`, `channel_index`, `metadata`).

use serde_json::{json, Value};

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

/// Words spread evenly over the span, as Deepgram's `words` array.
fn words(transcript: &str, start: f64, duration: f64) -> Vec<Value> {
    let list: Vec<&str> = transcript.split_whitespace().collect();
    let step = duration / list.len().max(1) as f64;
    list.iter()
        .enumerate()
        .map(|(i, w)| {
            let bare: String = w
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect();
            json!({
                "word": bare.to_lowercase(),
                "start": start + step * i as f64,
                "end": start + step * (i + 1) as f64,
                "confidence": 0.98,
                "punctuated_word": w,
            })
        })
        .collect()
}

pub(super) fn results(meta: &Meta, span: &Span, is_final: bool, transcript: &str) -> String {
    json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": span.duration,
        "start": span.start,
        "is_final": is_final,
        "speech_final": is_final && span.speech_final,
        "from_finalize": is_final && span.from_finalize,
        "channel": {"alternatives": [{
            "transcript": transcript,
            "confidence": if transcript.is_empty() { 0.0 } else { 0.98 },
            "words": words(transcript, span.start, span.duration),
        }]},
        "metadata": {
            "request_id": meta.request_id,
            "model_info": meta.model_info(),
            "model_uuid": MODEL_UUID,
        },
    })
    .to_string()
}

pub(super) fn speech_started(at: f64) -> String {
    json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": at}).to_string()
}

pub(super) fn utterance_end(last_word_end: f64) -> String {
    json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}).to_string()
}

pub(super) fn metadata(meta: &Meta, duration: f64) -> String {
    json!({
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": meta.request_id,
        "sha256": "0".repeat(64),
        "created": "2026-01-01T00:00:00.000Z",
        "duration": duration,
        "channels": 1,
        "models": [MODEL_UUID],
        "model_info": {MODEL_UUID: meta.model_info()},
    })
    .to_string()
}

/// A handshake error body, as Deepgram sends them.
pub(super) fn error_body(code: &str, msg: &str, request_id: &str) -> String {
    json!({"err_code": code, "err_msg": msg, "request_id": request_id}).to_string()
}

//! Validation of a generation request as the API does it, and the `error` message in the shape of
//! the client's API version.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::formats::OutputFormat;

/// A validated generation request.
#[derive(Debug)]
pub(super) struct Request {
    /// Everything but `transcript`/`continue`/`flush`, the voice reduced to its id: must stay the
    /// same within a context.
    pub fields: Value,
    pub transcript: String,
    pub cont: bool,
    pub flush: bool,
    pub format: OutputFormat,
    pub add_timestamps: bool,
    pub add_phoneme_timestamps: bool,
}

impl Request {
    /// `transcript: ""` with `continue: false`: only ends the context. The SDK sends it with its
    /// own defaults (a stock voice id, `sonic-latest`, f32 at 44.1 kHz) when the context was
    /// opened without them, so it is not held to the context's fields.
    pub fn only_ends(&self) -> bool {
        !self.cont && self.transcript.is_empty()
    }
}

/// Check a request as the real server would; `Err` is the message for an `error` reply.
pub(super) fn parse_request(v: &Value) -> Result<Request, String> {
    let str_field = |name: &str| v.get(name).and_then(Value::as_str);
    let model = str_field("model_id").ok_or("missing model_id")?;
    if !model.starts_with("sonic") {
        return Err(format!("unknown model_id {:?}", cut(model)));
    }
    let transcript = str_field("transcript").ok_or("missing transcript")?;
    let voice_id = voice_id(v.get("voice").ok_or("missing voice")?)?;
    let format = OutputFormat::parse(v.get("output_format").ok_or("missing output_format")?)?;
    if let Some(ms) = v.get("max_buffer_delay_ms") {
        if ms.as_u64().is_none_or(|ms| ms > 5_000) {
            return Err("max_buffer_delay_ms must be an integer in [0, 5000]".into());
        }
    }
    let mut fields = v.clone();
    if let Some(o) = fields.as_object_mut() {
        for k in ["transcript", "continue", "flush"] {
            o.remove(k);
        }
        o.insert("voice".into(), json!(voice_id));
    }
    Ok(Request {
        fields,
        transcript: transcript.to_string(),
        cont: flag(v, "continue")?,
        flush: flag(v, "flush")?,
        format,
        add_timestamps: flag(v, "add_timestamps")?,
        add_phoneme_timestamps: flag(v, "add_phoneme_timestamps")?,
    })
}

/// The voice's id from any shape the API takes: `"<id>"` (current SDKs), `{"id": ...}`, or the
/// older `{"mode": "id", "id": ...}`. Embedding voices are gone.
fn voice_id(voice: &Value) -> Result<String, String> {
    let id = match voice {
        Value::String(id) => Some(id.as_str()),
        Value::Object(o) => {
            match o.get("mode") {
                None => {}
                Some(m) if m.as_str() == Some("id") => {}
                Some(m) => {
                    return Err(format!(
                        "voice.mode must be \"id\", not {}",
                        cut(&m.to_string())
                    ))
                }
            }
            o.get("id").and_then(Value::as_str)
        }
        _ => None,
    };
    match id.map(str::trim) {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => {
            Err("voice must be a voice id, {\"id\": ...} or {\"mode\": \"id\", \"id\": ...}".into())
        }
    }
}

/// An optional boolean field: absent is `false`, anything but a boolean is refused.
fn flag(v: &Value, name: &str) -> Result<bool, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{name} must be a boolean")),
    }
}

/// Caller input echoed in an error, kept short.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// An `error` message in the shape of the client's API version. The new shape (≥ 2026-03-01)
/// always carries a `request_id` (the API's error reference says so).
pub(super) fn error_json(
    new_shape: bool,
    context_id: Option<&str>,
    status: u16,
    code: &str,
    msg: &str,
) -> Value {
    let mut v = if new_shape {
        json!({"type": "error", "done": true, "status_code": status, "error_code": code,
               "title": title(status), "message": msg, "request_id": request_id(context_id)})
    } else {
        json!({"type": "error", "done": true, "status_code": status, "error": msg})
    };
    if let (Some(id), Some(o)) = (context_id, v.as_object_mut()) {
        o.insert("context_id".into(), json!(id));
    }
    v
}

/// The body of a refused handshake in the version's shape.
pub(super) fn http_error_json(new_shape: bool, status: u16, code: &str, msg: &str) -> Value {
    if new_shape {
        json!({"error_code": code, "title": title(status), "message": msg,
               "request_id": request_id(None)})
    } else {
        json!({"error": msg, "status_code": status})
    }
}

fn title(status: u16) -> &'static str {
    match status {
        401 | 403 => "Unauthorized",
        429 => "Too many concurrent requests",
        500..=599 => "Internal error",
        _ => "Invalid request",
    }
}

/// Unique per error; for a context, derived from its id as the API's are.
fn request_id(context_id: Option<&str>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    match context_id {
        Some(id) => format!("emu-{n:012x}:{}", cut(id)),
        None => format!("emu-{n:012x}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(voice: Value) -> Value {
        json!({"model_id": "sonic-3", "transcript": "Hi", "voice": voice, "context_id": "c",
               "output_format": {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}})
    }

    #[test]
    fn every_voice_shape_is_one_voice() {
        let shapes = [
            json!("v1"),
            json!({"id": "v1"}),
            json!({"mode": "id", "id": "v1"}),
        ];
        let fields: Vec<Value> = shapes
            .into_iter()
            .map(|s| parse_request(&req(s)).unwrap().fields)
            .collect();
        assert!(fields.windows(2).all(|w| w[0] == w[1]), "{fields:?}");
        for bad in [
            json!({"mode": "embedding", "embedding": [1.0]}),
            json!({"mode": "id"}),
            json!(""),
            json!(7),
        ] {
            assert!(parse_request(&req(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_must_be_booleans() {
        let mut v = req(json!("v"));
        v["add_timestamps"] = json!(true);
        v["add_phoneme_timestamps"] = json!(null);
        let r = parse_request(&v).unwrap();
        assert!(r.add_timestamps && !r.add_phoneme_timestamps && !r.cont);
        v["continue"] = json!("yes");
        assert!(parse_request(&v).unwrap_err().contains("continue"));
    }

    #[test]
    fn new_error_shape_has_every_required_field() {
        let e = error_json(true, Some("c"), 429, "concurrency_limited", "too many");
        for k in [
            "type",
            "done",
            "status_code",
            "error_code",
            "title",
            "message",
            "request_id",
            "context_id",
        ] {
            assert!(e.get(k).is_some(), "{k} missing: {e}");
        }
        let old = error_json(false, None, 400, "x", "bad");
        assert_eq!(old["error"], "bad");
        assert!(old.get("request_id").is_none() && old.get("context_id").is_none());
    }
}

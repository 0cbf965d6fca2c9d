//! One emulated Cartesia context: request validation, and a task that turns its text into tone
//! PCM whose length follows the text, paced faster than real time.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::providers::cartesia::wire::{encode_pcm, SAMPLE_RATES};

/// A validated generation request.
#[derive(Debug)]
pub(super) struct Request {
    /// Everything but `transcript`/`continue`/`flush`: must stay identical within a context.
    pub fields: Value,
    pub transcript: String,
    pub cont: bool,
    pub flush: bool,
    pub sample_rate: u32,
}

/// Check a request as the real server would; `Err` is the message for an `error` reply.
pub(super) fn parse_request(v: &Value) -> Result<Request, String> {
    let str_field = |name: &str| v.get(name).and_then(Value::as_str);
    let model = str_field("model_id").ok_or("missing model_id")?;
    if !model.starts_with("sonic") {
        return Err(format!("unknown model_id {model:?}"));
    }
    let transcript = str_field("transcript").ok_or("missing transcript")?;
    let voice = v.get("voice").ok_or("missing voice")?;
    if voice.get("mode").and_then(Value::as_str) != Some("id")
        || voice.get("id").and_then(Value::as_str).is_none()
    {
        return Err("voice must be {\"mode\":\"id\",\"id\":...}".into());
    }
    let fmt = v.get("output_format").ok_or("missing output_format")?;
    if fmt.get("container").and_then(Value::as_str) != Some("raw")
        || fmt.get("encoding").and_then(Value::as_str) != Some("pcm_s16le")
    {
        return Err("output_format must be raw pcm_s16le".into());
    }
    let rate = fmt
        .get("sample_rate")
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok())
        .filter(|r| SAMPLE_RATES.contains(r))
        .ok_or_else(|| format!("sample_rate must be one of {SAMPLE_RATES:?}"))?;
    let flag = |name: &str| v.get(name).and_then(Value::as_bool).unwrap_or(false);
    let mut fields = v.clone();
    if let Some(o) = fields.as_object_mut() {
        for k in ["transcript", "continue", "flush"] {
            o.remove(k);
        }
    }
    Ok(Request {
        fields,
        transcript: transcript.to_string(),
        cont: flag("continue"),
        flush: flag("flush"),
        sample_rate: rate,
    })
}

/// An `error` message in the shape of the client's API version.
pub(super) fn error_json(
    new_shape: bool,
    context_id: Option<&str>,
    status: u16,
    code: &str,
    msg: &str,
) -> Value {
    let mut v = if new_shape {
        let title = if status >= 500 {
            "Internal error"
        } else {
            "Invalid request"
        };
        json!({"type": "error", "done": true, "status_code": status, "error_code": code,
               "title": title, "message": msg})
    } else {
        json!({"type": "error", "done": true, "status_code": status, "error": msg})
    };
    if let (Some(id), Some(o)) = (context_id, v.as_object_mut()) {
        o.insert("context_id".into(), json!(id));
    }
    v
}

pub(super) enum Input {
    Text { text: String, flush: bool },
    End,
}

/// What a context task hands the socket writer.
pub(super) enum Out {
    Json(Value),
    /// The context is over (done or expired); `generation` tells a reused id apart.
    Ended {
        id: String,
        generation: u64,
    },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Pace {
    pub ttfb: Duration,
    pub chars_per_second: f64,
    pub realtime_factor: f64,
    pub chunk_ms: u32,
    pub expiry: Duration,
    /// Fault: accept text, never produce audio.
    pub stall: bool,
}

pub(super) struct Context {
    pub id: String,
    pub generation: u64,
    pub rate: u32,
    pub pace: Pace,
    pub out: mpsc::UnboundedSender<Out>,
}

impl Context {
    pub async fn run(self, mut input: mpsc::UnboundedReceiver<Input>) {
        let mut state = Synth::default();
        loop {
            // Expires 1 s after its last audio; before any audio it waits indefinitely.
            let next = if state.produced {
                match tokio::time::timeout(self.pace.expiry, input.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            } else {
                input.recv().await
            };
            match next {
                Some(Input::Text { text, flush }) if !self.pace.stall => {
                    if self.speak(&mut state, &text, flush).await.is_err() {
                        return;
                    }
                }
                Some(Input::End) if !self.pace.stall => {
                    let done = json!({"type": "done", "done": true, "status_code": 200,
                                      "context_id": self.id});
                    let _ = self.out.send(Out::Json(done));
                    break;
                }
                Some(_) => {}
                None => return,
            }
        }
        let _ = self.out.send(Out::Ended {
            id: self.id,
            generation: self.generation,
        });
    }

    async fn speak(&self, s: &mut Synth, text: &str, flush: bool) -> Result<(), ()> {
        if flush {
            s.flush_id += 1;
        }
        let total = (text.chars().count() as f64 * f64::from(self.rate)
            / self.pace.chars_per_second.max(0.1))
        .round() as usize;
        if total > 0 && !s.produced {
            tokio::time::sleep(self.pace.ttfb).await;
        }
        let chunk = (self.rate as usize * self.pace.chunk_ms.max(1) as usize / 1000).max(1);
        let step = Duration::from_secs_f64(
            f64::from(self.pace.chunk_ms) / 1000.0 / self.pace.realtime_factor.max(0.01),
        );
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk);
            let samples: Vec<i16> = (s.pos..s.pos + n).map(|i| tone(i, self.rate)).collect();
            s.pos += n;
            left -= n;
            s.produced = true;
            let mut msg = json!({"type": "chunk", "data": encode_pcm(&samples), "done": false,
                "status_code": 206, "step_time": step.as_secs_f64() * 1000.0,
                "context_id": self.id});
            if s.flush_id > 0 {
                msg["flush_id"] = json!(s.flush_id);
            }
            self.out.send(Out::Json(msg)).map_err(|_| ())?;
            tokio::time::sleep(step).await;
        }
        if flush {
            let done = json!({"type": "flush_done", "done": false, "flush_done": true,
                "flush_id": s.flush_id, "status_code": 206, "context_id": self.id});
            self.out.send(Out::Json(done)).map_err(|_| ())?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Synth {
    pos: usize,
    produced: bool,
    flush_id: u64,
}

/// A voice-like signal, continuous across chunks: a 150 Hz pitch with three overtones under a
/// 4 Hz syllable envelope. A steady tone would be taken for background noise by the room's Opus
/// DTX and not sent at all. From a sine table: computing `sin` per sample was the largest single
/// cost of a many-call simulation, which must measure the service, not the emulator.
fn tone(i: usize, rate: u32) -> i16 {
    const N: usize = 1024;
    static TABLE: std::sync::OnceLock<[f32; N]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|k| (k as f64 * std::f64::consts::TAU / N as f64).sin() as f32)
    });
    let rate = u64::from(rate.max(1));
    let at = |hz: u64| table[(i as u64 * hz * N as u64 / rate) as usize % N];
    let voiced = at(150) + at(300) / 2.0 + at(450) / 3.0 + at(600) / 4.0;
    let envelope = 0.55 + 0.45 * at(4);
    (voiced * envelope * 3_000.0) as i16
}

//! One emulated Cartesia context: a task that turns its text into a voice-like signal whose length
//! follows the text, in the requested output format, paced faster than real time, with the
//! timestamps it asked for.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::audio::period::{cut, Periods};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::formats::OutputFormat;
use super::request::error_json;
use super::timestamps::{samples_for, words, Stamps};

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
    pub format: OutputFormat,
    pub pace: Pace,
    pub stamps: Stamps,
    /// The error shape of the socket's API version (for an injected error).
    pub new_shape: bool,
    /// Fault: an `error` for this context after this many chunks (or at its end, if sooner).
    pub error_after: Option<u32>,
    /// Bounded: a context waits for the socket writer, as a server paces by its socket.
    pub out: mpsc::Sender<Out>,
}

/// The context is over: cancelled, its socket gone, or failed by an injected error.
struct Stop;

impl Context {
    pub async fn run(mut self, mut input: mpsc::Receiver<Input>) {
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
                        break;
                    }
                }
                Some(Input::End) if !self.pace.stall => {
                    if self.error_after.is_some() {
                        let _ = self.inject_error().await;
                        break;
                    }
                    let done = json!({"type": "done", "done": true, "status_code": 200,
                                      "context_id": self.id});
                    let _ = self.out.send(Out::Json(done)).await;
                    break;
                }
                Some(_) => {}
                None => return,
            }
        }
        let _ = self
            .out
            .send(Out::Ended {
                id: self.id,
                generation: self.generation,
            })
            .await;
    }

    async fn speak(&mut self, s: &mut Synth, text: &str, flush: bool) -> Result<(), Stop> {
        if flush {
            s.flush_id += 1;
        }
        let (rate, cps) = (self.format.sample_rate, self.pace.chars_per_second);
        let total = samples_for(text.chars().count(), rate, cps);
        if self.stamps.wanted() {
            self.stamps.add(words(text, s.pos, rate, cps));
        }
        if total > 0 && !s.produced {
            tokio::time::sleep(self.pace.ttfb).await;
        }
        let chunk = (rate as usize * self.pace.chunk_ms.max(1) as usize / 1000).max(1);
        let step = Duration::from_secs_f64(
            f64::from(self.pace.chunk_ms) / 1000.0 / self.pace.realtime_factor.max(0.01),
        );
        let end = s.pos + total;
        while s.pos < end {
            if self.error_after.is_some_and(|n| s.chunks >= n) {
                return self.inject_error().await;
            }
            let n = (end - s.pos).min(chunk);
            self.send_chunk(s, n, step).await?;
            tokio::time::sleep(step).await;
        }
        if flush {
            let done = json!({"type": "flush_done", "done": false, "flush_done": true,
                "flush_id": s.flush_id, "status_code": 206, "context_id": self.id});
            self.send(done).await?;
        }
        Ok(())
    }

    /// One chunk of `n` samples, then the timestamps of the words it completes.
    async fn send_chunk(&mut self, s: &mut Synth, n: usize, step: Duration) -> Result<(), Stop> {
        let rate = self.format.sample_rate;
        let samples = cut(s.voice.get_or_insert_with(|| VOICE.get(rate)), s.pos, n);
        s.pos += n;
        s.chunks += 1;
        s.produced = true;
        let mut msg = json!({"type": "chunk", "data": self.format.encode(&samples),
            "done": false, "status_code": 206, "step_time": step.as_secs_f64() * 1000.0,
            "context_id": self.id});
        if s.flush_id > 0 {
            msg["flush_id"] = json!(s.flush_id);
        }
        self.send(msg).await?;
        for stamp in self.stamps.due(s.pos, rate, &self.id, s.flush_id) {
            self.send(stamp).await?;
        }
        Ok(())
    }

    /// The injected in-band error (FaultKind::ErrorEvent); the context ends with it.
    async fn inject_error(&self) -> Result<(), Stop> {
        let msg = "generation failed (injected fault)";
        let e = error_json(self.new_shape, Some(&self.id), 500, "internal_error", msg);
        self.send(e).await?;
        Err(Stop)
    }

    async fn send(&self, v: Value) -> Result<(), Stop> {
        self.out.send(Out::Json(v)).await.map_err(|_| Stop)
    }
}

#[derive(Default)]
struct Synth {
    /// One period of the context's voice, looked up at its first chunk.
    voice: Option<Arc<[i16]>>,
    pos: usize,
    chunks: u32,
    produced: bool,
    flush_id: u64,
}

/// The voice, one second per sample rate: each partial of [`tone`] turns a whole number of times
/// in a second, so a chunk is a copy out of that instead of the voice computed per sample (8.5 %
/// of all CPU in a 500-call wire simulation).
static VOICE: Periods = Periods::new(tone);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::cartesia::wire::SAMPLE_RATES;

    /// The cached second is the voice itself, wherever a chunk starts and however long it is.
    #[test]
    fn the_voice_repeats_every_second_at_every_accepted_rate() {
        for rate in SAMPLE_RATES {
            let p = VOICE.get(rate);
            let r = rate as usize;
            for (pos, n) in [
                (0, 480),
                (r - 100, 480),
                (3 * r + 17, 960),
                (r / 2, 2 * r + 5),
            ] {
                let want: Vec<i16> = (pos..pos + n).map(|i| tone(i, rate)).collect();
                assert_eq!(cut(&p, pos, n), want, "rate {rate}, pos {pos}, n {n}");
            }
        }
    }
}

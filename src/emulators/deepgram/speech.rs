//! The emulator's own energy endpointing on 20 ms chunks, on the audio clock (stream seconds), so
//! results are deterministic whatever the pace the client sends at.

/// What the audio (or a control) produced, in stream seconds.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Heard {
    SpeechStarted {
        at: f64,
    },
    /// `words`: how many words of the pending line the interim shows.
    Interim {
        start: f64,
        duration: f64,
        words: usize,
    },
    Final(Span),
    /// No voice for `utterance_end_ms` after the last voiced chunk.
    UtteranceEnd {
        last_word_end: f64,
    },
}

/// The audio a final covers.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Span {
    pub start: f64,
    pub duration: f64,
    pub speech_final: bool,
    pub from_finalize: bool,
    /// Voice was heard since the previous final (else the transcript is empty).
    pub voiced: bool,
}

pub(super) struct Endpointer {
    rate: u32,
    chunk_bytes: usize,
    pending: Vec<u8>,
    samples: u64,
    threshold_dbfs: f64,
    endpointing_ms: u32,
    interim_every_ms: u32,
    in_speech: bool,
    silence_ms: u32,
    voiced_since_final: bool,
    segment_start: u64,
    since_interim_ms: u32,
    interims: usize,
    utterance_end_ms: Option<u32>,
    since_voice_ms: u32,
    last_voice_end: f64,
    utterance_open: bool,
}

impl Endpointer {
    pub fn new(rate: u32, threshold_dbfs: f64, endpointing_ms: u32, interim_every_ms: u32) -> Self {
        Self {
            rate: rate.max(50),
            chunk_bytes: (rate.max(50) / 50) as usize * 2,
            pending: Vec::new(),
            samples: 0,
            threshold_dbfs,
            endpointing_ms,
            interim_every_ms,
            in_speech: false,
            silence_ms: 0,
            voiced_since_final: false,
            segment_start: 0,
            since_interim_ms: 0,
            interims: 0,
            utterance_end_ms: None,
            since_voice_ms: 0,
            last_voice_end: 0.0,
            utterance_open: false,
        }
    }

    /// Also report `UtteranceEnd` after this much silence (the `utterance_end_ms` query).
    pub fn with_utterance_end(mut self, ms: Option<u32>) -> Self {
        self.utterance_end_ms = ms;
        self
    }

    /// Stream time so far, in seconds.
    pub fn now(&self) -> f64 {
        self.samples as f64 / f64::from(self.rate)
    }

    /// Audio received since the last final (CloseStream transcribes it).
    pub fn has_pending_audio(&self) -> bool {
        self.samples > self.segment_start
    }

    /// Feed little-endian PCM; whole 20 ms chunks are judged, the rest waits for more bytes.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Heard>) {
        self.pending.extend_from_slice(bytes);
        let whole = self.pending.len() / self.chunk_bytes * self.chunk_bytes;
        let chunks: Vec<u8> = self.pending.drain(..whole).collect();
        for chunk in chunks.chunks(self.chunk_bytes) {
            self.chunk(chunk, out);
        }
    }

    fn chunk(&mut self, bytes: &[u8], out: &mut Vec<Heard>) {
        let voiced = dbfs(bytes) > self.threshold_dbfs;
        let start_at = self.now();
        self.samples += (bytes.len() / 2) as u64;
        self.utterance_gap(voiced, out);
        if voiced {
            self.silence_ms = 0;
            self.voiced_since_final = true;
            if !self.in_speech {
                self.in_speech = true;
                out.push(Heard::SpeechStarted { at: start_at });
            }
        } else if self.in_speech {
            self.silence_ms += 20;
            if self.silence_ms >= self.endpointing_ms {
                out.push(Heard::Final(self.finalize(true, false)));
                return;
            }
        }
        if self.in_speech {
            self.since_interim_ms += 20;
            if self.interim_every_ms > 0 && self.since_interim_ms >= self.interim_every_ms {
                self.since_interim_ms = 0;
                self.interims += 1;
                let start = self.segment_start as f64 / f64::from(self.rate);
                out.push(Heard::Interim {
                    start,
                    duration: self.now() - start,
                    words: self.interims,
                });
            }
        }
    }

    /// Word-gap tracking for `UtteranceEnd`, independent of endpointing (as Deepgram's is).
    fn utterance_gap(&mut self, voiced: bool, out: &mut Vec<Heard>) {
        if voiced {
            self.since_voice_ms = 0;
            self.last_voice_end = self.now();
            self.utterance_open = true;
            return;
        }
        self.since_voice_ms += 20;
        match self.utterance_end_ms {
            Some(ms) if self.utterance_open && self.since_voice_ms >= ms => {
                self.utterance_open = false;
                out.push(Heard::UtteranceEnd {
                    last_word_end: self.last_voice_end,
                });
            }
            _ => {}
        }
    }

    /// Close the current span: at an endpoint, on `Finalize`, or on `CloseStream`.
    pub fn finalize(&mut self, speech_final: bool, from_finalize: bool) -> Span {
        let start = self.segment_start as f64 / f64::from(self.rate);
        let span = Span {
            start,
            duration: self.now() - start,
            speech_final,
            from_finalize,
            voiced: self.voiced_since_final,
        };
        self.segment_start = self.samples;
        self.voiced_since_final = false;
        self.in_speech = false;
        self.silence_ms = 0;
        self.since_interim_ms = 0;
        self.interims = 0;
        span
    }
}

/// RMS level of a chunk of little-endian PCM, in dBFS (silence: -inf).
fn dbfs(bytes: &[u8]) -> f64 {
    let n = bytes.len() / 2;
    if n == 0 {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = bytes
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
        .sum();
    20.0 * ((sum / n as f64).sqrt() / 32_768.0).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn voice_then_silence_gives_start_interims_and_an_endpoint() {
        let mut ep = Endpointer::new(16_000, -45.0, 300, 100);
        let mut out = vec![];
        let loud: Vec<i16> = (0..16_000)
            .map(|i| if i % 2 == 0 { 8_000 } else { -8_000 })
            .collect();
        // Odd-sized pieces: chunking must not depend on the client's framing.
        for piece in pcm(&loud).chunks(1_234) {
            ep.push(piece, &mut out);
        }
        ep.push(&pcm(&[0; 8_000]), &mut out);
        assert_eq!(out[0], Heard::SpeechStarted { at: 0.0 });
        let interims = out
            .iter()
            .filter(|h| matches!(h, Heard::Interim { .. }))
            .count();
        assert!((9..=13).contains(&interims), "{interims} interims");
        let Some(Heard::Final(span)) = out.last() else {
            panic!("no final: {out:?}")
        };
        assert!(span.speech_final && span.voiced && !span.from_finalize);
        assert!((span.duration - 1.3).abs() < 0.03, "{span:?}");
        assert!(!out.iter().any(|h| matches!(h, Heard::UtteranceEnd { .. })));
        let again = ep.finalize(false, true);
        assert!(!again.voiced && (again.start - 1.3).abs() < 0.03);
    }

    #[test]
    fn utterance_end_after_the_gap() {
        let mut ep = Endpointer::new(16_000, -45.0, 300, 0).with_utterance_end(Some(1_000));
        let mut out = vec![];
        ep.push(&pcm(&[8_000; 8_000]), &mut out);
        ep.push(&pcm(&[0; 15_680]), &mut out);
        assert!(!out.iter().any(|h| matches!(h, Heard::UtteranceEnd { .. })));
        ep.push(&pcm(&[0; 320]), &mut out);
        assert_eq!(
            out.last(),
            Some(&Heard::UtteranceEnd { last_word_end: 0.5 })
        );
    }
}

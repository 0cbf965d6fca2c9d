//! The emulator's own energy endpointing on 20 ms chunks, on the audio clock (stream seconds), so
//! results are deterministic whatever the pace the client sends at.

/// The shortest silence heard as a pause: dips of 20-40 ms inside speech (stop consonants) do
/// not end it, as they do not end it for Deepgram's VAD. `endpointing` below this waits this long.
const MIN_PAUSE_MS: u32 = 60;

/// What the audio (or a control) produced, in stream seconds.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Heard {
    SpeechStarted {
        at: f64,
    },
    /// The span so far (an interim result's audio).
    Interim(Span),
    Final(Span),
    /// No voice for `utterance_end_ms` after the last voiced chunk.
    UtteranceEnd {
        last_word_end: f64,
    },
    /// No voice for the line gap: the utterance (one script line) is over.
    LineEnd,
}

/// The audio a result covers.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Span {
    pub start: f64,
    pub duration: f64,
    pub speech_final: bool,
    pub from_finalize: bool,
    /// Voiced audio in the span (20 ms chunks above the threshold).
    pub voiced_ms: u32,
    /// Where the voice in the span starts and ends (words are timed inside it).
    pub voice: Option<(f64, f64)>,
}

/// How the endpointer segments: Deepgram's query parameters, resolved.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segmenting {
    pub threshold_dbfs: f64,
    /// Silence that ends speech with `speech_final`; `None`: `endpointing=false`.
    pub endpointing_ms: Option<u32>,
    /// Interim results every this many ms of speech (0: none).
    pub interim_every_ms: u32,
    pub utterance_end_ms: Option<u32>,
    /// Silence that ends an utterance (script line).
    pub line_gap_ms: u32,
}

pub(super) struct Endpointer {
    rate: u32,
    chunk: usize,
    pending: Vec<i16>,
    samples: u64,
    seg: Segmenting,
    in_speech: bool,
    silence_ms: u32,
    segment_start: u64,
    voiced_ms: u32,
    voice: Option<(f64, f64)>,
    since_interim_ms: u32,
    since_voice_ms: u32,
    last_voice_end: f64,
    /// Voice heard since the last `UtteranceEnd` / `LineEnd`.
    utterance_open: bool,
    line_open: bool,
}

impl Endpointer {
    pub fn new(rate: u32, seg: Segmenting) -> Self {
        let rate = rate.max(50);
        // The line ends no sooner than the endpoint that precedes it.
        let endpoint = seg.endpointing_ms.map_or(0, |ms| ms.max(MIN_PAUSE_MS));
        let line_gap_ms = seg.line_gap_ms.max(endpoint + 20);
        Self {
            rate,
            chunk: (rate / 50) as usize,
            pending: Vec::new(),
            samples: 0,
            seg: Segmenting { line_gap_ms, ..seg },
            in_speech: false,
            silence_ms: 0,
            segment_start: 0,
            voiced_ms: 0,
            voice: None,
            since_interim_ms: 0,
            since_voice_ms: 0,
            last_voice_end: 0.0,
            utterance_open: false,
            line_open: false,
        }
    }

    /// Stream time so far, in seconds.
    pub fn now(&self) -> f64 {
        self.secs(self.samples)
    }

    fn secs(&self, samples: u64) -> f64 {
        samples as f64 / f64::from(self.rate)
    }

    /// Audio received since the last final (CloseStream transcribes it).
    pub fn has_pending_audio(&self) -> bool {
        self.samples > self.segment_start
    }

    /// Feed samples; whole 20 ms chunks are judged, the rest waits for more.
    pub fn push(&mut self, samples: &[i16], out: &mut Vec<Heard>) {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / self.chunk * self.chunk;
        let chunks: Vec<i16> = self.pending.drain(..whole).collect();
        for chunk in chunks.chunks(self.chunk) {
            self.on_chunk(chunk, out);
        }
    }

    fn on_chunk(&mut self, chunk: &[i16], out: &mut Vec<Heard>) {
        let voiced = dbfs(chunk) > self.seg.threshold_dbfs;
        let start_at = self.now();
        self.samples += chunk.len() as u64;
        if voiced {
            self.voiced(start_at, out);
        } else if self.in_speech {
            self.silence_ms += 20;
            if self
                .seg
                .endpointing_ms
                .is_some_and(|ms| self.silence_ms >= ms.max(MIN_PAUSE_MS))
            {
                out.push(Heard::Final(self.finalize(true, false)));
            }
        }
        if self.in_speech {
            self.maybe_interim(out);
        }
        if !voiced {
            self.gaps(out);
        }
    }

    fn voiced(&mut self, start_at: f64, out: &mut Vec<Heard>) {
        let end = self.now();
        self.silence_ms = 0;
        self.since_voice_ms = 0;
        self.last_voice_end = end;
        self.utterance_open = true;
        self.line_open = true;
        self.voiced_ms += 20;
        self.voice = Some(self.voice.map_or((start_at, end), |(s, _)| (s, end)));
        if !self.in_speech {
            self.in_speech = true;
            out.push(Heard::SpeechStarted { at: start_at });
        }
    }

    fn maybe_interim(&mut self, out: &mut Vec<Heard>) {
        self.since_interim_ms += 20;
        if self.seg.interim_every_ms > 0 && self.since_interim_ms >= self.seg.interim_every_ms {
            self.since_interim_ms = 0;
            out.push(Heard::Interim(self.span(false, false)));
        }
    }

    /// Silence tracking for `UtteranceEnd` and the line gap, independent of endpointing (as
    /// Deepgram's word-gap detection is).
    fn gaps(&mut self, out: &mut Vec<Heard>) {
        self.since_voice_ms += 20;
        if let Some(ms) = self.seg.utterance_end_ms {
            if self.utterance_open && self.since_voice_ms >= ms {
                self.utterance_open = false;
                out.push(Heard::UtteranceEnd {
                    last_word_end: self.last_voice_end,
                });
            }
        }
        if self.line_open && self.since_voice_ms >= self.seg.line_gap_ms {
            self.line_open = false;
            // Without endpointing nothing else would ever finish the utterance's words.
            if self.voiced_ms > 0 {
                out.push(Heard::Final(self.finalize(false, false)));
            }
            out.push(Heard::LineEnd);
        }
    }

    fn span(&self, speech_final: bool, from_finalize: bool) -> Span {
        let start = self.secs(self.segment_start);
        Span {
            start,
            duration: self.now() - start,
            speech_final,
            from_finalize,
            voiced_ms: self.voiced_ms,
            voice: self.voice,
        }
    }

    /// Close the current span: at an endpoint, on `Finalize`, or on `CloseStream`.
    pub fn finalize(&mut self, speech_final: bool, from_finalize: bool) -> Span {
        let span = self.span(speech_final, from_finalize);
        self.segment_start = self.samples;
        self.voiced_ms = 0;
        self.voice = None;
        self.in_speech = false;
        self.silence_ms = 0;
        self.since_interim_ms = 0;
        span
    }
}

/// RMS level of a chunk, in dBFS (silence: -inf).
fn dbfs(chunk: &[i16]) -> f64 {
    if chunk.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = chunk.iter().map(|s| f64::from(*s).powi(2)).sum();
    20.0 * ((sum / chunk.len() as f64).sqrt() / 32_768.0).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(endpointing_ms: Option<u32>, interim_every_ms: u32) -> Segmenting {
        Segmenting {
            threshold_dbfs: -45.0,
            endpointing_ms,
            interim_every_ms,
            utterance_end_ms: None,
            line_gap_ms: 1_000,
        }
    }

    fn loud(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| if i % 2 == 0 { 8_000 } else { -8_000 })
            .collect()
    }

    fn finals(out: &[Heard]) -> Vec<&Span> {
        out.iter()
            .filter_map(|h| match h {
                Heard::Final(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn voice_then_silence_gives_start_interims_and_an_endpoint() {
        let mut ep = Endpointer::new(16_000, seg(Some(300), 100));
        let mut out = vec![];
        // Odd-sized pieces: chunking must not depend on the client's framing.
        for piece in loud(16_000).chunks(617) {
            ep.push(piece, &mut out);
        }
        ep.push(&[0; 8_000], &mut out);
        assert_eq!(out[0], Heard::SpeechStarted { at: 0.0 });
        let interims = out
            .iter()
            .filter(|h| matches!(h, Heard::Interim(_)))
            .count();
        assert!((9..=13).contains(&interims), "{interims} interims");
        let Some(Heard::Final(span)) = out.last() else {
            panic!("no final: {out:?}")
        };
        assert!(span.speech_final && !span.from_finalize, "{span:?}");
        assert!((span.duration - 1.3).abs() < 0.03, "{span:?}");
        assert_eq!((span.voiced_ms, span.voice), (1_000, Some((0.0, 1.0))));
        assert!(!out.iter().any(|h| matches!(h, Heard::UtteranceEnd { .. })));
        let again = ep.finalize(false, true);
        assert!(again.voice.is_none() && (again.start - 1.3).abs() < 0.03);
    }

    #[test]
    fn endpointing_sets_the_silence_before_speech_final() {
        // 10 ms waits for the shortest pause.
        for (ms, end) in [(Some(10), 0.56), (Some(100), 0.6), (Some(500), 1.0)] {
            let mut ep = Endpointer::new(16_000, seg(ms, 0));
            let mut out = vec![];
            ep.push(&loud(8_000), &mut out);
            ep.push(&[0; 12_000], &mut out);
            let f = finals(&out);
            assert!(f[0].speech_final, "{out:?}");
            assert!(
                (f[0].start + f[0].duration - end).abs() < 0.01,
                "{ms:?}: {f:?}"
            );
        }
    }

    #[test]
    fn without_endpointing_only_the_line_gap_ends_the_utterance() {
        let mut ep = Endpointer::new(16_000, seg(None, 0));
        let mut out = vec![];
        ep.push(&loud(8_000), &mut out);
        ep.push(&[0; 15_680], &mut out);
        assert!(finals(&out).is_empty(), "{out:?}");
        ep.push(&[0; 320], &mut out);
        let f = finals(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert!(!f[0].speech_final && f[0].voiced_ms == 500);
        assert_eq!(out.last(), Some(&Heard::LineEnd));
    }

    #[test]
    fn utterance_end_after_the_gap() {
        let seg = Segmenting {
            utterance_end_ms: Some(1_000),
            ..seg(Some(300), 0)
        };
        let mut ep = Endpointer::new(16_000, seg);
        let mut out = vec![];
        ep.push(&[8_000; 8_000], &mut out);
        ep.push(&[0; 15_680], &mut out);
        assert!(!out.iter().any(|h| matches!(h, Heard::UtteranceEnd { .. })));
        ep.push(&[0; 320], &mut out);
        assert!(
            out.contains(&Heard::UtteranceEnd { last_word_end: 0.5 }),
            "{out:?}"
        );
    }
}

//! Streaming sample-rate conversion into fixed 20 ms frames.
//!
//! Built on rubato's synchronous FFT resampler: for the fixed ratios of a call (48 kHz room ↔
//! 16 kHz pipeline, 24/22.05 kHz TTS → 48 kHz) it is the cheapest option that still has a proper
//! anti-aliasing filter. Blocks are ~10 ms of input so the filter delay stays ≈ 5 ms.

use std::sync::Arc;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};

use super::{samples_per_frame, AudioError, AudioFrame, FRAME_DURATION};

/// Refuse rate pairs whose worst-case latency would exceed this (their FFT block gets too long).
const MAX_DELAY: Duration = Duration::from_millis(40);

/// Converts a mono s16 stream from `from_hz` to `to_hz` and cuts it into 20 ms frames.
///
/// Output timestamps are derived from the output sample count: the first frame carries the
/// timestamp of the first `push` since creation (or `reset`/`flush`), each next one is 20 ms later.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` for the identity: samples are only re-framed.
    engine: Option<Engine>,
    framer: Framer,
    /// Input samples accepted since the stream started.
    samples_in: u64,
}

/// Cuts output samples into 20 ms frames with timestamps from the output sample count.
struct Framer {
    rate: u32,
    frame_len: usize,
    /// Output samples that do not yet fill a frame.
    pending: Vec<i16>,
    /// Media time of the first input sample of the current stream.
    start: Option<Duration>,
    /// Frames emitted since `start`.
    frames_out: u64,
}

/// The rubato side: one FFT block of input in, one block of output out.
struct Engine {
    fft: Fft<f32>,
    chunk_in: usize,
    chunk_out: usize,
    /// Filter delay in output samples; this many leading samples are dropped to stay aligned.
    delay_out: usize,
    to_trim: usize,
    in_buf: Vec<f32>,
    out_buf: Vec<f32>,
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`; `to_hz` must be a multiple of 50 (whole 20 ms
    /// frames) and the pair must keep the worst-case delay within 40 ms.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let unsupported = AudioError::UnsupportedRate {
            from: from_hz,
            to: to_hz,
        };
        if from_hz == 0 || to_hz == 0 || !to_hz.is_multiple_of(50) {
            return Err(unsupported);
        }
        if from_hz != to_hz {
            // Check before building: an awkward pair means a huge FFT block (and allocation).
            let (_, chunk_out) = Engine::block_sizes(from_hz, to_hz);
            let worst = chunk_out + chunk_out / 2 + samples_per_frame(to_hz) - 1;
            if worst as u64 * 1000 > u64::from(to_hz) * MAX_DELAY.as_millis() as u64 {
                return Err(unsupported);
            }
        }
        let engine = if from_hz == to_hz {
            None
        } else {
            Some(Engine::new(from_hz, to_hz)?)
        };
        let extra = engine.as_ref().map_or(0, |e| e.chunk_out + e.delay_out);
        Ok(Self {
            from_hz,
            to_hz,
            engine,
            framer: Framer::new(to_hz, extra),
            samples_in: 0,
        })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds `samples` (any length) whose first sample is at media time `timestamp` and appends
    /// every completed 20 ms frame to `out`. Only the first push of a stream sets the time
    /// origin; later timestamps are implied by the sample count.
    pub fn push(&mut self, timestamp: Duration, samples: &[i16], out: &mut Vec<AudioFrame>) {
        self.framer.start.get_or_insert(timestamp);
        self.samples_in += samples.len() as u64;
        let Some(engine) = self.engine.as_mut() else {
            self.framer.pending.extend_from_slice(samples);
            self.framer.emit(out);
            return;
        };
        let mut rest = samples;
        while !rest.is_empty() {
            let take = rest.len().min(engine.chunk_in - engine.in_buf.len());
            let (head, tail) = rest.split_at(take);
            engine.in_buf.extend(head.iter().map(|&s| to_f32(s)));
            rest = tail;
            if engine.in_buf.len() == engine.chunk_in {
                engine.run(&mut self.framer.pending);
                // Emit per block so `pending` stays bounded whatever the push size.
                self.framer.emit(out);
            }
        }
    }

    /// [`Self::push`] for a whole frame: a frame that is already one aligned 20 ms frame at the
    /// output rate (the LiveKit transport decodes straight to it) passes through without a copy.
    pub fn push_frame(&mut self, frame: &AudioFrame, out: &mut Vec<AudioFrame>) {
        let aligned = self.engine.is_none()
            && self.framer.pending.is_empty()
            && frame.samples.len() == self.framer.frame_len;
        if !aligned {
            return self.push(frame.timestamp, &frame.samples, out);
        }
        self.framer.start.get_or_insert(frame.timestamp);
        self.samples_in += frame.samples.len() as u64;
        let timestamp = self.framer.next_timestamp();
        out.push(AudioFrame {
            samples: Arc::clone(&frame.samples),
            sample_rate: self.to_hz,
            timestamp,
        });
        self.framer.frames_out += 1;
    }

    /// Drains the filter with zeros so the output covers the whole input, pads the last partial
    /// frame with zeros and emits it. The resampler is then reset for a new stream.
    pub fn flush(&mut self, out: &mut Vec<AudioFrame>) {
        if self.framer.start.is_none() {
            return;
        }
        // Total output the input stands for, rounded up to whole samples.
        let expected = (self.samples_in * u64::from(self.to_hz)).div_ceil(u64::from(self.from_hz));
        let emitted = self.framer.frames_out * self.framer.frame_len as u64;
        let wanted = usize::try_from(expected.saturating_sub(emitted)).unwrap_or(usize::MAX);
        let pending = &mut self.framer.pending;
        if let Some(engine) = self.engine.as_mut() {
            while pending.len() < wanted {
                engine.in_buf.resize(engine.chunk_in, 0.0);
                engine.run(pending);
            }
        }
        // Drop the filter's ringing past the end, then zero-pad to a whole frame.
        pending.truncate(wanted);
        let frame_len = self.framer.frame_len;
        pending.resize(pending.len().div_ceil(frame_len) * frame_len, 0);
        self.framer.emit(out);
        self.reset();
    }

    /// Worst-case time between an input sample arriving and the frame containing it being
    /// emitted: partial FFT block + filter delay + partial output frame.
    pub fn delay(&self) -> Duration {
        let samples = self.delay_samples() as u64;
        Duration::from_nanos(samples * 1_000_000_000 / u64::from(self.to_hz))
    }

    /// [`Self::delay`] in output samples.
    fn delay_samples(&self) -> usize {
        let engine = self
            .engine
            .as_ref()
            .map_or(0, |e| e.chunk_out + e.delay_out);
        engine + self.framer.frame_len - 1
    }

    /// Forgets all buffered audio and the stream's time origin.
    pub fn reset(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.reset();
        }
        self.framer.reset();
        self.samples_in = 0;
    }
}

impl Framer {
    fn new(rate: u32, extra: usize) -> Self {
        let frame_len = samples_per_frame(rate);
        Self {
            rate,
            frame_len,
            pending: Vec::with_capacity(frame_len + extra),
            start: None,
            frames_out: 0,
        }
    }

    /// The media time of the next frame out: derived from the output count, not the input's.
    fn next_timestamp(&self) -> Duration {
        let offset = self
            .frames_out
            .saturating_mul(FRAME_DURATION.as_millis() as u64);
        self.start.unwrap_or_default() + Duration::from_millis(offset)
    }

    /// Moves every whole frame out of `pending` into `out`.
    fn emit(&mut self, out: &mut Vec<AudioFrame>) {
        let mut used = 0;
        for chunk in self.pending.chunks_exact(self.frame_len) {
            out.push(AudioFrame::new(chunk, self.rate, self.next_timestamp()));
            self.frames_out += 1;
            used += self.frame_len;
        }
        self.pending.drain(..used);
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.start = None;
        self.frames_out = 0;
    }
}

impl Engine {
    /// Input and output block sizes: ~10 ms of input, long enough for a steep filter and short
    /// enough for low delay, rounded to whole multiples of the rates' common period.
    fn block_sizes(from_hz: u32, to_hz: u32) -> (usize, usize) {
        let (from, to) = (from_hz as usize, to_hz as usize);
        let g = gcd(from, to);
        let blocks = ((from / 100) / (from / g)).max(1);
        (blocks * from / g, blocks * to / g)
    }

    fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let (chunk_in, _) = Self::block_sizes(from_hz, to_hz);
        let (from, to) = (from_hz as usize, to_hz as usize);
        let fft = Fft::<f32>::new_custom(
            from,
            to,
            chunk_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let chunk_out = fft.output_frames_next();
        let delay_out = fft.output_delay();
        Ok(Self {
            chunk_in: fft.input_frames_next(),
            chunk_out,
            delay_out,
            to_trim: delay_out,
            in_buf: Vec::with_capacity(chunk_in),
            out_buf: vec![0.0; chunk_out],
            fft,
        })
    }

    /// Resamples the full `in_buf` and appends the (delay-trimmed) result to `pending`.
    fn run(&mut self, pending: &mut Vec<i16>) {
        if let Err(e) = self.process_block() {
            // Cannot happen with the buffer sizes fixed at construction; keep time continuity.
            tracing::error!(error = %e, "resampler block failed, emitting silence");
            self.out_buf.fill(0.0);
        }
        self.in_buf.clear();
        let skip = self.to_trim.min(self.chunk_out);
        self.to_trim -= skip;
        pending.extend(self.out_buf[skip..].iter().map(|&x| to_i16(x)));
    }

    fn process_block(&mut self) -> Result<(), AudioError> {
        let err = |e: &dyn std::fmt::Display| AudioError::Resampler(e.to_string());
        let input =
            InterleavedSlice::new(&self.in_buf[..], 1, self.chunk_in).map_err(|e| err(&e))?;
        let mut output = InterleavedSlice::new_mut(&mut self.out_buf[..], 1, self.chunk_out)
            .map_err(|e| err(&e))?;
        self.fft
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| err(&e))?;
        Ok(())
    }

    fn reset(&mut self) {
        self.fft.reset();
        self.in_buf.clear();
        self.to_trim = self.delay_out;
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0; the clamp documents the intent.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAIRS: [(u32, u32); 5] = [
        (48_000, 16_000),
        (16_000, 48_000),
        (24_000, 48_000),
        (22_050, 48_000),
        (16_000, 16_000),
    ];
    const T0: Duration = Duration::from_millis(1234);

    /// Pushes `input` split at the given chunk sizes (cycled), then flushes. Also checks the
    /// delay bound after every push.
    fn run(r: &mut Resampler, input: &[i16], chunks: &[usize]) -> Vec<AudioFrame> {
        let (from, to) = (u64::from(r.from_hz()), u64::from(r.to_hz()));
        let delay = r.delay_samples() as u64;
        let mut out = vec![];
        let (mut pos, mut i) = (0, 0);
        while pos < input.len() {
            let n = chunks[i % chunks.len()].clamp(1, input.len() - pos);
            let ts = T0 + Duration::from_nanos(pos as u64 * 1_000_000_000 / from);
            r.push(ts, &input[pos..pos + n], &mut out);
            pos += n;
            i += 1;
            let emitted: u64 = out.iter().map(|f| f.len() as u64).sum();
            assert!(
                emitted + delay >= pos as u64 * to / from,
                "lagging after {pos} samples"
            );
        }
        r.flush(&mut out);
        out
    }

    fn samples(frames: &[AudioFrame]) -> Vec<i16> {
        frames
            .iter()
            .flat_map(|f| f.samples.iter().copied())
            .collect()
    }

    fn sine(freq: f64, rate: u32, len: usize, amp: f64) -> Vec<i16> {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        (0..len)
            .map(|n| (amp * (w * n as f64).sin()).round() as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn zero_crossings(x: &[i16]) -> usize {
        x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    proptest! {
        #[test]
        fn chunking_invariant_and_length_exact(
            pair in proptest::sample::select(PAIRS.to_vec()),
            input in proptest::collection::vec(any::<i16>(), 0..5000),
            chunks in proptest::collection::vec(0usize..1500, 1..8),
        ) {
            let (from, to) = pair;
            let one_shot = run(&mut Resampler::new(from, to).unwrap(), &input, &[usize::MAX]);
            let chunked = run(&mut Resampler::new(from, to).unwrap(), &input, &chunks);
            prop_assert_eq!(&chunked, &one_shot);

            let frame = samples_per_frame(to);
            let exact = input.len() as f64 * f64::from(to) / f64::from(from);
            let want = (exact.ceil() as usize).div_ceil(frame) * frame;
            let got = samples(&chunked).len();
            prop_assert_eq!(got, want);
            let rounded = (exact.round() as usize).div_ceil(frame) * frame;
            prop_assert!(got.abs_diff(rounded) <= frame);
            for (i, f) in chunked.iter().enumerate() {
                prop_assert_eq!(f.len(), frame);
                prop_assert_eq!(f.sample_rate, to);
                prop_assert_eq!(f.timestamp, T0 + FRAME_DURATION * i as u32);
            }
        }
    }

    #[test]
    fn supported_pairs_have_bounded_delay() {
        for (from, to) in PAIRS {
            let r = Resampler::new(from, to).unwrap();
            assert!(r.delay() <= MAX_DELAY, "{from}->{to}: {:?}", r.delay());
            if let Some(e) = &r.engine {
                // The pre-construction delay check must match what rubato actually built.
                assert_eq!((e.chunk_in, e.chunk_out), Engine::block_sizes(from, to));
                assert_eq!(e.delay_out, e.chunk_out / 2);
            }
        }
    }

    #[test]
    fn unsupported_pairs_are_rejected() {
        for (from, to) in [
            (0, 16_000),
            (48_000, 0),
            (48_000, 16_001),
            (44_101, 48_000),
            (1, 48_000),
            (u32::MAX, 48_000),
        ] {
            assert!(matches!(
                Resampler::new(from, to),
                Err(AudioError::UnsupportedRate { .. })
            ));
        }
    }

    #[test]
    fn silence_in_silence_out() {
        for (from, to) in PAIRS {
            let out = run(
                &mut Resampler::new(from, to).unwrap(),
                &vec![0; 7777],
                &[333, 960],
            );
            assert!(!out.is_empty());
            assert!(samples(&out).iter().all(|&s| s == 0), "{from}->{to}");
        }
    }

    #[test]
    fn sine_keeps_frequency_and_level() {
        for (from, to) in PAIRS {
            let input = sine(440.0, from, from as usize, 10_000.0);
            let out = samples(&run(&mut Resampler::new(from, to).unwrap(), &input, &[480]));
            let (zin, zout) = (zero_crossings(&input), zero_crossings(&out));
            assert!(
                zin.abs_diff(zout) <= zin / 10,
                "{from}->{to}: {zin} vs {zout}"
            );
            let (rin, rout) = (rms(&input), rms(&out[..to as usize]));
            assert!(
                (rin - rout).abs() <= rin * 0.1,
                "{from}->{to}: {rin} vs {rout}"
            );
        }
    }

    /// 48k → 16k keeps the telephone band and removes what would alias below 8 kHz.
    #[test]
    fn downsampling_filters_aliases() {
        let level = |freq: f64| {
            let input = sine(freq, 48_000, 48_000, 10_000.0);
            let out = samples(&run(
                &mut Resampler::new(48_000, 16_000).unwrap(),
                &input,
                &[960],
            ));
            rms(&out[1600..14_400]) / rms(&input)
        };
        assert!(
            (level(3400.0) - 1.0).abs() < 0.05,
            "passband {}",
            level(3400.0)
        );
        for alias in [9_000.0, 10_000.0, 15_000.0] {
            assert!(level(alias) < 0.01, "{alias} Hz leaks {}", level(alias));
        }
    }

    /// The filter delay is trimmed: a tone lines up with the ideal tone at the output rate.
    #[test]
    fn output_is_time_aligned() {
        for (from, to) in PAIRS {
            let input = sine(1000.0, from, from as usize / 2, 10_000.0);
            let out = samples(&run(&mut Resampler::new(from, to).unwrap(), &input, &[960]));
            let ideal = sine(1000.0, to, out.len() + 20, 10_000.0);
            let range = (to as usize / 20)..(to as usize / 4);
            let err = |lag: i64| -> f64 {
                range
                    .clone()
                    .map(|m| f64::from(out[m]) - f64::from(ideal[(m as i64 - lag) as usize]))
                    .map(|d| d * d)
                    .sum()
            };
            let best = (-6i64..=6)
                .min_by(|&a, &b| err(a).total_cmp(&err(b)))
                .unwrap();
            assert!(best.abs() <= 2, "{from}->{to}: lag {best}");
        }
    }

    proptest! {
        /// Whole frames pushed with `push_frame` (passed through when aligned) give exactly what
        /// `push` of the same samples gives, whatever the mix of frame sizes and rates.
        #[test]
        fn push_frame_matches_push(
            pair in proptest::sample::select(vec![(16_000u32, 16_000u32), (48_000, 16_000)]),
            sizes in proptest::collection::vec(prop_oneof![Just(320usize), Just(960), 1usize..700], 1..30),
        ) {
            let (from, to) = pair;
            let mut by_frame = Resampler::new(from, to).unwrap();
            let mut by_push = Resampler::new(from, to).unwrap();
            let (mut a, mut b) = (vec![], vec![]);
            let mut n = 0i16;
            for (i, len) in sizes.into_iter().enumerate() {
                let samples: Vec<i16> = (0..len).map(|_| { n = n.wrapping_add(7); n }).collect();
                let ts = T0 + FRAME_DURATION * i as u32;
                by_frame.push_frame(&AudioFrame::new(samples.clone(), from, ts), &mut a);
                by_push.push(ts, &samples, &mut b);
            }
            by_frame.flush(&mut a);
            by_push.flush(&mut b);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn an_aligned_frame_passes_through_without_a_copy() {
        let frame = AudioFrame::new(vec![3i16; 320], 16_000, T0);
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let mut out = vec![];
        r.push_frame(&frame, &mut out);
        assert_eq!(out.len(), 1);
        assert!(Arc::ptr_eq(&out[0].samples, &frame.samples));
        assert_eq!(out[0].timestamp, T0);
    }

    #[test]
    fn identity_reframes_without_change() {
        let input: Vec<i16> = (0..1000).map(|i| i as i16).collect();
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let out = run(&mut r, &input, &[100, 7]);
        let got = samples(&out);
        assert_eq!(&got[..1000], &input[..]);
        assert!(got[1000..].iter().all(|&s| s == 0));
        assert_eq!(got.len(), 1280);
    }

    #[test]
    fn reset_and_flush_start_a_new_stream() {
        let input = sine(300.0, 48_000, 5000, 8000.0);
        let mut r = Resampler::new(48_000, 16_000).unwrap();
        let first = run(&mut r, &input, &[960]);
        let mut junk = vec![];
        r.push(Duration::from_secs(9), &input[..700], &mut junk);
        r.reset();
        assert_eq!(run(&mut r, &input, &[960]), first);
    }
}

//! PCM audio frames and the resamplers at the edges of the call.

use std::sync::Arc;
use std::time::Duration;

pub mod period;
pub mod resample;

/// Length of every frame that travels between actors.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Sample rate of the VAD and STT side.
pub const PIPELINE_RATE: u32 = 16_000;
/// Sample rate of the room (LiveKit publishes and expects 48 kHz).
pub const ROOM_RATE: u32 = 48_000;

/// Samples in one 20 ms frame at `rate`.
pub const fn samples_per_frame(rate: u32) -> usize {
    (rate / 50) as usize
}

/// Mono PCM s16 audio with its rate and a monotonic media timestamp (time of the first sample since
/// the start of the call's stream). Samples are shared so a frame can sit in the replay log and on an
/// edge without copying.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioFrame {
    pub samples: Arc<[i16]>,
    pub sample_rate: u32,
    pub timestamp: Duration,
}

impl AudioFrame {
    pub fn new(samples: impl Into<Arc<[i16]>>, sample_rate: u32, timestamp: Duration) -> Self {
        Self {
            samples: samples.into(),
            sample_rate,
            timestamp,
        }
    }

    /// A frame of digital silence.
    pub fn silence(sample_rate: u32, len: usize, timestamp: Duration) -> Self {
        Self::new(vec![0i16; len], sample_rate, timestamp)
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(
            self.samples.len() as u64 * 1_000_000_000 / u64::from(self.sample_rate),
        )
    }

    /// Timestamp just past the last sample.
    pub fn end(&self) -> Duration {
        self.timestamp + self.duration()
    }

    /// Root-mean-square level in dBFS (−∞ for silence is reported as −100).
    pub fn level_dbfs(&self) -> f32 {
        if self.samples.is_empty() {
            return -100.0;
        }
        // Squares summed as integers: the compiler vectorises them (a float sum must keep its
        // order), and the total is exact, as the f64 sum was below 2^53.
        let sum: u64 = self
            .samples
            .iter()
            .map(|&s| {
                let m = i32::from(s).unsigned_abs();
                u64::from(m * m)
            })
            .sum();
        let rms = (sum as f64 / self.samples.len() as f64).sqrt();
        if rms < 1.0 {
            return -100.0;
        }
        (20.0 * (rms / 32768.0).log10()) as f32
    }
}

/// Errors of the audio path.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("unsupported resampling {from} Hz -> {to} Hz")]
    UnsupportedRate { from: u32, to: u32 },
    #[error("frame has rate {got} Hz, expected {expected} Hz")]
    WrongRate { got: u32, expected: u32 },
    #[error("frame has {got} samples, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("resampler failed: {0}")]
    Resampler(String),
    #[error("vad rejected the frame")]
    Vad,
    #[error("invalid audio configuration: {0}")]
    Config(String),
}

impl AudioError {
    /// Audio errors come from bad input or configuration; retrying the same frame never helps.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The level as it was first written: a float sum of float squares.
    fn level_by_floats(samples: &[i16]) -> f32 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum / samples.len() as f64).sqrt();
        if rms < 1.0 {
            return -100.0;
        }
        (20.0 * (rms / 32768.0).log10()) as f32
    }

    #[test]
    fn full_scale_extremes_and_silence() {
        let frame = |v: i16| AudioFrame::new(vec![v; 320], PIPELINE_RATE, Duration::ZERO);
        assert_eq!(frame(0).level_dbfs(), -100.0);
        assert!(frame(i16::MIN).level_dbfs().abs() < 1e-6);
        assert!((frame(i16::MAX).level_dbfs() + 0.000_265).abs() < 1e-5);
        assert_eq!(
            AudioFrame::new(Vec::new(), PIPELINE_RATE, Duration::ZERO).level_dbfs(),
            -100.0
        );
    }

    proptest! {
        #[test]
        fn integer_sum_gives_the_float_sums_level(samples in proptest::collection::vec(any::<i16>(), 1..2000)) {
            let frame = AudioFrame::new(samples.clone(), PIPELINE_RATE, Duration::ZERO);
            prop_assert_eq!(frame.level_dbfs(), level_by_floats(&samples));
        }
    }
}

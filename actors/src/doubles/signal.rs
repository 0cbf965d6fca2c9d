//! Synthetic caller audio: a voiced, speech-like signal (glottal harmonics shaped by two formants,
//! syllable-rate amplitude modulation) that webrtc-vad classifies as speech, and silence.

use std::f32::consts::TAU;
use std::time::Duration;

use crate::audio::{samples_per_frame, AudioFrame};

/// `duration` of speech-like audio at `rate`, starting at sample `offset` (so consecutive calls join
/// up without clicks).
pub fn speechlike(rate: u32, duration: Duration, offset: u64) -> Vec<i16> {
    let n = (duration.as_secs_f64() * f64::from(rate)).round() as u64;
    (offset..offset + n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            // Pitch wobbles around 140 Hz; syllables at ~4 Hz never go fully silent.
            let f0 = 140.0 + 15.0 * (TAU * 0.7 * t).sin();
            let envelope = 0.55 + 0.45 * (TAU * 4.0 * t).sin().abs();
            let mut s = 0.0;
            for h in 1..=20 {
                let f = f0 * h as f32;
                if f > rate as f32 / 2.2 {
                    break;
                }
                let formants = 1.0 / (1.0 + ((f - 700.0) / 300.0).powi(2))
                    + 0.6 / (1.0 + ((f - 1_800.0) / 400.0).powi(2));
                s += formants * (TAU * f * t).sin() / h as f32;
            }
            (s * envelope * 9_000.0).clamp(-32_000.0, 32_000.0) as i16
        })
        .collect()
}

/// Cut samples into 20 ms frames stamped from `start`.
pub fn frames(samples: &[i16], rate: u32, start: Duration) -> Vec<AudioFrame> {
    let n = samples_per_frame(rate);
    samples
        .chunks(n)
        .enumerate()
        .map(|(i, c)| {
            let mut v = c.to_vec();
            v.resize(n, 0);
            AudioFrame::new(v, rate, start + Duration::from_millis(20 * i as u64))
        })
        .collect()
}

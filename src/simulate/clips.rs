//! The caller's lines: small 16 kHz WAVs made with espeak-ng (see tests/fixtures/speech), embedded
//! in the binary, upsampled once to the room rate and cut into shared 20 ms frames.

use std::sync::Arc;

use anyhow::Context;
use frontdesk_actors::audio::resample::Resampler;
use frontdesk_actors::audio::{AudioFrame, PIPELINE_RATE};

const LINES: &str = include_str!("../../tests/fixtures/speech/lines.txt");
const WAVS: [&[u8]; 6] = [
    include_bytes!("../../tests/fixtures/speech/line01.wav"),
    include_bytes!("../../tests/fixtures/speech/line02.wav"),
    include_bytes!("../../tests/fixtures/speech/line03.wav"),
    include_bytes!("../../tests/fixtures/speech/line04.wav"),
    include_bytes!("../../tests/fixtures/speech/line05.wav"),
    include_bytes!("../../tests/fixtures/speech/line06.wav"),
];

/// One spoken line: its text and its audio as 48 kHz 20 ms frames (shared by every call).
#[derive(Debug)]
pub struct Clip {
    pub text: String,
    pub frames: Vec<Arc<[i16]>>,
}

#[derive(Debug)]
pub struct Clips {
    pub lines: Vec<Clip>,
}

impl Clips {
    /// The clips at the pipeline rate: what the LiveKit transport delivers (it decodes Opus straight
    /// to it), so a simulated room costs what the real one does, with no resampler per call.
    pub fn load() -> anyhow::Result<Arc<Self>> {
        Self::load_at(PIPELINE_RATE)
    }

    /// The clips at `rate` (a `loadtest` caller sends 48 kHz into its Opus encoder).
    pub fn load_at(rate: u32) -> anyhow::Result<Arc<Self>> {
        let texts: Vec<&str> = LINES.lines().filter(|l| !l.trim().is_empty()).collect();
        anyhow::ensure!(
            texts.len() == WAVS.len(),
            "lines.txt has {} lines for {} clips",
            texts.len(),
            WAVS.len()
        );
        let lines = texts
            .iter()
            .zip(WAVS)
            .enumerate()
            .map(|(i, (text, wav))| {
                decode(wav, rate)
                    .with_context(|| format!("clip {}", i + 1))
                    .map(|frames| Clip {
                        text: text.to_string(),
                        frames,
                    })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Arc::new(Self { lines }))
    }

    pub fn texts(&self) -> Vec<String> {
        self.lines.iter().map(|c| c.text.clone()).collect()
    }

    /// The clip to speak `text` with: the one whose line is closest in length. The STT emulator
    /// and double transcribe by script (call id → lines), not by what the audio says, so a
    /// scenario's line needs only speech of about its length (and no new fixture audio).
    pub fn closest(&self, text: &str) -> usize {
        let len = text.chars().count();
        (0..self.lines.len())
            .min_by_key(|&i| self.lines[i].text.chars().count().abs_diff(len))
            .unwrap_or(0)
    }
}

fn decode(wav: &[u8], rate: u32) -> anyhow::Result<Vec<Arc<[i16]>>> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav))?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.channels == 1 && spec.bits_per_sample == 16,
        "expected mono s16, got {spec:?}"
    );
    let samples: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
    let mut resampler = Resampler::new(spec.sample_rate, rate)?;
    let mut out: Vec<AudioFrame> = Vec::new();
    resampler.push(std::time::Duration::ZERO, &samples, &mut out);
    resampler.flush(&mut out);
    Ok(out.into_iter().map(|f| f.samples).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_load_and_are_speech_length() -> anyhow::Result<()> {
        let clips = Clips::load()?;
        assert_eq!(clips.lines.len(), 6);
        for c in &clips.lines {
            let secs = c.frames.len() as f64 * 0.02;
            assert!((1.5..6.0).contains(&secs), "{}: {secs} s", c.text);
            assert!(c.frames.iter().all(|f| f.len() == 320));
        }
        assert_eq!(clips.closest("Yes, please book it."), 5);
        assert_eq!(clips.closest(&"a".repeat(80)), 1);
        Ok(())
    }
}

//! webrtc-vad + [`SpeechMachine`] + pre-roll ring: decides which 16 kHz frames go to STT.

use std::collections::VecDeque;
use std::time::Duration;

use webrtc_vad::{SampleRate, Vad, VadMode};

use super::machine::{SpeechMachine, SpeechState, SpeechTransition};
use super::VadConfig;
use crate::audio::{samples_per_frame, AudioError, AudioFrame, PIPELINE_RATE};

/// Edges of an utterance, in media time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VadEvent {
    /// `at` is the timestamp of the first frame of the onset that triggered detection.
    SpeechStarted { at: Duration },
    /// `at` is the end of the last speech frame (before the hangover); `speech_duration` runs
    /// from the matching `SpeechStarted::at` to it.
    SpeechEnded {
        at: Duration,
        speech_duration: Duration,
    },
}

/// Per-call voice activity detector over 20 ms, 16 kHz frames.
pub struct VadDetector {
    vad: SendVad,
    mode: u8,
    machine: SpeechMachine,
    /// Latest frames while silent (pre-roll + onset), handed over when speech starts.
    ring: VecDeque<AudioFrame>,
    ring_cap: usize,
    /// Timestamp of the first frame of the current onset.
    onset_at: Duration,
    /// `SpeechStarted::at` of the current utterance.
    started_at: Duration,
    /// End of the latest speech frame of the current utterance.
    last_speech_end: Duration,
    /// Loudest voiced frame of the current onset or utterance, dBFS.
    peak_dbfs: f32,
    /// See `VadConfig::tail_floor_db` (0: off).
    tail_floor_db: f32,
}

impl VadDetector {
    /// Fails with [`AudioError::Config`] if `cfg` does not validate.
    pub fn new(cfg: &VadConfig) -> Result<Self, AudioError> {
        cfg.validate().map_err(AudioError::Config)?;
        let ring_cap = (cfg.preroll_frames() + cfg.min_speech_frames()) as usize;
        Ok(Self {
            vad: SendVad::new(cfg.aggressiveness),
            mode: cfg.aggressiveness,
            machine: SpeechMachine::new(cfg.min_speech_frames(), cfg.hangover_frames()),
            ring: VecDeque::with_capacity(ring_cap),
            ring_cap,
            onset_at: Duration::ZERO,
            started_at: Duration::ZERO,
            last_speech_end: Duration::ZERO,
            peak_dbfs: -100.0,
            tail_floor_db: cfg.tail_floor_db as f32,
        })
    }

    /// Classifies `frame` and appends to `forward` the frames STT should get now: nothing while
    /// silent, the pre-roll ring (ending with `frame`) on `SpeechStarted`, and `frame` itself
    /// while speaking and on `SpeechEnded`. Frames of the wrong rate or length are rejected and
    /// leave the detector untouched.
    pub fn process(
        &mut self,
        frame: AudioFrame,
        forward: &mut Vec<AudioFrame>,
    ) -> Result<Option<VadEvent>, AudioError> {
        check_frame(&frame)?;
        // The level only matters for a voiced frame: measured once, after the VAD says so.
        let voiced = self.vad.is_speech(&frame.samples)?;
        let level = if voiced { frame.level_dbfs() } else { -100.0 };
        let is_speech = voiced && !self.is_fading_tail(level);
        if is_speech {
            if self.machine.state() == SpeechState::Silence {
                self.onset_at = frame.timestamp;
                self.peak_dbfs = level;
            }
            self.peak_dbfs = self.peak_dbfs.max(level);
            self.last_speech_end = frame.end();
        }
        let event = match self.machine.step(is_speech) {
            Some(SpeechTransition::Started) => {
                self.remember(frame);
                forward.extend(self.ring.drain(..));
                self.started_at = self.onset_at;
                Some(VadEvent::SpeechStarted {
                    at: self.started_at,
                })
            }
            Some(SpeechTransition::Ended) => {
                forward.push(frame);
                Some(VadEvent::SpeechEnded {
                    at: self.last_speech_end,
                    speech_duration: self.last_speech_end.saturating_sub(self.started_at),
                })
            }
            None if self.machine.is_speaking() => {
                forward.push(frame);
                None
            }
            None => {
                self.remember(frame);
                None
            }
        };
        Ok(event)
    }

    /// A voiced frame inside an utterance far enough below its peak to be the fading tail.
    fn is_fading_tail(&self, level_dbfs: f32) -> bool {
        self.tail_floor_db > 0.0
            && self.machine.is_speaking()
            && level_dbfs < self.peak_dbfs - self.tail_floor_db
    }

    /// True inside an utterance (including its hangover).
    pub fn is_speaking(&self) -> bool {
        self.machine.is_speaking()
    }

    /// Back to silence with an empty pre-roll and fresh webrtc-vad state.
    pub fn reset(&mut self) {
        self.vad.reset(self.mode);
        self.machine.reset();
        self.ring.clear();
    }

    fn remember(&mut self, frame: AudioFrame) {
        if self.ring.len() == self.ring_cap {
            self.ring.pop_front();
        }
        if self.ring_cap > 0 {
            self.ring.push_back(frame);
        }
    }
}

fn check_frame(frame: &AudioFrame) -> Result<(), AudioError> {
    if frame.sample_rate != PIPELINE_RATE {
        return Err(AudioError::WrongRate {
            got: frame.sample_rate,
            expected: PIPELINE_RATE,
        });
    }
    let expected = samples_per_frame(PIPELINE_RATE);
    if frame.len() != expected {
        return Err(AudioError::WrongLength {
            got: frame.len(),
            expected,
        });
    }
    Ok(())
}

/// webrtc-vad's handle, made movable between threads so it can live in an actor's state.
struct SendVad(Vad);

// SAFETY: `Vad` is `!Send` only because it wraps a raw `*mut Fvad`. That pointer comes from
// `fvad_new`, is owned exclusively by this value (never copied or shared) and freed in `Drop`;
// libfvad keeps no thread-local or global mutable state, so using the instance from whichever
// single thread currently owns it is sound. Not `Sync`: every call takes `&mut self`.
#[allow(unsafe_code)]
unsafe impl Send for SendVad {}

impl SendVad {
    fn new(aggressiveness: u8) -> Self {
        let mut vad = Self(Vad::new_with_rate(SampleRate::Rate16kHz));
        vad.reset(aggressiveness);
        vad
    }

    /// Clears state; webrtc-vad's own reset also forgets rate and mode, so set them again.
    fn reset(&mut self, aggressiveness: u8) {
        self.0.reset();
        self.0.set_sample_rate(SampleRate::Rate16kHz);
        self.0.set_mode(match aggressiveness {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            _ => VadMode::VeryAggressive,
        });
    }

    fn is_speech(&mut self, samples: &[i16]) -> Result<bool, AudioError> {
        self.0
            .is_voice_segment(samples)
            .map_err(|()| AudioError::Vad)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audio::FRAME_DURATION;
    use std::f64::consts::PI;

    const FRAME: usize = 320;

    /// Voiced-speech-like audio: harmonics of a wobbling 150 Hz pitch up to 2 kHz with a
    /// falling spectrum, amplitude-modulated at a syllable rate of 4 Hz.
    fn speech_like(start: usize, len: usize) -> Vec<i16> {
        (start..start + len)
            .map(|n| {
                let t = n as f64 / 16_000.0;
                let f0 = 150.0 + 15.0 * (2.0 * PI * 3.0 * t).sin();
                let phase = 2.0 * PI * (150.0 * t - 2.5 / PI * (2.0 * PI * 3.0 * t).cos() / 3.0);
                let voiced: f64 = (1..=(2000.0 / f0) as usize)
                    .map(|h| (h as f64 * phase).sin() / h as f64)
                    .sum();
                let envelope = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
                (6000.0 * envelope * voiced) as i16
            })
            .collect()
    }

    /// Faint deterministic noise, well below speech level.
    fn quiet(seed: usize, len: usize) -> Vec<i16> {
        let mut x = seed as u32 ^ 0x9e37_79b9;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 16) % 41) as i16 - 20
            })
            .collect()
    }

    fn frame(samples: &[i16], index: usize) -> AudioFrame {
        AudioFrame::new(samples, PIPELINE_RATE, FRAME_DURATION * index as u32)
    }

    /// 1 s of quiet, 1 s of speech, 1.5 s of quiet, as 20 ms frames.
    fn scenario() -> Vec<AudioFrame> {
        let mut audio = quiet(1, 16_000);
        audio.extend(speech_like(16_000, 16_000));
        audio.extend(quiet(2, 24_000));
        audio
            .chunks(FRAME)
            .enumerate()
            .map(|(i, c)| frame(c, i))
            .collect()
    }

    /// Runs frames through `det`; returns (frame index, event, frames forwarded by that call).
    fn drive(
        det: &mut VadDetector,
        frames: &[AudioFrame],
    ) -> Vec<(usize, VadEvent, Vec<AudioFrame>)> {
        let mut events = vec![];
        let mut forward = vec![];
        for (i, f) in frames.iter().enumerate() {
            forward.clear();
            if let Some(e) = det.process(f.clone(), &mut forward).unwrap() {
                events.push((i, e, forward.clone()));
            }
        }
        events
    }

    fn ms(d: Duration) -> i64 {
        d.as_millis() as i64
    }

    #[test]
    fn detects_speech_with_preroll_and_hangover() {
        let cfg = VadConfig::default();
        let mut det = VadDetector::new(&cfg).unwrap();
        let events = drive(&mut det, &scenario());
        assert_eq!(events.len(), 2, "{events:?}");

        let (i, started, fwd) = &events[0];
        let VadEvent::SpeechStarted { at } = *started else {
            panic!("{started:?}")
        };
        assert!((1000..=1100).contains(&ms(at)), "started at {at:?}");
        let ring = (cfg.preroll_ms + cfg.min_speech_ms) / 20;
        assert_eq!(fwd.len(), ring as usize);
        assert_eq!(fwd.last().unwrap().timestamp, FRAME_DURATION * *i as u32);
        assert_eq!(fwd[cfg.preroll_frames() as usize].timestamp, at);
        assert!(fwd.windows(2).all(|w| w[0].end() == w[1].timestamp));

        let (j, ended, fwd) = &events[1];
        let VadEvent::SpeechEnded {
            at: end,
            speech_duration,
        } = *ended
        else {
            panic!()
        };
        // webrtc-vad keeps saying "speech" for a few frames on its own (internal hangover).
        assert!((1940..=2200).contains(&ms(end)), "ended at {end:?}");
        assert_eq!(speech_duration, end - at);
        assert_eq!(
            ms(FRAME_DURATION * (*j as u32 + 1) - end),
            i64::from(cfg.hangover_ms)
        );
        assert_eq!(fwd.len(), 1);
        assert!(!det.is_speaking());
    }

    /// A loud line that fades out: webrtc-vad keeps hearing voice in the quiet tail, the tail
    /// floor ends the utterance where the level fell 30 dB below its peak.
    #[test]
    fn the_fading_tail_of_an_utterance_counts_as_silence() {
        let mut audio = quiet(1, 16_000);
        let mut line = speech_like(16_000, 16_000);
        // The last 300 ms fade to a whisper 40 dB down, still voiced.
        let n = line.len();
        for (k, s) in line[n - 4_800..].iter_mut().enumerate() {
            *s = (f64::from(*s) * if k < 800 { 1.0 } else { 0.01 }) as i16;
        }
        audio.extend(line);
        audio.extend(quiet(2, 24_000));
        let frames: Vec<AudioFrame> = audio
            .chunks(FRAME)
            .enumerate()
            .map(|(i, c)| frame(c, i))
            .collect();
        let end_with = |tail_floor_db| {
            let cfg = VadConfig {
                tail_floor_db,
                ..VadConfig::default()
            };
            let mut det = VadDetector::new(&cfg).unwrap();
            drive(&mut det, &frames)
                .into_iter()
                .find_map(|(_, e, _)| match e {
                    VadEvent::SpeechEnded { at, .. } => Some(ms(at)),
                    _ => None,
                })
        };
        let (floored, off) = (end_with(30).unwrap(), end_with(0).unwrap());
        // Loud until 1750 ms, the whisper on to 2000 ms.
        assert!(
            (1740..=1800).contains(&floored),
            "ended at {floored} ms with the floor"
        );
        assert!(
            off >= floored + 60,
            "ended at {off} ms without it (webrtc-vad hears the whisper), {floored} ms with it"
        );
    }

    #[test]
    fn forwards_every_frame_of_the_utterance_once() {
        let frames = scenario();
        let mut det = VadDetector::new(&VadConfig::default()).unwrap();
        let mut forward = vec![];
        for f in &frames {
            det.process(f.clone(), &mut forward).unwrap();
        }
        assert!(forward.windows(2).all(|w| w[0].end() == w[1].timestamp));
        let first = (forward[0].timestamp.as_millis() / 20) as usize;
        assert_eq!(forward[..], frames[first..first + forward.len()]);
    }

    #[test]
    fn bad_frames_are_rejected_and_leave_state_alone() {
        let frames = scenario();
        let mut det = VadDetector::new(&VadConfig::default()).unwrap();
        let mut forward = vec![];
        for f in &frames[..75] {
            det.process(f.clone(), &mut forward).unwrap();
        }
        assert!(det.is_speaking());
        let n = forward.len();
        let wrong_rate = AudioFrame::silence(48_000, FRAME, Duration::ZERO);
        let short = AudioFrame::silence(PIPELINE_RATE, 160, Duration::ZERO);
        let empty = AudioFrame::silence(PIPELINE_RATE, 0, Duration::ZERO);
        assert!(matches!(
            det.process(wrong_rate, &mut forward),
            Err(AudioError::WrongRate {
                got: 48_000,
                expected: 16_000
            })
        ));
        for bad in [short, empty] {
            let len = bad.len();
            let err = det.process(bad, &mut forward).unwrap_err();
            assert!(matches!(err, AudioError::WrongLength { got, expected: 320 } if got == len));
        }
        assert_eq!(forward.len(), n);
        assert!(det.is_speaking());
        let rest = drive(&mut det, &frames[75..]);
        assert!(matches!(rest[..], [(_, VadEvent::SpeechEnded { .. }, _)]));
    }

    #[test]
    fn reset_forgets_the_utterance() {
        let frames = scenario();
        let mut det = VadDetector::new(&VadConfig::default()).unwrap();
        let fresh = drive(&mut det, &frames);
        drive(&mut det, &frames[..75]);
        assert!(det.is_speaking());
        det.reset();
        assert!(!det.is_speaking());
        assert_eq!(drive(&mut det, &frames), fresh);
    }

    #[test]
    fn silence_forwards_nothing() {
        let mut det = VadDetector::new(&VadConfig::default()).unwrap();
        let mut forward = vec![];
        for i in 0..200 {
            let ev = det
                .process(frame(&quiet(i, FRAME), i), &mut forward)
                .unwrap();
            assert_eq!(ev, None);
        }
        assert!(forward.is_empty());
    }

    #[test]
    fn invalid_config_is_an_error_and_detector_is_send() {
        let cfg = VadConfig {
            aggressiveness: 9,
            ..VadConfig::default()
        };
        assert!(matches!(VadDetector::new(&cfg), Err(AudioError::Config(_))));
        fn assert_send<T: Send>() {}
        assert_send::<VadDetector>();
    }
}

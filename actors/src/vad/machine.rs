//! Pure speech/silence state machine over per-frame VAD decisions. No audio, no clock: it counts
//! frames, so it can be tested exhaustively against a reference model.

/// Where the machine is; counters are frames seen in the current state so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechState {
    Silence,
    /// Speech frames seen, not yet enough to call it an utterance.
    Onset {
        frames: u32,
    },
    Speech,
    /// Non-speech frames seen during an utterance, not yet enough to end it.
    Hangover {
        frames: u32,
    },
}

/// Edges of an utterance. They strictly alternate, starting with `Started`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechTransition {
    Started,
    Ended,
}

#[derive(Clone, Debug)]
pub struct SpeechMachine {
    min_speech: u32,
    hangover: u32,
    state: SpeechState,
}

impl SpeechMachine {
    /// `min_speech` consecutive speech frames start an utterance; `hangover` consecutive
    /// non-speech frames end it. Zero is treated as one (decide on the first frame).
    pub fn new(min_speech_frames: u32, hangover_frames: u32) -> Self {
        Self {
            min_speech: min_speech_frames.max(1),
            hangover: hangover_frames.max(1),
            state: SpeechState::Silence,
        }
    }

    /// Feeds one frame's decision; returns the transition it caused, if any.
    pub fn step(&mut self, is_speech: bool) -> Option<SpeechTransition> {
        use SpeechState::*;
        let (next, transition) = match (self.state, is_speech) {
            (Silence, false) | (Onset { .. }, false) => (Silence, None),
            (Silence, true) => self.onset(1),
            (Onset { frames }, true) => self.onset(frames + 1),
            (Speech, true) | (Hangover { .. }, true) => (Speech, None),
            (Speech, false) => self.hangover(1),
            (Hangover { frames }, false) => self.hangover(frames + 1),
        };
        self.state = next;
        transition
    }

    fn onset(&self, frames: u32) -> (SpeechState, Option<SpeechTransition>) {
        if frames >= self.min_speech {
            (SpeechState::Speech, Some(SpeechTransition::Started))
        } else {
            (SpeechState::Onset { frames }, None)
        }
    }

    fn hangover(&self, frames: u32) -> (SpeechState, Option<SpeechTransition>) {
        if frames >= self.hangover {
            (SpeechState::Silence, Some(SpeechTransition::Ended))
        } else {
            (SpeechState::Hangover { frames }, None)
        }
    }

    pub fn state(&self) -> SpeechState {
        self.state
    }

    /// True inside an utterance (including its trailing hangover).
    pub fn is_speaking(&self) -> bool {
        matches!(
            self.state,
            SpeechState::Speech | SpeechState::Hangover { .. }
        )
    }

    pub fn reset(&mut self) {
        self.state = SpeechState::Silence;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference model over whole runs of equal decisions: a silent stretch becomes an utterance
    /// once a speech run is `min` long; an utterance ends once a non-speech run is `hang` long.
    fn reference(seq: &[bool], min: u32, hang: u32) -> Vec<(usize, SpeechTransition)> {
        let (min, hang) = (min.max(1) as usize, hang.max(1) as usize);
        let mut out = vec![];
        let mut speaking = false;
        let mut i = 0;
        while i < seq.len() {
            let run = seq[i..].iter().take_while(|&&b| b == seq[i]).count();
            if !speaking && seq[i] && run >= min {
                out.push((i + min - 1, SpeechTransition::Started));
                speaking = true;
            } else if speaking && !seq[i] && run >= hang {
                out.push((i + hang - 1, SpeechTransition::Ended));
                speaking = false;
            }
            i += run;
        }
        out
    }

    fn run(seq: &[bool], min: u32, hang: u32) -> Vec<(usize, SpeechTransition)> {
        let mut m = SpeechMachine::new(min, hang);
        seq.iter()
            .enumerate()
            .filter_map(|(i, &b)| m.step(b).map(|t| (i, t)))
            .collect()
    }

    proptest! {
        #[test]
        fn matches_reference_model(
            seq in proptest::collection::vec(any::<bool>(), 0..400),
            min in 0u32..8,
            hang in 0u32..12,
        ) {
            let got = run(&seq, min, hang);
            prop_assert_eq!(&got, &reference(&seq, min, hang));
            for (k, (_, t)) in got.iter().enumerate() {
                let want = if k % 2 == 0 { SpeechTransition::Started } else { SpeechTransition::Ended };
                prop_assert_eq!(*t, want);
            }
        }

        #[test]
        fn is_speaking_tracks_transitions(
            seq in proptest::collection::vec(any::<bool>(), 0..200),
            min in 1u32..6,
            hang in 1u32..6,
        ) {
            let mut m = SpeechMachine::new(min, hang);
            let mut speaking = false;
            for b in seq {
                match m.step(b) {
                    Some(SpeechTransition::Started) => speaking = true,
                    Some(SpeechTransition::Ended) => speaking = false,
                    None => {}
                }
                prop_assert_eq!(m.is_speaking(), speaking);
            }
        }
    }

    #[test]
    fn onset_and_hangover_counts() {
        let mut m = SpeechMachine::new(3, 2);
        assert_eq!(m.step(true), None);
        assert_eq!(m.state(), SpeechState::Onset { frames: 1 });
        assert_eq!(m.step(false), None);
        assert_eq!(m.state(), SpeechState::Silence);
        assert_eq!((m.step(true), m.step(true)), (None, None));
        assert_eq!(m.step(true), Some(SpeechTransition::Started));
        assert!(m.is_speaking());
        assert_eq!(m.step(false), None);
        assert_eq!(m.state(), SpeechState::Hangover { frames: 1 });
        assert!(m.is_speaking());
        assert_eq!(m.step(true), None);
        assert_eq!(m.state(), SpeechState::Speech);
        assert_eq!(m.step(false), None);
        assert_eq!(m.step(false), Some(SpeechTransition::Ended));
        assert!(!m.is_speaking());
        m.reset();
        assert_eq!(m.state(), SpeechState::Silence);
    }
}

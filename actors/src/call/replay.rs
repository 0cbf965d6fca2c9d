//! Caller audio sent to STT but not yet covered by a final transcript. It lives with the supervisor,
//! so a restarted STT child can send it again to a new session and the utterance is not lost.

use std::collections::VecDeque;
use std::time::Duration;

pub use super::msg::SttInput;

#[derive(Debug)]
struct Entry {
    input: SttInput,
    /// Stream time (within the current session) just past this entry's audio.
    session_end: Duration,
}

/// Tolerance when matching a final's end time to frame boundaries (providers round to 10 ms; less than a frame).
const ACK_SLACK: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub struct ReplayLog {
    entries: VecDeque<Entry>,
    session_offset: Duration,
    audio: Duration,
    max_audio: Duration,
    dropped: u64,
}

impl ReplayLog {
    pub fn new(max_audio: Duration) -> Self {
        Self {
            entries: VecDeque::new(),
            session_offset: Duration::ZERO,
            audio: Duration::ZERO,
            max_audio,
            dropped: 0,
        }
    }

    /// Record an input that is about to be sent on the current session.
    pub fn record(&mut self, input: &SttInput) {
        if let SttInput::Audio(f) = input {
            self.session_offset += f.duration();
            self.audio += f.duration();
        }
        self.entries.push_back(Entry {
            input: input.clone(),
            session_end: self.session_offset,
        });
        while self.audio > self.max_audio {
            self.pop_front_counted();
        }
    }

    fn pop_front_counted(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            if let SttInput::Audio(f) = e.input {
                self.audio = self.audio.saturating_sub(f.duration());
                self.dropped += 1;
            }
        }
    }

    /// A final transcript covers the session's audio up to `end`: that audio no longer needs replay.
    pub fn ack(&mut self, end: Duration) {
        while let Some(front) = self.entries.front() {
            let covered = match &front.input {
                SttInput::Audio(_) => front.session_end <= end + ACK_SLACK,
                SttInput::EndOfSpeech => front.session_end <= end + ACK_SLACK,
            };
            if !covered {
                break;
            }
            if let Some(Entry {
                input: SttInput::Audio(f),
                ..
            }) = self.entries.pop_front()
            {
                self.audio = self.audio.saturating_sub(f.duration());
            }
        }
    }

    /// A new session starts: everything unacknowledged must be sent again, in order, with stream
    /// times counted from zero again.
    pub fn restart(&mut self) -> Vec<SttInput> {
        let inputs: Vec<SttInput> = self.entries.drain(..).map(|e| e.input).collect();
        self.session_offset = Duration::ZERO;
        self.audio = Duration::ZERO;
        for input in &inputs {
            self.record(input);
        }
        inputs
    }

    pub fn pending_audio(&self) -> Duration {
        self.audio
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frames that fell out because the log hit its bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(i: u64) -> SttInput {
        SttInput::Audio(crate::audio::AudioFrame::silence(
            16_000,
            320,
            Duration::from_millis(20 * i),
        ))
    }

    #[test]
    fn ack_removes_covered_audio_only() {
        let mut log = ReplayLog::new(Duration::from_secs(10));
        for i in 0..10 {
            log.record(&frame(i));
        }
        log.ack(Duration::from_millis(100));
        assert_eq!(log.len(), 5);
        assert_eq!(log.pending_audio(), Duration::from_millis(100));
    }

    #[test]
    fn restart_resends_in_order_and_rebases_times() {
        let mut log = ReplayLog::new(Duration::from_secs(10));
        for i in 0..4 {
            log.record(&frame(i));
        }
        log.record(&SttInput::EndOfSpeech);
        log.ack(Duration::from_millis(40));
        let again = log.restart();
        assert_eq!(again.len(), 3);
        assert_eq!(again[2], SttInput::EndOfSpeech);
        // Stream times restart at zero: a final up to 40 ms in the new session covers everything.
        log.ack(Duration::from_millis(40));
        assert!(log.is_empty());
    }

    #[test]
    fn bounded_by_audio_duration() {
        let mut log = ReplayLog::new(Duration::from_millis(100));
        for i in 0..20 {
            log.record(&frame(i));
        }
        assert_eq!(log.pending_audio(), Duration::from_millis(100));
        assert_eq!(log.dropped(), 15);
    }
}

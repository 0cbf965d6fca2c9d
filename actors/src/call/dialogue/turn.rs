//! End-of-turn detection, as a pure state machine over events and time so it can be
//! property-tested.
//!
//! A turn ends when the caller has stopped speaking (VAD speech end), a final transcript has arrived
//! since (the provider has flushed the utterance), and the endpointing delay has elapsed on the
//! audio clock (the VAD counts silent frames after speech end, as it does for the hangover) without
//! new speech. If that cannot happen within `final_timeout` of the speech end (no final, or no audio
//! at all), the turn is committed with what the finals so far said, or dropped if they said nothing.
//! A final that arrives after its turn was dropped (a restarted STT session replaying the
//! utterance) commits that turn at once: the caller is still waiting for an answer.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub transcript: String,
    /// When the caller stopped speaking (the VAD's decision).
    pub speech_ended_at: Instant,
    /// When both the endpointing delay and a final transcript were there (`None` on timeout).
    pub ready_at: Option<Instant>,
    /// When the final transcript after the speech end arrived, if one did.
    pub final_at: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct TurnDetector {
    final_timeout: Duration,
    speaking: bool,
    ended_at: Option<Instant>,
    final_at: Option<Instant>,
    endpoint_at: Option<Instant>,
    transcript: String,
    /// Speech end of the last turn dropped for want of a transcript, until the caller speaks again.
    dropped: Option<Instant>,
}

impl TurnDetector {
    pub fn new(final_timeout: Duration) -> Self {
        Self {
            final_timeout,
            speaking: false,
            ended_at: None,
            final_at: None,
            endpoint_at: None,
            transcript: String::new(),
            dropped: None,
        }
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Finals received since the last commit.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    pub fn speech_started(&mut self) {
        self.speaking = true;
        self.dropped = None;
        self.ended_at = None;
        self.final_at = None;
        self.endpoint_at = None;
    }

    pub fn speech_ended(&mut self, now: Instant) {
        self.speaking = false;
        self.dropped = None;
        self.ended_at = Some(now);
        self.final_at = None;
        self.endpoint_at = None;
    }

    pub fn final_transcript(&mut self, text: &str, now: Instant) {
        let text = text.trim();
        if !text.is_empty() {
            if !self.transcript.is_empty() {
                self.transcript.push(' ');
            }
            self.transcript.push_str(text);
        }
        if self.ended_at.is_some() {
            self.final_at = Some(now);
        } else if let Some(ended) = self.dropped.filter(|_| !text.is_empty() && !self.speaking) {
            // Late: the endpointing delay passed long ago, so the turn is ready now.
            self.dropped = None;
            self.ended_at = Some(ended);
            self.final_at = Some(now);
            self.endpoint_at = Some(now);
        }
    }

    /// The endpointing delay has passed in silence since the speech end.
    pub fn endpoint_elapsed(&mut self, now: Instant) {
        if self.ended_at.is_some() && !self.speaking {
            self.endpoint_at = Some(now);
        }
    }

    /// When the fallback commit is due, if a turn is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let ended = self.ended_at?;
        (!self.speaking).then_some(ended + self.final_timeout)
    }

    /// Commit the turn if its conditions hold at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Commit> {
        let ended = self.ended_at?;
        if self.speaking {
            return None;
        }
        let final_at = self.final_at;
        let ready_at = match (self.final_at, self.endpoint_at) {
            (Some(f), Some(e)) => Some(f.max(e)),
            _ => None,
        };
        if ready_at.is_none() && now < self.deadline()? {
            return None;
        }
        self.ended_at = None;
        self.final_at = None;
        self.endpoint_at = None;
        let transcript = std::mem::take(&mut self.transcript);
        if transcript.is_empty() {
            self.dropped = Some(ended);
            return None;
        }
        Some(Commit {
            transcript,
            speech_ended_at: ended,
            ready_at,
            final_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Ev {
        Start,
        End,
        Final(bool),
        Endpoint,
        Wait(u64),
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            Just(Ev::Start),
            Just(Ev::End),
            any::<bool>().prop_map(Ev::Final),
            Just(Ev::Endpoint),
            (0u64..800).prop_map(Ev::Wait)
        ]
    }

    /// The reference: what must be true of the detector after every event.
    #[derive(Default)]
    struct Model {
        speaking: bool,
        ended: Option<Instant>,
        fin: bool,
        endpoint: bool,
        words: Vec<String>,
        /// Speech end of a turn dropped without words, until speech starts or ends again.
        dropped: Option<Instant>,
    }

    proptest! {
        // No commit while speaking; a commit once speech ended, a final and the endpoint have all
        // happened (in any order after the speech end), or once the timeout passed; the committed
        // transcript is exactly the non-empty finals since the previous commit.
        #[test]
        fn matches_model(events in proptest::collection::vec(ev(), 0..60), timeout in 0u64..2000) {
            let mut now = Instant::now();
            let timeout = Duration::from_millis(timeout);
            let mut d = TurnDetector::new(timeout);
            let mut m = Model::default();
            for (n, e) in events.into_iter().enumerate() {
                match e {
                    Ev::Start => { d.speech_started(); m = Model { speaking: true, words: m.words, ..Default::default() }; }
                    Ev::End => { d.speech_ended(now); m = Model { ended: Some(now), words: m.words, ..Default::default() }; }
                    Ev::Final(empty) => {
                        let w = if empty { String::new() } else { format!("w{n}") };
                        d.final_transcript(&w, now);
                        if !w.is_empty() { m.words.push(w.clone()); }
                        m.fin |= m.ended.is_some();
                        if m.ended.is_none() && !m.speaking && !w.is_empty() {
                            if let Some(e) = m.dropped.take() {
                                (m.ended, m.fin, m.endpoint) = (Some(e), true, true);
                            }
                        }
                    }
                    Ev::Endpoint => { d.endpoint_elapsed(now); m.endpoint |= m.ended.is_some() && !m.speaking; }
                    Ev::Wait(ms) => now += Duration::from_millis(ms),
                }
                let got = d.poll(now);
                let due = m.ended.is_some_and(|e| (m.fin && m.endpoint) || now >= e + timeout);
                if !m.speaking && due {
                    let expected = m.words.join(" ");
                    let dropped = expected.is_empty().then_some(m.ended).flatten();
                    m = Model { dropped, ..Default::default() };
                    if expected.is_empty() { prop_assert!(got.is_none()); } else {
                        prop_assert_eq!(got.map(|c| c.transcript), Some(expected));
                    }
                } else {
                    prop_assert!(got.is_none());
                }
            }
        }
    }

    #[test]
    fn needs_final_and_endpoint_after_speech_end() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = TurnDetector::new(Duration::from_secs(2));
        d.speech_started();
        d.final_transcript("book an appointment", t0);
        d.speech_ended(ms(10));
        d.endpoint_elapsed(ms(210));
        assert_eq!(d.poll(ms(210)), None, "no final since speech end yet");
        d.final_transcript("", ms(250));
        let c = d.poll(ms(250)).unwrap();
        assert_eq!(c.transcript, "book an appointment");
        assert_eq!(c.ready_at, Some(ms(250)));
    }

    #[test]
    fn times_out_without_a_final() {
        let t0 = Instant::now();
        let mut d = TurnDetector::new(Duration::from_secs(2));
        d.final_transcript("hello", t0);
        d.speech_ended(t0);
        assert_eq!(d.poll(t0 + Duration::from_millis(1_999)), None);
        let c = d.poll(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!((c.transcript.as_str(), c.ready_at), ("hello", None));
    }

    #[test]
    fn a_late_final_commits_the_dropped_turn_at_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = TurnDetector::new(Duration::from_secs(2));
        d.speech_started();
        d.speech_ended(ms(0));
        assert_eq!(d.poll(ms(2_000)), None, "dropped: nothing heard yet");
        // A restarted STT session replays the utterance; its final comes late.
        d.final_transcript("I need a doctor", ms(5_300));
        let c = d.poll(ms(5_300)).unwrap();
        assert_eq!(c.transcript, "I need a doctor");
        assert_eq!((c.speech_ended_at, c.final_at), (ms(0), Some(ms(5_300))));
        // Once the caller speaks again, a stray final waits for that turn instead.
        d.speech_ended(ms(6_000));
        assert_eq!(d.poll(ms(8_000)), None);
        d.speech_started();
        d.final_transcript("late words", ms(8_100));
        assert_eq!(d.poll(ms(8_100)), None);
    }
}

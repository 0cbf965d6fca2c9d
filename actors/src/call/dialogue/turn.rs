//! End-of-turn detection, as a pure state machine over (event, time) so it can be property-tested.
//!
//! A turn ends when the caller has stopped speaking (VAD speech end), a final transcript has arrived
//! since (the provider has flushed the utterance), and `delay` has passed since the speech end
//! without new speech. If no final arrives within `final_timeout`, the turn is committed with what
//! the finals so far said (or dropped if they said nothing).

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub transcript: String,
    /// When the caller stopped speaking (the VAD's decision).
    pub speech_ended_at: Instant,
}

#[derive(Clone, Debug)]
pub struct TurnDetector {
    delay: Duration,
    final_timeout: Duration,
    speaking: bool,
    ended_at: Option<Instant>,
    final_since_end: bool,
    transcript: String,
}

impl TurnDetector {
    pub fn new(delay: Duration, final_timeout: Duration) -> Self {
        Self {
            delay,
            final_timeout,
            speaking: false,
            ended_at: None,
            final_since_end: false,
            transcript: String::new(),
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
        self.ended_at = None;
        self.final_since_end = false;
    }

    pub fn speech_ended(&mut self, now: Instant) {
        self.speaking = false;
        self.ended_at = Some(now);
        self.final_since_end = false;
    }

    pub fn final_transcript(&mut self, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            if !self.transcript.is_empty() {
                self.transcript.push(' ');
            }
            self.transcript.push_str(text);
        }
        if self.ended_at.is_some() {
            self.final_since_end = true;
        }
    }

    /// When `poll` should next be called, if a commit is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let ended = self.ended_at?;
        if self.speaking {
            return None;
        }
        Some(if self.final_since_end {
            ended + self.delay
        } else {
            ended + self.final_timeout.max(self.delay)
        })
    }

    /// Commit the turn if its conditions hold at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Commit> {
        let ended = self.ended_at?;
        if self.speaking || now < self.deadline()? {
            return None;
        }
        self.ended_at = None;
        self.final_since_end = false;
        let transcript = std::mem::take(&mut self.transcript);
        if transcript.is_empty() {
            return None;
        }
        Some(Commit {
            transcript,
            speech_ended_at: ended,
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
        Wait(u64),
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            Just(Ev::Start),
            Just(Ev::End),
            any::<bool>().prop_map(Ev::Final),
            (0u64..800).prop_map(Ev::Wait)
        ]
    }

    proptest! {
        // Against a simple model: no commit while speaking, none before the delay, none before a
        // final after speech end unless the final timeout passed, and the committed transcript is
        // exactly the non-empty finals since the previous commit.
        #[test]
        fn matches_model(events in proptest::collection::vec(ev(), 0..60), delay in 0u64..500, timeout in 0u64..2000) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut d = TurnDetector::new(Duration::from_millis(delay), Duration::from_millis(timeout));
            let (mut speaking, mut ended, mut fin, mut words, mut n) = (false, None::<Instant>, false, Vec::<String>::new(), 0);
            for e in events {
                match e {
                    Ev::Start => { d.speech_started(); speaking = true; ended = None; fin = false; }
                    Ev::End => { d.speech_ended(now); speaking = false; ended = Some(now); fin = false; }
                    Ev::Final(empty) => {
                        n += 1;
                        let w = if empty { String::new() } else { format!("w{n}") };
                        d.final_transcript(&w);
                        if !w.is_empty() { words.push(w); }
                        if ended.is_some() { fin = true; }
                    }
                    Ev::Wait(ms) => now += Duration::from_millis(ms),
                }
                let got = d.poll(now);
                let due = ended.map(|e| if fin { e + Duration::from_millis(delay) } else { e + Duration::from_millis(timeout.max(delay)) });
                let should = !speaking && due.is_some_and(|due| now >= due);
                if should {
                    let expected = words.join(" ");
                    ended = None; fin = false; words.clear();
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
    fn waits_for_final_then_delay() {
        let t0 = Instant::now();
        let mut d = TurnDetector::new(Duration::from_millis(200), Duration::from_secs(2));
        d.speech_started();
        d.final_transcript("book an appointment");
        d.speech_ended(t0);
        assert_eq!(
            d.poll(t0 + Duration::from_millis(500)),
            None,
            "no final since speech end yet"
        );
        d.final_transcript("");
        let c = d
            .poll(t0 + Duration::from_millis(500))
            .map(|c| c.transcript);
        assert_eq!(c.as_deref(), Some("book an appointment"));
    }
}

//! False-interruption recovery (LiveKit Agents' `false_interruption_timeout`), as a pure state
//! machine over events so it can be tested without time.
//!
//! Caller speech while the agent talks pauses the reply at once (the room holds its audio). Sound
//! shorter than the barge-in window resumes it at once. Speech that outlasts the window keeps the
//! reply paused, not cancelled, until either words are transcribed (interim or final: a real
//! barge-in, the reply is cancelled) or the caller has been quiet for the timeout without any (a
//! cough, a door, talk in the background: the reply plays on from where it paused). Without a
//! timeout, speech that outlasts the window cancels the reply at once.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// The caller is interrupting: cancel the reply.
    BargeIn,
    /// Play the paused reply on.
    Resume,
    /// Report `quiet_elapsed` after this much time, unless the caller speaks again.
    ArmTimer(Duration),
}

#[derive(Clone, Debug)]
pub struct Recovery {
    timeout: Option<Duration>,
    /// The reply kept paused past the barge-in window, waiting for words or silence.
    pending: Option<u64>,
    /// Words were transcribed since the caller's latest speech start.
    words: bool,
}

impl Recovery {
    /// `timeout`: `None` turns recovery off.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            pending: None,
            words: false,
        }
    }

    /// The reply waiting for a verdict, if any.
    pub fn pending(&self) -> Option<u64> {
        self.pending
    }

    pub fn speech_started(&mut self) {
        self.words = false;
    }

    /// Transcript text arrived (interim or final); blank text says nothing.
    pub fn transcript(&mut self, text: &str) -> Action {
        if text.trim().is_empty() {
            return Action::Nothing;
        }
        self.words = true;
        match self.pending.take() {
            Some(_) => Action::BargeIn,
            None => Action::Nothing,
        }
    }

    /// The barge-in window has passed since the latest speech start. `over`: the reply the caller
    /// is still speaking over (`None` if the caller stopped, or nothing is being said).
    pub fn window_passed(&mut self, over: Option<u64>) -> Action {
        match over {
            Some(_) if self.words || self.timeout.is_none() => {
                self.pending = None;
                Action::BargeIn
            }
            Some(reply_id) => {
                self.pending = Some(reply_id);
                Action::Nothing
            }
            // An earlier pause still waits for silence; this speech's end re-arms its timer.
            None if self.pending.is_some() => Action::Nothing,
            None => Action::Resume,
        }
    }

    pub fn speech_ended(&self) -> Action {
        match (self.pending, self.timeout) {
            (Some(_), Some(t)) => Action::ArmTimer(t),
            _ => Action::Nothing,
        }
    }

    /// The timer armed at a speech end fired; `latest`: the caller has not spoken since.
    pub fn quiet_elapsed(&mut self, latest: bool) -> Action {
        if !latest {
            return Action::Nothing;
        }
        match self.pending.take() {
            Some(_) => Action::Resume,
            None => Action::Nothing,
        }
    }

    /// The paused reply ended some other way (a committed turn, a farewell, the hang-up).
    pub fn clear(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::*;

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn sound_without_words_resumes_after_the_quiet_timeout() {
        let mut r = Recovery::new(Some(T));
        r.speech_started();
        assert_eq!(r.window_passed(Some(4)), Nothing);
        assert_eq!(r.pending(), Some(4));
        assert_eq!(r.transcript("  "), Nothing, "blank text is no words");
        assert_eq!(r.speech_ended(), ArmTimer(T));
        assert_eq!(r.quiet_elapsed(true), Resume);
        assert_eq!(r.pending(), None);
        assert_eq!(r.quiet_elapsed(true), Nothing, "resumes once");
    }

    #[test]
    fn words_while_paused_or_before_the_window_are_a_barge_in() {
        let mut r = Recovery::new(Some(T));
        r.speech_started();
        r.window_passed(Some(1));
        assert_eq!(r.transcript("I need"), BargeIn);
        assert_eq!(r.pending(), None);
        assert_eq!(r.quiet_elapsed(true), Nothing);

        let mut r = Recovery::new(Some(T));
        r.speech_started();
        assert_eq!(r.transcript("wait"), Nothing);
        assert_eq!(r.window_passed(Some(1)), BargeIn);
        // Words of an earlier speech do not count for the next one.
        r.speech_started();
        assert_eq!(r.window_passed(Some(2)), Nothing);
    }

    #[test]
    fn speaking_again_restarts_the_wait() {
        let mut r = Recovery::new(Some(T));
        r.speech_started();
        r.window_passed(Some(1));
        assert_eq!(r.speech_ended(), ArmTimer(T));
        // A second, short sound: the pause goes on and its end arms a new timer.
        r.speech_started();
        assert_eq!(r.quiet_elapsed(false), Nothing, "stale timer");
        assert_eq!(r.window_passed(None), Nothing);
        assert_eq!(r.speech_ended(), ArmTimer(T));
        assert_eq!(r.quiet_elapsed(true), Resume);
    }

    #[test]
    fn a_short_sound_resumes_at_once_and_no_timeout_cancels_at_once() {
        let mut r = Recovery::new(Some(T));
        r.speech_started();
        assert_eq!(r.speech_ended(), Nothing);
        assert_eq!(r.window_passed(None), Resume);

        let mut r = Recovery::new(None);
        r.speech_started();
        assert_eq!(r.window_passed(Some(1)), BargeIn);
        r.speech_started();
        assert_eq!(r.window_passed(None), Resume);
    }

    #[test]
    fn a_cleared_pause_neither_resumes_nor_barges_in() {
        let mut r = Recovery::new(Some(T));
        r.speech_started();
        r.window_passed(Some(1));
        r.clear();
        assert_eq!(r.speech_ended(), Nothing);
        assert_eq!(r.transcript("hello"), Nothing);
        assert_eq!(r.quiet_elapsed(true), Nothing);
    }
}

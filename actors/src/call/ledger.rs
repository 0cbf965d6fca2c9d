//! What the current reply has said: text handed to TTS, audio produced and audio actually played.
//! Shared by dialogue (start, cancel), TTS (text, audio produced) and room (audio played), and kept
//! by the supervisor so a restarted TTS re-speaks only the unplayed part and a barge-in keeps in the
//! chat context only what the caller heard.

use std::time::Duration;

use tokio::time::Instant;

/// Speaking rate used to estimate a sentence's audio length before synthesis has finished.
const CHARS_PER_SECOND: f64 = 15.0;

#[derive(Debug, Default)]
pub struct ReplyLedger {
    pub reply_id: u64,
    /// All text handed to TTS for this reply, verbatim.
    pub text: String,
    /// Dialogue has sent the last sentence.
    pub text_ended: bool,
    /// The reply was interrupted; its audio must not be played any more.
    pub cancelled: bool,
    /// The caller started talking over the reply: playout pauses until the dialogue decides
    /// (barge-in: cancelled; a false start: resumed where it stopped).
    pub held: bool,
    /// Chars of `text` already played when the current TTS session started (after a restart).
    segment_start: usize,
    segment_produced: Duration,
    segment_played: Duration,
    segment_done: bool,
    pub tts_requested_at: Option<Instant>,
    pub first_audio_at: Option<Instant>,
    pub first_frame_out_at: Option<Instant>,
    pub playout_finished: bool,
}

impl ReplyLedger {
    /// A new reply begins; the previous one is forgotten.
    pub fn begin(&mut self, reply_id: u64) {
        *self = ReplyLedger {
            reply_id,
            ..Default::default()
        };
    }

    pub fn is_current(&self, reply_id: u64) -> bool {
        self.reply_id == reply_id && !self.cancelled
    }

    /// Whether playout of `reply_id` is paused for a possible barge-in.
    pub fn is_held(&self, reply_id: u64) -> bool {
        self.is_current(reply_id) && self.held
    }

    pub fn push_text(&mut self, reply_id: u64, text: &str) {
        if self.is_current(reply_id) {
            self.text.push_str(text);
        }
    }

    pub fn audio_produced(&mut self, reply_id: u64, d: Duration, now: Instant) {
        if self.is_current(reply_id) {
            self.segment_produced += d;
            self.first_audio_at.get_or_insert(now);
        }
    }

    pub fn synthesis_done(&mut self, reply_id: u64) {
        if self.is_current(reply_id) {
            self.segment_done = true;
        }
    }

    /// Returns true for the first frame of the reply.
    pub fn audio_played(&mut self, reply_id: u64, d: Duration, now: Instant) -> bool {
        if self.reply_id != reply_id {
            return false;
        }
        self.segment_played += d;
        if self.first_frame_out_at.is_none() {
            self.first_frame_out_at = Some(now);
            return true;
        }
        false
    }

    /// A new TTS session takes over after a restart: the played part stays said, the rest is to
    /// be spoken again. Returns the text to re-speak.
    pub fn restart_segment(&mut self) -> String {
        let played = self.played_chars();
        self.segment_start = played;
        self.segment_produced = Duration::ZERO;
        self.segment_played = Duration::ZERO;
        self.segment_done = false;
        self.text[played..].to_string()
    }

    /// Bytes of `text` already said before the current TTS session began.
    pub fn segment_start(&self) -> usize {
        self.segment_start
    }

    /// Number of leading bytes of `text` the caller has heard, cut at a word boundary.
    pub fn played_chars(&self) -> usize {
        let rest = &self.text[self.segment_start..];
        if rest.is_empty() || self.segment_played.is_zero() {
            return self.segment_start;
        }
        let estimate = Duration::from_secs_f64(rest.chars().count() as f64 / CHARS_PER_SECOND);
        let total = if self.segment_done {
            self.segment_produced
        } else {
            self.segment_produced.max(estimate)
        };
        let fraction = if total.is_zero() {
            0.0
        } else {
            (self.segment_played.as_secs_f64() / total.as_secs_f64()).min(1.0)
        };
        if fraction >= 1.0 {
            return self.text.len();
        }
        let target = (rest.len() as f64 * fraction) as usize;
        self.segment_start + word_boundary_before(rest, target)
    }

    /// The text the caller has heard.
    pub fn played_text(&self) -> &str {
        &self.text[..self.played_chars()]
    }
}

/// The largest index ≤ `at` that ends a whole word (just after a space or at a char boundary
/// preceded by whitespace), so truncation never leaves half a word.
fn word_boundary_before(s: &str, at: usize) -> usize {
    let at = at.min(s.len());
    if at == s.len() {
        return at;
    }
    s[..at]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn played_text_is_proportional_and_word_aligned() {
        let now = Instant::now();
        let mut l = ReplyLedger::default();
        l.begin(1);
        l.push_text(1, "Hello there. How can I help you today? ");
        l.audio_produced(1, Duration::from_secs(4), now);
        l.synthesis_done(1);
        l.audio_played(1, Duration::from_secs(2), now);
        let heard = l.played_text();
        assert!(heard.starts_with("Hello there."), "{heard:?}");
        assert!(heard.ends_with(' '), "{heard:?}");
        assert!(heard.len() < l.text.len());
    }

    #[test]
    fn restart_keeps_played_part() {
        let now = Instant::now();
        let mut l = ReplyLedger::default();
        l.begin(7);
        l.push_text(7, "one two three four ");
        l.audio_produced(7, Duration::from_secs(2), now);
        l.synthesis_done(7);
        l.audio_played(7, Duration::from_secs(1), now);
        let rest = l.restart_segment();
        assert_eq!(
            format!("{}{}", l.played_text(), rest),
            "one two three four "
        );
        assert!(!rest.is_empty());
    }

    #[test]
    fn cancelled_reply_takes_no_more_text() {
        let mut l = ReplyLedger::default();
        l.begin(2);
        l.cancelled = true;
        l.push_text(2, "late");
        assert!(l.text.is_empty());
    }
}

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
    /// The reply carries no caller data (fixed text, or an answer the LLM answer cache may keep),
    /// so its audio may be kept in the TTS phrase cache. Set by the dialogue before the first text.
    pub cacheable: bool,
    /// Chars of `text` already played when the current TTS session started (after a restart).
    segment_start: usize,
    /// TTS sessions of this reply restarted so far: audio of an older one is stale.
    segment: u32,
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
        let played = self.played_bytes();
        self.segment_start = played;
        self.segment += 1;
        self.segment_produced = Duration::ZERO;
        self.segment_played = Duration::ZERO;
        self.segment_done = false;
        self.text.get(played..).unwrap_or_default().to_owned()
    }

    /// Which TTS session of the reply produces its audio now (grows at every restart).
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Bytes of `text` already said before the current TTS session began (a char boundary).
    pub fn segment_start(&self) -> usize {
        self.segment_start
    }

    /// Number of leading bytes of `text` the caller has heard, cut at a word boundary (always
    /// a char boundary: replies carry curly quotes, dashes, emoji and any script).
    pub fn played_bytes(&self) -> usize {
        let rest = self.text.get(self.segment_start..).unwrap_or_default();
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
        // The fraction is of time, so of chars (speech follows characters, not UTF-8 bytes).
        let heard_chars = (rest.chars().count() as f64 * fraction) as usize;
        self.segment_start + word_boundary_before(rest, heard_chars)
    }

    /// The text the caller has heard.
    pub fn played_text(&self) -> &str {
        self.text.get(..self.played_bytes()).unwrap_or_default()
    }
}

/// The byte length of the longest prefix of `s` within its first `chars` chars that ends a
/// whole word (just after whitespace), so truncation never leaves half a word; all of `s` when
/// `chars` covers it.
fn word_boundary_before(s: &str, chars: usize) -> usize {
    let mut end = 0;
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n >= chars {
            return end;
        }
        if c.is_whitespace() {
            end = i + c.len_utf8();
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn curly_quotes_and_dashes_never_split_a_char() {
        let now = Instant::now();
        let text = "I\u{2019}m sorry \u{2014} Dr Hart\u{2019}s Monday is full \u{1F642}. ";
        for played_ms in (0..=3000).step_by(7) {
            let mut l = ReplyLedger::default();
            l.begin(1);
            l.push_text(1, text);
            l.audio_produced(1, Duration::from_secs(3), now);
            l.synthesis_done(1);
            l.audio_played(1, Duration::from_millis(played_ms), now);
            let heard = l.played_text().to_owned();
            let rest = l.restart_segment();
            assert_eq!(format!("{heard}{rest}"), text);
        }
    }

    /// Text in many scripts, with the whitespace of many scripts between the words.
    fn unicode_reply() -> impl Strategy<Value = String> {
        let word = "[a-zA-Z0-9\u{2019}\u{2014}\u{00e9}\u{0301}\u{05d0}-\u{05ea}\u{4e00}-\u{4e2f}\u{1F600}-\u{1F64F}.,!?]{1,8}";
        let space = prop_oneof![Just(" "), Just("\u{00a0}"), Just("\u{3000}"), Just("\n")];
        proptest::collection::vec((word, space), 0..24)
            .prop_map(|ws| ws.into_iter().map(|(w, s)| w + s).collect())
    }

    proptest! {
        // Whatever the text and however far playout got, what was heard is a whole-word prefix
        // of the text, grows with playout, and a restart re-speaks exactly the rest.
        #[test]
        fn heard_is_a_word_prefix_and_restarts_lose_nothing(
            text in prop_oneof![unicode_reply(), any::<String>()],
            produced_ms in 1u64..20_000,
            played in proptest::collection::vec(0u64..5_000, 1..5),
            done in any::<bool>(),
        ) {
            let now = Instant::now();
            let mut l = ReplyLedger::default();
            l.begin(1);
            l.push_text(1, &text);
            l.audio_produced(1, Duration::from_millis(produced_ms), now);
            if done { l.synthesis_done(1); }
            let mut last = 0;
            for ms in played {
                l.audio_played(1, Duration::from_millis(ms), now);
                let cut = l.played_bytes();
                prop_assert!(text.is_char_boundary(cut) && cut >= last);
                let heard = l.played_text();
                prop_assert!(text.starts_with(heard));
                prop_assert!(cut == text.len() || heard.is_empty() || heard.ends_with(char::is_whitespace));
                last = cut;
                let rest = l.restart_segment();
                prop_assert_eq!(format!("{}{}", l.played_text(), rest), text.clone());
                l.audio_produced(1, Duration::from_millis(produced_ms), now);
            }
        }
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

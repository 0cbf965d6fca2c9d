//! Which words of the scripted line a result carries. One script line is one utterance (speech up
//! to a pause of the line gap, or a `Finalize`); short endpoints inside it (a comma, a stop
//! consonant at `endpointing=10`) split the line over several finals the way Deepgram splits an
//! utterance, by how much voice has been heard, so the finals of an utterance add up to its line.

use serde_json::{json, Value};

use super::speech::Span;

/// Voiced audio per character of the line before its next word counts as heard. Deliberately
/// faster than speech (espeak's fixtures run 47-58 ms, people ~65 ms) so a line's words are all
/// out by the time its speaker stops.
const MS_PER_CHAR: u32 = 45;

/// One word of a line: as written, and bare (lowercase, no punctuation) as Deepgram's `word`.
#[derive(Clone, Debug, PartialEq)]
struct Word {
    written: String,
    bare: String,
    /// Characters of the line through this word (spaces included): when it counts as heard.
    through: usize,
}

/// The line being spoken on one channel.
#[derive(Debug, Default)]
pub(super) struct Utterance {
    words: Vec<Word>,
    given: usize,
    /// Voiced audio of the finals already given.
    voiced_ms: u32,
    open: bool,
}

impl Utterance {
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Start a line (voice was heard and no line was open).
    pub fn open(&mut self, line: &str) {
        let mut through = 0;
        let mut words = vec![];
        for w in line.split_whitespace() {
            let bare: String = w
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect();
            through += w.chars().count() + usize::from(through > 0);
            if !bare.is_empty() {
                words.push(Word {
                    written: w.to_string(),
                    bare,
                    through,
                });
            }
        }
        *self = Self {
            words,
            given: 0,
            voiced_ms: 0,
            open: true,
        };
    }

    /// The line is over: what was not given by now is never heard.
    pub fn close(&mut self) {
        *self = Self::default();
    }

    /// How many words `voiced_ms` of the line's voice cover.
    fn heard(&self, voiced_ms: u32) -> usize {
        let chars = (voiced_ms / MS_PER_CHAR) as usize;
        self.words.partition_point(|w| w.through <= chars)
    }

    /// An interim's words: those heard in `span` so far, not yet given.
    pub fn interim(&self, span: &Span, fmt: Format) -> Transcript {
        let upto = self.heard(self.voiced_ms + span.voiced_ms).max(self.given);
        Transcript::new(&self.words[self.given..upto], span, fmt)
    }

    /// A final's words: those heard by the end of `span` (all that are left if `rest`).
    pub fn take(&mut self, span: &Span, rest: bool, fmt: Format) -> Transcript {
        self.voiced_ms += span.voiced_ms;
        let upto = if rest {
            self.words.len()
        } else {
            self.heard(self.voiced_ms).max(self.given)
        };
        let t = Transcript::new(&self.words[self.given..upto], span, fmt);
        self.given = upto;
        t
    }
}

/// Output formatting the query (or a `Configure`) asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Format {
    /// `punctuate` or `smart_format`: punctuation and capitals, and `punctuated_word`.
    pub punctuate: bool,
}

/// A result's transcript and its `words` array.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Transcript {
    pub text: String,
    pub words: Vec<Value>,
}

impl Transcript {
    /// Words timed over the span's voice, each by its length: inside the speech heard, not at 0.
    /// (Words left over for a final without voice, a `Finalize` after the endpoint, fill its span.)
    fn new(words: &[Word], span: &Span, fmt: Format) -> Self {
        let Some(first) = words.first() else {
            return Self::default();
        };
        let (v0, v1) = span
            .voice
            .unwrap_or((span.start, span.start + span.duration));
        let base = first.through - first.written.chars().count();
        let total = words.last().map_or(1, |w| w.through - base).max(1) as f64;
        let at = |chars: usize| v0 + (v1 - v0) * (chars - base) as f64 / total;
        let items = words
            .iter()
            .map(|w| {
                let start = at(w.through - w.written.chars().count());
                let mut item = json!({
                    "word": w.bare,
                    "start": round(start),
                    "end": round(at(w.through)),
                    "confidence": 0.98,
                });
                if fmt.punctuate {
                    item["punctuated_word"] = w.written.clone().into();
                }
                item
            })
            .collect();
        let text: Vec<&str> = words
            .iter()
            .map(|w| {
                if fmt.punctuate {
                    w.written.as_str()
                } else {
                    w.bare.as_str()
                }
            })
            .collect();
        Self {
            text: text.join(" "),
            words: items,
        }
    }
}

/// Times to the millisecond, as Deepgram sends them.
pub(super) fn round(secs: f64) -> f64 {
    (secs * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(voiced_ms: u32, voice: (f64, f64)) -> Span {
        Span {
            start: 0.0,
            duration: voice.1 + 0.3,
            speech_final: true,
            from_finalize: false,
            voiced_ms,
            voice: Some(voice),
        }
    }

    const PUNCT: Format = Format { punctuate: true };

    #[test]
    fn finals_of_one_utterance_add_up_to_its_line() {
        let mut u = Utterance::default();
        u.open("Hello, I would like a doctor.");
        // "Hello, I" is 8 characters: 360 ms of voice.
        let a = u.take(&span(400, (0.1, 0.5)), false, PUNCT);
        assert_eq!(a.text, "Hello, I");
        let b = u.interim(&span(500, (0.6, 1.1)), PUNCT);
        assert_eq!(b.text, "would like");
        let c = u.take(&span(2_000, (0.6, 2.6)), false, PUNCT);
        assert_eq!(c.text, "would like a doctor.");
        assert!(u.is_open(), "the line stays open until its gap");
        assert_eq!(u.take(&span(500, (3.0, 3.5)), false, PUNCT).text, "");
    }

    #[test]
    fn words_are_timed_inside_the_voice_and_plain_without_punctuate() {
        let mut u = Utterance::default();
        u.open("Yes, nine thirty.");
        let t = u.take(&span(100, (1.0, 2.0)), true, Format::default());
        assert_eq!(t.text, "yes nine thirty");
        let times: Vec<(f64, f64)> = t
            .words
            .iter()
            .map(|w| {
                (
                    w["start"].as_f64().unwrap_or(-1.0),
                    w["end"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        assert_eq!(times[0].0, 1.0);
        assert_eq!(times[2].1, 2.0);
        assert!(times
            .windows(2)
            .all(|p| p[0].1 <= p[1].0 && p[0].0 < p[0].1));
        assert!(t.words.iter().all(|w| w.get("punctuated_word").is_none()));
    }

    #[test]
    fn no_voice_no_words() {
        let mut u = Utterance::default();
        u.open("thanks");
        let silent = Span {
            voice: None,
            voiced_ms: 0,
            ..span(0, (0.0, 0.0))
        };
        assert_eq!(u.take(&silent, false, PUNCT), Transcript::default());
    }
}

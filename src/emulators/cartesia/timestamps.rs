//! Word and phoneme timestamps (`add_timestamps`, `add_phoneme_timestamps`) that agree with the
//! audio the emulator sends: character `i` of an input is heard `i / chars_per_second` seconds
//! after the input's first sample, so a word spans its characters' share of the input's audio.
//! A word is announced once the chunk holding its end has gone out.

use std::collections::VecDeque;

use serde_json::{json, Value};

/// Samples for `chars` characters: the one formula for both the audio and its timestamps.
pub(super) fn samples_for(chars: usize, rate: u32, chars_per_second: f64) -> usize {
    (chars as f64 * f64::from(rate) / chars_per_second.max(0.1)).round() as usize
}

/// A word of the transcript and where it sits in the context's audio (samples from its start).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The whitespace-separated words of one input whose audio starts at sample `offset`. Built char
/// by char (never by byte index), so any UTF-8 text is safe.
pub(super) fn words(text: &str, offset: usize, rate: u32, chars_per_second: f64) -> Vec<Word> {
    let at = |c: usize| offset + samples_for(c, rate, chars_per_second);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut first = 0;
    for (i, ch) in text.chars().enumerate() {
        if ch.is_whitespace() {
            if !current.is_empty() {
                out.push(Word {
                    text: std::mem::take(&mut current),
                    start: at(first),
                    end: at(i),
                });
            }
        } else {
            if current.is_empty() {
                first = i;
            }
            current.push(ch);
        }
    }
    if !current.is_empty() {
        let n = text.chars().count();
        out.push(Word {
            text: current,
            start: at(first),
            end: at(n),
        });
    }
    out
}

/// Which timestamps a context asked for, and its words not yet announced.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    pub words: bool,
    pub phonemes: bool,
    pending: VecDeque<Word>,
}

impl Stamps {
    pub fn new(words: bool, phonemes: bool) -> Self {
        Self {
            words,
            phonemes,
            pending: VecDeque::new(),
        }
    }

    pub fn wanted(&self) -> bool {
        self.words || self.phonemes
    }

    pub fn add(&mut self, words: Vec<Word>) {
        if self.wanted() {
            self.pending.extend(words);
        }
    }

    /// The messages for the words whose audio has been sent (`sent` samples so far).
    pub fn due(&mut self, sent: usize, rate: u32, context_id: &str, flush_id: u64) -> Vec<Value> {
        let mut due = Vec::new();
        while self.pending.front().is_some_and(|w| w.end <= sent) {
            due.extend(self.pending.pop_front());
        }
        if due.is_empty() {
            return Vec::new();
        }
        let secs = |s: usize| s as f64 / f64::from(rate.max(1));
        let mut out = Vec::new();
        if self.words {
            let stamps = json!({
                "words": due.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
                "start": due.iter().map(|w| secs(w.start)).collect::<Vec<_>>(),
                "end": due.iter().map(|w| secs(w.end)).collect::<Vec<_>>(),
            });
            out.push(message(
                "timestamps",
                "word_timestamps",
                stamps,
                context_id,
                flush_id,
            ));
        }
        if self.phonemes {
            let (phonemes, start, end) = phonemes(&due);
            let stamps = json!({
                "phonemes": phonemes,
                "start": start.into_iter().map(secs).collect::<Vec<_>>(),
                "end": end.into_iter().map(secs).collect::<Vec<_>>(),
            });
            out.push(message(
                "phoneme_timestamps",
                "phoneme_timestamps",
                stamps,
                context_id,
                flush_id,
            ));
        }
        out
    }
}

fn message(kind: &str, field: &str, stamps: Value, context_id: &str, flush_id: u64) -> Value {
    let mut msg = json!({"type": kind, "done": false, "status_code": 206,
                         "context_id": context_id, field: stamps});
    if flush_id > 0 {
        msg["flush_id"] = json!(flush_id);
    }
    msg
}

/// Stand-in phonemes: each letter or digit of a word, lowercased, sharing the word's span evenly.
fn phonemes(words: &[Word]) -> (Vec<String>, Vec<usize>, Vec<usize>) {
    let (mut ph, mut start, mut end) = (Vec::new(), Vec::new(), Vec::new());
    for w in words {
        let letters: Vec<char> = w.text.chars().filter(|c| c.is_alphanumeric()).collect();
        let n = letters.len();
        for (i, c) in letters.into_iter().enumerate() {
            let span = w.end.saturating_sub(w.start);
            start.push(w.start + span * i / n);
            end.push(w.start + span * (i + 1) / n);
            ph.push(c.to_lowercase().collect());
        }
    }
    (ph, start, end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn words_span_their_characters_share_of_the_audio() {
        // 10 chars/s at 1000 Hz: 100 samples a character.
        let w = words("  Hi there ", 50, 1_000, 10.0);
        assert_eq!(
            w,
            vec![
                Word {
                    text: "Hi".into(),
                    start: 250,
                    end: 450
                },
                Word {
                    text: "there".into(),
                    start: 550,
                    end: 1_050
                },
            ]
        );
        // The input's audio is 11 chars = 1100 samples from 50: the last word ends inside it.
        assert!(w[1].end <= 50 + samples_for(11, 1_000, 10.0));
    }

    #[test]
    fn multibyte_text_is_split_by_characters() {
        let w = words("¿Qué tal? 日本語 naïve", 0, 1_000, 10.0);
        let texts: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["¿Qué", "tal?", "日本語", "naïve"]);
        assert_eq!((w[2].start, w[2].end), (1_000, 1_300));
        assert_eq!(w[3].end, samples_for(19, 1_000, 10.0));
        assert!(words(" \t\n", 0, 1_000, 10.0).is_empty());
    }

    #[test]
    fn words_are_announced_once_their_audio_is_out() {
        let mut s = Stamps::new(true, true);
        s.add(words("one two", 0, 1_000, 10.0));
        assert!(s.due(299, 1_000, "c", 0).is_empty());
        let first = s.due(300, 1_000, "c", 2);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0]["type"], "timestamps");
        assert_eq!(first[0]["word_timestamps"]["words"], json!(["one"]));
        assert_eq!(first[0]["word_timestamps"]["end"], json!([0.3]));
        assert_eq!(first[0]["flush_id"], 2);
        assert_eq!(first[1]["type"], "phoneme_timestamps");
        assert_eq!(
            first[1]["phoneme_timestamps"]["phonemes"],
            json!(["o", "n", "e"])
        );
        assert_eq!(first[1]["phoneme_timestamps"]["end"][2], json!(0.3));
        let rest = s.due(10_000, 1_000, "c", 0);
        assert_eq!(rest[0]["word_timestamps"]["start"], json!([0.4]));
        assert!(rest[0].get("flush_id").is_none());
        assert!(s.due(10_000, 1_000, "c", 0).is_empty());
    }

    #[test]
    fn nothing_is_kept_when_no_timestamps_were_asked_for() {
        let mut s = Stamps::new(false, false);
        s.add(words("one two", 0, 1_000, 10.0));
        assert!(s.due(usize::MAX, 1_000, "c", 0).is_empty());
    }
}

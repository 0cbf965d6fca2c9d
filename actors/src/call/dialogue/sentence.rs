//! Splits streamed LLM text into sentences for TTS, so the first sentence can be spoken while the
//! rest is still being generated. Text is kept verbatim (trailing spaces included) because TTS
//! contexts concatenate their inputs.

/// A sentence shorter than this is merged with the next one (short fragments sound choppy).
const MIN_SENTENCE_CHARS: usize = 12;
/// Words ending in a period that do not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "dr", "mr", "mrs", "ms", "st", "prof", "e.g", "i.e", "vs", "no", "a.m", "p.m",
];

#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
}

impl SentenceSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a fragment; returns the sentences it completed.
    pub fn push(&mut self, fragment: &str) -> Vec<String> {
        self.buf.push_str(fragment);
        let mut out = vec![];
        while let Some(end) = self.sentence_end() {
            let rest = self.buf.split_off(end);
            out.push(std::mem::replace(&mut self.buf, rest));
        }
        out
    }

    /// The stream ended: whatever is left is the last sentence.
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.buf);
        (!s.trim().is_empty()).then_some(s)
    }

    /// Byte index just past a sentence end and its following whitespace, if the buffer has one.
    fn sentence_end(&self) -> Option<usize> {
        let b = self.buf.as_bytes();
        let mut i = 0;
        while i + 1 < b.len() {
            let is_end = matches!(b[i], b'.' | b'!' | b'?') && b[i + 1].is_ascii_whitespace();
            if is_end && i + 1 >= MIN_SENTENCE_CHARS && !self.is_abbreviation(i) {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                // Only split once the next sentence has begun, so trailing spaces stay with this one.
                if j < b.len() {
                    return Some(j);
                }
                return None;
            }
            i += 1;
        }
        None
    }

    fn is_abbreviation(&self, dot: usize) -> bool {
        if self.buf.as_bytes()[dot] != b'.' {
            return false;
        }
        let before = self.buf.get(..dot).unwrap_or_default();
        // The whitespace before the word may be wider than a byte (NBSP, ideographic space).
        let word = before
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        ABBREVIATIONS.contains(&word.as_str())
            || word.chars().all(|c| c.is_ascii_digit()) && !word.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_on_sentence_ends_not_abbreviations() {
        let mut s = SentenceSplitter::new();
        let mut got = s.push("Dr. Lee can see you at 9.30 tomorrow. Would that ");
        got.extend(s.push("work for you? Great"));
        got.extend(s.finish());
        assert_eq!(
            got,
            vec![
                "Dr. Lee can see you at 9.30 tomorrow. ",
                "Would that work for you? ",
                "Great"
            ]
        );
    }

    proptest! {
        // However the text is fragmented, the sentences concatenate back to it verbatim.
        #[test]
        fn lossless_under_any_fragmentation(text in "[a-zA-Z .!?,]{0,200}", cuts in proptest::collection::vec(0usize..200, 0..20)) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.sort_unstable();
            let mut s = SentenceSplitter::new();
            let mut out = String::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain(std::iter::once(text.len())) {
                for sentence in s.push(text.get(prev..c).unwrap_or_default()) { out.push_str(&sentence); }
                prev = c;
            }
            if let Some(rest) = s.finish() { out.push_str(&rest); }
            prop_assert_eq!(out.trim_end(), text.trim_end());
        }

        // The same in any script, with multi-byte spaces before abbreviations and sentence ends.
        #[test]
        fn lossless_on_any_unicode(
            parts in proptest::collection::vec(prop_oneof![
                any::<String>(),
                Just("Dr. ".to_owned()), Just("\u{00a0}Dr. ".to_owned()), Just("\u{3000}9. ".to_owned()),
                Just("? ".to_owned()), Just("\u{2019}s! ".to_owned()), Just("\u{1F642}. ".to_owned()),
            ], 0..12),
            cuts in proptest::collection::vec(0usize..400, 0..20),
        ) {
            let text: String = parts.concat();
            let chars: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().filter_map(|c| chars.get(c).copied()).collect();
            cuts.sort_unstable();
            let mut s = SentenceSplitter::new();
            let mut out = String::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain(std::iter::once(text.len())) {
                for sentence in s.push(text.get(prev..c).unwrap_or_default()) { out.push_str(&sentence); }
                prev = c;
            }
            if let Some(rest) = s.finish() { out.push_str(&rest); }
            prop_assert_eq!(out.trim_end(), text.trim_end());
        }
    }
}

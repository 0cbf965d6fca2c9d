//! Question normalisation for exact-match keys: case, punctuation and spacing do not matter
//! ("What are your opening hours?" = "what are your opening hours"). No embeddings: there is no
//! embedding model that runs offline here, so two phrasings are two keys.

/// Lowercase, every run of non-alphanumeric characters one space, trimmed. Total on any Unicode
/// (never panics) and idempotent (`normalise(normalise(s)) == normalise(s)`).
pub fn normalise(s: &str) -> String {
    let mut out = once(s);
    // Lowercasing a few characters yields text that lowercases further (rare, but any Unicode
    // may come from STT): repeat to the fixed point, which a couple of rounds always reach.
    for _ in 0..4 {
        let next = once(&out);
        if next == out {
            break;
        }
        out = next;
    }
    out
}

fn once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_punctuation_and_spacing_do_not_matter() {
        assert_eq!(
            normalise("  What are your OPENING hours?! "),
            "what are your opening hours"
        );
        assert_eq!(
            normalise("what are   your opening-hours"),
            "what are your opening hours"
        );
        assert_eq!(normalise("¿Qué?"), "qué");
        assert_eq!(normalise("..."), "");
    }

    proptest! {
        #[test]
        fn total_and_idempotent(s in any::<String>()) {
            let once = normalise(&s);
            prop_assert_eq!(normalise(&once), once.clone());
            prop_assert!(!once.starts_with(' ') && !once.ends_with(' '));
            prop_assert!(!once.contains("  "));
        }

        #[test]
        fn only_letters_digits_and_single_spaces(s in "\\PC{0,64}") {
            let n = normalise(&s);
            prop_assert!(n.chars().all(|c| c == ' ' || c.is_alphanumeric()));
        }
    }
}

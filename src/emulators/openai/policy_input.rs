//! The receptionist's reading of two things callers say that the general parser does not cover
//! (a phone number, a date no calendar has), and the receptionist as the LLM double's policy.

use super::parse;

/// A phone number the caller gives ("my number is 020 7946 0018"): 7 to 15 digits, with a
/// leading + if said. Only when they say it is a phone number, so dates and times are never one.
pub(super) fn phone_number(t: &str) -> Option<String> {
    // The number is what follows the keyword, up to the end of the sentence or clause.
    let at = ["phone", "number", "reach me"]
        .iter()
        .filter_map(|k| t.find(k).map(|i| i + k.len()))
        .min()?;
    let said = t
        .get(at..)?
        .split([',', ';', '.'])
        .find(|p| p.chars().any(|c| c.is_ascii_digit()))?;
    let digits: String = said.chars().filter(char::is_ascii_digit).collect();
    let plus = said
        .trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+')
        .starts_with('+');
    (7..=15)
        .contains(&digits.len())
        .then(|| if plus { format!("+{digits}") } else { digits })
}

/// A month and day that are not on any calendar ("February thirtieth", "the thirty first of
/// April"), as said; `None` when the text names no such date.
pub(super) fn invalid_date(text: &str) -> Option<String> {
    let ws = parse::words(text);
    let (mi, month) = parse::month_word(&ws)?;
    // The day's words after the month ("thirtieth", "thirty first") or before "of" ("the thirty
    // first of April"), read by the birthday parser in January, where every day 1–31 exists.
    let mut spans = vec![(mi + 1, mi + 3), (mi + 1, mi + 2)];
    if mi >= 2 && ws[mi - 1] == "of" {
        spans.extend([(mi.saturating_sub(3), mi - 1), (mi - 2, mi - 1)]);
    }
    let day = spans.into_iter().find_map(|(a, b)| {
        let w = ws.get(a..b.min(ws.len()))?;
        parse::date_of_birth(&format!("january {} 2000", w.join(" "))).map(|d| d.d)
    })?;
    (parse::Date::new(2000, month, day).is_none()).then(|| {
        let name = ws[mi].as_str();
        let mut m = name.chars();
        let cap: String = m
            .next()
            .map(|c| c.to_uppercase().chain(m).collect())
            .unwrap_or_default();
        format!("{cap} {day}")
    })
}

/// This receptionist as the in-process LLM double's policy (`simulate --providers doubles`), so
/// both provider modes hold the same conversations (so only with the `simulate` feature).
#[cfg(feature = "simulate")]
pub fn double_policy() -> frontdesk_actors::doubles::llm::Policy {
    use super::{respond, Date};
    use frontdesk_actors::provider::ChatRequest;

    frontdesk_actors::doubles::llm::Policy(std::sync::Arc::new(|req: &ChatRequest, n: u64| {
        let r = respond(req, Date::today());
        let calls = (0..)
            .zip(r.calls)
            .map(|(k, (name, args))| frontdesk_actors::provider::ToolCall {
                id: format!("call_{n}_{k}"),
                name,
                arguments: args.to_string(),
            })
            .collect();
        (r.text, calls)
    }))
}

//! Which completions may be cached, and under which key. The one rule that keeps patient data out
//! of the cache, conservative by design (an allowlist, not a denylist):
//!
//! - every tool call so far in the conversation, and every one in a stored answer, is to a
//!   caller-independent tool (`CALLER_INDEPENDENT_TOOLS`: hospital data only). Any other tool
//!   (`find_patient`, `register_patient`, `list_appointments`, `book_appointment`,
//!   `cancel_appointment`, `reschedule_appointment`, or one we do not know) makes the rest of the
//!   call uncacheable: its results are caller data, and so is whatever follows them;
//! - nothing the caller said holds something caller-specific we can detect: no digits or number
//!   words (phones, birth dates, times), no month names (dates), no "@" (e-mail), no identity or
//!   possessive words ("name", "born", "phone", "my"…), no capitalised word inside a sentence
//!   and no non-ASCII letters (names, as STT writes them), nothing long;
//! - the key covers the whole conversation so far (normalised caller and agent text, tool calls
//!   and their results, without call ids), so a follow-up ("and on Saturday?") only hits after
//!   the same exchange; plus the prompt version (system prompt and tool specs), the model, the
//!   hospital's data version and, when the conversation names a relative day, today's date.
//!
//! Only a conversation that passes is looked up or stored, and only its normalised last caller
//! turn is kept as the row's `question`.

use std::collections::HashSet;

use chrono::NaiveDate;
use frontdesk_actors::provider::{ChatRequest, Role};
use sha2::{Digest, Sha256};

use super::normalise::normalise;

/// Tools whose results are the same for every caller (doctors, free slots: hospital data bound
/// to the data version, and the free slots' own results are part of the key).
pub const CALLER_INDEPENDENT_TOOLS: &[&str] = &["list_doctors", "list_free_slots"];

/// Caller turns longer than this are not cached (a monologue is likely personal).
const MAX_QUESTION_CHARS: usize = 200;

/// Words that identify or describe the caller (normalised forms).
const CALLER_WORDS: &[&str] = &[
    "name",
    "named",
    "names",
    "born",
    "birth",
    "birthday",
    "dob",
    "phone",
    "mobile",
    "number",
    "email",
    "mail",
    "address",
    "postcode",
    "zip",
    "insurance",
    "mr",
    "mrs",
    "ms",
    "miss",
    "my",
    "mine",
    "myself",
    "me",
    "im",
    "our",
    "son",
    "daughter",
    "wife",
    "husband",
    "mother",
    "father",
    "surname",
    "patient",
    "record",
    "records",
];

/// Spoken numbers (a phone or birth date said as words).
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "oh",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "double",
    "triple",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "thirtieth",
];

/// A month's name or its usual abbreviation (chrono reads "jan" and "january", any case).
fn names_a_month(w: &str) -> bool {
    w == "sept" || w.parse::<chrono::Month>().is_ok()
}

/// Capitalised words STT may write inside a sentence that are no name.
const CAPITALISED_OK: &[&str] = &[
    "i",
    "i'm",
    "i'd",
    "i'll",
    "i've",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "dr",
    "doctor",
];

/// Words that make an answer depend on today's date.
const DAY_WORDS: &[&str] = &[
    "today",
    "tomorrow",
    "tonight",
    "yesterday",
    "now",
    "next",
    "this",
    "week",
    "weekend",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "available",
    "earliest",
    "soon",
    "soonest",
    "later",
];

/// Why a completion is not cacheable (a metric-safe label; never the caller's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uncacheable {
    NoSystemPrompt,
    NotAnswering,
    CallerTool,
    CallerText,
}

/// A conversation that passed the rule: what the key is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The normalised last caller turn (stored as the row's `question`).
    pub question: String,
    /// Canonical form of the whole conversation (hashed into the key, never stored).
    pub context: String,
    /// Hash of the system prompt and the tool specs.
    pub prompt_version: String,
    /// The conversation names a relative day: the key includes today's date.
    pub day_bound: bool,
}

impl Question {
    /// The row key: prompt version, model, data version, the day if bound, the conversation.
    pub fn key(&self, model: &str, data_version: &str, today: NaiveDate) -> String {
        let day = if self.day_bound {
            today.to_string()
        } else {
            String::new()
        };
        let mut h = Sha256::new();
        for part in [
            "frontdesk-llm-answer-v1",
            &self.prompt_version,
            model,
            data_version,
            &day,
            &self.context,
        ] {
            h.update(part.len().to_le_bytes());
            h.update(part.as_bytes());
        }
        to_hex(&h.finalize())
    }
}

/// Apply the rule to a completion request.
pub fn assess(req: &ChatRequest) -> Result<Question, Uncacheable> {
    let (system, rest) = req
        .messages
        .split_first()
        .filter(|(s, _)| s.role == Role::System)
        .ok_or(Uncacheable::NoSystemPrompt)?;
    if !matches!(rest.last().map(|m| m.role), Some(Role::User | Role::Tool)) {
        return Err(Uncacheable::NotAnswering);
    }
    let mut context = String::new();
    let mut question = None;
    let mut day_bound = false;
    let mut allowed_ids = HashSet::new();
    for m in rest {
        match m.role {
            Role::System => return Err(Uncacheable::NoSystemPrompt),
            Role::User => {
                let q = caller_text(&m.content)?;
                day_bound |= q.split(' ').any(|w| DAY_WORDS.contains(&w));
                context.push_str(&format!("user:{q}\n"));
                question = Some(q);
            }
            Role::Assistant => {
                context.push_str(&format!("agent:{}\n", normalise(&m.content)));
                for c in &m.tool_calls {
                    if !CALLER_INDEPENDENT_TOOLS.contains(&c.name.as_str()) {
                        return Err(Uncacheable::CallerTool);
                    }
                    day_bound |= c.name == "list_free_slots";
                    allowed_ids.insert(c.id.as_str());
                    context.push_str(&format!("call:{}:{}\n", c.name, c.arguments));
                }
            }
            Role::Tool => {
                let known = m
                    .tool_call_id
                    .as_deref()
                    .is_some_and(|id| allowed_ids.contains(id));
                if !known {
                    return Err(Uncacheable::CallerTool);
                }
                context.push_str(&format!("result:{}\n", m.content));
            }
        }
    }
    let question = question.ok_or(Uncacheable::NotAnswering)?;
    Ok(Question {
        question,
        context,
        prompt_version: prompt_version(&system.content, req),
        day_bound,
    })
}

/// Lowercase hex of a digest.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn prompt_version(system: &str, req: &ChatRequest) -> String {
    let mut h = Sha256::new();
    h.update(system.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&req.tools).unwrap_or_default());
    to_hex(&h.finalize())
}

/// The caller's turn, normalised, if it holds nothing caller-specific we can detect.
pub fn caller_text(raw: &str) -> Result<String, Uncacheable> {
    let suspicious = raw.chars().count() > MAX_QUESTION_CHARS
        || raw
            .chars()
            .any(|c| c.is_numeric() || c == '@' || (c.is_alphabetic() && !c.is_ascii()))
        || capitalised_inside(raw);
    if suspicious {
        return Err(Uncacheable::CallerText);
    }
    let q = normalise(raw);
    let flagged = q
        .split(' ')
        .any(|w| CALLER_WORDS.contains(&w) || NUMBER_WORDS.contains(&w) || names_a_month(w))
        || q.contains("i m ");
    if flagged || q.is_empty() {
        return Err(Uncacheable::CallerText);
    }
    Ok(q)
}

/// A capitalised word that does not start a sentence (STT capitalises names).
fn capitalised_inside(raw: &str) -> bool {
    let mut sentence_start = true;
    for word in raw.split_whitespace() {
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        let capital = bare.chars().next().is_some_and(char::is_uppercase);
        let ok = CAPITALISED_OK.contains(&bare.to_lowercase().as_str());
        if capital && !sentence_start && !ok {
            return true;
        }
        if !bare.is_empty() {
            sentence_start = word.ends_with(['.', '?', '!']);
        }
    }
    false
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;

//! `[retention]`: how long conversations, usage rows and cache entries are kept, how many rows a
//! batch removes, and whether `start` runs the job on a schedule. Periods are humantime strings
//! ("1year", "6months", "90days"), parsed once here; a bad one names its key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Shortest period accepted: anything shorter could remove a call still in progress.
const MIN_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// Longest period accepted (a cut-off before year 1900 overflows nothing, but means "never").
const MAX_PERIOD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
const MIN_EVERY: Duration = Duration::from_secs(60);
const MAX_BATCH: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawRetention")]
pub struct RetentionConfig {
    /// Calls with their record ops, turns, tool calls and usage, by when the call started.
    pub conversations: Duration,
    /// Usage rows (provider usage and cost per call), by when their call started.
    pub usage: Duration,
    /// TTS phrase cache entries neither created nor hit within this long.
    pub tts_phrase_cache_unused: Duration,
    /// Rows per transaction: calls (with their rows), usage rows or cache entries.
    pub batch_size: usize,
    /// `start` runs the job this often; `None`: never (the default).
    pub every: Option<Duration>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        // humantime's "1year", "6months" and "90days", as config/default.toml writes them.
        Self {
            conversations: Duration::from_secs(31_557_600),
            usage: Duration::from_secs(6 * 2_630_016),
            tts_phrase_cache_unused: Duration::from_secs(90 * 86_400),
            batch_size: 500,
            every: None,
        }
    }
}

/// The TOML shape: strings, turned into durations by `try_from` so the error names the key.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    conversations: Option<String>,
    usage: Option<String>,
    tts_phrase_cache_unused: Option<String>,
    batch_size: Option<usize>,
    every: Option<String>,
}

/// "retention.KEY: …" for a period that is not a positive humantime duration.
fn period(key: &str, text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "retention.{key}: {t:?} is negative; a period must be positive"
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("retention.{key}: {t:?} is not a duration like \"1year\" or \"90days\" ({e})")
    })
}

impl TryFrom<RawRetention> for RetentionConfig {
    type Error = String;

    fn try_from(raw: RawRetention) -> Result<Self, String> {
        let mut cfg = Self::default();
        let mut errors = vec![];
        let mut set = |key: &str, text: Option<String>, slot: &mut Duration| {
            if let Some(t) = text {
                match period(key, &t) {
                    Ok(d) => *slot = d,
                    Err(e) => errors.push(e),
                }
            }
        };
        set("conversations", raw.conversations, &mut cfg.conversations);
        set("usage", raw.usage, &mut cfg.usage);
        set(
            "tts_phrase_cache_unused",
            raw.tts_phrase_cache_unused,
            &mut cfg.tts_phrase_cache_unused,
        );
        if let Some(t) = raw.every {
            match period("every", &t) {
                Ok(d) => cfg.every = Some(d),
                Err(e) => errors.push(e),
            }
        }
        if let Some(n) = raw.batch_size {
            cfg.batch_size = n;
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors.join("; "))
        }
    }
}

impl RetentionConfig {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        for (key, d) in [
            ("conversations", self.conversations),
            ("usage", self.usage),
            ("tts_phrase_cache_unused", self.tts_phrase_cache_unused),
        ] {
            if d < MIN_PERIOD {
                errors.push(format!(
                    "retention.{key} must be at least 1 day (it is {}): a shorter period would remove data still in use",
                    humantime::format_duration(d)
                ));
            } else if d > MAX_PERIOD {
                errors.push(format!("retention.{key} must be at most 100 years"));
            }
        }
        if self.usage > self.conversations {
            errors.push(format!(
                "retention.usage ({}) is longer than retention.conversations ({}): usage rows go with their call, so they cannot be kept longer",
                humantime::format_duration(self.usage),
                humantime::format_duration(self.conversations)
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            errors.push(format!("retention.batch_size must be 1..={MAX_BATCH}"));
        }
        if self.every.is_some_and(|d| d < MIN_EVERY) {
            errors.push("retention.every must be at least 1 minute".into());
        }
        errors
    }

    /// The cut-offs for a run at `now`: rows older than these go.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        // validate() bounds every period to 100 years, which chrono represents.
        let back =
            |d: Duration| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Cutoffs {
            now,
            conversations: back(self.conversations),
            usage: back(self.usage),
            tts_unused: back(self.tts_phrase_cache_unused),
        }
    }
}

/// What a run removes: calls that started before `conversations`, usage rows of calls that started
/// before `usage`, TTS phrases last created or hit before `tts_unused`, LLM answers expired at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    pub now: DateTime<Utc>,
    pub conversations: DateTime<Utc>,
    pub usage: DateTime<Utc>,
    pub tts_unused: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(toml_text: &str) -> Result<RetentionConfig, String> {
        toml::from_str::<RetentionConfig>(toml_text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn defaults_are_valid_and_off() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg, RetentionConfig::default());
        let spelled =
            "conversations = \"1year\"\nusage = \"6months\"\ntts_phrase_cache_unused = \"90days\"";
        assert_eq!(parse(spelled).unwrap(), cfg);
        assert!(cfg.validate().is_empty());
        assert!(cfg.every.is_none(), "the schedule is off by default");
    }

    #[test]
    fn periods_parse_as_humantime() {
        let cfg = parse("conversations = \"2years\"\nusage = \"30days\"\nevery = \"24h\"").unwrap();
        assert_eq!(cfg.usage, Duration::from_secs(30 * 86_400));
        assert_eq!(cfg.every, Some(Duration::from_secs(86_400)));
        assert!(cfg.validate().is_empty());
    }

    #[test]
    fn bad_periods_name_their_key() {
        let e = parse("conversations = \"-1year\"\nusage = \"soon\"").unwrap_err();
        assert!(
            e.contains("retention.conversations") && e.contains("negative"),
            "{e}"
        );
        assert!(
            e.contains("retention.usage") && e.contains("\"soon\""),
            "{e}"
        );
        let zero = parse("tts_phrase_cache_unused = \"0s\"\nbatch_size = 0").unwrap();
        let errors = zero.validate().join("\n");
        assert!(
            errors.contains("retention.tts_phrase_cache_unused"),
            "{errors}"
        );
        assert!(errors.contains("retention.batch_size"), "{errors}");
        let longer = parse("conversations = \"30days\"\nusage = \"60days\"").unwrap();
        assert!(longer
            .validate()
            .join("")
            .contains("longer than retention.conversations"));
        assert!(parse("keep = \"1y\"").is_err(), "unknown keys are refused");
    }

    #[test]
    fn cutoffs_go_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let c = RetentionConfig::default().cutoffs(now);
        assert_eq!(c.conversations, now - chrono::Duration::seconds(31_557_600));
        assert_eq!(c.tts_unused, now - chrono::Duration::days(90));
        assert!(c.usage > c.conversations);
    }
}

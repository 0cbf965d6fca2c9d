//! Client text messages: `KeepAlive`, `Finalize`, `CloseStream` and `Configure` (keyterms and
//! formatting features changed mid-stream, answered with `ConfigureSuccess`/`ConfigureFailure`),
//! anything else an in-band `Error` of variant `SchemaError`, as the SDK's models describe them.

use serde_json::Value;

use super::script::Format;

/// Deepgram's keyterm budget per update (tokens; a word is counted as one).
const KEYTERM_TOKENS: usize = 500;

/// What a client text message asks for.
#[derive(Debug, PartialEq)]
pub(super) enum Control {
    KeepAlive,
    Finalize,
    CloseStream,
    Configure(Configure),
    /// Not a message the server can parse: the `Error` description.
    Schema(String),
}

/// A `Configure`: `None` fields keep what is in effect.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Configure {
    pub keyterms: Option<Vec<String>>,
    pub features: Vec<(String, bool)>,
}

/// Why a `Configure` is refused (its `ConfigureFailure` code and description).
#[derive(Debug, PartialEq, thiserror::Error)]
pub(super) enum ConfigureError {
    #[error("Keyterms can only be updated on Nova-3 models, not {0}.")]
    KeytermsNotSupported(String),
    #[error("The keyterms come to {0} tokens; the limit is 500.")]
    KeytermLimitExceeded(usize),
}

impl ConfigureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeytermsNotSupported(_) => "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
            Self::KeytermLimitExceeded(_) => "CONFIGURE_KEYTERM_LIMIT_EXCEEDED",
        }
    }
}

pub(super) fn parse(text: &str) -> Control {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Control::Schema("The message is not valid JSON.".into());
    };
    match v.get("type").and_then(Value::as_str) {
        Some("KeepAlive") => Control::KeepAlive,
        Some("Finalize") => Control::Finalize,
        Some("CloseStream") => Control::CloseStream,
        Some("Configure") => configure(&v).unwrap_or_else(Control::Schema),
        Some(other) => Control::Schema(format!("Unknown message type {other:?}.")),
        None => Control::Schema("The message has no string `type`.".into()),
    }
}

fn configure(v: &Value) -> Result<Control, String> {
    let keyterms = match v.get("keyterms") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("`keyterms` must be an array of strings.")?,
        ),
        Some(_) => return Err("`keyterms` must be an array of strings.".into()),
    };
    let features = match v.get("features") {
        None | Some(Value::Null) => vec![],
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, b)| b.as_bool().map(|b| (k.clone(), b)))
            .collect::<Option<Vec<_>>>()
            .ok_or("`features` must map feature names to booleans.")?,
        Some(_) => return Err("`features` must map feature names to booleans.".into()),
    };
    Ok(Control::Configure(Configure { keyterms, features }))
}

impl Configure {
    /// Check against the stream's model; nothing is applied unless all of it is accepted.
    pub fn check(&self, model: &str) -> Result<(), ConfigureError> {
        let Some(keyterms) = &self.keyterms else {
            return Ok(());
        };
        if !model.starts_with("nova-3") {
            return Err(ConfigureError::KeytermsNotSupported(model.into()));
        }
        let tokens: usize = keyterms.iter().map(|k| k.split_whitespace().count()).sum();
        if tokens > KEYTERM_TOKENS {
            return Err(ConfigureError::KeytermLimitExceeded(tokens));
        }
        Ok(())
    }

    /// The formatting the features leave in effect (the others are accepted and have no effect
    /// on scripted text).
    pub fn apply(&self, mut fmt: Format) -> Format {
        for (name, on) in &self.features {
            if name == "punctuate" || name == "smart_format" {
                fmt.punctuate = *on;
            }
        }
        fmt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_read_and_bad_ones_are_schema_errors() {
        assert_eq!(parse(r#"{"type":"KeepAlive"}"#), Control::KeepAlive);
        assert_eq!(parse(r#"{"type":"Finalize"}"#), Control::Finalize);
        let c = parse(
            r#"{"type":"Configure","keyterms":["cardiology"],"features":{"punctuate":false}}"#,
        );
        assert_eq!(
            c,
            Control::Configure(Configure {
                keyterms: Some(vec!["cardiology".into()]),
                features: vec![("punctuate".into(), false)],
            })
        );
        for bad in [
            "not json",
            r#"{"type":"Shout"}"#,
            r#"{"kind":"KeepAlive"}"#,
            r#"{"type":"Configure","keyterms":"x"}"#,
            r#"{"type":"Configure","features":{"punctuate":"yes"}}"#,
        ] {
            assert!(matches!(parse(bad), Control::Schema(_)), "{bad}");
        }
    }

    #[test]
    fn keyterms_need_nova_3_and_fit_the_budget() {
        let c = Configure {
            keyterms: Some(vec!["heart doctor".into()]),
            features: vec![],
        };
        assert_eq!(c.check("nova-3-medical"), Ok(()));
        assert_eq!(
            c.check("nova-2").map_err(|e| e.code()),
            Err("CONFIGURE_KEYTERMS_NOT_SUPPORTED")
        );
        let big = Configure {
            keyterms: Some(vec!["word ".repeat(501)]),
            features: vec![],
        };
        assert_eq!(
            big.check("nova-3").map_err(|e| e.code()),
            Err("CONFIGURE_KEYTERM_LIMIT_EXCEEDED")
        );
    }
}

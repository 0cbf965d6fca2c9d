//! The token request's body: the room (required) and an optional identity, checked before anything
//! is signed.

use rand::distr::{Alphanumeric, SampleString};

use super::error::PlaygroundError;

/// Longest room name or identity accepted.
pub const MAX_NAME: usize = 64;
/// Largest request body read.
pub const MAX_BODY: usize = 1024;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    room: Option<String>,
    identity: Option<String>,
}

/// A checked request: both names present and well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub room: String,
    pub identity: String,
}

impl TokenRequest {
    /// Parse and check the body: the room must be named; a missing identity gets a random one.
    pub fn parse(body: &[u8]) -> Result<Self, PlaygroundError> {
        let raw: Raw = if body.iter().all(u8::is_ascii_whitespace) {
            Raw::default()
        } else {
            serde_json::from_slice(body).map_err(|e| {
                PlaygroundError::BadRequest(format!(
                    "the body must be JSON like {{\"room\": \"my-room\", \"identity\": \"me\"}}: {e}"
                ))
            })?
        };
        if raw.room.is_none() {
            return Err(PlaygroundError::BadRequest(
                "room is required: send JSON like {\"room\": \"my-room\"}".into(),
            ));
        }
        Ok(Self {
            room: name("room", raw.room, "playground")?,
            identity: name("identity", raw.identity, "caller")?,
        })
    }
}

/// `given` checked, or `<prefix>-<random>` when not given.
fn name(field: &str, given: Option<String>, prefix: &str) -> Result<String, PlaygroundError> {
    let Some(v) = given else {
        let suffix = Alphanumeric.sample_string(&mut rand::rng(), 8);
        return Ok(format!("{prefix}-{suffix}"));
    };
    let bad = |why: String| Err(PlaygroundError::BadRequest(format!("{field} {why}")));
    if v.is_empty() {
        return bad("must not be empty when given".into());
    }
    let len = v.chars().count();
    if len > MAX_NAME {
        return bad(format!(
            "is {len} characters long; at most {MAX_NAME} are allowed"
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return bad(format!(
            "may only hold letters, digits, '_', '-' and '.' (found {c:?})"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        TokenRequest::parse(body.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_room_is_required_and_the_identity_defaults_to_a_random_one() {
        assert!(err("{}").contains("room is required"));
        assert!(err("").contains("room is required"));
        assert!(err(r#"{"identity":"alice"}"#).contains("room is required"));
        let a = TokenRequest::parse(br#"{"room":"r1"}"#).unwrap();
        let b = TokenRequest::parse(br#"{"room":"r1"}"#).unwrap();
        assert!(a.identity.starts_with("caller-"), "{a:?}");
        assert_ne!(a.identity, b.identity);
        assert!(
            TokenRequest::parse(b"r1").is_err(),
            "a bare name is not JSON"
        );
    }

    #[test]
    fn given_names_are_kept_and_bad_ones_named() {
        let r = TokenRequest::parse(br#"{"room":"front-desk_1.a","identity":"alice"}"#).unwrap();
        assert_eq!(
            (r.room.as_str(), r.identity.as_str()),
            ("front-desk_1.a", "alice")
        );
        assert!(err(r#"{"room":""}"#).contains("room must not be empty"));
        let long = "r".repeat(65);
        assert!(err(&format!(r#"{{"room":"{long}"}}"#)).contains("65 characters"));
        assert!(err(r#"{"room":"r","identity":"a b"}"#).contains("identity may only hold"));
        assert!(err(r#"{"room":"caf\u00e9"}"#).contains("'é'"));
        assert!(err(r#"{"room":1}"#).contains("must be JSON"));
        assert!(err(r#"{"rooms":"x"}"#).contains("must be JSON"));
        assert!(err("not json").contains("must be JSON"));
    }
}

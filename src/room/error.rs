//! Why joining or holding a room failed.

use frontdesk_actors::provider::RoomError;
use livekit_signaling::SignalError;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The server refused the token (401/403): never retried.
    #[error("the LiveKit server refused the join token: {0}")]
    Unauthorized(String),
    #[error("cannot reach the LiveKit server: {0}")]
    Signal(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// An SDP the transport cannot apply or answer (unsupported codec, malformed offer).
    #[error("cannot negotiate media: {0}")]
    Negotiation(String),
    #[error("peer connection: {0}")]
    PeerConnection(String),
    #[error("ice failed: {0}")]
    Ice(String),
    #[error("the server asked us to leave: {0}")]
    Left(String),
    #[error("codec: {0}")]
    Codec(#[from] super::codec::CodecError),
}

impl TransportError {
    /// Network trouble may clear; a refused token, an SDP we cannot answer or a server that told
    /// us to leave will not.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            TransportError::Signal(_)
                | TransportError::Timeout(_)
                | TransportError::PeerConnection(_)
                | TransportError::Ice(_)
        )
    }

    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TransportError::Unauthorized(_) => "unauthorized",
            TransportError::Signal(_) => "signal",
            TransportError::Timeout(_) => "timeout",
            TransportError::Negotiation(_) => "negotiation",
            TransportError::PeerConnection(_) => "peer_connection",
            TransportError::Ice(_) => "ice",
            TransportError::Left(_) => "left",
            TransportError::Codec(_) => "codec",
        }
    }

    /// From the signal client's error. The server's error bodies can quote the join token:
    /// anything token-shaped is cut out, so no message of ours carries one.
    pub fn from_signal(e: SignalError) -> Self {
        match &e {
            SignalError::Client(status, body)
                if status.as_u16() == 401 || status.as_u16() == 403 =>
            {
                let body = strip_tokens(body.trim());
                TransportError::Unauthorized(format!("{status}: {body}"))
            }
            SignalError::TokenFormat => TransportError::Unauthorized(e.to_string()),
            SignalError::LeaveRequest { reason, .. } => TransportError::Left(format!("{reason:?}")),
            _ => TransportError::Signal(strip_tokens(&e.to_string())),
        }
    }

    pub fn into_room_error(self, room: &str) -> RoomError {
        if self.is_retriable() {
            RoomError::Transport(format!("room {room}: {self}"))
        } else {
            RoomError::Join {
                room: room.to_owned(),
                reason: self.to_string(),
            }
        }
    }
}

/// `text` with every JWT-shaped word (`eyJ…` with two dots: header.claims.signature) replaced.
pub fn strip_tokens(text: &str) -> String {
    let is_delim = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '=' | '(' | ')');
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(is_delim) {
        let (word, delim) = match piece.chars().last() {
            Some(c) if is_delim(c) => (piece.trim_end_matches(c), Some(c)),
            _ => (piece, None),
        };
        if word.starts_with("eyJ") && word.matches('.').count() >= 2 {
            out.push_str("[token]");
        } else {
            out.push_str(word);
        }
        out.extend(delim);
    }
    out
}

impl From<webrtc::error::Error> for TransportError {
    fn from(e: webrtc::error::Error) -> Self {
        TransportError::PeerConnection(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::strip_tokens;

    #[test]
    fn join_tokens_are_cut_from_messages() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        let body = format!("invalid token \"{jwt}\": signature mismatch, token={jwt}");
        let clean = strip_tokens(&body);
        assert!(!clean.contains("eyJ"), "{clean}");
        assert_eq!(
            clean,
            "invalid token \"[token]\": signature mismatch, token=[token]"
        );
        assert_eq!(strip_tokens("no token here"), "no token here");
    }

    proptest! {
        /// Any text: no panic, and only token-shaped words change.
        #[test]
        fn any_text_survives(text in "\\PC*") {
            let out = strip_tokens(&text);
            if !text.contains("eyJ") {
                prop_assert_eq!(out, text);
            }
        }
    }
}

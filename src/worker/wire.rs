//! The agent protocol on the wire (protocols.md §1): the endpoint URL, the worker token and the
//! `WorkerMessage`s the worker sends, as binary protobuf frames.

use std::collections::HashMap;
use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as lk;
use livekit_protocol::worker_message::Message as Out;
use prost::Message as _;

use super::config::WorkerConfig;
use super::error::WorkerError;

/// What the reference worker uses; the token is minted again on every connection attempt.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

/// `http(s)://host/prefix/` → `ws(s)://host/prefix/agent`, as the Python worker does.
pub fn agent_url(base: &str) -> Result<String, WorkerError> {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(WorkerError::Config(
            "worker.url (LIVEKIT_URL) must start with ws://, wss://, http:// or https://".into(),
        ));
    };
    Ok(format!("{}/agent", ws.trim_end_matches('/')))
}

/// A worker token: only `video.agent = true` is needed (no identity, no room).
pub fn worker_token(cfg: &WorkerConfig) -> Result<String, WorkerError> {
    AccessToken::with_api_key(cfg.api_key.expose(), cfg.api_secret.expose())
        .with_grants(VideoGrants {
            agent: true,
            ..Default::default()
        })
        .with_ttl(TOKEN_TTL)
        .to_jwt()
        .map_err(|e| WorkerError::Token(e.to_string()))
}

/// The first message on every connection.
pub fn register(agent_name: &str, version: &str) -> lk::WorkerMessage {
    // `agent` is deprecated in favour of the participant kind, but the reference workers still
    // set it and servers still read it.
    #[allow(deprecated)]
    let permissions = lk::ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        can_update_metadata: true,
        agent: true,
        ..Default::default()
    };
    wrap(Out::Register(lk::RegisterWorkerRequest {
        r#type: lk::JobType::JtRoom as i32,
        agent_name: agent_name.to_owned(),
        version: version.to_owned(),
        allowed_permissions: Some(permissions),
        ..Default::default()
    }))
}

/// How the worker joins a job's room when it accepts the offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acceptance {
    pub identity: String,
    pub name: String,
}

impl Acceptance {
    /// The reference worker's defaults: identity `agent-<job id>`, named after the agent.
    pub fn for_job(job_id: &str, agent_name: &str) -> Self {
        Self {
            identity: format!("agent-{job_id}"),
            name: agent_name.to_owned(),
        }
    }
}

pub fn availability(
    job_id: &str,
    accept: Option<&Acceptance>,
    agent_name: &str,
) -> lk::WorkerMessage {
    let mut resp = lk::AvailabilityResponse {
        job_id: job_id.to_owned(),
        available: accept.is_some(),
        ..Default::default()
    };
    if let Some(a) = accept {
        resp.participant_identity = a.identity.clone();
        resp.participant_name = a.name.clone();
        resp.participant_attributes =
            HashMap::from([("lk.agent.name".to_owned(), agent_name.to_owned())]);
    }
    wrap(Out::Availability(resp))
}

/// The periodic load report; `status` is always set so the server never keeps a stale one.
pub fn worker_status(
    full: bool,
    load: f32,
    job_count: u32,
    draining: bool,
    seq: u64,
) -> lk::WorkerMessage {
    let status = if full {
        lk::WorkerStatus::WsFull
    } else {
        lk::WorkerStatus::WsAvailable
    };
    wrap(Out::UpdateWorker(lk::UpdateWorkerStatus {
        status: Some(status as i32),
        load,
        job_count,
        draining,
        seq,
    }))
}

pub fn job_status(job_id: &str, status: lk::JobStatus, error: &str) -> lk::WorkerMessage {
    wrap(Out::UpdateJob(lk::UpdateJobStatus {
        job_id: job_id.to_owned(),
        status: status as i32,
        error: error.to_owned(),
    }))
}

fn wrap(message: Out) -> lk::WorkerMessage {
    lk::WorkerMessage {
        message: Some(message),
    }
}

pub fn encode(msg: &lk::WorkerMessage) -> Vec<u8> {
    msg.encode_to_vec()
}

/// A server frame, or a protocol error (counted) that ends the connection; the worker reconnects
/// and running calls are untouched.
pub fn decode(frame: &[u8]) -> Result<lk::ServerMessage, WorkerError> {
    lk::ServerMessage::decode(frame).map_err(|e| {
        frontdesk_actors::metrics::input_rejected("livekit", "undecodable");
        WorkerError::Protocol(format!("undecodable server message: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_matches_the_test_vector() {
        let bytes = encode(&register("my-agent", "0.1.0"));
        let expected: [u8; 31] = [
            0x0a, 0x1d, 0x1a, 0x05, 0x30, 0x2e, 0x31, 0x2e, 0x30, 0x3a, 0x0a, 0x08, 0x01, 0x10,
            0x01, 0x18, 0x01, 0x50, 0x01, 0x58, 0x01, 0x42, 0x08, 0x6d, 0x79, 0x2d, 0x61, 0x67,
            0x65, 0x6e, 0x74,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn garbage_from_the_server_is_a_protocol_error() {
        // A field-1 length prefix promising more bytes than the frame has.
        let err = decode(&[0x0a, 0x7f, 0x01]).unwrap_err();
        assert!(matches!(err, WorkerError::Protocol(_)), "{err}");
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn agent_url_follows_the_python_worker() {
        for (input, want) in [
            ("http://lk:7880", "ws://lk:7880/agent"),
            ("https://x.livekit.cloud/", "wss://x.livekit.cloud/agent"),
            ("wss://x/prefix//", "wss://x/prefix/agent"),
            ("ws://127.0.0.1:1", "ws://127.0.0.1:1/agent"),
        ] {
            assert_eq!(agent_url(input).unwrap(), want);
        }
        assert!(matches!(agent_url("ftp://x"), Err(WorkerError::Config(_))));
    }

    #[test]
    fn worker_token_carries_the_agent_grant() {
        let cfg = WorkerConfig {
            api_key: crate::secret::Secret::new("key"),
            api_secret: crate::secret::Secret::new("secret-secret-secret-secret-32b"),
            ..WorkerConfig::default()
        };
        let jwt = worker_token(&cfg).unwrap();
        let verifier = livekit_api::access_token::TokenVerifier::with_api_key(
            "key",
            "secret-secret-secret-secret-32b",
        );
        let claims = verifier.verify(&jwt).unwrap();
        assert!(claims.video.agent);
        assert_eq!(claims.iss, "key");
        let empty = WorkerConfig::default();
        let err = worker_token(&empty).unwrap_err().to_string();
        assert!(err.contains("LIVEKIT_API_KEY"), "{err}");
    }
}

//! `frontdesk token`: a room join token for a test participant (a softphone, the LiveKit CLI or
//! the meet demo), signed with the worker's LiveKit key and secret.

use std::time::Duration;

use crate::worker::WorkerConfig;
use livekit_api::access_token::{AccessToken, VideoGrants};

#[derive(clap::Args, Clone, Debug)]
pub struct TokenArgs {
    /// Room to join.
    #[arg(long)]
    pub room: String,
    /// Participant identity.
    #[arg(long, default_value = "test-caller")]
    pub identity: String,
    /// How long the token is valid (e.g. 30m, 6h).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot sign a token without {0}")]
    MissingCredentials(String),
    #[error("room and identity must not be empty")]
    EmptyClaim,
    #[error("signing the token: {0}")]
    Sign(String),
}

impl TokenError {
    /// Missing credentials or claims: nothing changes on a retry.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The signed JWT: join, publish and subscribe in `args.room` only.
pub fn mint(worker: &WorkerConfig, args: &TokenArgs) -> Result<String, TokenError> {
    check(worker, args)?;
    let grants = VideoGrants {
        room_join: true,
        room: args.room.clone(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        ..Default::default()
    };
    sign(worker, args, grants, None)
}

/// A token for the agent itself joining `args.room` directly (`frontdesk connect`, `loadtest`
/// agents): the participant is of kind agent, as a dispatched job's would be.
pub fn mint_agent(worker: &WorkerConfig, args: &TokenArgs) -> Result<String, TokenError> {
    check(worker, args)?;
    let grants = VideoGrants {
        room_join: true,
        room: args.room.clone(),
        agent: true,
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        ..Default::default()
    };
    sign(worker, args, grants, Some("agent"))
}

/// A token for a playground caller: join, publish and subscribe in `args.room` only, and a room
/// configuration that makes the server dispatch `worker.agent_name` when the room is created.
pub fn mint_playground(worker: &WorkerConfig, args: &TokenArgs) -> Result<String, TokenError> {
    check(worker, args)?;
    let grants = VideoGrants {
        room_join: true,
        room: args.room.clone(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        ..Default::default()
    };
    let dispatch = livekit_protocol::RoomConfiguration {
        agents: vec![livekit_protocol::RoomAgentDispatch {
            agent_name: worker.agent_name.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    sign_with(worker, args, grants, None, Some(dispatch))
}

fn sign(
    worker: &WorkerConfig,
    args: &TokenArgs,
    grants: VideoGrants,
    kind: Option<&str>,
) -> Result<String, TokenError> {
    sign_with(worker, args, grants, kind, None)
}

fn sign_with(
    worker: &WorkerConfig,
    args: &TokenArgs,
    grants: VideoGrants,
    kind: Option<&str>,
    room_config: Option<livekit_protocol::RoomConfiguration>,
) -> Result<String, TokenError> {
    let mut token = AccessToken::with_api_key(worker.api_key.expose(), worker.api_secret.expose())
        .with_identity(&args.identity)
        .with_ttl(args.ttl)
        .with_grants(grants);
    if let Some(kind) = kind {
        token = token.with_kind(kind);
    }
    if let Some(config) = room_config {
        token = token.with_room_config(config);
    }
    // The library's messages hold no key material.
    token.to_jwt().map_err(|e| TokenError::Sign(e.to_string()))
}

fn check(worker: &WorkerConfig, args: &TokenArgs) -> Result<(), TokenError> {
    let mut missing = vec![];
    if worker.api_key.is_empty() {
        missing.push("worker.api_key (LIVEKIT_API_KEY)");
    }
    if worker.api_secret.is_empty() {
        missing.push("worker.api_secret (LIVEKIT_API_SECRET)");
    }
    if !missing.is_empty() {
        return Err(TokenError::MissingCredentials(missing.join(" and ")));
    }
    if args.room.trim().is_empty() || args.identity.trim().is_empty() {
        return Err(TokenError::EmptyClaim);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use livekit_api::access_token::TokenVerifier;

    fn args() -> TokenArgs {
        TokenArgs {
            room: "front-desk-test".into(),
            identity: "alice".into(),
            ttl: Duration::from_secs(600),
        }
    }

    #[test]
    fn token_verifies_and_grants_only_the_room() {
        let worker = WorkerConfig {
            api_key: Secret::new("APItestplaceholder"),
            api_secret: Secret::new("test-placeholder-secret-0123456789"),
            ..Default::default()
        };
        let jwt = mint(&worker, &args()).unwrap();
        let claims = TokenVerifier::with_api_key("APItestplaceholder", worker.api_secret.expose())
            .verify(&jwt)
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.video.room, "front-desk-test");
        assert!(claims.video.room_join && !claims.video.room_admin);
        assert!(claims.exp > claims.nbf && claims.exp - claims.nbf <= 601);
    }

    #[test]
    fn missing_credentials_are_named() {
        let err = mint(&WorkerConfig::default(), &args()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("LIVEKIT_API_KEY") && msg.contains("LIVEKIT_API_SECRET"),
            "{msg}"
        );
    }
}

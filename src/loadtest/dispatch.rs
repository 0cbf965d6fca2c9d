//! Explicit agent dispatch through the server's API (Twirp, JSON): what `lk dispatch create` and
//! the SDKs' `AgentDispatchService.CreateDispatch` do.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use serde::Deserialize;

use super::LoadtestError;
use crate::secret::Secret;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Creates dispatches of one agent into rooms.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    http: reqwest::Client,
    endpoint: String,
    api_key: String,
    api_secret: Secret,
    agent_name: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(default)]
    id: String,
}

impl Dispatcher {
    pub fn new(
        url: &str,
        api_key: &str,
        api_secret: &Secret,
        agent_name: &str,
    ) -> Result<Self, LoadtestError> {
        let base = http_url(url)?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| LoadtestError::Args(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            endpoint: format!("{base}/twirp/livekit.AgentDispatchService/CreateDispatch"),
            api_key: api_key.to_owned(),
            api_secret: api_secret.clone(),
            agent_name: agent_name.to_owned(),
        })
    }

    /// Dispatch the agent into `room`; returns the dispatch id.
    pub async fn dispatch(&self, room: &str) -> Result<String, LoadtestError> {
        let token = self.admin_token(room)?;
        let body = serde_json::json!({ "agent_name": self.agent_name, "room": room });
        let resp = self
            .http
            .post(&self.endpoint)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| LoadtestError::Dispatch {
                retriable: true,
                reason: e.without_url().to_string(),
            })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(LoadtestError::Dispatch {
                retriable: status.is_server_error(),
                reason: format!("{status}: {}", text.trim()),
            });
        }
        let created: Created =
            serde_json::from_str(&text).map_err(|e| LoadtestError::Dispatch {
                retriable: false,
                reason: format!("unexpected answer ({e})"),
            })?;
        Ok(created.id)
    }

    /// A short-lived server API token: room admin of `room` only.
    fn admin_token(&self, room: &str) -> Result<String, LoadtestError> {
        AccessToken::with_api_key(&self.api_key, self.api_secret.expose())
            .with_identity("frontdesk-loadtest")
            .with_ttl(Duration::from_secs(600))
            .with_grants(VideoGrants {
                room_admin: true,
                room: room.to_owned(),
                ..Default::default()
            })
            .to_jwt()
            .map_err(|e| LoadtestError::Args(format!("signing the API token: {e}")))
    }
}

/// The server's HTTP base URL for a `ws(s)://` or `http(s)://` URL, without a trailing slash.
pub fn http_url(url: &str) -> Result<String, LoadtestError> {
    let parsed =
        url::Url::parse(url).map_err(|e| LoadtestError::Args(format!("--url {url:?}: {e}")))?;
    let scheme = match parsed.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => {
            return Err(LoadtestError::Args(format!(
                "--url: scheme {other:?} is not ws, wss, http or https"
            )))
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| LoadtestError::Args(format!("--url {url:?} has no host")))?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    Ok(format!("{scheme}://{host}{port}{path}"))
}

/// The URL's port (the scheme's default when it names none).
pub fn port_of(url: &str) -> Option<u16> {
    url::Url::parse(url).ok()?.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_url_maps_schemes_and_keeps_ports() {
        assert_eq!(
            http_url("ws://127.0.0.1:7880").unwrap(),
            "http://127.0.0.1:7880"
        );
        assert_eq!(
            http_url("wss://x.livekit.cloud/").unwrap(),
            "https://x.livekit.cloud"
        );
        assert_eq!(http_url("http://h:1/lk/").unwrap(), "http://h:1/lk");
        assert!(http_url("ftp://h").is_err());
        assert!(http_url("not a url").is_err());
        assert_eq!(port_of("ws://127.0.0.1:7880"), Some(7880));
        assert_eq!(port_of("wss://x.livekit.cloud"), Some(443));
    }
}

//! `[worker]`: how the agent worker reaches LiveKit and how much it takes on. The URL and
//! credentials come from `LIVEKIT_URL`, `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET`.

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// `ws(s)://` or `http(s)://` LiveKit server; empty: not configured.
    pub url: String,
    pub api_key: Secret,
    pub api_secret: Secret,
    /// Explicit dispatch name; LiveKit dispatches jobs to workers registered under it.
    pub agent_name: String,
    /// Concurrent calls this process takes; at the limit it reports WS_FULL.
    pub max_calls: u32,
    /// Load (0..1) at or above which the worker reports WS_FULL and refuses offers.
    pub load_threshold: f32,
    /// Count CPU use in the load, as LiveKit Agents do: the reported load is
    /// max(slots taken / max_calls, CPU utilisation over 2.5 s), and CPU at or above the
    /// threshold refuses offers. A threshold of 1.0 (`dev`) leaves fullness to `max_calls`.
    pub load_from_cpu: bool,
    /// How often the worker reports its status and load.
    pub status_interval_ms: u64,
    /// How long an accepted offer waits for its assignment before the slot is released.
    pub assignment_timeout_ms: u64,
    /// On SIGTERM: how long running calls may go on before the worker exits anyway.
    pub drain_timeout_ms: u64,
    /// Reconnect backoff ceiling; the delay grows 0, 2, 4, ... seconds up to it.
    pub reconnect_max_delay_ms: u64,
    /// Consecutive failed connects before the worker gives up (health goes 503).
    pub max_reconnect_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            api_key: Secret::default(),
            api_secret: Secret::default(),
            agent_name: "frontdesk".into(),
            max_calls: 100,
            load_threshold: 0.7,
            load_from_cpu: true,
            status_interval_ms: 2_500,
            assignment_timeout_ms: 7_500,
            drain_timeout_ms: 600_000,
            reconnect_max_delay_ms: 10_000,
            max_reconnect_attempts: 16,
        }
    }
}

impl WorkerConfig {
    /// Every problem, named by its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        let schemes = ["ws://", "wss://", "http://", "https://"];
        if !self.url.is_empty() && !schemes.iter().any(|s| self.url.starts_with(s)) {
            errors.push(
                "worker.url (LIVEKIT_URL) must start with ws://, wss://, http:// or https://"
                    .into(),
            );
        }
        if !self.url.is_empty() && self.api_key.is_empty() {
            errors.push("worker.api_key (LIVEKIT_API_KEY) is required with a LiveKit URL".into());
        }
        if !self.url.is_empty() && self.api_secret.is_empty() {
            errors.push(
                "worker.api_secret (LIVEKIT_API_SECRET) is required with a LiveKit URL".into(),
            );
        }
        if self.agent_name.len() > 64
            || self
                .agent_name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push("worker.agent_name must be at most 64 characters, without spaces".into());
        }
        if self.max_calls == 0 {
            errors.push("worker.max_calls must be at least 1".into());
        }
        if !(self.load_threshold > 0.0 && self.load_threshold <= 1.0) {
            errors.push("worker.load_threshold must be in (0, 1]".into());
        }
        for (name, v) in [
            ("status_interval_ms", self.status_interval_ms),
            ("assignment_timeout_ms", self.assignment_timeout_ms),
            ("drain_timeout_ms", self.drain_timeout_ms),
            ("reconnect_max_delay_ms", self.reconnect_max_delay_ms),
        ] {
            if v == 0 {
                errors.push(format!("worker.{name} must be positive"));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_required_with_a_url() {
        let cfg = WorkerConfig {
            url: "ftp://lk".into(),
            max_calls: 0,
            ..WorkerConfig::default()
        };
        let errors = cfg.validate().join("\n");
        for key in [
            "worker.url",
            "LIVEKIT_API_KEY",
            "LIVEKIT_API_SECRET",
            "worker.max_calls",
        ] {
            assert!(errors.contains(key), "{key} missing: {errors}");
        }
        assert!(WorkerConfig::default().validate().is_empty());
    }
}

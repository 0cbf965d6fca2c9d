//! What the service knows about itself: each dependency's state (for `/health`) and the agent
//! worker's state (for `/worker`). Written by the worker and the dependency checks, read by the
//! HTTP server; one shared `Arc<ServiceStatus>` per process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// One dependency's last known state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum DepState {
    /// Not checked yet.
    Unknown,
    Up,
    /// Down, with why (no secrets in it).
    Down(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DepStatus {
    #[serde(flatten)]
    pub state: DepState,
    /// A critical dependency that is down makes the service unhealthy (503).
    pub critical: bool,
}

/// The agent worker as `/worker` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkerSnapshot {
    pub agent_name: String,
    /// Given by the server at registration.
    pub worker_id: Option<String>,
    pub connected: bool,
    pub draining: bool,
    pub active_calls: u32,
    pub max_calls: u32,
    /// 0.0..=1.0, as reported to the server.
    pub load: f32,
    pub protocol_version: i32,
    /// Which `RoomIo` joins rooms (the media transport).
    pub connector: String,
}

fn healthy(deps: &BTreeMap<String, DepStatus>) -> bool {
    deps.values()
        .all(|d| !d.critical || !matches!(d.state, DepState::Down(_)))
}

#[derive(Debug, Default)]
pub struct ServiceStatus {
    deps: Mutex<BTreeMap<String, DepStatus>>,
    worker: Mutex<WorkerSnapshot>,
}

impl ServiceStatus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a dependency's state (`name`: "database", "livekit", "deepgram", ...).
    pub fn set_dep(&self, name: &str, state: DepState, critical: bool) {
        let up = match &state {
            DepState::Up => 1.0,
            DepState::Down(_) => 0.0,
            DepState::Unknown => f64::NAN,
        };
        let mut deps = self.deps.lock().unwrap_or_else(|p| p.into_inner());
        deps.insert(name.to_owned(), DepStatus { state, critical });
        let healthy = healthy(&deps);
        drop(deps);
        // Dependency names come from the configuration, never from a call: bounded labels.
        metrics::gauge!(crate::telemetry::DEPENDENCY_UP, "dependency" => name.to_owned()).set(up);
        metrics::gauge!(crate::telemetry::HEALTHY).set(if healthy { 1.0 } else { 0.0 });
    }

    pub fn deps(&self) -> BTreeMap<String, DepStatus> {
        self.deps.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Healthy unless a critical dependency is down.
    pub fn healthy(&self) -> bool {
        healthy(&self.deps())
    }

    pub fn update_worker(&self, f: impl FnOnce(&mut WorkerSnapshot)) {
        f(&mut self.worker.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn worker(&self) -> WorkerSnapshot {
        self.worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_critical_dependency_down_is_unhealthy() {
        let s = ServiceStatus::new();
        s.set_dep("database", DepState::Unknown, true);
        s.set_dep("deepgram", DepState::Down("refused".into()), false);
        assert!(s.healthy());
        s.set_dep("database", DepState::Down("refused".into()), true);
        assert!(!s.healthy());
        s.set_dep("database", DepState::Up, true);
        assert!(s.healthy());
    }
}

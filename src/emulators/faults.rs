//! Fault injection shared by the provider emulators: which connection or request gets which fault,
//! decided deterministically from a seed and a counter (so a run can be repeated), plus faults forced
//! by a test for the next connection, and counters of what was injected.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use frontdesk_actors::call::shared::lock;
use serde::{Deserialize, Serialize};

/// A way a provider can misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Close the TCP/websocket connection without a close handshake after some messages (a
    /// websocket's goes [`super::DROP_LINGER`] later, so the client can read those messages).
    DropSocket,
    /// Stop answering (keep the connection open).
    Stall,
    /// HTTP 429 (handshake or request).
    RateLimited,
    /// HTTP 5xx (handshake or request).
    ServerError,
    /// A message that is not valid JSON (or not the expected shape).
    MalformedJson,
    /// Close the websocket with an unexpected close code.
    WrongCloseCode,
    /// The provider's own in-band error message after a few good ones (OpenAI's
    /// `data: {"error": ...}` mid-stream). Only where the API has one.
    ErrorEvent,
}

impl FaultKind {
    /// The transport-level kinds (every emulator supports them; `ErrorEvent` is per API).
    pub const ALL: &[FaultKind] = Self::EVERY.split_at(6).0;

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::DropSocket => "drop_socket",
            FaultKind::Stall => "stall",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::ServerError => "server_error",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::WrongCloseCode => "wrong_close_code",
            FaultKind::ErrorEvent => "error_event",
        }
    }

    /// Every kind: the transport ones, then the API's in-band error (last: `ALL` is the rest).
    pub const EVERY: [FaultKind; 7] = [
        FaultKind::DropSocket,
        FaultKind::Stall,
        FaultKind::RateLimited,
        FaultKind::ServerError,
        FaultKind::MalformedJson,
        FaultKind::WrongCloseCode,
        FaultKind::ErrorEvent,
    ];

    /// The kind named `s` (as in [`Self::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|k| k.as_str() == s)
    }
}

/// Fault settings of one emulator (from config or CLI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Probability that a connection (websocket) or request (HTTP) gets a fault.
    pub rate: f64,
    /// Kinds to draw from; empty means every kind the emulator supports.
    pub kinds: Vec<FaultKind>,
    /// `DropSocket`/`MalformedJson`/`WrongCloseCode` strike after this many server messages.
    pub after_messages: u32,
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            rate: 0.0,
            kinds: vec![],
            after_messages: 3,
            seed: 1,
        }
    }
}

/// Decides faults and counts them.
#[derive(Debug, Default)]
pub struct Faults {
    cfg: FaultConfig,
    next: AtomicU64,
    forced: Mutex<VecDeque<FaultKind>>,
    /// Forced for the next stream inside a connection (a Cartesia context).
    forced_inner: Mutex<VecDeque<FaultKind>>,
    injected: Mutex<std::collections::BTreeMap<FaultKind, u64>>,
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Self {
        Self {
            cfg,
            ..Default::default()
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }

    /// Tests: the next connection/request gets `kind`, whatever the rate.
    pub fn force_next(&self, kind: FaultKind) {
        lock(&self.forced).push_back(kind);
    }

    /// Tests: the next stream multiplexed inside a connection gets `kind`.
    pub fn force_next_inner(&self, kind: FaultKind) {
        lock(&self.forced_inner).push_back(kind);
    }

    /// The fault (if any) for the next connection/request, among the kinds this emulator supports.
    pub fn draw(&self, supported: &[FaultKind]) -> Option<FaultKind> {
        if let Some(kind) = lock(&self.forced).pop_front() {
            return Some(kind);
        }
        self.draw_random(supported)
    }

    /// The fault (if any) for the next stream inside a connection: same rate, its own forced queue.
    pub fn draw_inner(&self, supported: &[FaultKind]) -> Option<FaultKind> {
        if let Some(kind) = lock(&self.forced_inner).pop_front() {
            return Some(kind);
        }
        self.draw_random(supported)
    }

    fn draw_random(&self, supported: &[FaultKind]) -> Option<FaultKind> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let x = mix(self.cfg.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if (x % 1_000_000) as f64 >= self.cfg.rate.clamp(0.0, 1.0) * 1_000_000.0 {
            return None;
        }
        let pool: Vec<FaultKind> = if self.cfg.kinds.is_empty() {
            supported.to_vec()
        } else {
            self.cfg
                .kinds
                .iter()
                .copied()
                .filter(|k| supported.contains(k))
                .collect()
        };
        if pool.is_empty() {
            return None;
        }
        Some(pool[(mix(x) % pool.len() as u64) as usize])
    }

    /// Record that `kind` was actually injected.
    pub fn count(&self, provider: &'static str, kind: FaultKind) {
        *lock(&self.injected).entry(kind).or_default() += 1;
        metrics::counter!("frontdesk_emulator_faults_total", "provider" => provider, "kind" => kind.as_str()).increment(1);
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> std::collections::BTreeMap<FaultKind, u64> {
        lock(&self.injected).clone()
    }
}

/// SplitMix64 finaliser: a cheap, well-spread hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_respected_and_deterministic() {
        let cfg = FaultConfig {
            rate: 0.05,
            seed: 7,
            ..Default::default()
        };
        let a = Faults::new(cfg.clone());
        let b = Faults::new(cfg);
        let draws: Vec<_> = (0..10_000).map(|_| a.draw(FaultKind::ALL)).collect();
        let again: Vec<_> = (0..10_000).map(|_| b.draw(FaultKind::ALL)).collect();
        assert_eq!(draws, again);
        let hits = draws.iter().filter(|d| d.is_some()).count();
        assert!((350..650).contains(&hits), "{hits} faults in 10000 at 5 %");
        for &k in FaultKind::ALL {
            assert!(draws.contains(&Some(k)), "{k:?} never drawn");
        }
    }

    #[test]
    fn forced_faults_come_first_and_unsupported_kinds_are_skipped() {
        let f = Faults::new(FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::Stall],
            ..Default::default()
        });
        f.force_next(FaultKind::RateLimited);
        assert_eq!(
            f.draw(&[FaultKind::DropSocket]),
            Some(FaultKind::RateLimited)
        );
        assert_eq!(f.draw(&[FaultKind::DropSocket]), None);
        assert_eq!(f.draw(&[FaultKind::Stall]), Some(FaultKind::Stall));
    }
}

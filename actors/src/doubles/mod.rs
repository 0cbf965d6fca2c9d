//! In-process test doubles of every seam, for actor tests, benches and `simulate --providers
//! doubles`. They behave like their real counterparts on the points the call tree depends on
//! (streaming, latency, cancellation, failures), without a network.
//!
//! Compiled only with the `test-doubles` feature (off by default: production code must not reach
//! them; CI checks the library builds without it). The tests and benches of both crates turn it on
//! through their dev-dependencies, the `frontdesk` binary through its `simulate` feature.

pub mod conformance;
pub mod llm;
pub mod memory_store;
pub mod signal;
pub mod stt;
pub mod tts;

pub use llm::{ScriptedLlm, ScriptedLlmConfig};
pub use memory_store::MemoryStore;
pub use stt::{ScriptedStt, ScriptedSttConfig, TranscriptMode};
pub use tts::{ScriptedTts, ScriptedTtsConfig};

// Not doubles but used with them everywhere: re-exported so `doubles::*` imports keep working.
pub use crate::latency::Latency;
pub use crate::loopback::{LoopbackRoom, RoomEnd};

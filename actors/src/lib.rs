//! The per-call actor tree of Frontdesk, the audio types it moves, and the traits it needs from the
//! outside world (room media, STT, LLM, TTS, store). No network or SQL code lives here.
//!
//! The in-process test doubles of those traits (`doubles`: scripted STT/LLM/TTS, `MemoryStore`,
//! signal generators, the store conformance suite) are behind the `test-doubles` feature, off by
//! default, so the production library holds none of them.

pub mod audio;
pub mod backoff;
pub mod cache;
pub mod call;
pub mod config;
#[cfg(feature = "test-doubles")]
pub mod doubles;
pub mod edge;
pub mod latency;
pub mod loopback;
pub mod metrics;
pub mod pricing;
pub mod provider;
pub mod seed;
pub mod store;
pub mod tools;
pub mod vad;

pub use audio::AudioFrame;
pub use config::PipelineConfig;

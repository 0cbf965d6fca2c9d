//! The per-call actor tree of Frontdesk, the audio types it moves, and the traits it needs from the
//! outside world (room media, STT, LLM, TTS, store). No network or SQL code lives here.

pub mod audio;
pub mod backoff;
pub mod cache;
pub mod call;
pub mod config;
pub mod doubles;
pub mod edge;
pub mod metrics;
pub mod pricing;
pub mod provider;
pub mod seed;
pub mod store;
pub mod tools;
pub mod vad;

pub use audio::AudioFrame;
pub use config::PipelineConfig;

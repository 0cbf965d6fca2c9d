//! The LiveKit agent worker: registers with the server, takes jobs, runs one call tree per job.

pub mod config;

pub use config::WorkerConfig;

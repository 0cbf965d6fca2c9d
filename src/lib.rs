//! Frontdesk, the service: CLI, simulation, telemetry. The call tree itself lives in
//! `frontdesk-actors`; this crate implements its seams and runs it.

pub mod cache;
pub mod checks;
pub mod config;
pub mod console;
pub mod emulators;
pub mod http;
pub mod loadtest;
pub mod playground;
pub mod providers;
pub mod room;
pub mod sched;
pub mod secret;
pub mod service;
pub mod simulate;
pub mod status;
pub mod stdout;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod worker;

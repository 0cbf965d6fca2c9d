//! The LiveKit agent worker: registers with the server, takes jobs, runs one call tree per job.
//!
//! `start` spawns the connection loop (`run`, `conn`) and returns a `WorkerHandle`. Offers are
//! admitted against atomically reserved slots (`admission`); assigned jobs run in their own tasks
//! through a `JobRunner` (`dispatch`), outside any connection, so reconnects never touch calls.
//!
//! ```no_run
//! # async fn demo(
//! #     cfg: frontdesk::worker::WorkerConfig,
//! #     deps: frontdesk_actors::call::CallDeps,
//! #     pipeline: frontdesk_actors::PipelineConfig,
//! #     shutdown: impl std::future::Future<Output = ()>,
//! #     second_signal: impl std::future::Future<Output = ()>,
//! # ) -> Result<(), frontdesk::worker::WorkerError> {
//! use std::sync::Arc;
//! use frontdesk::room::{LiveKitRoom, RoomConfig};
//! use frontdesk::worker::{self, CallJobRunner};
//!
//! let status = Arc::new(frontdesk::status::ServiceStatus::new());
//! let room = Arc::new(LiveKitRoom::new(RoomConfig::default()));
//! let runner = CallJobRunner::new(room, deps, pipeline);
//! let handle = worker::start(cfg, Arc::new(runner), status)?;
//! tokio::select! {
//!     gave_up = handle.wait() => gave_up?,
//!     _ = shutdown => tokio::select! {
//!         drained = handle.drain() => drained?,
//!         _ = second_signal => handle.abort(),
//!     },
//! }
//! # Ok(())
//! # }
//! ```

mod admission;
pub mod config;
mod conn;
pub mod cpu;
mod dispatch;
mod error;
mod handle;
mod job;
mod run;
mod runner;
mod state;
pub mod wire;

pub use admission::{Admission, Refusal};
pub use config::WorkerConfig;
pub use error::WorkerError;
pub use handle::{start, WorkerHandle};
pub use job::{JobError, JobInfo, JobRunner, RunningJob};
pub use runner::CallJobRunner;

/// The worker's registration with LiveKit, as `/health` names it: down but not critical while it
/// reconnects, critical once it gives up. Not "livekit": that is the dependency check's verdict
/// on reaching the server (critical), which a reconnect attempt must not overwrite.
pub const DEPENDENCY: &str = "livekit_worker";

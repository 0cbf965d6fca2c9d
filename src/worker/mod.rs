//! The LiveKit agent worker: registers with the server, takes jobs, runs one call tree per job.
//!
//! `start` spawns the connection loop (`run`, `conn`) and returns a `WorkerHandle`. Offers are
//! admitted against atomically reserved slots (`admission`); assigned jobs run in their own tasks
//! through a `JobRunner` (`dispatch`), outside any connection, so reconnects never touch calls.

mod admission;
pub mod config;
mod conn;
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
pub use runner::{CallJobRunner, NoMediaConnector, RoomConnector, SimulatedCallerConnector};

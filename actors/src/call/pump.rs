//! Pump tasks: the loops that move audio between an actor's edges and its provider. They run beside
//! the actor (audio never enters a mailbox); the actor owns the task, which is aborted when the actor
//! goes away, and a pump's failure or panic is turned into a message so the actor fails and its
//! supervisor sees it.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use ractor::{ActorRef, Message};
use tokio::task::JoinHandle;

/// Aborts the task when dropped (including when the owning actor panics).
#[derive(Debug)]
pub struct TaskGuard(JoinHandle<()>);

impl TaskGuard {
    pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(fut))
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

/// Run `fut` beside the actor; when it ends (or panics) the actor receives `on_exit(result)`.
pub fn spawn_pump<M, F, E>(myself: &ActorRef<M>, on_exit: E, fut: F) -> TaskGuard
where
    M: Message,
    E: FnOnce(Result<(), String>) -> M + Send + 'static,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let me = myself.clone();
    TaskGuard::spawn(async move {
        let result = AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(panic_message(p)));
        // The actor may already be gone (it is stopping us); nothing to report then.
        let _ = me.cast(on_exit(result));
    })
}

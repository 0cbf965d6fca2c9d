//! Pump tasks: the loops that move audio between an actor's edges and its provider. They run beside
//! the actor (audio never enters a mailbox); the actor owns the task, which is aborted when the actor
//! goes away, and a pump's failure or panic is turned into a message so the actor fails and its
//! supervisor sees it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures::FutureExt;
use ractor::{ActorRef, Message};
use tokio::task::JoinHandle;

/// The runtime the pumps run on when the process has started one: frame work of hundreds of calls
/// then never sits in the run queue ahead of a dialogue, a reply or a tool call (tokio has no
/// priorities; two runtimes let the OS share the cores between them). Without it (tests, paused
/// time) pumps run on the caller's runtime.
static MEDIA: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// Start the media runtime with `threads` workers; later calls keep the first one.
pub fn start_media_runtime(threads: usize) -> std::io::Result<()> {
    if MEDIA.get().is_some() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("frontdesk-media")
        .enable_all()
        .build()?;
    // Lost a race: the other runtime serves; this one is dropped here, outside any runtime.
    let _ = MEDIA.set(rt);
    Ok(())
}

/// Spawn `fut` on the media runtime if there is one (see [`start_media_runtime`]), else on the
/// caller's: per-frame work outside the call tree (the room transport's decoders, simulated
/// callers) keeps off the runtime that runs dialogues and replies, as the pumps do.
pub fn spawn_on_media<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match MEDIA.get() {
        Some(rt) => rt.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Aborts the task when dropped (including when the owning actor panics).
#[derive(Debug)]
pub struct TaskGuard(JoinHandle<()>);

impl TaskGuard {
    pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(fut))
    }

    /// On the media runtime if there is one (see [`start_media_runtime`]).
    pub fn spawn_media(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(spawn_on_media(fut))
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
    TaskGuard::spawn_media(async move {
        let result = AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(panic_message(p)));
        // The actor may already be gone (it is stopping us); nothing to report then.
        let _ = me.cast(on_exit(result));
    })
}

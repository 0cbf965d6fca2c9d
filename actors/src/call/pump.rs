//! Pump tasks: the loops that move audio between an actor's edges and its provider. They run beside
//! the actor (audio never enters a mailbox); the actor owns the task, which is aborted when the actor
//! goes away, and a pump's failure or panic is turned into a message so the actor fails and its
//! supervisor sees it.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use ractor::{ActorRef, Message};
use tokio::task::JoinHandle;

use super::tick::Ticker;

/// The media runtimes, when the process has started them: frame work of hundreds of calls then
/// never sits in the run queue ahead of a dialogue, a reply or a tool call (tokio has no priorities;
/// separate runtimes let the OS share the cores between them). Without them (tests, paused time)
/// pumps run on the caller's runtime.
///
/// One single-worker runtime per core, each call's frame path kept on one of them by its key (the
/// room): a frame then goes transport → ingress → VAD → STT as wake-ups within one thread. One
/// work-stealing runtime spread every hop over both cores, and its workers parked and woke each
/// other between the calls' 20 ms frames: at 1000 calls the kernel's share of all CPU was 10 %,
/// against 3.5 % so.
static MEDIA: OnceLock<Media> = OnceLock::new();

struct Media {
    shards: Vec<tokio::runtime::Runtime>,
    /// Round robin for work that belongs to no one call (provider connections).
    next: AtomicUsize,
}

impl Media {
    fn new(shards: usize) -> std::io::Result<Self> {
        let shards = (0..shards.max(1))
            .map(|i| {
                // Each runtime's calls pace their frames on its one shared tick.
                let ticker = Ticker::new();
                let on_thread = Arc::clone(&ticker);
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(format!("frontdesk-media-{i}"))
                    .on_thread_start(move || Ticker::enter(&on_thread))
                    .enable_all()
                    .build()?;
                rt.spawn(ticker.drive());
                Ok(rt)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            shards,
            next: AtomicUsize::new(0),
        })
    }

    fn spawn<F>(&self, key: Option<&str>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shard(key).spawn(fut)
    }

    fn shard(&self, key: Option<&str>) -> &tokio::runtime::Runtime {
        let n = self.shards.len();
        let i = match key {
            Some(key) => {
                let mut h = std::hash::DefaultHasher::new();
                key.hash(&mut h);
                // Modulo of a u64 by a small count, then back to usize: below `n`.
                (h.finish() % n as u64) as usize
            }
            None => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        &self.shards[i]
    }
}

/// Start `shards` media runtimes of one worker each; later calls keep the first ones.
pub fn start_media_runtime(shards: usize) -> std::io::Result<()> {
    if MEDIA.get().is_some() {
        return Ok(());
    }
    let media = Media::new(shards)?;
    // Lost a race: the other runtimes serve; these are dropped here, outside any runtime.
    let _ = MEDIA.set(media);
    Ok(())
}

/// Spawn `fut` on a media runtime if there are any (see [`start_media_runtime`]), else on the
/// caller's: per-frame work outside the call tree (the room transport's decoders, simulated
/// callers) keeps off the runtime that runs dialogues and replies, as the pumps do. Work of one
/// call passes the call's `key` (its room name, [`super::CallInfo::media_key`]) so it shares the
/// call's thread; `None` spreads the rest.
pub fn spawn_on_media<F>(key: Option<&str>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match MEDIA.get() {
        Some(media) => media.spawn(key, fut),
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

    /// On the media runtime of `key` if there are any (see [`spawn_on_media`]).
    pub fn spawn_media(key: &str, fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(spawn_on_media(Some(key), fut))
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

/// Run `fut` beside the actor, on the media runtime of the call `key` names (see
/// [`spawn_on_media`]); when it ends (or panics) the actor receives `on_exit(result)`.
pub fn spawn_pump<M, F, E>(myself: &ActorRef<M>, key: &str, on_exit: E, fut: F) -> TaskGuard
where
    M: Message,
    E: FnOnce(Result<(), String>) -> M + Send + 'static,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let me = myself.clone();
    TaskGuard::spawn_media(key, async move {
        let result = AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(panic_message(p)));
        // The actor may already be gone (it is stopping us); nothing to report then.
        let _ = me.cast(on_exit(result));
    })
}

#[cfg(test)]
mod tests {
    use super::Media;

    /// The name of the thread `key`'s work runs on.
    fn thread_of(media: &Media, key: Option<&str>) -> String {
        let task = media.spawn(key, async {
            std::thread::current().name().unwrap_or_default().to_owned()
        });
        futures::executor::block_on(task).expect("the task ran")
    }

    #[test]
    fn a_calls_work_stays_on_one_media_thread_and_calls_spread() {
        let media = Media::new(2).expect("runtimes");
        let rooms: Vec<String> = (0..64).map(|i| format!("sim-room-{i:05}")).collect();
        let mut per_thread = std::collections::BTreeMap::<String, usize>::new();
        for room in &rooms {
            let first = thread_of(&media, Some(room));
            for _ in 0..3 {
                assert_eq!(thread_of(&media, Some(room)), first, "{room} moved");
            }
            *per_thread.entry(first).or_default() += 1;
        }
        let names: Vec<&String> = per_thread.keys().collect();
        assert_eq!(names, ["frontdesk-media-0", "frontdesk-media-1"]);
        assert!(per_thread.values().all(|&n| n >= 16), "{per_thread:?}");
        let unkeyed: std::collections::BTreeSet<String> =
            (0..4).map(|_| thread_of(&media, None)).collect();
        assert_eq!(unkeyed.len(), 2, "unkeyed work takes turns");
        let paced = media.spawn(Some("sim-room-00000"), async {
            let t = super::Ticker::current().expect("a media thread has its runtime's tick");
            let due = tokio::time::Instant::now() + std::time::Duration::from_millis(30);
            t.until(due).await;
            tokio::time::Instant::now() >= due
        });
        assert!(
            futures::executor::block_on(paced).expect("ran"),
            "woke at its due"
        );
    }
}

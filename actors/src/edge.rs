//! Bounded edges between actors. Audio never travels through a ractor mailbox (those are
//! unbounded); it travels on these queues, which the call supervisor owns so that a restarted child
//! re-attaches to the same queue and nothing already queued is lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// What a full edge does with a new item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Live media: the newest audio matters most, so the oldest queued item is dropped and counted.
    DropOldest,
    /// Playout: the producer waits for room (the consumer runs at playout pace).
    Wait,
}

/// Why an item left an edge without being consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    Overflow,
    Flush,
    Closed,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Overflow => "overflow",
            DropReason::Flush => "flush",
            DropReason::Closed => "closed",
        }
    }
}

/// The edge was closed; the item is handed back.
#[derive(Debug)]
pub struct EdgeClosed<T>(pub T);

struct Inner<T> {
    name: &'static str,
    capacity: usize,
    policy: OverflowPolicy,
    queue: Mutex<VecDeque<T>>,
    items: Notify,
    space: Notify,
    closed: AtomicBool,
    overflow_drops: AtomicU64,
    flushed: AtomicU64,
    pushed: AtomicU64,
}

/// A bounded single-consumer queue with a named overflow policy and drop counters.
pub struct Edge<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Edge<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for Edge<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("name", &self.inner.name)
            .field("capacity", &self.inner.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Edge<T> {
    pub fn new(name: &'static str, capacity: usize, policy: OverflowPolicy) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Inner {
                name,
                capacity,
                policy,
                queue: Mutex::new(VecDeque::with_capacity(capacity)),
                items: Notify::new(),
                space: Notify::new(),
                closed: AtomicBool::new(false),
                overflow_drops: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                pushed: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        // A panic while holding this lock cannot leave the deque inconsistent (every operation is a
        // single VecDeque call), so a poisoned lock is safe to keep using.
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    pub fn policy(&self) -> OverflowPolicy {
        self.inner.policy
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Items dropped because the edge was full.
    pub fn overflow_drops(&self) -> u64 {
        self.inner.overflow_drops.load(Ordering::Relaxed)
    }

    /// Items discarded by `flush`.
    pub fn flushed(&self) -> u64 {
        self.inner.flushed.load(Ordering::Relaxed)
    }

    /// Items ever accepted.
    pub fn pushed(&self) -> u64 {
        self.inner.pushed.load(Ordering::Relaxed)
    }

    fn count_drop(&self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        match reason {
            DropReason::Overflow => self.inner.overflow_drops.fetch_add(n, Ordering::Relaxed),
            DropReason::Flush | DropReason::Closed => {
                self.inner.flushed.fetch_add(n, Ordering::Relaxed)
            }
        };
        crate::metrics::edge_dropped(self.inner.name, reason, n);
    }

    /// Non-blocking push. With `DropOldest` a full edge drops its oldest item (counted); with `Wait`
    /// a full edge hands the item back so the caller can `send` instead.
    pub fn push(&self, item: T) -> Result<(), EdgeClosed<T>> {
        if self.is_closed() {
            return Err(EdgeClosed(item));
        }
        let dropped = {
            let mut q = self.lock();
            let mut dropped = 0;
            if q.len() >= self.inner.capacity {
                if self.inner.policy == OverflowPolicy::Wait {
                    return Err(EdgeClosed(item));
                }
                q.pop_front();
                dropped = 1;
            }
            q.push_back(item);
            dropped
        };
        self.inner.pushed.fetch_add(1, Ordering::Relaxed);
        self.count_drop(DropReason::Overflow, dropped);
        self.inner.items.notify_one();
        Ok(())
    }

    /// Push, waiting for room when the policy is `Wait`. Never waits on a `DropOldest` edge.
    pub async fn send(&self, item: T) -> Result<(), EdgeClosed<T>> {
        if self.inner.policy == OverflowPolicy::DropOldest {
            return self.push(item);
        }
        let mut item = item;
        loop {
            let notified = self.inner.space.notified();
            match self.push(item) {
                Ok(()) => return Ok(()),
                Err(EdgeClosed(back)) if self.is_closed() => return Err(EdgeClosed(back)),
                Err(EdgeClosed(back)) => item = back,
            }
            notified.await;
        }
    }

    pub fn try_recv(&self) -> Option<T> {
        let item = self.lock().pop_front();
        if item.is_some() {
            self.inner.space.notify_one();
        }
        item
    }

    /// Wait for the next item; `None` once the edge is closed and empty.
    pub async fn recv(&self) -> Option<T> {
        loop {
            let notified = self.inner.items.notified();
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
            if self.is_closed() {
                return None;
            }
            notified.await;
        }
    }

    /// Discard everything queued (barge-in). Returns how many items were discarded.
    pub fn flush(&self) -> usize {
        let n = {
            let mut q = self.lock();
            let n = q.len();
            q.clear();
            n
        };
        self.count_drop(DropReason::Flush, n as u64);
        self.inner.space.notify_one();
        n
    }

    /// Close the edge: producers fail from now on, the consumer drains what is left and then gets
    /// `None`.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.items.notify_waiters();
        self.inner.items.notify_one();
        self.inner.space.notify_waiters();
        self.inner.space.notify_one();
    }
}

/// The producer's end of an edge: it pushes, and may discard what it queued (a restarted TTS
/// re-speaks from the unplayed part, so its old audio goes).
pub struct EdgeTx<T>(Edge<T>);
/// The consumer's end of an edge.
pub struct EdgeRx<T>(Edge<T>);
/// Only the flush of an edge (the dialogue silences queued agent audio on barge-in).
pub struct EdgeFlush<T>(Edge<T>);

macro_rules! edge_end {
    ($end:ident) => {
        impl<T> Clone for $end<T> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }
        impl<T> std::fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($end)).field(&self.0).finish()
            }
        }
        impl<T> $end<T> {
            pub fn name(&self) -> &'static str {
                self.0.name()
            }
            pub fn flush(&self) -> usize {
                self.0.flush()
            }
        }
    };
}
edge_end!(EdgeTx);
edge_end!(EdgeRx);
edge_end!(EdgeFlush);

impl<T> EdgeTx<T> {
    /// See [`Edge::push`].
    pub fn push(&self, item: T) -> Result<(), EdgeClosed<T>> {
        self.0.push(item)
    }

    /// See [`Edge::send`].
    pub async fn send(&self, item: T) -> Result<(), EdgeClosed<T>> {
        self.0.send(item).await
    }
}

impl<T> EdgeRx<T> {
    /// See [`Edge::recv`].
    pub async fn recv(&self) -> Option<T> {
        self.0.recv().await
    }

    pub fn try_recv(&self) -> Option<T> {
        self.0.try_recv()
    }
}

impl<T> Edge<T> {
    /// A producer's end; the edge itself stays with its owner (the supervisor).
    pub fn tx(&self) -> EdgeTx<T> {
        EdgeTx(self.clone())
    }

    pub fn rx(&self) -> EdgeRx<T> {
        EdgeRx(self.clone())
    }

    pub fn flusher(&self) -> EdgeFlush<T> {
        EdgeFlush(self.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drop_oldest_keeps_newest_and_counts() {
        let e = Edge::new("test", 3, OverflowPolicy::DropOldest);
        for i in 0..10 {
            e.push(i).unwrap();
        }
        assert_eq!(e.len(), 3);
        assert_eq!(e.overflow_drops(), 7);
        assert_eq!(e.try_recv(), Some(7));
        assert_eq!(e.try_recv(), Some(8));
        assert_eq!(e.try_recv(), Some(9));
        assert_eq!(e.try_recv(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_policy_blocks_producer_until_consumed() {
        let e = Edge::new("test", 2, OverflowPolicy::Wait);
        e.send(1).await.unwrap();
        e.send(2).await.unwrap();
        let producer = {
            let e = e.clone();
            tokio::spawn(async move { e.send(3).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(!producer.is_finished());
        assert_eq!(e.len(), 2);
        assert_eq!(e.recv().await, Some(1));
        assert!(producer.await.unwrap());
        assert_eq!(e.len(), 2);
        assert_eq!(e.overflow_drops(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn flush_releases_waiting_producer_and_counts() {
        let e = Edge::new("test", 1, OverflowPolicy::Wait);
        e.send(1).await.unwrap();
        let producer = {
            let e = e.clone();
            tokio::spawn(async move { e.send(2).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert_eq!(e.flush(), 1);
        assert!(producer.await.unwrap());
        assert_eq!(e.flushed(), 1);
        assert_eq!(e.try_recv(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_consumer_after_draining() {
        let e = Edge::new("test", 4, OverflowPolicy::DropOldest);
        e.push(1).unwrap();
        let consumer = {
            let e = e.clone();
            tokio::spawn(async move {
                let mut got = vec![];
                while let Some(x) = e.recv().await {
                    got.push(x);
                }
                got
            })
        };
        tokio::task::yield_now().await;
        e.push(2).unwrap();
        e.close();
        assert_eq!(consumer.await.unwrap(), vec![1, 2]);
        assert!(e.push(3).is_err());
    }

    proptest! {
        // Whatever the interleaving of pushes and pops, the queue never exceeds its bound, nothing
        // is reordered, and every item is either consumed, still queued, or counted as dropped.
        #[test]
        fn drop_oldest_accounting(cap in 1usize..16, ops in proptest::collection::vec(any::<bool>(), 0..300)) {
            let e = Edge::new("prop", cap, OverflowPolicy::DropOldest);
            let mut next = 0u32;
            let mut consumed = vec![];
            for push in ops {
                if push { e.push(next).unwrap(); next += 1; } else if let Some(x) = e.try_recv() { consumed.push(x); }
                prop_assert!(e.len() <= cap);
            }
            prop_assert!(consumed.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(consumed.len() as u64 + e.len() as u64 + e.overflow_drops(), u64::from(next));
        }
    }
}

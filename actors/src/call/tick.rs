//! One shared frame tick per media runtime. Every call on a runtime paces its playout (and, in
//! `simulate`, its caller) on the runtime's [`Ticker`] instead of a timer of its own: at 1000
//! calls per-call timers were about 100,000 timer-wheel registrations a second, and the wheel,
//! `Interval::poll_tick` and the clock reads around them were 7-9 % of all CPU.
//!
//! The ticker fires every millisecond (tokio's timer resolution) while anyone waits, and a tick
//! wakes only the waiters of its slot: the calls keep their own phases within the 20 ms frame, so
//! their work stays spread over the frame instead of arriving in one burst. A late driver fires
//! each slot it missed once, so a late wait is delayed, never replayed. Without media runtimes
//! (tests, paused time) the free functions fall back to tokio's timer.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::shared::lock;
use crate::audio::FRAME_DURATION;

/// The tick's resolution in ns (1 ms, tokio's timer resolution too).
const RESOLUTION_NS: u64 = 1_000_000;
/// One frame of ticks: a wait due within a frame is woken by its slot's next firing.
const SLOTS: u64 = 20;
const _: () = assert!(FRAME_DURATION.as_nanos() == (SLOTS * RESOLUTION_NS) as u128);

thread_local! {
    /// The ticker of the media runtime this thread belongs to.
    static CURRENT: RefCell<Option<Arc<Ticker>>> = const { RefCell::new(None) };
}

/// A media runtime's shared tick.
pub struct Ticker {
    epoch: Instant,
    /// The last tick fired, counted in [`RESOLUTION_NS`] since `epoch`.
    fired: AtomicU64,
    /// When the driver last fired, in ns since `epoch`: the waiters' clock, without a clock read.
    fired_at: AtomicU64,
    /// The wakers of the waits due at each slot's next firing (a plain list: `Notify` cost as
    /// much as the timer wheel it replaces).
    slots: [Mutex<Vec<Waker>>; SLOTS as usize],
    /// Waits in progress; the driver sleeps while there are none.
    waiting: AtomicUsize,
    wake: Notify,
}

impl Ticker {
    pub fn new() -> Arc<Self> {
        let epoch = Instant::now();
        Arc::new(Self {
            epoch,
            fired: AtomicU64::new(0),
            fired_at: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Mutex::new(Vec::new())),
            waiting: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    /// Make `ticker` this thread's (a media runtime's `on_thread_start`).
    pub fn enter(ticker: &Arc<Ticker>) {
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(ticker)));
    }

    /// This thread's ticker, if it belongs to a media runtime.
    pub fn current() -> Option<Arc<Ticker>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// When the ticker last fired: within a tick of now while anyone waits on it.
    pub fn now(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.fired_at.load(Ordering::Acquire))
    }

    /// The first tick at or after `at`.
    fn tick_of(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(ns.div_ceil(u128::from(RESOLUTION_NS))).unwrap_or(u64::MAX)
    }

    /// Wait until the tick of `due` has fired; returns [`Ticker::now`] then.
    pub async fn until(&self, due: Instant) -> Instant {
        let n = self.tick_of(due);
        if self.fired.load(Ordering::Acquire) >= n {
            return self.now();
        }
        let slot = &self.slots[(n % SLOTS) as usize];
        let _waiting = Waiting::new(self);
        std::future::poll_fn(|cx| {
            if self.fired.load(Ordering::Acquire) >= n {
                return Poll::Ready(());
            }
            let mut wakers = lock(slot);
            // Checked again under the lock the driver fires under, so a firing is never missed.
            if self.fired.load(Ordering::Acquire) >= n {
                return Poll::Ready(());
            }
            wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        self.now()
    }

    /// The driver: run it on the runtime the ticker serves.
    pub async fn drive(self: Arc<Self>) {
        // The fired slots' lists trade places with this one, so no firing allocates.
        let mut spare = Vec::new();
        loop {
            if self.waiting.load(Ordering::Acquire) == 0 {
                self.wake.notified().await;
                continue;
            }
            let next = self.fired.load(Ordering::Acquire) + 1;
            let at = self.epoch + Duration::from_nanos(next.saturating_mul(RESOLUTION_NS));
            tokio::time::sleep_until(at).await;
            self.fire(Instant::now(), &mut spare);
        }
    }

    /// Fire every tick up to `now`; a slot missed more than once fires once.
    fn fire(&self, now: Instant, spare: &mut Vec<Waker>) {
        let since = now.saturating_duration_since(self.epoch);
        let ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let to = ns / RESOLUTION_NS;
        let from = self.fired.load(Ordering::Acquire) + 1;
        if to < from {
            return;
        }
        self.fired_at.store(ns, Ordering::Release);
        self.fired.store(to, Ordering::Release);
        for t in from.max(to.saturating_sub(SLOTS - 1))..=to {
            std::mem::swap(&mut *lock(&self.slots[(t % SLOTS) as usize]), spare);
            // Woken outside the lock; a wait that was dropped meanwhile is polled once, harmlessly.
            for w in spare.drain(..) {
                w.wake();
            }
        }
    }
}

/// Counts a wait in progress, waking the driver for the first.
struct Waiting<'a>(&'a Ticker);

impl<'a> Waiting<'a> {
    fn new(t: &'a Ticker) -> Self {
        if t.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            t.wake.notify_one();
        }
        Self(t)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sleep until `due` on `ticker` (tokio's timer without one: off the media runtimes); returns
/// about when it woke. Callers look their thread's ticker up once ([`Ticker::current`]), not per
/// frame.
pub async fn sleep_until(ticker: Option<&Ticker>, due: Instant) -> Instant {
    match ticker {
        Some(t) => t.until(due).await,
        None => {
            tokio::time::sleep_until(due).await;
            Instant::now()
        }
    }
}

/// A periodic beat on the shared tick, for work paced per frame (a simulated caller).
pub struct Pacer {
    ticker: Option<Arc<Ticker>>,
    period: Duration,
    next: Instant,
}

/// One beat of a [`Pacer`].
#[derive(Clone, Copy, Debug)]
pub struct Beat {
    /// When it was due, and about when it fired.
    pub due: Instant,
    pub now: Instant,
}

impl Beat {
    pub fn lateness(&self) -> Duration {
        self.now.saturating_duration_since(self.due)
    }
}

impl Pacer {
    /// Beats every `period`, the first at once; on the current thread's ticker if it has one.
    pub fn new(period: Duration) -> Self {
        Self {
            ticker: Ticker::current(),
            period,
            next: Instant::now(),
        }
    }

    /// The next beat. One later than a whole period is not caught up in a burst: the beats go on
    /// a period after it.
    pub async fn tick(&mut self) -> Beat {
        let due = self.next;
        let now = sleep_until(self.ticker.as_deref(), due).await;
        let beat = Beat { due, now };
        self.next = if beat.lateness() > self.period {
            now + self.period
        } else {
            due + self.period
        };
        beat
    }
}

#[cfg(test)]
#[path = "tick_tests.rs"]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Pacer, Ticker, SLOTS};

const MS: Duration = Duration::from_millis(1);

fn driven() -> Arc<Ticker> {
    let t = Ticker::new();
    tokio::spawn(Arc::clone(&t).drive());
    t
}

#[tokio::test(start_paused = true)]
async fn each_wait_wakes_on_its_own_tick_whatever_the_order() {
    let t = driven();
    let start = Instant::now();
    let woke = Arc::new(Mutex::new(Vec::new()));
    // Dues in several slots and past one frame, registered out of order.
    let dues = [35u64, 3, 20, 7, 61, 19, 40];
    let tasks: Vec<_> = dues
        .iter()
        .map(|&ms| {
            let (t, woke) = (Arc::clone(&t), Arc::clone(&woke));
            tokio::spawn(async move {
                let due = start + MS * u32::try_from(ms).unwrap_or(0);
                let reported = t.until(due).await;
                let at = Instant::now();
                assert!(at >= due, "woke {:?} before its due {ms} ms", due - at);
                assert!(reported >= due && reported <= at, "now() is the firing");
                woke.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((ms, at - start));
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("waiter");
    }
    let woke = woke.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut sorted = dues.to_vec();
    sorted.sort_unstable();
    assert_eq!(woke.iter().map(|w| w.0).collect::<Vec<_>>(), sorted);
    for (ms, at) in woke {
        assert!(
            at <= MS * u32::try_from(ms + 1).unwrap_or(0),
            "{ms} ms woke at {at:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_due_already_fired_returns_at_once_and_an_idle_driver_sleeps() {
    let t = driven();
    let due = Instant::now() + MS * 5;
    t.until(due).await;
    // The driver may have planned one more tick before the wait was counted out.
    let fired = t.fired.load(Ordering::Acquire) + 1;
    // Past dues need no firing.
    tokio::select! {
        biased;
        _ = t.until(due - MS) => {}
        () = std::future::ready(()) => panic!("a past due waited"),
    }
    assert_eq!(
        t.waiting.load(Ordering::Acquire),
        0,
        "waits are counted out"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        t.fired.load(Ordering::Acquire) <= fired,
        "no one waits, so the driver does not tick: {} after {fired}",
        t.fired.load(Ordering::Acquire)
    );
    // And it wakes for the next wait.
    let later = Instant::now() + MS * 30;
    assert!(t.until(later).await >= later);
}

#[tokio::test(start_paused = true)]
async fn a_late_driver_fires_each_missed_slot_once() {
    // No driver: the test fires by hand, 55 ms late.
    let t = Ticker::new();
    let start = t.epoch;
    let waits: Vec<_> = [3u32, 18, 45, 80]
        .iter()
        .map(|&ms| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.until(start + MS * ms).await })
        })
        .collect();
    tokio::task::yield_now().await;
    t.fire(start + MS * 55, &mut Vec::new());
    assert_eq!(t.fired.load(Ordering::Acquire), 55);
    let mut waits = waits.into_iter();
    for _ in 0..3 {
        let now = waits.next().expect("wait").await.expect("waiter");
        assert_eq!(now, start + MS * 55, "woken by the late firing");
    }
    let last = waits.next().expect("wait");
    tokio::task::yield_now().await;
    assert!(
        !last.is_finished(),
        "a later due is not woken by its slot's early firing"
    );
    t.fire(start + MS * 80, &mut Vec::new());
    assert_eq!(last.await.expect("waiter"), start + MS * 80);
    // Missed by more than a frame: each slot fired once, none replayed.
    assert!(u64::try_from(t.slots.len()).is_ok_and(|n| n == SLOTS));
}

#[tokio::test(start_paused = true)]
async fn a_pacer_delays_after_a_late_beat_instead_of_bursting() {
    let t = driven();
    let on = Arc::clone(&t);
    // The pacer is made on a thread whose ticker is `t`, as on a media runtime.
    Ticker::enter(&on);
    let mut pacer = Pacer::new(Duration::from_millis(20));
    let first = pacer.tick().await;
    let second = pacer.tick().await;
    assert_eq!(second.due - first.due, Duration::from_millis(20));
    assert!(second.lateness() <= MS);
    // The caller's thread stalls for 70 ms (time passes, nothing runs).
    tokio::time::advance(Duration::from_millis(70)).await;
    let late = pacer.tick().await;
    assert!(late.lateness() >= Duration::from_millis(40), "{late:?}");
    let next = pacer.tick().await;
    assert!(
        next.due >= late.now + Duration::from_millis(20),
        "the beat after a late one waits a period: {:?} after",
        next.due - late.now
    );
    assert!(next.now >= next.due);
    super::CURRENT.with(|c| c.borrow_mut().take());
}

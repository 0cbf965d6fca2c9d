//! Job admission: which offers the worker accepts. A slot is taken atomically when an offer is
//! accepted, so two offers in the same instant can never both take the last one; it becomes the
//! job's slot on assignment, or is released if no assignment comes in time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Why an offer was refused (the metric's `decision` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is reserved or running.
    Full,
    /// Taking one more would put the load at or above `load_threshold`.
    Load,
    Draining,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Full => "refused_full",
            Refusal::Load => "refused_load",
            Refusal::Draining => "refused_draining",
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    max_calls: u32,
    load_threshold: f32,
    /// Reserved (accepted, awaiting assignment) plus running.
    slots: AtomicU32,
    /// Job ids holding a reservation.
    reserved: Mutex<HashSet<String>>,
}

impl Admission {
    pub fn new(max_calls: u32, load_threshold: f32) -> Self {
        Self {
            max_calls: max_calls.max(1),
            load_threshold,
            slots: AtomicU32::new(0),
            reserved: Mutex::new(HashSet::new()),
        }
    }

    /// Take one slot, or say why not. Compare-and-swap: of concurrent callers racing for the last
    /// slot exactly one wins. The threshold is checked on the committed slots (reservations
    /// included) so a burst of offers cannot overshoot it either.
    pub fn try_reserve(&self) -> Result<(), Refusal> {
        self.slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                self.admits(taken).then_some(taken + 1)
            })
            .map(|_| ())
            .map_err(|taken| {
                if taken >= self.max_calls {
                    Refusal::Full
                } else {
                    Refusal::Load
                }
            })
    }

    fn admits(&self, taken: u32) -> bool {
        taken < self.max_calls && (taken as f32 / self.max_calls as f32) < self.load_threshold
    }

    /// Reserve a slot for an offered job. A repeated offer for a job already holding a
    /// reservation is accepted again without a second slot.
    pub fn offer(&self, job_id: &str) -> Result<(), Refusal> {
        let mut reserved = self.reserved();
        if reserved.contains(job_id) {
            return Ok(());
        }
        self.try_reserve()?;
        reserved.insert(job_id.to_owned());
        Ok(())
    }

    /// The assignment came: the reservation becomes the running job's slot. False when there is
    /// no reservation (never offered here, or it expired).
    pub fn claim(&self, job_id: &str) -> bool {
        self.reserved().remove(job_id)
    }

    /// The assignment did not come in time: release the slot. False if it was claimed meanwhile.
    pub fn expire(&self, job_id: &str) -> bool {
        let removed = self.reserved().remove(job_id);
        if removed {
            self.release();
        }
        removed
    }

    /// A running job ended (or a claimed one failed to start): its slot is free again.
    pub fn release(&self) {
        // Saturating: a release never drives the count below zero, even on a logic slip.
        let _ = self
            .slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn slots(&self) -> u32 {
        self.slots.load(Ordering::Acquire)
    }

    pub fn max_calls(&self) -> u32 {
        self.max_calls
    }

    /// Whether the next offer would be refused for capacity or load.
    pub fn is_full(&self) -> bool {
        !self.admits(self.slots())
    }

    fn reserved(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.reserved.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn the_last_slot_goes_to_exactly_one_of_racing_offers() {
        for _ in 0..200 {
            let admission = Arc::new(Admission::new(3, 1.0));
            admission.offer("a").unwrap();
            admission.offer("b").unwrap();
            let barrier = Arc::new(Barrier::new(8));
            let racers: Vec<_> = (0..8)
                .map(|i| {
                    let (adm, bar) = (Arc::clone(&admission), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        bar.wait();
                        adm.offer(&format!("job-{i}")).is_ok()
                    })
                })
                .collect();
            let won = racers
                .into_iter()
                .map(|r| r.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(won, 1);
            assert_eq!(admission.slots(), 3);
        }
    }

    #[test]
    fn raw_reservations_never_exceed_the_limit() {
        let admission = Arc::new(Admission::new(1, 1.0));
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (adm, bar) = (Arc::clone(&admission), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    bar.wait();
                    adm.try_reserve().is_ok()
                })
            })
            .collect();
        let won: Vec<bool> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }

    #[test]
    fn reservation_lifecycle() {
        let admission = Admission::new(2, 1.0);
        admission.offer("a").unwrap();
        admission.offer("a").unwrap();
        assert_eq!(
            admission.slots(),
            1,
            "a repeated offer takes no second slot"
        );
        admission.offer("b").unwrap();
        assert_eq!(admission.offer("c"), Err(Refusal::Full));
        assert!(admission.claim("a"));
        assert!(
            !admission.expire("a"),
            "a claimed reservation no longer expires"
        );
        assert!(admission.expire("b"));
        assert!(
            !admission.claim("b"),
            "an expired reservation cannot be claimed"
        );
        assert_eq!(admission.slots(), 1);
        admission.release();
        admission.release();
        assert_eq!(admission.slots(), 0);
    }

    #[test]
    fn load_threshold_refuses_before_the_limit() {
        let admission = Admission::new(10, 0.7);
        for i in 0..7 {
            admission.offer(&i.to_string()).unwrap();
        }
        assert!(admission.is_full());
        assert_eq!(admission.offer("x"), Err(Refusal::Load));
        let single = Admission::new(1, 0.7);
        assert!(single.offer("only").is_ok());
        assert_eq!(single.offer("next"), Err(Refusal::Full));
    }
}

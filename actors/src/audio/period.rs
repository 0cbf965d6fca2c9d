//! Periodic test signals kept as one period: generated once per sample rate, then read out in
//! chunks at any position by copying (the simulation's voices: the TTS double's and the Cartesia
//! emulator's). Generating them per sample was a visible share of a many-call simulation's CPU.

use std::sync::{Arc, Mutex};

use crate::call::shared::lock;

/// One second of a signal per sample rate, generated at the first request for that rate.
pub struct Periods {
    /// Sample `i` of the signal at `rate`; it must repeat every `rate` samples.
    sample: fn(usize, u32) -> i16,
    /// Few entries: one per sample rate in use.
    cache: Mutex<Vec<(u32, Arc<[i16]>)>>,
}

impl Periods {
    pub const fn new(sample: fn(usize, u32) -> i16) -> Self {
        Self {
            sample,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// One period (`rate` samples) of the signal at `rate`.
    pub fn get(&self, rate: u32) -> Arc<[i16]> {
        let mut cache = lock(&self.cache);
        if let Some((_, p)) = cache.iter().find(|(r, _)| *r == rate) {
            return Arc::clone(p);
        }
        let p: Arc<[i16]> = (0..rate as usize).map(|i| (self.sample)(i, rate)).collect();
        cache.push((rate, Arc::clone(&p)));
        p
    }
}

/// Samples `pos..pos + n` of the periodic signal whose one period is `period` (none if empty).
pub fn cut(period: &[i16], pos: usize, n: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(n);
    let mut at = pos % period.len().max(1);
    while out.len() < n && !period.is_empty() {
        let take = (n - out.len()).min(period.len() - at);
        out.extend_from_slice(&period[at..at + take]);
        at = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(i: usize, rate: u32) -> i16 {
        (i % rate.max(1) as usize) as i16
    }

    #[test]
    fn a_period_is_generated_once_per_rate() {
        static RAMP: Periods = Periods::new(ramp);
        let p = RAMP.get(100);
        assert_eq!(&p[..], &(0..100).collect::<Vec<i16>>()[..]);
        assert!(Arc::ptr_eq(&p, &RAMP.get(100)));
        assert_eq!(RAMP.get(50).len(), 50);
        assert!(RAMP.get(0).is_empty());
    }

    #[test]
    fn cuts_read_the_signal_across_period_ends() {
        let p: Vec<i16> = (0..100).map(|i| ramp(i, 100)).collect();
        for (pos, n) in [(0, 30), (90, 30), (317, 96), (50, 205), (7, 0)] {
            let want: Vec<i16> = (pos..pos + n).map(|i| ramp(i, 100)).collect();
            assert_eq!(cut(&p, pos, n), want, "pos {pos}, n {n}");
        }
        assert!(cut(&[], 5, 10).is_empty());
    }
}

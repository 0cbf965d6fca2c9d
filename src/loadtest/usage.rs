//! CPU and memory per call of one process, from its /proc samples and the calls' active spans:
//! CPU ms per second of call and resident memory per concurrent call, over the steady window
//! (every call past its greeting, none hung up yet), or over the whole run when that is too short.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::procstat::{Sample, USER_HZ};

/// Shorter than this, the steady window says little: the whole run is used instead.
const MIN_STEADY: Duration = Duration::from_secs(3);

/// The span the figures are taken over, and the calls active in it.
#[derive(Clone, Debug)]
pub struct Window {
    pub steady: bool,
    pub from: Instant,
    pub to: Instant,
    /// Each call's active span (dispatch → hang-up).
    pub spans: Vec<(Instant, Instant)>,
}

impl Window {
    /// The steady window, else the whole run; None without any active call.
    pub fn of(spans: Vec<(Instant, Instant)>, settled: &[Instant]) -> Option<Self> {
        let first = spans.iter().map(|s| s.0).min()?;
        let last = spans.iter().map(|s| s.1).max()?;
        let settled_all = settled.iter().max().copied();
        let first_end = spans.iter().map(|s| s.1).min()?;
        let steady = settled_all
            .filter(|&from| settled.len() == spans.len() && first_end >= from + MIN_STEADY);
        let (from, to) = match steady {
            Some(from) => (from, first_end),
            None => (first, last),
        };
        Some(Self {
            steady: steady.is_some(),
            from,
            to,
            spans,
        })
    }

    /// Seconds of call within `[a, b]`, over every call.
    pub fn call_seconds(&self, a: Instant, b: Instant) -> f64 {
        self.spans
            .iter()
            .map(|&(s, e)| {
                let (s, e) = (s.max(a), e.min(b));
                e.saturating_duration_since(s).as_secs_f64()
            })
            .sum()
    }

    pub fn seconds(&self) -> f64 {
        self.to.saturating_duration_since(self.from).as_secs_f64()
    }

    /// Calls active on average over the window.
    pub fn mean_calls(&self) -> f64 {
        let s = self.seconds();
        if s > 0.0 {
            self.call_seconds(self.from, self.to) / s
        } else {
            0.0
        }
    }
}

/// One process's cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Usage {
    pub pid: u32,
    /// CPU time per second of call (all its threads, user + system).
    pub cpu_ms_per_call_second: f64,
    /// CPU time over the window's wall time (1.0 = one core busy).
    pub cpu_cores: f64,
    /// Before the first call.
    pub rss_idle_mb: f64,
    /// Mean over the window.
    pub rss_steady_mb: f64,
    /// (steady − idle) / calls active on average.
    pub rss_mb_per_call: f64,
    pub samples: usize,
}

/// `pid`'s usage over `w`; None when fewer than two samples fall in it.
pub fn usage(pid: u32, series: &[Sample], idle_before: Instant, w: &Window) -> Option<Usage> {
    let inside: Vec<&Sample> = series
        .iter()
        .filter(|s| s.at >= w.from && s.at <= w.to)
        .collect();
    let (a, b) = (inside.first()?, inside.last()?);
    let span = b.at.saturating_duration_since(a.at).as_secs_f64();
    let call_seconds = w.call_seconds(a.at, b.at);
    if span <= 0.0 || call_seconds <= 0.0 {
        return None;
    }
    let cpu_ms = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 * 1e3 / USER_HZ;
    let idle = series
        .iter()
        .rev()
        .find(|s| s.at <= idle_before)
        .or(series.first())?;
    let mb = |kb: f64| kb / 1024.0;
    let steady_kb = inside.iter().map(|s| s.rss_kb as f64).sum::<f64>() / inside.len() as f64;
    let mean_calls = call_seconds / span;
    Some(Usage {
        pid,
        cpu_ms_per_call_second: cpu_ms / call_seconds,
        cpu_cores: cpu_ms / 1e3 / span,
        rss_idle_mb: mb(idle.rss_kb as f64),
        rss_steady_mb: mb(steady_kb),
        rss_mb_per_call: mb(steady_kb - idle.rss_kb as f64) / mean_calls,
        samples: inside.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn steady_window_and_per_call_figures() {
        let t0 = Instant::now();
        // Two calls: 1..21 s and 2..20 s, both settled by 4 s.
        let spans = vec![(at(t0, 1), at(t0, 21)), (at(t0, 2), at(t0, 20))];
        let w = Window::of(spans, &[at(t0, 3), at(t0, 4)]).unwrap();
        assert!(w.steady);
        assert_eq!((w.from, w.to), (at(t0, 4), at(t0, 20)));
        assert!((w.mean_calls() - 2.0).abs() < 1e-9);
        // 20 ticks (200 ms) of CPU per second; RSS 100 MB idle, 120 MB with the calls.
        let series: Vec<Sample> = (0..25)
            .map(|s| Sample {
                at: at(t0, s),
                cpu_ticks: s * 20,
                rss_kb: if s < 1 { 100 * 1024 } else { 120 * 1024 },
            })
            .collect();
        let u = usage(7, &series, at(t0, 0), &w).unwrap();
        assert!((u.cpu_ms_per_call_second - 100.0).abs() < 1e-6, "{u:?}");
        assert!((u.cpu_cores - 0.2).abs() < 1e-6);
        assert!((u.rss_mb_per_call - 10.0).abs() < 1e-6);
        assert_eq!(u.samples, 17);
    }

    #[test]
    fn short_steady_falls_back_to_the_whole_run() {
        let t0 = Instant::now();
        let spans = vec![(at(t0, 0), at(t0, 5)), (at(t0, 4), at(t0, 9))];
        let w = Window::of(spans, &[at(t0, 2), at(t0, 6)]).unwrap();
        assert!(!w.steady);
        assert_eq!((w.from, w.to), (at(t0, 0), at(t0, 9)));
        assert!(Window::of(vec![], &[]).is_none());
        assert!(usage(1, &[], t0, &w).is_none());
    }
}

//! What a simulation looked like over time, for the progress line and the HTML report: turn
//! latencies, calls starting and ending, and process samples as they happen; bucketed at the end.
//! Also the per-stage latency histograms' bins.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::sysstat::Sample;

/// About this many time buckets over a run (at least a second each).
const TARGET_BUCKETS: f64 = 60.0;

/// Bins of a stage's latency histogram.
pub const HISTOGRAM_BINS: usize = 24;

/// Raw events, kept whole: a few bytes per turn, per call and per second.
#[derive(Debug, Default)]
pub struct Series {
    /// (time since the run began, voice-to-voice latency) per completed turn.
    turns: Vec<(Duration, Duration)>,
    /// Time since the run began of each call's start and end.
    starts: Vec<Duration>,
    ends: Vec<Duration>,
    /// Overflow drops of the calls that ended (edges report them at the end of a call).
    drops: u64,
    turn_count: u64,
    samples: Vec<Sample>,
}

/// The run so far, for the progress line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Live {
    pub started: usize,
    pub ended: usize,
    pub turns: u64,
    pub drops: u64,
    pub turn_p95: Option<Duration>,
}

/// One time bucket of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimePoint {
    /// The bucket's start, seconds since the run began.
    pub t_s: f64,
    pub width_s: f64,
    /// Turns completed in the bucket and their voice-to-voice latency.
    pub turns: u64,
    pub turn_p50_ms: Option<f64>,
    pub turn_p95_ms: Option<f64>,
    /// Calls in progress at the bucket's end.
    pub calls_active: usize,
    /// Process CPU over the bucket, in % of one core, and the largest resident memory seen.
    pub cpu_percent: Option<f64>,
    pub rss_mb: Option<f64>,
}

/// One bin of a latency histogram: values in [lo_ms, hi_ms).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bin {
    pub lo_ms: f64,
    pub hi_ms: f64,
    pub count: u64,
}

impl Series {
    pub fn turn(&mut self, at: Duration, latency: Option<Duration>) {
        self.turn_count += 1;
        if let Some(l) = latency {
            self.turns.push((at, l));
        }
    }

    pub fn call_started(&mut self, at: Duration) {
        self.starts.push(at);
    }

    pub fn call_ended(&mut self, at: Duration, drops: u64) {
        self.ends.push(at);
        self.drops += drops;
    }

    pub fn sample(&mut self, s: Sample) {
        self.samples.push(s);
    }

    pub fn live(&self, turn_p95: Option<Duration>) -> Live {
        Live {
            started: self.starts.len(),
            ended: self.ends.len(),
            turns: self.turn_count,
            drops: self.drops,
            turn_p95,
        }
    }

    /// The run cut into about [`TARGET_BUCKETS`] buckets of whole seconds.
    pub fn timeline(&self, wall: Duration) -> Vec<TimePoint> {
        let wall = wall.as_secs_f64();
        let width = (wall / TARGET_BUCKETS).ceil().max(1.0);
        let n = ((wall / width).ceil() as usize).max(1);
        (0..n)
            .map(|i| self.bucket(i as f64 * width, width))
            .collect()
    }

    fn bucket(&self, lo: f64, width: f64) -> TimePoint {
        let hi = lo + width;
        let inside = |d: &Duration| (lo..hi).contains(&d.as_secs_f64());
        let mut lat: Vec<Duration> = self
            .turns
            .iter()
            .filter(|(at, _)| inside(at))
            .map(|&(_, l)| l)
            .collect();
        lat.sort_unstable();
        let before_end = |v: &[Duration]| v.iter().filter(|d| d.as_secs_f64() < hi).count();
        let (cpu_percent, rss_mb) = self.process(lo, hi);
        TimePoint {
            t_s: lo,
            width_s: width,
            turns: lat.len() as u64,
            turn_p50_ms: percentile(&lat, 0.50).map(ms),
            turn_p95_ms: percentile(&lat, 0.95).map(ms),
            calls_active: before_end(&self.starts).saturating_sub(before_end(&self.ends)),
            cpu_percent,
            rss_mb,
        }
    }

    /// CPU over the sample intervals centred in [lo, hi), and the peak RSS sampled there.
    fn process(&self, lo: f64, hi: f64) -> (Option<f64>, Option<f64>) {
        let (mut cpu, mut wall, mut rss) = (0.0, 0.0, None::<u64>);
        for pair in self.samples.windows(2) {
            let [a, b] = pair else { continue };
            let mid = (a.at.as_secs_f64() + b.at.as_secs_f64()) / 2.0;
            if !(lo..hi).contains(&mid) {
                continue;
            }
            cpu += b.cpu.saturating_sub(a.cpu).as_secs_f64();
            wall += b.at.saturating_sub(a.at).as_secs_f64();
            rss = Some(rss.unwrap_or(0).max(b.rss));
        }
        let cpu_percent = (wall > 0.0).then(|| cpu / wall * 100.0);
        (cpu_percent, rss.map(|b| b as f64 / (1024.0 * 1024.0)))
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `h` (microseconds) in [`HISTOGRAM_BINS`] equal bins from its minimum to its maximum.
pub fn bins(h: &Histogram<u64>) -> Vec<Bin> {
    if h.is_empty() {
        return vec![];
    }
    let (lo, hi) = (h.min() as f64, h.max() as f64);
    let width = ((hi - lo) / HISTOGRAM_BINS as f64).max(1.0);
    let mut out: Vec<Bin> = (0..HISTOGRAM_BINS)
        .map(|i| Bin {
            lo_ms: (lo + i as f64 * width) / 1e3,
            hi_ms: (lo + (i + 1) as f64 * width) / 1e3,
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let at = (v.value_iterated_to() as f64 - lo).max(0.0);
        let i = ((at / width) as usize).min(HISTOGRAM_BINS - 1);
        if let Some(bin) = out.get_mut(i) {
            bin.count += v.count_at_value();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn turns_calls_and_samples_land_in_their_buckets() {
        let mut series = Series::default();
        series.call_started(s(0.1));
        series.call_started(s(1.5));
        series.turn(s(0.5), Some(s(1.0)));
        series.turn(s(1.2), Some(s(2.0)));
        series.turn(s(1.4), Some(s(3.0)));
        series.turn(s(1.6), None);
        series.call_ended(s(2.5), 4);
        for (at, cpu, rss) in [(0.0, 0.0, 10), (1.0, 0.5, 20), (2.0, 0.75, 30)] {
            series.sample(Sample {
                at: s(at),
                cpu: s(cpu),
                rss: rss << 20,
            });
        }
        let t = series.timeline(s(3.0));
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].turns, 1);
        assert_eq!(t[1].turns, 2);
        assert_eq!(t[1].turn_p50_ms, Some(2000.0));
        assert_eq!(t[1].turn_p95_ms, Some(3000.0));
        assert_eq!(t[2].turn_p50_ms, None);
        assert_eq!(
            [t[0].calls_active, t[1].calls_active, t[2].calls_active],
            [1, 2, 1]
        );
        // The interval from 0 to 1 s is the first bucket's: 0.5 s of CPU over 1 s.
        assert_eq!(t[0].cpu_percent, Some(50.0));
        assert_eq!(t[1].cpu_percent, Some(25.0));
        assert_eq!(t[1].rss_mb, Some(30.0));
        assert_eq!(t[2].cpu_percent, None);
        let live = series.live(None);
        assert_eq!(
            (live.started, live.ended, live.turns, live.drops),
            (2, 1, 4, 4)
        );
    }

    #[test]
    fn long_runs_get_about_sixty_buckets_of_whole_seconds() {
        let t = Series::default().timeline(s(600.0));
        assert_eq!(t.len(), 60);
        assert_eq!(t[1].t_s, 10.0);
        assert_eq!(Series::default().timeline(Duration::ZERO).len(), 1);
    }

    #[test]
    fn histogram_bins_cover_every_value() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [1_000, 1_500, 2_000, 50_000] {
            h.record(v).unwrap();
        }
        let b = bins(&h);
        assert_eq!(b.len(), HISTOGRAM_BINS);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 4);
        assert_eq!(b[0].count, 3);
        assert_eq!(b[HISTOGRAM_BINS - 1].count, 1);
        assert!((b[0].lo_ms - 1.0).abs() < 0.01, "{:?}", b[0]);
        assert!(bins(&Histogram::<u64>::new(3).unwrap()).is_empty());
    }
}

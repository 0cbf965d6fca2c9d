//! CPU load as LiveKit Agents compute it (`_DefaultLoadCalc`): utilisation sampled every 0.5 s,
//! averaged over the last 5 samples (2.5 s), 0..1 of the CPUs this process may use. In a cgroup
//! v2 container with a CPU limit that is the container's usage against its quota, else the
//! machine's busy time from /proc/stat (iowait counts as idle, as psutil counts it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
pub const WINDOW: usize = 5;

/// The current moving average, shared with the status reports.
#[derive(Debug, Default)]
pub struct CpuLoad {
    bits: AtomicU32,
}

impl CpuLoad {
    pub fn get(&self) -> f32 {
        f32::from_bits(self.bits.load(Ordering::Relaxed))
    }

    pub fn set(&self, load: f32) {
        self.bits
            .store(load.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
}

/// Cumulative busy and elapsed CPU time, in any one unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub busy: f64,
    pub total: f64,
}

/// Turns successive readings into the windowed utilisation.
#[derive(Debug, Default)]
pub struct Window {
    last: Option<Reading>,
    samples: VecDeque<f32>,
}

impl Window {
    /// Add a reading; the average once two readings give a first sample.
    pub fn push(&mut self, now: Reading) -> Option<f32> {
        let last = self.last.replace(now)?;
        let total = now.total - last.total;
        if total <= 0.0 {
            return self.average();
        }
        let busy = ((now.busy - last.busy) / total).clamp(0.0, 1.0) as f32;
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(busy);
        self.average()
    }

    fn average(&self) -> Option<f32> {
        (!self.samples.is_empty())
            .then(|| self.samples.iter().sum::<f32>() / self.samples.len() as f32)
    }
}

/// Sample until `load` has no other owner (the worker is gone).
pub async fn sample(load: Arc<CpuLoad>) {
    let mut source = Source::detect();
    let mut window = Window::default();
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Arc::strong_count(&load) > 1 {
        tick.tick().await;
        let Some(reading) = source.read() else {
            continue;
        };
        if let Some(avg) = window.push(reading) {
            load.set(avg);
            metrics::gauge!(crate::telemetry::catalog::WORKER_CPU_LOAD).set(f64::from(avg));
        }
    }
}

/// Where readings come from.
enum Source {
    /// cgroup v2 `cpu.stat` usage (µs) against wall time times the CPUs the quota allows.
    Cgroup {
        cpus: f64,
        started: std::time::Instant,
    },
    ProcStat,
    None,
}

const CGROUP_STAT: &str = "/sys/fs/cgroup/cpu.stat";
const CGROUP_MAX: &str = "/sys/fs/cgroup/cpu.max";

impl Source {
    #[allow(clippy::disallowed_methods)] // cgroupfs is in memory: reading it never waits on a disk
    fn detect() -> Self {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if cgroup_usage_us().is_some() {
            // Unlimited ("max"): the container may use every CPU it sees.
            let quota = std::fs::read_to_string(CGROUP_MAX)
                .ok()
                .and_then(|s| cgroup_cpus(&s));
            return Source::Cgroup {
                cpus: quota.map_or(available, |q| q.min(available)),
                started: std::time::Instant::now(),
            };
        }
        if proc_stat().is_some() {
            Source::ProcStat
        } else {
            tracing::warn!("no CPU accounting found: the worker's load counts call slots only");
            Source::None
        }
    }

    fn read(&mut self) -> Option<Reading> {
        match self {
            Source::Cgroup { cpus, started } => Some(Reading {
                busy: cgroup_usage_us()?,
                total: started.elapsed().as_secs_f64() * 1e6 * *cpus,
            }),
            Source::ProcStat => proc_stat(),
            Source::None => None,
        }
    }
}

/// CPUs a cgroup v2 `cpu.max` ("quota period", or "max period") allows; None when unlimited.
pub fn cgroup_cpus(cpu_max: &str) -> Option<f64> {
    let mut parts = cpu_max.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then_some(quota / period)
}

#[allow(clippy::disallowed_methods)] // cgroupfs is in memory: reading it never waits on a disk
fn cgroup_usage_us() -> Option<f64> {
    let text = std::fs::read_to_string(CGROUP_STAT).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(target_os = "linux")]
fn proc_stat() -> Option<Reading> {
    use procfs::CurrentSI;
    let t = procfs::KernelStats::current().ok()?.total;
    let busy = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    let idle = t.idle + t.iowait.unwrap_or(0);
    Some(Reading {
        busy: busy as f64,
        total: (busy + idle) as f64,
    })
}

#[cfg(not(target_os = "linux"))]
fn proc_stat() -> Option<Reading> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(busy: f64, total: f64) -> Reading {
        Reading { busy, total }
    }

    #[test]
    fn the_average_covers_the_last_five_samples() {
        let mut w = Window::default();
        assert_eq!(w.push(r(0.0, 0.0)), None, "one reading is no sample yet");
        assert_eq!(w.push(r(100.0, 100.0)), Some(1.0));
        assert_eq!(w.push(r(100.0, 200.0)), Some(0.5));
        for i in 0..5 {
            w.push(r(
                100.0 + 50.0 * f64::from(i + 1),
                200.0 + 100.0 * f64::from(i + 1),
            ));
        }
        // Only the last five (each 50%) count: the early 100% sample has left the window.
        assert_eq!(w.push(r(400.0, 800.0)), Some(0.5));
        assert_eq!(
            w.push(r(400.0, 800.0)),
            Some(0.5),
            "no time passed: no new sample"
        );
    }

    #[test]
    fn cgroup_quota_parsing() {
        assert_eq!(cgroup_cpus("200000 100000\n"), Some(2.0));
        assert_eq!(cgroup_cpus("50000 100000"), Some(0.5));
        assert_eq!(cgroup_cpus("max 100000"), None);
        assert_eq!(cgroup_cpus(""), None);
    }

    #[test]
    fn this_machine_has_cpu_accounting() {
        let mut source = Source::detect();
        let first = source.read();
        if cfg!(target_os = "linux") {
            assert!(first.is_some(), "no /proc/stat or cgroup cpu.stat");
        }
    }

    #[test]
    fn load_is_clamped() {
        let l = CpuLoad::default();
        assert_eq!(l.get(), 0.0);
        l.set(1.7);
        assert_eq!(l.get(), 1.0);
    }
}

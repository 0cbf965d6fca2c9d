//! Process CPU time and resident memory, and the host's steal, read from /proc (Linux).
#![allow(clippy::disallowed_methods)] // /proc is in memory: reading it never waits on a disk

use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/self/stat times (USER_HZ is 100 on every Linux we run on).
const USER_HZ: f64 = 100.0;

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / USER_HZ))
}

/// Peak resident set size in bytes (VmHWM).
pub fn peak_rss() -> Option<u64> {
    status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size in bytes (VmRSS).
pub fn rss() -> Option<u64> {
    status_kb("VmRSS:").map(|kb| kb * 1024)
}

/// One reading of the process, `at` a time since the run began.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: Duration,
    /// CPU time used so far.
    pub cpu: Duration,
    /// Resident memory in bytes.
    pub rss: u64,
}

/// Read the process now (zeros where /proc cannot be read).
pub fn sample(at: Duration) -> Sample {
    Sample {
        at,
        cpu: cpu_time().unwrap_or_default(),
        rss: rss().unwrap_or(0),
    }
}

/// Time the machine's CPUs spent, in clock ticks since boot: all of it, and the part the
/// hypervisor gave to other guests while this one had work (`steal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineTicks {
    pub total: u64,
    pub steal: u64,
}

impl MachineTicks {
    /// The aggregate `cpu` line of /proc/stat, read by `procfs` as the worker's CPU load reads it.
    #[cfg(target_os = "linux")]
    pub fn now() -> Option<Self> {
        use procfs::CurrentSI;
        Self::from_cpu(&procfs::KernelStats::current().ok()?.total)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn now() -> Option<Self> {
        None
    }

    /// No reading without the steal field (Linux 2.6.11 on).
    #[cfg(target_os = "linux")]
    fn from_cpu(t: &procfs::CpuTime) -> Option<Self> {
        let steal = t.steal?;
        // guest and guest_nice are already inside user and nice.
        let total = t.user
            + t.nice
            + t.system
            + t.idle
            + t.iowait.unwrap_or(0)
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + steal;
        Some(Self { total, steal })
    }

    /// The share of the machine's CPU time stolen between `self` and `later`.
    pub fn steal_share(self, later: Self) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let steal = later.steal.checked_sub(self.steal)?;
        (total > 0).then(|| steal as f64 / total as f64)
    }
}

/// Readings at the start of a run, to measure what it used.
pub struct RunStart {
    wall: Instant,
    cpu: Duration,
    baseline_rss: u64,
    machine: Option<MachineTicks>,
}

/// What the run used, and how much of the machine the host took away meanwhile.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunUsage {
    pub wall: Duration,
    pub cpu: Duration,
    pub baseline_rss: u64,
    /// Share of the machine's CPU time the hypervisor gave to other guests (`None` off Linux).
    pub host_steal: Option<f64>,
}

impl RunStart {
    pub fn now() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_time().unwrap_or_default(),
            baseline_rss: rss().unwrap_or(0),
            machine: MachineTicks::now(),
        }
    }

    pub fn usage(&self) -> RunUsage {
        let steal = self.machine.zip(MachineTicks::now());
        RunUsage {
            wall: self.wall.elapsed(),
            cpu: cpu_time().unwrap_or_default().saturating_sub(self.cpu),
            baseline_rss: self.baseline_rss,
            host_steal: steal.and_then(|(a, b)| a.steal_share(b)),
        }
    }
}

fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        assert!(super::peak_rss().is_some_and(|b| b > 1024 * 1024));
        assert!(super::rss().is_some());
        assert!(super::cpu_time().is_some());
        assert!(super::MachineTicks::now().is_some_and(|m| m.total > 0));
    }

    /// The reading `now` takes, from a /proc/stat whose aggregate line is `cpu`.
    #[cfg(target_os = "linux")]
    fn ticks(cpu: &str) -> Option<super::MachineTicks> {
        use procfs::FromBufReadSI;
        let info = procfs::ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: true,
        };
        let stat = format!("{cpu}\nctxt 1\nbtime 1\nprocesses 1\n");
        let k = procfs::KernelStats::from_buf_read(stat.as_bytes(), &info).ok()?;
        super::MachineTicks::from_cpu(&k.total)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn steal_is_the_eighth_field_of_the_cpu_line() {
        use super::MachineTicks;
        let a = ticks("cpu  100 0 50 800 10 0 5 35 0 0").unwrap();
        assert_eq!(
            a,
            MachineTicks {
                total: 1000,
                steal: 35
            }
        );
        let b = ticks("cpu  150 0 60 900 10 0 5 75 20 0").unwrap();
        assert_eq!(a.steal_share(b), Some(40.0 / 200.0));
        // Per-CPU lines, short or garbled lines, and a counter that went back are not readings.
        assert_eq!(ticks("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(ticks("cpu 1 2 3"), None);
        assert_eq!(ticks("cpu 1 2 x 4 5 6 7 8"), None);
        assert_eq!(ticks("cpu 1 2 3 4 5 6 7"), None, "no steal field");
        assert_eq!(b.steal_share(a), None);
        assert_eq!(a.steal_share(a), None);
    }
}

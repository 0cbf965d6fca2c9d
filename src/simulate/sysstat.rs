//! Process CPU time and resident memory, read from /proc (Linux).
#![allow(clippy::disallowed_methods)] // /proc is in memory: reading it never waits on a disk

use std::time::Duration;

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
    }
}

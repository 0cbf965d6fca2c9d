//! CPU time and resident memory of any process, sampled from /proc/PID every second (Linux), and
//! finding the LiveKit server's process by the port it listens on.
#![allow(clippy::disallowed_methods)] // /proc is in memory: reading it never waits on a disk

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ is 100 on every Linux we run on).
pub const USER_HZ: f64 = 100.0;
const EVERY: Duration = Duration::from_secs(1);

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kb: u64,
}

/// utime + stime ticks and VmRSS of `pid`, None once it is gone or unreadable.
pub fn read(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((utime + stime, rss_kb))
}

/// Samples one process every second until stopped.
pub struct Sampler {
    pub pid: u32,
    series: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let series = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&series);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tick.tick().await;
                let Some((cpu_ticks, rss_kb)) = read(pid) else {
                    continue;
                };
                let s = Sample {
                    at: Instant::now(),
                    cpu_ticks,
                    rss_kb,
                };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
        });
        Self { pid, series, task }
    }

    /// Stop, with one last reading; the samples so far.
    pub fn stop(self) -> Vec<Sample> {
        self.task.abort();
        let mut series =
            std::mem::take(&mut *self.series.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some((cpu_ticks, rss_kb)) = read(self.pid) {
            series.push(Sample {
                at: Instant::now(),
                cpu_ticks,
                rss_kb,
            });
        }
        series
    }
}

/// The LiveKit server serving `port`: a process named `livekit-server` (or `server`) whose
/// command line names the port, else whichever process holds the listening TCP socket.
pub fn find_server_pid(port: u16) -> Option<u32> {
    by_cmdline(port).or_else(|| by_listening_socket(port))
}

fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn by_cmdline(port: u16) -> Option<u32> {
    let port = port.to_string();
    pids().into_iter().find(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let named = matches!(comm.trim(), "livekit-server" | "server");
        named
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    c.split(|&b| b == 0)
                        .any(|arg| String::from_utf8_lossy(arg).contains(&port))
                })
                .unwrap_or(false)
    })
}

/// Inodes of TCP sockets listening on `port` (/proc/net/tcp and tcp6: state 0A).
fn listening_inodes(port: u16) -> Vec<String> {
    let hex = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let listening = f.get(3) == Some(&"0A");
                    let ours = f.get(1).is_some_and(|a| a.ends_with(&hex));
                    (listening && ours).then(|| f.get(9).map(|s| s.to_string()))?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn by_listening_socket(port: u16) -> Option<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let me = std::process::id();
    pids().into_iter().filter(|&p| p != me).find(|pid| {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process_and_finds_a_listener() {
        let (ticks, rss) = read(std::process::id()).unwrap();
        assert!(rss > 1024, "{rss} kB");
        let _ = ticks;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!listening_inodes(port).is_empty());
        // Our own process is skipped on purpose (the server is another process).
        assert_eq!(by_listening_socket(port), None);
        assert_eq!(read(u32::MAX), None);
    }
}

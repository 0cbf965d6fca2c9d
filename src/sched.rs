//! OS scheduling hints for the process's threads (Linux; no-ops elsewhere). Best effort: a
//! kernel or sandbox that refuses them leaves the thread as it was, and the service runs the same,
//! only with more wake-up latency under load.
//!
//! - The control runtime (dialogue, replies, the actors' mailboxes) asks for a short time slice.
//!   On a kernel with EEVDF (Linux 6.12+) a thread with a shorter slice gets earlier deadlines, so
//!   when it wakes on a core busy with frame work it runs at once instead of after the running
//!   thread's slice (1.4 ms by default on 2 cores, several when other threads queue). Its share
//!   of the CPU does not change, only how finely it is served. At 500 wire calls its threads'
//!   wake-up delay p99 fell from 2.0 ms to 0.8 ms (`perf sched timehist`, same minutes).
//! - The simulation's emulators, which stand in for other machines, run at a lower priority.

use std::time::Duration;

/// The control runtime's slice: the kernel's minimum (EEVDF clamps to 0.1-100 ms).
pub const CONTROL_SLICE: Duration = Duration::from_micros(100);

/// Ask for [`CONTROL_SLICE`] on the calling thread (a runtime's `on_thread_start`). Threads it
/// starts inherit the slice.
pub fn control_thread() {
    match set_slice(Some(CONTROL_SLICE)) {
        Ok(got) if got == CONTROL_SLICE => {}
        // Kernels before EEVDF's slice requests accept the call and ignore the runtime.
        Ok(got) => tracing::debug!(slice = ?got, "control thread keeps the kernel's time slice"),
        Err(e) => tracing::debug!(error = %e, "control thread keeps the default time slice"),
    }
}

/// The calling thread yields to the others: the default slice (not one inherited from a
/// control thread) and a nice value higher by `by` (per thread on Linux; raising it needs no
/// privilege).
pub fn background_thread(by: i32) {
    if let Err(e) = set_slice(None) {
        tracing::debug!(error = %e, "background thread keeps its time slice");
    }
    if let Err(e) = nice(by) {
        tracing::debug!(error = %e, "background thread keeps its priority");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::time::Duration;

    /// `struct sched_attr` (include/uapi/linux/sched/types.h), its first published size.
    #[repr(C)]
    #[derive(Default)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        /// For the fair policies (6.12+): the requested slice, in ns.
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }

    const SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;
    const _: () = assert!(SIZE == 56);

    fn get() -> io::Result<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: the kernel writes at most SIZE bytes into `attr`, a live `repr(C)` struct of that
        // size; pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                std::ptr::from_mut(&mut attr),
                SIZE,
                0,
            )
        };
        if rc == 0 {
            Ok(attr)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The calling thread's slice as the kernel reports it.
    pub fn slice() -> io::Result<Duration> {
        Ok(Duration::from_nanos(get()?.runtime))
    }

    /// Set the calling thread's slice (`None`: the kernel's default), keeping its policy and
    /// nice value; returns the slice the kernel then reports.
    pub fn set_slice(want: Option<Duration>) -> io::Result<Duration> {
        let mut attr = get()?;
        attr.size = SIZE;
        attr.flags = 0;
        attr.runtime = want.map_or(0, |s| u64::try_from(s.as_nanos()).unwrap_or(u64::MAX));
        // SAFETY: the kernel reads SIZE bytes from `attr`, which lives for the call; pid 0 is
        // the calling thread.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::from_ref(&attr), 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        slice()
    }

    pub fn nice(by: i32) -> io::Result<()> {
        // nice(2) returns the new value, which may be -1 itself: errno tells.
        // SAFETY: nice(2) takes a plain integer and changes only the calling thread's nice value.
        #[allow(unsafe_code)]
        let rc = unsafe {
            *libc::__errno_location() = 0;
            libc::nice(by)
        };
        let err = io::Error::last_os_error();
        if rc == -1 && err.raw_os_error() != Some(0) {
            return Err(err);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
use linux::{nice, set_slice};

#[cfg(not(target_os = "linux"))]
fn set_slice(_: Option<Duration>) -> std::io::Result<Duration> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
fn nice(_: i32) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// On threads of its own: the hints are per thread, and the test threads are shared.
    #[test]
    fn a_control_threads_slice_is_inherited_and_a_background_thread_drops_it() {
        let (default, control, child, background) = std::thread::spawn(|| {
            let default = slice();
            control_thread();
            let child = std::thread::spawn(slice).join().unwrap();
            let background = std::thread::spawn(|| {
                background_thread(0);
                slice()
            });
            (default, slice(), child, background.join().unwrap())
        })
        .join()
        .unwrap();
        assert_ne!(default, CONTROL_SLICE, "the default slice is longer");
        // CI runs a kernel with EEVDF's slice requests (6.12+); an older one fails here loudly.
        assert_eq!(control, CONTROL_SLICE);
        assert_eq!(child, CONTROL_SLICE, "threads it starts inherit the slice");
        assert_eq!(background, default);
    }

    fn slice() -> Duration {
        super::linux::slice().expect("sched_getattr on this thread")
    }
}

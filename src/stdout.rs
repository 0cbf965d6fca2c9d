//! What the commands print for whoever ran them. Rust ignores SIGPIPE, so `println!` to a reader
//! that went away (`frontdesk check | head -1`) panics; here a closed pipe ends the process
//! quietly with status 0 instead, as a C tool killed by SIGPIPE would have stopped (the workspace
//! denies the unsafe needed to restore the signal).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by commands that hold calls (console, loadtest): their output is a side show, so a reader
/// that went away must not end a call mid-way (its record would be lost).
static KEEP_RUNNING: AtomicBool = AtomicBool::new(false);
/// Stdout failed once in keep-running mode: later writes are skipped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// From now on a failed stdout drops the output instead of ending the process.
pub fn keep_running_on_close() {
    KEEP_RUNNING.store(true, Ordering::Relaxed);
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Write `text` to stdout and flush it. A closed reader exits the process (status 0); any other
/// failure (a full disk) exits with status 1, saying why on stderr. After
/// [`keep_running_on_close`] either failure only stops the output, said once on stderr.
pub fn write(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if KEEP_RUNNING.load(Ordering::Relaxed) => {
            CLOSED.store(true, Ordering::Relaxed);
            let _ = writeln!(
                std::io::stderr(),
                "warning: stdout closed ({e}); output stops, the run goes on"
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

//! What the commands print for whoever ran them. Rust ignores SIGPIPE, so `println!` to a reader
//! that went away (`frontdesk check | head -1`) panics; here a closed pipe ends the process
//! quietly with status 0 instead, as a C tool killed by SIGPIPE would have stopped (the workspace
//! denies the unsafe needed to restore the signal).

use std::io::Write;

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Write `text` to stdout and flush it. A closed reader exits the process (status 0); any other
/// failure (a full disk) exits with status 1, saying why on stderr.
pub fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

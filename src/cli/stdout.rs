//! Standard output for reports. Rust's `print!` panics when the reader has
//! gone (EPIPE: `portico apply | head`); a panic in the middle of `apply`
//! would stop it between two tasks. Here a closed pipe only ends the output.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write failed: nobody is reading any more.
static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output and flushes it, unless output has
/// already failed. Errors end the output, never the command.
pub(crate) fn write(args: fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        GONE.store(true, Ordering::Relaxed);
    }
}

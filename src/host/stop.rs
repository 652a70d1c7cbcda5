//! SIGTERM to a renewal run: it starts no new order and no deploy hook,
//! lets the orders in flight end (each within its limit, DNS records
//! removed), writes what it obtained, saves its state and exits. The flag
//! is set from the signal handler (an atomic store, all a handler may do).

use std::sync::atomic::{AtomicBool, Ordering};

static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    STOPPING.store(true, Ordering::SeqCst);
}

/// From now on SIGTERM asks this process to stop between steps instead of
/// ending it at once.
pub fn stop_between_steps_on_sigterm() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    if let Err(e) = unsafe { sigaction(Signal::SIGTERM, &action) } {
        tracing::warn!("cannot handle SIGTERM ({e}): a stop ends this run at once");
    }
}

/// Was this process asked to stop?
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

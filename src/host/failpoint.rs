//! Failpoints: a name before every durable step (a rename, a link, a
//! removal, a command that changes the host, a systemd call, a reload),
//! so a test can kill portico exactly there and prove that what is left on
//! disk is something nginx accepts and the next run repairs.
//!
//! Compiled in only with the `failpoints` cargo feature (never in a
//! release build): without it [`hit`] is an empty inline function.
//!
//! With the feature, two environment variables drive it:
//!
//! - `PORTICO_FAILPOINT`: where to die. `#N`: at the N-th durable step of
//!   the run, whatever it is; `NAME`: at the first step named NAME;
//!   `NAME#K`: at its K-th. Dying is `SIGKILL` to itself: no destructor,
//!   no flush, no cleanup, exactly what `kill -9` does.
//! - `PORTICO_FAILPOINT_TRACE`: a file each step is appended to as
//!   `N NAME DETAIL`, to count and name the steps of a run.

/// A durable step named `name`, about `detail` (a path, a unit, a command).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str, _detail: &dyn std::fmt::Display) {}

/// A durable step named `name`, about `detail` (a path, a unit, a command).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str, detail: &dyn std::fmt::Display) {
    enabled::hit(name, detail)
}

#[cfg(feature = "failpoints")]
mod enabled {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// Where to die.
    enum Spec {
        /// The N-th step of any name.
        Nth(u64),
        /// The K-th step named so.
        Named(String, u64),
    }

    fn spec() -> &'static Option<Spec> {
        static SPEC: OnceLock<Option<Spec>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let v = std::env::var("PORTICO_FAILPOINT").ok()?;
            if let Some(n) = v.strip_prefix('#') {
                return n.parse().ok().map(Spec::Nth);
            }
            Some(match v.split_once('#') {
                Some((name, k)) => Spec::Named(name.to_string(), k.parse().unwrap_or(1)),
                None => Spec::Named(v, 1),
            })
        })
    }

    static STEPS: AtomicU64 = AtomicU64::new(0);
    static NAMED: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

    pub(super) fn hit(name: &str, detail: &dyn std::fmt::Display) {
        let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(path) = std::env::var("PORTICO_FAILPOINT_TRACE") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{n} {name} {detail}");
            }
        }
        let die = match spec() {
            None => false,
            Some(Spec::Nth(at)) => *at == n,
            Some(Spec::Named(want, k)) if want == name => {
                let mut named = NAMED.lock().unwrap_or_else(|e| e.into_inner());
                let count = match named.iter_mut().find(|(n, _)| n == name) {
                    Some((_, c)) => {
                        *c += 1;
                        *c
                    }
                    None => {
                        named.push((name.to_string(), 1));
                        1
                    }
                };
                count == *k
            }
            Some(Spec::Named(..)) => false,
        };
        if die {
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
            // SIGKILL cannot be caught; this is never reached.
            std::process::abort();
        }
    }
}

//! The clock seam: wall time for certificates and back-off, a monotonic
//! clock and sleep for bounded waits. Tests use [`FakeClock`], whose sleeps
//! only move its time forward.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time, as portico reads it.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn unix_now(&self) -> i64;
    /// Time since an arbitrary start, never going backwards (for deadlines).
    fn monotonic(&self) -> Duration;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn unix_now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock for tests: fixed wall time, and sleeps that only advance it.
#[derive(Debug, Default)]
pub struct FakeClock {
    /// Seconds since the epoch it reports.
    pub now: i64,
    elapsed: Mutex<Duration>,
}

impl FakeClock {
    /// A clock that says it is `now` (Unix seconds).
    pub fn at(now: i64) -> Self {
        FakeClock {
            now,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// How long all sleeps added up to.
    pub fn slept(&self) -> Duration {
        *self.elapsed.lock().expect("clock lock")
    }
}

impl Clock for FakeClock {
    fn unix_now(&self) -> i64 {
        self.now + self.slept().as_secs() as i64
    }

    fn monotonic(&self) -> Duration {
        self.slept()
    }

    fn sleep(&self, d: Duration) {
        *self.elapsed.lock().expect("clock lock") += d;
    }
}

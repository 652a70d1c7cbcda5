//! Where the time goes: every task, every ACME step and every external
//! command runs inside a `step` span, and says how long it took when it
//! ends. Shown at `-v` (info); `benches/acme.rs` reads these lines to print
//! the breakdown beside its totals.
//!
//! A line reads `INFO step{name="acme new order" of="b1.test"}: portico::timing: 12.3 ms`.

use std::time::Instant;

/// A step being timed: logs its duration, inside its span, when dropped.
#[must_use = "the step is timed until this is dropped"]
pub struct Step {
    span: tracing::Span,
    start: Instant,
}

/// Starts timing `name` (what: `acme new order`, `task`, `cmd`) for `of`
/// (which certificate, task or command line).
pub fn step(name: &str, of: &str) -> Step {
    Step {
        span: tracing::info_span!("step", name, of),
        start: Instant::now(),
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        self.span
            .in_scope(|| tracing::info!(target: "portico::timing", "{ms:.1} ms"));
    }
}

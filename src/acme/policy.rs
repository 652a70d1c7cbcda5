//! When to renew a certificate (pure). With ACME Renewal Information (RFC
//! 9773) the CA suggests a window and the client picks a random moment in
//! it; without, renew once less than `remaining_fraction` of the lifetime is
//! left. Let's Encrypt ended OCSP in 2025: nothing here staples or asks OCSP.

/// A suggested renewal window from the CA's `renewalInfo`, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Renew no earlier than this (Unix seconds).
    pub start: i64,
    /// Renew by this (Unix seconds).
    pub end: i64,
}

/// The moment to renew at, in Unix seconds.
///
/// `jitter` in [0, 1) picks the moment inside an ARI window (callers draw it
/// at random once per certificate and keep it, so the choice is stable
/// between runs); it is ignored without a window.
pub fn renew_at(
    not_before: i64,
    not_after: i64,
    remaining_fraction: f64,
    ari: Option<Window>,
    jitter: f64,
) -> i64 {
    match ari {
        Some(w) if w.end > w.start => {
            w.start + ((w.end - w.start) as f64 * jitter.clamp(0.0, 0.999_999)) as i64
        }
        Some(w) => w.start,
        None => {
            let lifetime = (not_after - not_before).max(0) as f64;
            not_after - (lifetime * remaining_fraction) as i64
        }
    }
}

/// Due now?
pub fn due(
    now: i64,
    not_before: i64,
    not_after: i64,
    remaining_fraction: f64,
    ari: Option<Window>,
    jitter: f64,
) -> bool {
    now >= renew_at(not_before, not_after, remaining_fraction, ari, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_third_of_every_lifetime_without_ari() {
        // 6-day (short-lived), 45-day, 90-day and 5-year (pebble) certificates.
        for days in [6, 45, 90, 5 * 365] {
            let (nb, na) = (1_000_000, 1_000_000 + days * DAY);
            let at = renew_at(nb, na, 1.0 / 3.0, None, 0.5);
            let left = na - at;
            assert_eq!(left, days * DAY / 3, "{days} days");
            assert!(!due(at - 1, nb, na, 1.0 / 3.0, None, 0.5));
            assert!(due(at, nb, na, 1.0 / 3.0, None, 0.5));
        }
    }

    #[test]
    fn inside_the_ari_window_at_the_drawn_moment() {
        let (nb, na) = (0, 90 * DAY);
        let w = Window {
            start: 60 * DAY,
            end: 62 * DAY,
        };
        assert_eq!(renew_at(nb, na, 1.0 / 3.0, Some(w), 0.0), 60 * DAY);
        assert_eq!(renew_at(nb, na, 1.0 / 3.0, Some(w), 0.5), 61 * DAY);
        let late = renew_at(nb, na, 1.0 / 3.0, Some(w), 0.999_999_9);
        assert!(late < 62 * DAY && late > 61 * DAY);
        // A window in the past (a revocation event): renew now.
        let past = Window {
            start: 10 * DAY,
            end: 10 * DAY + 3600,
        };
        assert!(due(20 * DAY, nb, na, 1.0 / 3.0, Some(past), 0.7));
        // A degenerate window: its start.
        assert_eq!(
            renew_at(nb, na, 0.3, Some(Window { start: 5, end: 5 }), 0.4),
            5
        );
    }
}

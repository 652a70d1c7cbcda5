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

/// Without ARI, how much further than `remaining_fraction` the renewal
/// moments of a host's certificates spread: each renews once between
/// `remaining_fraction` and 1.5 times it of its lifetime is left (a third
/// to a half), so certificates obtained together (a first apply of
/// thousands) do not all come due on the same day and meet the CA's
/// rate limits together.
pub const SPREAD: f64 = 0.5;

/// Where inside the spread certificate `name` renews without ARI, in
/// [0, 1): drawn from its name (FNV-1a, then splitmix64's finalizer so
/// names that differ in one character land far apart), the same at every
/// run and different between certificates.
pub fn lifetime_jitter(name: &str) -> f64 {
    let mut z = crate::playbook::schedule::stable_hash(name);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The fraction of its lifetime left when a certificate renews without
/// ARI: `remaining_fraction`, moved by `jitter` inside the [`SPREAD`].
pub fn spread_fraction(remaining_fraction: f64, jitter: f64) -> f64 {
    let spread = remaining_fraction * (1.0 + SPREAD * jitter.clamp(0.0, 0.999_999));
    // Never later than `remaining_fraction` says, never the whole lifetime.
    remaining_fraction.max(spread.min(0.95))
}

/// The moment to renew at, in Unix seconds.
///
/// `jitter` in [0, 1) picks the moment inside an ARI window (callers draw it
/// at random once per certificate and keep it, so the choice is stable
/// between runs) or, without one, inside the [`SPREAD`] (callers pass
/// [`lifetime_jitter`] for a renewal the daemon spreads, 0 for one at
/// exactly `remaining_fraction`).
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
            not_after - (lifetime * spread_fraction(remaining_fraction, jitter)) as i64
        }
    }
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
            let at = renew_at(nb, na, 1.0 / 3.0, None, 0.0);
            let left = na - at;
            assert_eq!(left, days * DAY / 3, "{days} days");
        }
    }

    #[test]
    fn without_ari_certificates_obtained_together_come_due_over_a_sixth_of_their_lifetime() {
        let (nb, na) = (0, 90 * DAY);
        let mut days: Vec<i64> = (0..2000)
            .map(|i| {
                let j = lifetime_jitter(&format!("c{i}"));
                assert!((0.0..1.0).contains(&j));
                (na - renew_at(nb, na, 1.0 / 3.0, None, j)) / DAY
            })
            .collect();
        // Between a third (30 days) and a half (45 days) left.
        assert!(days.iter().all(|d| (30..=45).contains(d)), "{days:?}");
        days.sort_unstable();
        days.dedup();
        assert!(days.len() >= 15, "spread over the days: {days:?}");
        // The same name, the same moment, at every run.
        assert_eq!(lifetime_jitter("web"), lifetime_jitter("web"));
        assert_ne!(lifetime_jitter("web"), lifetime_jitter("api"));
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
        assert!(renew_at(nb, na, 1.0 / 3.0, Some(past), 0.7) <= 20 * DAY);
        // A degenerate window: its start.
        assert_eq!(
            renew_at(nb, na, 0.3, Some(Window { start: 5, end: 5 }), 0.4),
            5
        );
    }
}

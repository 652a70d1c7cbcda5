//! Every time limit of a renewal, in one place, nested from the inside
//! out: a hook ends within its limit, inside an order's; an order within
//! its own, inside a renewal run's; a run within its own, inside the time
//! systemd gives a stop. So a stop (or a run's own deadline) never has to
//! kill a hook or an order unsupervised: each level ends the one inside it
//! first, removing DNS records and writing what it obtained.

use std::time::Duration;

/// A DNS hook (`[[dns]] hook_timeout`) at most.
pub const DNS_HOOK_MAX: Duration = Duration::from_secs(300);

/// Waiting for DNS propagation (`[[dns]] propagation_timeout`) at most.
pub const PROPAGATION_MAX: Duration = Duration::from_secs(600);

/// One request to an ACME server, its answer read whole. A server that
/// stops answering one request (a lost stream, a stuck connection) fails
/// that request, and so its order, in a minute: it does not hold the order,
/// and one of the run's few parallel slots, for the order's whole limit.
/// One of 1,000 orders of a forced renewal against pebble once waited out
/// all of [`ORDER_BASE`].
pub const REQUEST_MAX: Duration = Duration::from_secs(60);

/// One order without DNS-01: every request and poll.
pub const ORDER_BASE: Duration = Duration::from_secs(300);

/// One order at most: DNS-01 waits for propagation on top.
pub const ORDER_MAX: Duration =
    Duration::from_secs(ORDER_BASE.as_secs() + PROPAGATION_MAX.as_secs());

/// A deploy hook (`[renewal] deploy_hook_timeout`) at most.
pub const DEPLOY_HOOK_MAX: Duration = Duration::from_secs(300);

/// What a run needs after its last order: writing, `nginx -t`, the reload,
/// the state.
pub const RUN_MARGIN: Duration = Duration::from_secs(60);

/// A renewal run (the daemon's child) at most; the daemon kills it after.
/// A run starts no order that could not end, with one deploy hook and the
/// margin, before this.
pub const RUN_MAX: Duration = Duration::from_secs(30 * 60);

/// What systemd gives a stop (the unit's `TimeoutStopSec`): a run told to
/// stop starts nothing new and ends within what is left of its own limit.
pub const STOP_MAX: Duration = Duration::from_secs(RUN_MAX.as_secs() + 2 * 60);

/// May a run that started `elapsed` ago start an order now?
pub fn may_start_order(elapsed: Duration) -> bool {
    elapsed + ORDER_MAX + DEPLOY_HOOK_MAX + RUN_MARGIN <= RUN_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_nest_from_the_inside_out() {
        assert!(
            DNS_HOOK_MAX < ORDER_BASE + PROPAGATION_MAX,
            "a DNS hook fits in an order"
        );
        assert!(DNS_HOOK_MAX < PROPAGATION_MAX.max(ORDER_BASE));
        assert!(
            ORDER_MAX + DEPLOY_HOOK_MAX + RUN_MARGIN < RUN_MAX,
            "an order, a hook and the rest fit in a run"
        );
        assert!(RUN_MAX < STOP_MAX, "a run fits in a stop");
        assert!(REQUEST_MAX < ORDER_BASE, "a request fits in an order");
        assert!(may_start_order(Duration::ZERO));
        assert!(!may_start_order(RUN_MAX - ORDER_MAX));
        // The unit systemd runs says the same.
        let unit = crate::tasks::daemon_unit::SHIPPED;
        let stop = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .expect("the unit sets TimeoutStopSec");
        assert_eq!(stop, format!("{}min", STOP_MAX.as_secs() / 60), "{unit}");
    }
}

//! `/var/lib/portico/orders.json`: what each ACME account has asked
//! of its CA lately, so that a host with thousands of certificates stays
//! inside the CA's rate limits whatever the runs and the daemon do.
//!
//! - **The order budget.** Every new order an account is about to send is
//!   recorded with its time (one per certificate: a renewal whose
//!   `replaces` the CA refuses is sent again without it, uncounted). At most `[acme] max_orders_per_hour` are sent in any hour;
//!   the rest wait in the queue, in the order the playbook lists them, and
//!   the next run (the daemon wakes for it) sends them as the hour frees
//!   slots. Slots are taken *before* the orders start, so a kill cannot
//!   lose count of orders already sent.
//! - **The account's hold.** A `rateLimited` answer (RFC 8555 §6.7) stops
//!   every order on that account, not just the certificate that met it,
//!   until its `Retry-After` (an hour when the CA gives none): a limit is
//!   the account's, and asking again one certificate at a time only meets
//!   it again.
//!
//! The logic is pure (times in, decisions out); loading and saving go
//! through the root. A file that does not parse is moved aside with a
//! warning: the budget starts afresh rather than blocking renewals.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::host::root::RootError;
use crate::host::Root;
use crate::paths;

/// The window the budget counts over.
pub const HOUR: i64 = 3600;

/// A hold without `Retry-After` lasts this long.
pub const DEFAULT_HOLD: i64 = HOUR;

/// No hold is shorter than this, whatever the CA says.
pub const SHORTEST_HOLD: i64 = 60;

/// No hold lasts longer than this from the moment it is read (a CA's
/// answer, or a clock that was far ahead when it was recorded).
pub const LONGEST_HOLD: i64 = 24 * HOUR;

/// Let's Encrypt: 300 new orders per account per 3 hours. An hour's share
/// keeps any 3-hour window within it.
const LETS_ENCRYPT_PER_HOUR: u32 = 100;

/// The account's order budget per hour: the playbook's
/// `max_orders_per_hour`, else the CA's published limit where the
/// directory is one portico knows, else none.
pub fn limit(acme: &crate::playbook::Acme) -> Option<u32> {
    acme.max_orders_per_hour.or_else(|| {
        let url = super::issue::directory_url(&acme.directory);
        url.starts_with("https://acme-v02.api.letsencrypt.org/")
            .then_some(LETS_ENCRYPT_PER_HOUR)
    })
}

/// What one account has asked lately.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// When each new order of the last hour was sent (Unix seconds, oldest
    /// first).
    #[serde(default)]
    pub orders: Vec<i64>,
    /// No order before this (Unix seconds): the CA said `rateLimited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<i64>,
    /// What the CA said, escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_because: Option<String>,
}

impl Account {
    /// Forgets orders that left the window at `now`. Times ahead of `now`
    /// (recorded while the clock was ahead) count as made now, and a hold
    /// never ends later than [`LONGEST_HOLD`] from now: a clock put right
    /// holds nothing back longer than that.
    pub fn prune(&mut self, now: i64) {
        for t in &mut self.orders {
            *t = (*t).min(now);
        }
        self.orders.retain(|t| *t > now - HOUR);
        self.orders.sort_unstable();
        self.held_until = self
            .held_until
            .filter(|t| *t > now)
            .map(|t| t.min(now.saturating_add(LONGEST_HOLD)));
        if self.held_until.is_none() {
            self.held_because = None;
        }
    }

    /// Orders sent in the hour up to `now`.
    pub fn recent(&self, now: i64) -> usize {
        self.orders
            .iter()
            .filter(|t| **t > now - HOUR && **t <= now)
            .count()
    }

    /// How many orders may start at `now` under `limit` (none while held).
    pub fn free(&self, now: i64, limit: Option<u32>) -> usize {
        if self.held(now).is_some() {
            return 0;
        }
        match limit {
            None => usize::MAX,
            Some(l) => (l as usize).saturating_sub(self.recent(now)),
        }
    }

    /// Gives back one slot taken at `at` (its order was never sent: nginx
    /// did not answer its challenges yet, the run was stopping, ...).
    pub fn give_back(&mut self, at: i64) {
        if let Some(i) = self.orders.iter().rposition(|t| *t == at) {
            self.orders.remove(i);
        }
    }

    /// When the next order may start, after `now`: the end of a hold, or
    /// when the oldest order in a full window leaves it.
    pub fn next_chance(&self, now: i64, limit: Option<u32>) -> i64 {
        if let Some(until) = self.held(now) {
            return until;
        }
        let Some(limit) = limit.filter(|l| *l > 0) else {
            return now;
        };
        let mut recent: Vec<i64> = self
            .orders
            .iter()
            .copied()
            .filter(|t| *t > now - HOUR && *t <= now)
            .collect();
        recent.sort_unstable();
        let n = recent.len();
        if n < limit as usize {
            return now;
        }
        // With `limit` slots, a new order may go once all but limit-1 of
        // the recent ones have left the window.
        recent[n - limit as usize] + HOUR
    }

    /// The end of the account's hold, if it is held at `now` (never more
    /// than [`LONGEST_HOLD`] ahead).
    pub fn held(&self, now: i64) -> Option<i64> {
        self.held_until
            .filter(|t| *t > now)
            .map(|t| t.min(now.saturating_add(LONGEST_HOLD)))
    }

    /// Takes `n` slots at `now` (the orders about to start).
    pub fn take(&mut self, now: i64, n: usize) {
        self.orders.extend(std::iter::repeat_n(now, n));
    }

    /// The CA said `rateLimited` at `now`, with `retry_after` seconds or none.
    /// A hold lasts at least [`SHORTEST_HOLD`]: a `Retry-After: 0` (or a
    /// date in the past) must not turn into a loop of orders the CA refuses.
    pub fn hold(&mut self, now: i64, retry_after: Option<i64>, because: &str) {
        let until = now
            + retry_after
                .unwrap_or(DEFAULT_HOLD)
                .clamp(SHORTEST_HOLD, LONGEST_HOLD);
        self.held_until = Some(self.held_until.map_or(until, |t| t.max(until)));
        self.held_because = Some(because.to_string());
    }
}

/// Every account's record, by directory URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Format version; only 1 exists.
    pub version: u32,
    /// By directory URL.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
}

impl Ledger {
    /// The ledger on disk (a fresh one when there is none); one that does
    /// not parse is moved aside, and the warning says so.
    pub fn load(root: &Root, now: i64) -> Result<(Ledger, Option<String>), RootError> {
        let path = Path::new(paths::ORDERS_FILE);
        let fresh = Ledger {
            version: 1,
            ..Ledger::default()
        };
        let Some(text) = root.read_to_string(path)? else {
            return Ok((fresh, None));
        };
        match serde_json::from_str::<Ledger>(&text) {
            Ok(l) => Ok((l, None)),
            Err(e) => {
                let aside = super::state::move_corrupt_aside(root, paths::ORDERS_FILE, now)?;
                Ok((
                    fresh,
                    Some(format!(
                        "{}: not an order ledger ({e}); moved to {} and counting afresh",
                        paths::ORDERS_FILE,
                        aside.display()
                    )),
                ))
            }
        }
    }

    /// The ledger on disk for a reader (`status`): a fresh one when there
    /// is none; one that does not parse is an error, and stays.
    pub fn load_read_only(root: &Root) -> Result<Ledger, String> {
        let path = Path::new(paths::ORDERS_FILE);
        match root.read_to_string(path) {
            Ok(None) => Ok(Ledger {
                version: 1,
                ..Ledger::default()
            }),
            Ok(Some(text)) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: not an order ledger ({e})", paths::ORDERS_FILE)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes it atomically (0600), old orders forgotten.
    pub fn save(&mut self, root: &Root, now: i64) -> Result<(), RootError> {
        for a in self.accounts.values_mut() {
            a.prune(now);
        }
        self.accounts
            .retain(|_, a| !a.orders.is_empty() || a.held_until.is_some());
        let path = Path::new(paths::ORDERS_FILE);
        // 0755 like every writer of the state directory: the default ACME
        // webroot is inside it, and nginx must reach it (the file is 0600).
        root.create_dir_all(Path::new(paths::STATE_DIR), 0o755)?;
        let json = serde_json::to_vec_pretty(self).expect("the ledger serializes");
        root.write_atomic(path, &json, 0o600)
    }

    /// `directory`'s record, made empty the first time.
    pub fn account(&mut self, directory: &str) -> &mut Account {
        self.accounts.entry(directory.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_full_hour_frees_a_slot_as_its_oldest_order_leaves_it() {
        let mut a = Account::default();
        assert_eq!(a.free(NOW, Some(3)), 3);
        assert_eq!(a.free(NOW, None), usize::MAX);
        a.take(NOW - 3000, 1);
        a.take(NOW - 100, 2);
        assert_eq!(a.free(NOW, Some(3)), 0);
        assert_eq!(a.next_chance(NOW, Some(3)), NOW - 3000 + HOUR);
        assert_eq!(a.free(NOW - 3000 + HOUR, Some(3)), 1);
        // Two free slots wanted: when the second oldest leaves too.
        assert_eq!(a.next_chance(NOW, Some(2)), NOW - 100 + HOUR);
        assert_eq!(a.next_chance(NOW, Some(5)), NOW);
        assert_eq!(a.next_chance(NOW, None), NOW);
    }

    #[test]
    fn a_burst_takes_the_limit_at_once_and_the_rest_waits_an_hour() {
        let mut a = Account::default();
        let free = a.free(NOW, Some(300)).min(2000);
        assert_eq!(free, 300);
        a.take(NOW, free);
        assert_eq!(a.free(NOW + 1, Some(300)), 0);
        assert_eq!(a.next_chance(NOW + 1, Some(300)), NOW + HOUR);
        assert_eq!(a.free(NOW + HOUR, Some(300)), 300);
    }

    #[test]
    fn a_hold_stops_every_order_until_it_ends_and_never_lasts_past_a_day() {
        let mut a = Account::default();
        a.hold(NOW, Some(600), "too many new orders");
        assert_eq!(a.free(NOW, None), 0);
        assert_eq!(a.next_chance(NOW, Some(100)), NOW + 600);
        assert_eq!(a.free(NOW + 600, None), usize::MAX);
        // A later answer never shortens a hold; a year is read as a day.
        a.hold(NOW, Some(60), "again");
        assert_eq!(a.held(NOW), Some(NOW + 600));
        a.held_until = Some(NOW + 365 * 86_400);
        assert_eq!(a.held(NOW), Some(NOW + LONGEST_HOLD));
        a.prune(NOW + 365 * 86_400);
        assert_eq!(a.held_until, None);
        // No Retry-After: an hour; none, or one in the past: a minute.
        let mut b = Account::default();
        b.hold(NOW, None, "x");
        assert_eq!(b.held(NOW), Some(NOW + HOUR));
        let mut c = Account::default();
        c.hold(NOW, Some(0), "x");
        assert_eq!(c.held(NOW), Some(NOW + SHORTEST_HOLD));
        c.hold(NOW, Some(-5000), "x");
        assert_eq!(c.held(NOW), Some(NOW + SHORTEST_HOLD));
    }

    #[test]
    fn a_clock_put_right_keeps_orders_counted_and_shortens_a_hold_for_good() {
        // Recorded three weeks ahead, read now.
        let ahead = NOW + 21 * 86_400;
        let mut a = Account::default();
        a.take(ahead, 2);
        a.hold(ahead, Some(3600), "too many new orders");
        a.prune(NOW);
        assert_eq!(a.orders, vec![NOW, NOW], "counted as made now");
        assert_eq!(a.recent(NOW), 2);
        assert_eq!(a.held_until, Some(NOW + LONGEST_HOLD), "stored capped");
        a.prune(NOW + LONGEST_HOLD);
        assert_eq!(a.held(NOW + LONGEST_HOLD), None);
        // A slot given back.
        let mut b = Account::default();
        b.take(NOW, 3);
        b.give_back(NOW);
        assert_eq!(b.recent(NOW), 2);
        assert_eq!(b.next_chance(NOW, Some(0)), NOW, "no limit of zero divides");
    }

    #[test]
    fn the_ledger_keeps_only_the_last_hour_and_a_corrupt_one_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let (mut l, w) = Ledger::load(&root, NOW).unwrap();
        assert!(w.is_none());
        l.account("https://ca/dir").take(NOW - 2 * HOUR, 5);
        l.account("https://ca/dir").take(NOW - 10, 2);
        l.save(&root, NOW).unwrap();
        let (l, _) = Ledger::load(&root, NOW).unwrap();
        assert_eq!(
            l.accounts["https://ca/dir"].orders,
            vec![NOW - 10, NOW - 10]
        );
        let file = dir.path().join(paths::ORDERS_FILE.trim_start_matches('/'));
        std::fs::write(&file, "{\"version\": 1, \"accounts\": ").unwrap();
        let (l, w) = Ledger::load(&root, NOW).unwrap();
        assert!(l.accounts.is_empty());
        assert!(w.unwrap().contains("corrupt"));
        assert!(!file.exists());
    }
}

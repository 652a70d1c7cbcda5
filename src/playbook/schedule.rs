//! When the renewal daemon runs: `"daily"` at a minute fixed per host, or
//! a cron expression with seconds. Parsed once, when the playbook is read.

use serde::Deserialize;

/// The renewal schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Schedule {
    /// Once a day, at a time drawn from the machine ID, so a fleet does not
    /// renew in the same minute but each host always picks the same one.
    #[default]
    Daily,
    /// A cron expression with seconds (`"0 17 3 * * *"`), as the scheduler
    /// accepts it.
    Cron(String),
}

impl TryFrom<String> for Schedule {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s == "daily" {
            return Ok(Schedule::Daily);
        }
        tokio_cron_scheduler::Job::new(s.as_str(), |_, _| {})
            .map(|_| Schedule::Cron(s.clone()))
            .map_err(|e| {
                format!(
                    "{s:?} is neither \"daily\" nor a cron expression with seconds (\"0 17 3 * * *\"): {e}"
                )
            })
    }
}

/// FNV-1a of `text`: small, and the same across builds and platforms
/// (what a host's daily minute and a certificate's renewal moment are
/// drawn from, so each stays put between runs).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Schedule {
    /// The cron expression (with seconds) the scheduler runs: `daily`
    /// becomes a time of day drawn from `seed` (the machine ID).
    pub fn cron_expression(&self, seed: &str) -> String {
        match self {
            Schedule::Cron(expr) => expr.clone(),
            Schedule::Daily => {
                let h = stable_hash(seed);
                format!("0 {} {} * * *", h % 60, (h / 60) % 24)
            }
        }
    }
}

impl Schedule {
    /// When the daemon runs next after `now` (Unix seconds, UTC, as the
    /// scheduler runs), parsed as the scheduler parses it.
    pub fn next_after(&self, seed: &str, now: i64) -> Option<i64> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&self.cron_expression(seed))
            .ok()?;
        let start = chrono::DateTime::from_timestamp(now, 0)?;
        cron.find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_is_a_fixed_time_per_seed_and_cron_is_kept() {
        let a = Schedule::Daily.cron_expression("machine-a");
        assert_eq!(a, Schedule::Daily.cron_expression("machine-a"));
        assert_ne!(a, Schedule::Daily.cron_expression("machine-b"));
        let c = Schedule::try_from("0 17 3 * * *".to_string()).unwrap();
        assert_eq!(c.cron_expression("x"), "0 17 3 * * *");
        assert!(Schedule::try_from("every tuesday".to_string()).is_err());
    }

    #[test]
    fn the_next_run_is_the_next_match_in_utc() {
        let c = Schedule::try_from("0 17 3 * * *".to_string()).unwrap();
        // 2027-01-15T08:00:00Z -> 2027-01-16T03:17:00Z.
        assert_eq!(c.next_after("x", 1_800_000_000), Some(1_800_069_420));
        let daily = Schedule::Daily;
        let next = daily.next_after("machine-a", 1_800_000_000).unwrap();
        assert!(next > 1_800_000_000 && next <= 1_800_000_000 + 86_400);
    }
}

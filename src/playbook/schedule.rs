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

impl Schedule {
    /// The cron expression (with seconds) the scheduler runs: `daily`
    /// becomes a time of day drawn from `seed` (the machine ID).
    pub fn cron_expression(&self, seed: &str) -> String {
        match self {
            Schedule::Cron(expr) => expr.clone(),
            Schedule::Daily => {
                // FNV-1a: small, stable across builds and platforms.
                let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                format!("0 {} {} * * *", h % 60, (h / 60) % 24)
            }
        }
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
}

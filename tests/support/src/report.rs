//! Reading portico's JSON report in tests.

use serde_json::Value;

/// The task called `name` in a `--json` report; panics naming what is there.
pub fn task<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in {report}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name} in {report}"))
}

//! What the booted-machine benches share: timing a command inside the
//! machine, medians, and portico's own account of where the time went
//! (the `step` lines it logs at `-v`, see src/timing.rs).

use crate::machine::Machine;

/// Wall time of `cmd` inside the machine, in ms; panics when it fails.
/// Each run starts 0.2 s after the one before, outside the timing: for
/// 100 ms after a reload nginx's master sleeps with signals blocked
/// (ngx_master_process_cycle), so a reload right behind another waits out
/// nginx's sleep, which no real host sees between two renewals.
pub fn ms(m: &Machine, cmd: &str) -> f64 {
    // In braces: `a && b` is one command here, all its output kept aside.
    let script = format!("sleep 0.2; s=$(date +%s%N); {{ {cmd}; }} >/tmp/bench.out 2>&1 || {{ cat /tmp/bench.out >&2; exit 1; }}; e=$(date +%s%N); echo $(( (e - s) / 1000 ))");
    let out = m.ok(&["sh", "-c", &script]);
    out.trim().parse::<f64>().unwrap() / 1000.0
}

/// Peak RSS of `cmd` in MiB (GNU time).
pub fn rss(m: &Machine, cmd: &str) -> f64 {
    let out = m.ok(&[
        "sh",
        "-c",
        &format!("/usr/bin/time -f %M {cmd} 2>&1 >/dev/null | tail -1"),
    ]);
    out.trim().parse::<f64>().unwrap_or(0.0) / 1024.0
}

/// Median and worst of `v`.
pub fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() - 1])
}

/// One timed step from a `-v` log line:
/// `INFO step{name="acme new order" of="b1.test"}: portico::timing: 12.3 ms`.
pub struct Step {
    /// What (`task`, `cmd`, `acme poll`, ...).
    pub name: String,
    /// Of what.
    pub of: String,
    /// How long, in ms.
    pub ms: f64,
}

/// The steps in a `-v` log, in the order they ended.
pub fn steps(log: &str) -> Vec<Step> {
    log.lines()
        .filter(|l| l.contains("portico::timing"))
        .filter_map(|l| {
            let name = field(l, "name=")?;
            let of = field(l, "of=").unwrap_or_default();
            let ms = l.rsplit(": ").next()?.strip_suffix(" ms")?.parse().ok()?;
            Some(Step { name, of, ms })
        })
        .collect()
}

/// A quoted field's value (`name="acme poll"`).
fn field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Runs `cmd` (a portico command line with `-v`) once and prints where its
/// time went: every step at or above `min_ms`, in the order they ended, and
/// the total per kind of step. Steps nest (a task holds its commands).
pub fn breakdown(m: &Machine, title: &str, cmd: &str, min_ms: f64) {
    let total = ms(m, &format!("{{ {cmd} 2>/tmp/bench.steps; }}"));
    let log = m.ok(&["cat", "/tmp/bench.steps"]);
    let steps = steps(&log);
    println!("\nbreakdown: {title} ({total:.1} ms in all; `{cmd}`)");
    for s in steps.iter().filter(|s| s.ms >= min_ms) {
        println!("  {:>8.1} ms  {:<26} {}", s.ms, s.name, s.of);
    }
    let mut kinds: Vec<(String, f64, usize)> = Vec::new();
    for s in &steps {
        match kinds.iter_mut().find(|k| k.0 == s.name) {
            Some(k) => {
                k.1 += s.ms;
                k.2 += 1;
            }
            None => kinds.push((s.name.clone(), s.ms, 1)),
        }
    }
    let per_kind: Vec<String> = kinds
        .iter()
        .map(|(n, t, c)| format!("{n} {t:.1} ms ({c}x)"))
        .collect();
    println!("  per kind: {}", per_kind.join("; "));
}

//! `nginx -t` as the renewal daemon will run it, checked at apply: every
//! file nginx opens for writing (from `nginx -T`) against what the daemon
//! unit's sandbox lets it write (`ProtectSystem=strict` and its
//! `ReadWritePaths`). A configuration that opens a log elsewhere passes a
//! plain `nginx -t` and fails the daemon's, and every renewal would then
//! be rolled back at its reload, 60 days from now; this says so today.
//! (One `nginx -T`, not a transient unit: it costs an apply milliseconds.)

/// The unit's `[Service]` lines that shape what a process in it can see
/// and do (not how it is started or stopped).
pub fn sandbox_properties(unit: &str) -> Vec<String> {
    const NOT_SANDBOX: &[&str] = &[
        "Type",
        "ExecStart",
        "ExecReload",
        "Restart",
        "RestartSec",
        "KillMode",
        "TimeoutStopSec",
        "RuntimeDirectory",
        "RuntimeDirectoryMode",
        "RuntimeDirectoryPreserve",
        "WatchdogSec",
        "NotifyAccess",
    ];
    let mut in_service = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            if !NOT_SANDBOX.contains(&key.trim()) {
                out.push(line.to_string());
            }
        }
    }
    out
}

/// The paths the unit's sandbox lets a process write (its
/// `ReadWritePaths`, its private `/tmp`, its runtime directory).
pub fn writable(unit: &str) -> Vec<String> {
    let mut out = vec![
        "/tmp".to_string(),
        crate::paths::RUN_DIR.to_string(),
        "/dev/null".to_string(),
    ];
    for line in sandbox_properties(unit) {
        // ReadWriteDirectories= is what systemd before 231 calls it.
        let paths = line
            .strip_prefix("ReadWritePaths=")
            .or_else(|| line.strip_prefix("ReadWriteDirectories="));
        if let Some(paths) = paths {
            out.extend(
                paths
                    .split_whitespace()
                    .map(|p| p.trim_start_matches('-').to_string()),
            );
        }
    }
    out
}

/// The files `nginx -t` opens for writing, from `nginx -T`'s dump: every
/// log and temporary path it names (`off`, `stderr`, `syslog:` and
/// `memory:` are no files).
pub fn opened_for_writing(dump: &str) -> Vec<String> {
    const DIRECTIVES: &[&str] = &[
        "access_log",
        "error_log",
        "client_body_temp_path",
        "proxy_temp_path",
        "fastcgi_temp_path",
        "uwsgi_temp_path",
        "scgi_temp_path",
        "proxy_cache_path",
        "fastcgi_cache_path",
    ];
    let mut out = Vec::new();
    for line in dump.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(directive), Some(arg)) = (words.next(), words.next()) else {
            continue;
        };
        if !DIRECTIVES.contains(&directive) {
            continue;
        }
        let arg = arg
            .trim_end_matches(';')
            .trim_matches('"')
            .trim_matches('\'');
        let special = ["off", "stderr"].contains(&arg)
            || arg.starts_with("syslog:")
            || arg.starts_with("memory:")
            || !arg.starts_with('/');
        if !special && !out.iter().any(|p| p == arg) {
            out.push(arg.to_string());
        }
    }
    out
}

/// What `ProtectSystem=full` (the unit for systemd before 232) makes
/// read-only; everything else stays writable there.
const FULL_READ_ONLY: [&str; 4] = ["/usr", "/boot", "/efi", "/etc"];

/// What `nginx -t` would open that the sandbox forbids.
pub fn forbidden(dump: &str, unit: &str) -> Vec<String> {
    let ok = writable(unit);
    let strict = sandbox_properties(unit)
        .iter()
        .any(|l| l == "ProtectSystem=strict");
    opened_for_writing(dump)
        .into_iter()
        .filter(|p| {
            let p = std::path::Path::new(p);
            let read_only = strict || FULL_READ_ONLY.iter().any(|r| p.starts_with(r));
            read_only && !ok.iter().any(|w| p.starts_with(w))
        })
        .collect()
}

/// What to tell the operator: the files in `dump` (nginx's configuration)
/// that nginx opens and `unit`'s sandbox does not let the daemon write.
pub fn notes(dump: &str, unit: &str) -> Vec<String> {
    let bad = forbidden(dump, unit);
    if bad.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the renewal daemon's nginx -t fails inside its sandbox, though a plain nginx -t \
         passes: nginx opens {} for writing, which the unit's ProtectSystem=strict and \
         ReadWritePaths do not allow; every renewal would be rolled back at its reload. \
         Keep nginx's logs and temporary files under /var/log/nginx and /var/lib/nginx",
        bad.join(", ")
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_outside_what_the_daemon_may_write_are_found() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n    access_log /var/log/nginx/access.log;\n    error_log /var/log/nginx/error.log;\n}\n# configuration file /etc/nginx/conf.d/x.conf:\naccess_log /srv/logs/x.log combined;\nerror_log syslog:server=unix:/dev/log;\naccess_log off;\nproxy_temp_path \"/var/cache/nginx/proxy\";\n";
        let unit = crate::tasks::daemon_unit::SHIPPED;
        assert_eq!(
            forbidden(dump, unit),
            ["/srv/logs/x.log", "/var/cache/nginx/proxy"]
        );
    }

    #[test]
    fn under_systemd_219_only_what_protect_system_full_guards_is_forbidden() {
        let unit = crate::tasks::daemon_unit::render_for("/usr/local/bin/portico", &[], Some(219))
            .unwrap();
        assert!(unit.contains("ReadWriteDirectories="), "{unit}");
        let dump = "access_log /var/log/nginx/access.log;\naccess_log /srv/logs/x.log;\n\
                    error_log /etc/nginx/error.log;\n";
        assert_eq!(forbidden(dump, &unit), ["/etc/nginx/error.log"]);
    }

    #[test]
    fn the_sandbox_is_the_units_own_lines_without_how_it_starts() {
        let p = sandbox_properties(crate::tasks::daemon_unit::SHIPPED);
        assert!(p.iter().any(|l| l == "ProtectSystem=strict"), "{p:?}");
        assert!(p.iter().any(|l| l.starts_with("ReadWritePaths=")), "{p:?}");
        assert!(
            p.iter().any(|l| l.starts_with("CapabilityBoundingSet=")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .filter(|l| l.starts_with("SystemCallFilter="))
                .count()
                == 2,
            "{p:?}"
        );
        assert!(
            !p.iter()
                .any(|l| l.starts_with("ExecStart") || l.starts_with("Type=")),
            "{p:?}"
        );
    }
}

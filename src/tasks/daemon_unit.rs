//! The renewal daemon's unit file: the shipped unit (`systemd/portico.service`)
//! with the path of this binary and the playbook's own writable paths (a
//! custom webroot, a metrics directory). The daemon runs
//! as root for ever, so the binary it names must be one only root can
//! replace: owned by root, and neither it nor any directory above it
//! writable by group or others. Anything else is refused, not installed.

use crate::paths;
use std::path::{Path, PathBuf};

use crate::task::{Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tasks::file::file_changes;

/// The unit as shipped in systemd/.
pub const SHIPPED: &str = include_str!("../../systemd/portico.service");

/// The packaged unit is exactly the one `apply` would write for `exe` and
/// `writable`: then apply uses it and writes none of its own (a custom
/// webroot or metrics directory, or another binary, still gets its own in
/// /etc).
pub fn packaged_unit_fits(
    packaged: Option<&str>,
    exe: &Path,
    writable: &[String],
    systemd: Option<u32>,
) -> bool {
    exe == Path::new(paths::PACKAGED_EXE)
        && packaged.is_some_and(|text| {
            render_for(paths::PACKAGED_EXE, writable, systemd).is_ok_and(|u| u == text)
        })
}

/// The binary path the shipped unit names.
const SHIPPED_EXE: &str = "\"/usr/local/bin/portico\"";
/// The writable paths the shipped unit lists; a custom webroot or metrics
/// directory joins them.
const SHIPPED_RW: &str = "ReadWritePaths=-/etc/ssl/portico -/var/lib/portico";

/// The binary a root daemon would run is not root's alone.
#[derive(Debug, thiserror::Error)]
#[error(
    "not installing the renewal daemon's unit: {0}. Install the binary where only root can write \
     (sudo install -o root -m 0755 portico /usr/local/bin/) and run that one"
)]
pub struct UnsafeDaemonBinary(pub String);

/// The renewal daemon's unit, for a binary only root can replace.
pub struct DaemonUnitTask {
    /// This binary, as the kernel names it (symlinks resolved).
    pub exe: PathBuf,
    /// What the playbook has the daemon write beyond the shipped unit's
    /// paths (a custom `[acme] webroot`, `[metrics]` directory; validated
    /// safe absolute paths).
    pub writable: Vec<String>,
    /// The host's systemd version, when known: the unit has what it knows.
    pub systemd: Option<u32>,
}

/// The systemd version each of the shipped unit's settings needs (from
/// systemd's NEWS; where NEWS is silent, the first version that names it),
/// newest first. An older systemd logs "Unknown lvalue" for such a line
/// and ignores it: the unit for it leaves the line out instead, and apply
/// says what the sandbox lacks there.
pub const NEEDS: &[(&str, u32)] = &[
    ("ProtectProc=", 247),
    ("ProtectClock=", 245),
    ("ProtectKernelLogs=", 244),
    ("ProtectHostname=", 242),
    ("RestrictSUIDSGID=", 242),
    // The @system-service and @resources groups.
    ("SystemCallFilter=", 241),
    ("LockPersonality=", 235),
    ("RuntimeDirectoryPreserve=", 235),
    // Without RuntimeDirectoryPreserve=, systemd deletes /run/portico at
    // every stop, and with it the lock file another run may hold: a run
    // started then would lock a new file beside it. The lock makes the
    // directory itself, so the unit leaves it alone there.
    ("RuntimeDirectory=", 235),
    ("RuntimeDirectoryMode=", 235),
    ("RestrictNamespaces=", 233),
    ("ProtectKernelTunables=", 232),
    ("ProtectKernelModules=", 232),
    ("ProtectControlGroups=", 232),
    ("MemoryDenyWriteExecute=", 231),
    ("RestrictRealtime=", 231),
];

/// Settings an older systemd knows under another name or value.
const OLDER: &[(&str, u32, &str)] = &[
    // `strict` (all but /dev, /proc, /sys read-only) came in 232; `full`
    // leaves /var writable.
    ("ProtectSystem=strict", 232, "ProtectSystem=full"),
    ("ReadWritePaths=", 231, "ReadWriteDirectories="),
];

/// What the daemon's sandbox lacks under systemd `version`, by setting.
pub fn weaker_under(version: u32) -> Vec<String> {
    NEEDS
        .iter()
        .filter(|(_, since)| version < *since)
        .map(|(d, _)| d.trim_end_matches('=').to_string())
        .chain(
            OLDER
                .iter()
                .filter(|(d, since, _)| version < *since && d.contains("strict"))
                .map(|(d, _, _)| format!("{d} (full there)")),
        )
        .collect()
}

/// The unit text for `exe` and the `writable` paths, for the systemd the
/// host runs (every setting when its version is not known).
pub fn render_for(exe: &str, writable: &[String], systemd: Option<u32>) -> Result<String, String> {
    let unit = render(exe, writable)?;
    let Some(version) = systemd else {
        return Ok(unit);
    };
    let mut out = String::new();
    for line in unit.lines() {
        if NEEDS
            .iter()
            .any(|(d, since)| line.starts_with(d) && version < *since)
        {
            continue;
        }
        let line = OLDER
            .iter()
            .find(|(d, since, _)| line.starts_with(d) && version < *since)
            .map_or(line.to_string(), |(d, _, older)| line.replacen(d, older, 1));
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// The unit text for `exe` and the `writable` paths beyond the shipped
/// ones, with every setting (the newest systemd's). `exe` is quoted for
/// systemd, whose specifiers (`%`) and variables (`$`) are escaped.
pub fn render(exe: &str, writable: &[String]) -> Result<String, String> {
    if exe.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(format!("{exe:?} cannot be named safely in a unit file"));
    }
    let quoted = format!("\"{}\"", exe.replace('%', "%%").replace('$', "$$"));
    let mut unit = SHIPPED.replacen(SHIPPED_EXE, &quoted, 1);
    if !writable.is_empty() {
        let extra: String = writable.iter().map(|p| format!(" -{p}")).collect();
        unit = unit.replacen(SHIPPED_RW, &format!("{SHIPPED_RW}{extra}"), 1);
    }
    Ok(unit)
}

/// Why `exe` must not be run as root by a unit, if it must not: it, or a
/// directory above it, is not root's alone.
fn binary_problem(ctx: &Ctx, exe: &Path) -> Result<Option<String>, TaskError> {
    if ctx.root.meta(exe)?.is_none() {
        return Ok(Some(format!("{} does not exist", exe.display())));
    }
    Ok(ctx.root.others_can_change(exe, 0)?.map(|(path, m)| {
        format!(
            "{} is {}, owned by {} with mode {:04o}: someone other than root could replace what the \
             daemon runs as root",
            path.display(),
            if path == exe { "the binary" } else { "a directory above it" },
            crate::host::user_name(m.uid),
            m.mode
        )
    }))
}

impl Task for DaemonUnitTask {
    fn id(&self) -> TaskId {
        TaskId::File(paths::DAEMON_UNIT.into())
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadPortico]
    }

    fn owns(&self) -> Vec<crate::owned::Owned> {
        match render_for(
            &self.exe.display().to_string(),
            &self.writable,
            self.systemd,
        ) {
            Ok(unit) => vec![crate::owned::Owned::file(
                paths::DAEMON_UNIT,
                "daemon",
                unit.as_bytes(),
            )],
            Err(_) => vec![crate::owned::Owned::thing(
                crate::owned::Thing::file(paths::DAEMON_UNIT),
                "daemon",
            )],
        }
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        if let Some(why) = binary_problem(ctx, &self.exe)? {
            return Err(TaskError::Step(Box::new(UnsafeDaemonBinary(why))));
        }
        let unit = render_for(
            &self.exe.display().to_string(),
            &self.writable,
            self.systemd,
        )
        .map_err(|why| TaskError::Step(Box::new(UnsafeDaemonBinary(why))))?;
        file_changes(
            ctx,
            Path::new(paths::DAEMON_UNIT),
            unit.as_bytes(),
            0o644,
            0o755,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packaged_unit_is_used_only_when_it_is_what_apply_would_write() {
        let web: &[String] = &[];
        let packaged = render(paths::PACKAGED_EXE, web).unwrap();
        let exe = Path::new(paths::PACKAGED_EXE);
        assert!(packaged_unit_fits(Some(&packaged), exe, web, None));
        // Another binary, a custom webroot, an edited unit, or none.
        assert!(!packaged_unit_fits(
            Some(&packaged),
            Path::new("/usr/local/bin/portico"),
            web,
            None
        ));
        assert!(!packaged_unit_fits(
            Some(&packaged),
            exe,
            &["/srv/www/acme".to_string()],
            None
        ));
        let edited = packaged.replace("Restart=on-failure", "Restart=no");
        assert!(!packaged_unit_fits(Some(&edited), exe, web, None));
        assert!(!packaged_unit_fits(None, exe, web, None));
        // The package's unit is the newest systemd's: an older one gets its own.
        assert!(!packaged_unit_fits(Some(&packaged), exe, web, Some(219)));
        assert!(packaged_unit_fits(Some(&packaged), exe, web, Some(257)));
    }

    #[test]
    fn the_shipped_unit_has_what_render_replaces() {
        assert!(SHIPPED.contains(&format!("ExecStart={SHIPPED_EXE} daemon ")));
        assert!(SHIPPED.contains(SHIPPED_RW));
        assert!(
            !SHIPPED.contains("/etc/ssl/certs"),
            "the trust store is never writable"
        );
    }

    #[test]
    fn exec_start_is_quoted_and_escaped() {
        let unit = render("/opt/my tools/portico%1$x", &[]).unwrap();
        assert!(
            unit.contains(
                "ExecStart=\"/opt/my tools/portico%%1$$x\" daemon /etc/portico/playbook.toml"
            ),
            "{unit}"
        );
        assert!(render("/opt/a\"b", &[]).is_err());
        assert!(render("/opt/a\nExecStartPre=/bin/sh", &[]).is_err());
    }

    #[test]
    fn a_custom_webroot_and_metrics_directory_are_writable_to_the_daemon() {
        let extra = ["/srv/www/acme".to_string(), "/srv/metrics".to_string()];
        let unit = render("/usr/local/bin/portico", &extra).unwrap();
        assert!(
            unit.contains(
                "ReadWritePaths=-/etc/ssl/portico -/var/lib/portico -/srv/www/acme -/srv/metrics "
            ),
            "{unit}"
        );
        let default = render("/usr/local/bin/portico", &[]).unwrap();
        assert_eq!(default, SHIPPED);
    }
}

//! Packages: installed-ness from the package database (`dpkg-query`,
//! `rpm -q`), installed with the distro's tool when missing.

use std::path::Path;

use crate::facts::PackageManager;
use crate::host::Command;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

/// How long apt waits for another apt/dpkg (unattended-upgrades on a fresh
/// VM) to release its lock before failing with a clear message.
pub const APT_LOCK_TIMEOUT_SECS: u32 = 300;

/// Package lists older than this (seconds) are refreshed before installing.
const LISTS_MAX_AGE: i64 = 24 * 3600;

/// Ensures packages are installed with the distro's package manager.
pub struct PackagesTask {
    /// The packages.
    pub packages: Vec<String>,
    /// The distro's tool.
    pub manager: PackageManager,
    /// CentOS/RHEL 7: nginx comes from EPEL, so `epel-release` goes first.
    pub needs_epel: bool,
}

/// `dpkg-query -W -f '${Status}'`: "install ok installed" when installed.
pub fn dpkg_installed(status: &str) -> bool {
    status.split_whitespace().collect::<Vec<_>>() == ["install", "ok", "installed"]
}

/// `apt-cache policy PKG`: whether apt knows a version it could install.
pub fn apt_has_candidate(policy: &str) -> bool {
    policy.lines().any(|l| {
        l.trim()
            .strip_prefix("Candidate:")
            .is_some_and(|c| c.trim() != "(none)" && !c.trim().is_empty())
    })
}

fn apt(args: &[&str]) -> Command {
    let lock = format!("DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECS}");
    let mut argv = vec!["apt-get", "-o", &lock];
    argv.extend_from_slice(args);
    Command::mutation(argv).env("DEBIAN_FRONTEND", "noninteractive")
}

fn change(summary: String, cmd: Command) -> Change {
    Change::new(summary, Action::Run(cmd))
}

impl PackagesTask {
    fn installed(&self, ctx: &Ctx, p: &str) -> Result<bool, TaskError> {
        Ok(match self.manager {
            PackageManager::Apt => {
                let out =
                    ctx.runner
                        .run(&Command::query(["dpkg-query", "-W", "-f", "${Status}", p]))?;
                out.success() && dpkg_installed(&out.stdout)
            }
            PackageManager::Yum | PackageManager::Dnf => {
                ctx.runner.run(&Command::query(["rpm", "-q", p]))?.success()
            }
            PackageManager::Unknown => return Err(TaskError::NoPackageManager),
        })
    }

    /// Why apt's lists must be refreshed first, if they must.
    fn apt_update_reason(
        &self,
        ctx: &Ctx,
        missing: &[String],
    ) -> Result<Option<String>, TaskError> {
        let lists = Path::new(crate::paths::APT_LISTS);
        let mut newest = None;
        for name in ctx.root.list_dir(lists)? {
            if name.ends_with("_Packages") {
                let modified = ctx.root.meta(&lists.join(&name))?.map(|m| m.modified);
                newest = newest.max(modified);
            }
        }
        let Some(newest) = newest else {
            return Ok(Some("package lists are missing".into()));
        };
        let age = ctx.clock.unix_now() - newest;
        if age > LISTS_MAX_AGE {
            return Ok(Some(format!("package lists are {} hours old", age / 3600)));
        }
        for p in missing {
            let out = ctx
                .runner
                .run(&Command::query(["apt-cache", "policy", p]))?;
            if !apt_has_candidate(&out.stdout) {
                return Ok(Some(format!("apt does not know {p} yet")));
            }
        }
        Ok(None)
    }
}

impl Task for PackagesTask {
    fn id(&self) -> TaskId {
        TaskId::Packages(self.packages.clone())
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let mut missing = Vec::new();
        for p in &self.packages {
            if !self.installed(ctx, p)? {
                missing.push(p.clone());
            }
        }
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let mut changes = Vec::new();
        let list = missing.join(" ");
        match self.manager {
            PackageManager::Apt => {
                if let Some(why) = self.apt_update_reason(ctx, &missing)? {
                    changes.push(change(format!("apt-get update ({why})"), apt(&["update"])));
                }
                let mut args = vec!["install", "-y", "--no-install-recommends"];
                args.extend(missing.iter().map(String::as_str));
                changes.push(change(format!("install {list}"), apt(&args)));
            }
            PackageManager::Yum | PackageManager::Dnf => {
                let tool = if self.manager == PackageManager::Yum {
                    "yum"
                } else {
                    "dnf"
                };
                if self.needs_epel && !self.installed(ctx, "epel-release")? {
                    changes.push(change(
                        "install epel-release (nginx is in EPEL on EL7)".into(),
                        Command::mutation([tool, "install", "-y", "epel-release"]),
                    ));
                }
                let mut argv = vec![tool, "install", "-y"];
                argv.extend(missing.iter().map(String::as_str));
                changes.push(change(format!("install {list}"), Command::mutation(argv)));
            }
            PackageManager::Unknown => {}
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packages");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn dpkg_status_words() {
        assert!(dpkg_installed(&fixture("dpkg-query-installed.txt")));
        assert!(!dpkg_installed(&fixture("dpkg-query-not-installed.txt")));
        assert!(!dpkg_installed("deinstall ok config-files"));
    }

    #[test]
    fn apt_cache_policy_candidate() {
        assert!(apt_has_candidate(&fixture(
            "apt-cache-policy-nginx-available.txt"
        )));
        assert!(!apt_has_candidate(&fixture("apt-cache-policy-unknown.txt")));
        assert!(!apt_has_candidate(
            "nginx:\n  Installed: (none)\n  Candidate: (none)\n"
        ));
    }
}

//! Packages: installed-ness from the package database, install when missing.

use crate::engine::{Action, Change, Ctx, Scope, Task, TaskError};
use crate::facts::PackageManager;
use crate::host::Command;

/// Ensures packages are installed with the distro's package manager.
pub struct PackagesTask {
    pub packages: Vec<String>,
    pub manager: PackageManager,
}

/// `dpkg-query -W -f '${Status}'`: installed when the status says so.
pub fn dpkg_installed(status: &str) -> bool {
    status.split_whitespace().last() == Some("installed")
        && status.split_whitespace().next() == Some("install")
}

impl Task for PackagesTask {
    fn name(&self) -> String {
        format!("packages {}", self.packages.join(" "))
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let mut missing = Vec::new();
        for p in &self.packages {
            let installed = match self.manager {
                PackageManager::Apt => {
                    let out = ctx
                        .runner
                        .run(&Command::query(["dpkg-query", "-W", "-f", "${Status}", p]))?;
                    out.success() && dpkg_installed(&out.stdout)
                }
                PackageManager::Yum | PackageManager::Dnf => {
                    ctx.runner.run(&Command::query(["rpm", "-q", p]))?.success()
                }
                PackageManager::Unknown => {
                    return Err(TaskError::Other(
                        "unknown distribution: no package manager to install with (see `portico facts`)"
                            .into(),
                    ))
                }
            };
            if !installed {
                missing.push(p.clone());
            }
        }
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let mut changes = Vec::new();
        let mut install = |argv: Vec<String>, summary: String| {
            changes.push(Change {
                summary,
                action: Action::Run(
                    Command::mutation(argv).env("DEBIAN_FRONTEND", "noninteractive"),
                ),
                diff: None,
            })
        };
        match self.manager {
            PackageManager::Apt => {
                let lists_missing = ctx
                    .root
                    .host_path(std::path::Path::new("/var/lib/apt/lists"))
                    .ok()
                    .and_then(|p| std::fs::read_dir(p).ok())
                    .is_none_or(|mut d| {
                        !d.any(|e| {
                            e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with("Packages"))
                        })
                    });
                if lists_missing {
                    install(
                        vec!["apt-get".into(), "update".into()],
                        "apt-get update (package lists are missing)".into(),
                    );
                }
                let mut argv: Vec<String> = ["apt-get", "install", "-y", "--no-install-recommends"]
                    .map(String::from)
                    .into();
                argv.extend(missing.iter().cloned());
                install(argv, format!("install {}", missing.join(" ")));
            }
            PackageManager::Yum | PackageManager::Dnf => {
                let tool = if self.manager == PackageManager::Yum {
                    "yum"
                } else {
                    "dnf"
                };
                let mut argv: Vec<String> = [tool, "install", "-y"].map(String::from).into();
                argv.extend(missing.iter().cloned());
                install(argv, format!("install {}", missing.join(" ")));
            }
            PackageManager::Unknown => {}
        }
        Ok(changes)
    }
}

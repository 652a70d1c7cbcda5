//! `portico facts`: what portico detects on this host.

use std::path::PathBuf;

use clap::Args;

use super::{open_root, CliError};
use crate::host::cmd::SystemRunner;

/// `portico facts`'s arguments.
#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Print JSON instead of text.
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the facts of the tree under DIR (files only; no commands are run).
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Prints the facts, as text or JSON.
pub(super) fn run(f: FactsArgs) -> Result<i32, CliError> {
    let root = open_root(f.root)?;
    let facts = crate::facts::gather(&root, &SystemRunner);
    if f.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&facts).expect("facts serialize")
        );
        return Ok(0);
    }
    let d = &facts.distro;
    outln!(
        "distro:          {} {} ({:?} family){}",
        d.id,
        d.version,
        d.family,
        if d.supported {
            ""
        } else {
            " [not a supported release]"
        }
    );
    outln!("package manager: {:?}", facts.package_manager);
    outln!(
        "systemd:         {}",
        if facts.systemd {
            "running"
        } else {
            "not running"
        }
    );
    let n = &facts.nginx;
    match (&n.version, n.installed) {
        (Some(v), _) => outln!(
            "nginx:           {v} (OpenSSL {}, http2 {}, http3 {}, layout {:?})",
            n.openssl.as_deref().unwrap_or("?"),
            n.http2,
            n.http3,
            n.layout
        ),
        (None, true) => outln!(
            "nginx:           installed (version unknown), layout {:?}",
            n.layout
        ),
        (None, false) => outln!(
            "nginx:           not installed (layout will be {:?})",
            n.layout
        ),
    }
    let persists = match facts.firewall_persists {
        Some(true) => "; its rules are restored at boot",
        Some(false) => "; nothing restores its rules at boot",
        None => "",
    };
    outln!(
        "firewall:        {:?}{}{persists}",
        facts.firewall,
        if facts.firewall_families.is_empty() {
            String::new()
        } else {
            format!(" ({})", facts.firewall_families.join(", "))
        }
    );
    outln!(
        "hostname:        {:?} (from {})",
        facts.hostname,
        facts.hostname_source
    );
    Ok(0)
}

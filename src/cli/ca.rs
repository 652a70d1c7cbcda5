//! `portico ca`: a private CA for client certificates.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{open_root, CliError, Session};
use crate::host::Root;
use crate::tasks::reload::{reload_nginx, ReloadOutcome};
use crate::tls::ca::{Ca, CaError};

/// `portico ca`'s arguments.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// What to do with the CA.
    #[command(subcommand)]
    pub command: CaCmd,
    /// Which host (the CA lives in DIR/var/lib/portico/ca).
    #[command(flatten)]
    pub host: super::HostArg,
    /// JSON (`issue`: the files; `list`: the certificates).
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
}

/// The CA subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Create the CA (nothing happens when it exists).
    Init {
        /// The CA's name (its directory).
        #[arg(value_parser = ca_name)]
        name: String,
        /// Lifetime of the CA certificate (1-36500).
        #[arg(long, default_value_t = 3650, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=36500))]
        days: i64,
    },
    /// Issue a client certificate (clientAuth) with its key and a PKCS#12 bundle.
    Issue {
        /// The CA.
        #[arg(value_parser = ca_name)]
        name: String,
        /// The client's common name; also the output files' name.
        #[arg(long)]
        cn: String,
        /// Lifetime (1-3650); never beyond the CA's own.
        #[arg(long, default_value_t = 365, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        /// Where CN.crt, CN.key (0600), CN.p12 and CN.p12.pass (0600) go.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Issue even though CN already has a valid certificate (that one
        /// stays valid until revoked).
        #[arg(long)]
        reissue: bool,
    },
    /// Revoke a certificate by serial (hex, colons allowed) and re-sign the CRL.
    Revoke {
        /// The CA.
        #[arg(value_parser = ca_name)]
        name: String,
        /// The certificate's serial (`portico ca list NAME`).
        serial: String,
    },
    /// Show issued certificates: serial, CN, expiry, revoked.
    List {
        /// The CA.
        #[arg(value_parser = ca_name)]
        name: String,
    },
}
/// A CA name, which names its directory: the playbook's rule for names.
fn ca_name(s: &str) -> Result<String, String> {
    if crate::playbook::names::object_name_ok(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a CA name: a letter or digit, then letters, digits, '.', '_', '-' (at most 64)"
        ))
    }
}

/// Runs the CA subcommand.
pub(super) fn run(a: CaArgs) -> Result<i32, CliError> {
    // Writes take the host's lock (one run at a time); a listing does not.
    let writes = !matches!(a.command, CaCmd::List { .. });
    let _lock = super::lock_host(&a.host.root, writes.then_some(&a.lock))?;
    let root = open_root(a.host.root)?;
    let now = crate::host::clock::Clock::unix_now(&crate::host::clock::SystemClock::default());
    match a.command {
        CaCmd::Init { name, days } => init(&Ca::new(&root, &name, now), &root, days),
        CaCmd::Issue {
            name,
            cn,
            days,
            out,
            reissue,
        } => issue(
            &Ca::new(&root, &name, now),
            &cn,
            days,
            out,
            a.json.json,
            reissue,
        ),
        CaCmd::Revoke { name, serial } => revoke(&Ca::new(&root, &name, now), &root, &serial),
        CaCmd::List { name } => list(&Ca::new(&root, &name, now), a.json.json),
    }
}

fn init(ca: &Ca, root: &Root, days: i64) -> Result<i32, CliError> {
    let dir = root.host_path(&ca.dir()).map_err(CaError::from)?;
    if ca.init(days as u32)? {
        outln!("created CA {} in {}", ca.name(), dir.display());
    } else {
        outln!(
            "CA {} exists in {}; left as it is",
            ca.name(),
            dir.display()
        );
    }
    Ok(0)
}

fn issue(
    ca: &Ca,
    cn: &str,
    days: i64,
    out: PathBuf,
    json: bool,
    reissue: bool,
) -> Result<i32, CliError> {
    let name = ca.name();
    let valid = ca.valid_for(cn)?;
    if !valid.is_empty() && !reissue {
        return Err(CliError::StillValid {
            ca: name.to_string(),
            cn: cn.to_string(),
            serials: valid.into_iter().map(|e| e.serial).collect(),
        });
    }
    // The directory the operator named, resolved once (their own symlinks
    // count); below it nothing is written through a symlink.
    let out = crate::host::resolve_output_dir(&out)
        .map_err(|source| CliError::OutputDir { path: out, source })?;
    let files = ca.issue(cn, days as u32, &Root::new("/"), &out)?;
    for e in &valid {
        eprintln!(
            "note: the previous certificate for {cn} (serial {}) stays valid until {}; \
             revoke it with `portico ca revoke {name} {}` if it should not",
            e.serial,
            crate::when::rfc3339(e.not_after),
            e.serial
        );
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&files).expect("serializes")
        );
        return Ok(0);
    }
    outln!("issued {cn} (serial {})", files.serial);
    for p in [
        &files.cert,
        &files.key,
        &files.p12,
        &files.p12_password_file,
    ] {
        outln!("  {}", p.display());
    }
    Ok(0)
}

fn revoke(ca: &Ca, root: &Root, serial: &str) -> Result<i32, CliError> {
    let e = ca.revoke(serial)?;
    outln!("revoked {} ({}); CRL re-signed", e.serial, e.cn);
    if !root.is_host() {
        return Ok(0);
    }
    // nginx reads ssl_crl at (re)load: until then the revoked certificate
    // would still be accepted.
    let session = Session::open(PathBuf::from("/"), true)?;
    Ok(match ReloadOutcome::from(reload_nginx(&session.ctx())) {
        ReloadOutcome::Reloaded => {
            outln!("nginx reloaded: the revocation is in force");
            0
        }
        ReloadOutcome::NotRunning => {
            outln!("nginx is not running; it reads the new CRL when it starts");
            0
        }
        ReloadOutcome::Failed(e) => {
            eprintln!(
                "error: the CRL is re-signed but nginx was not reloaded, so the \
                 certificate is still accepted: {e}"
            );
            1
        }
    })
}

fn list(ca: &Ca, json: bool) -> Result<i32, CliError> {
    let entries = ca.list()?;
    if json {
        // Dates as everywhere in portico's JSON: RFC 3339.
        let shown: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "serial": e.serial,
                    "cn": e.cn,
                    "not_after": crate::when::rfc3339(e.not_after),
                    "revoked_at": e.revoked_at.map(crate::when::rfc3339),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"schema": crate::report::SCHEMA, "certificates": shown})
            )
            .expect("serializes")
        );
        return Ok(0);
    }
    outln!("{:<34} {:<24} {:<20} STATE", "SERIAL", "CN", "EXPIRES");
    for e in entries {
        let expires = time::OffsetDateTime::from_unix_timestamp(e.not_after)
            .map(|t| format!("{}", t.date()))
            .unwrap_or_default();
        let state = if e.revoked_at.is_some() {
            "revoked"
        } else {
            "valid"
        };
        outln!("{:<34} {:<24} {:<20} {state}", e.serial, e.cn, expires);
    }
    Ok(0)
}

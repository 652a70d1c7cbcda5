//! SELinux on EL, done the way EL's Ansible roles do it: nginx may connect
//! to its backends (`httpd_can_network_connect`, persistently), every
//! listen port that is not an HTTP port is labelled `http_port_t`, the
//! ACME webroot is served content (`httpd_sys_content_t`), and what portico
//! writes carries its policy's labels (`restorecon`). Each is asked first,
//! so a second run changes nothing; what portico added is claimed, and
//! `remove` undoes exactly that.

use std::path::Path;

use crate::facts::selinux::{self, Mode};
use crate::host::Command;
use crate::owned::Thing;
use crate::paths;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

/// The boolean nginx needs to connect to a backend.
pub const NETWORK_CONNECT: &str = "httpd_can_network_connect";

/// What SELinux must allow for the playbook's nginx.
pub struct SelinuxTask {
    /// The ports nginx listens on.
    pub ports: Vec<u16>,
    /// The ACME webroot nginx serves challenges from, if any.
    pub webroot: Option<String>,
    /// Sites pass requests to backends.
    pub proxies: bool,
    /// Directories portico writes what nginx reads into (labelled by the
    /// policy's own rules, put right by `restorecon -R`).
    pub relabel: Vec<String>,
    /// Files nginx reads that the playbook names (a `files` certificate
    /// and key): put right one by one, never the tree around them.
    pub relabel_files: Vec<String>,
}

/// What SELinux refuses to let portico do.
#[derive(Debug, thiserror::Error)]
pub enum SelinuxError {
    /// No `semanage`.
    #[error(
        "SELinux is {mode} here and portico needs semanage to let nginx serve the playbook's ports \
         and webroot: install {package} (then run apply again)"
    )]
    NoSemanage {
        /// `enforcing` or `permissive`.
        mode: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// A listen port an administrator labelled with another type.
    #[error(
        "port {port} carries {kind} from a local rule (semanage port -l -C), and portico does not \
         change an administrator's label: label it http_port_t yourself (semanage port -m -t \
         http_port_t -p tcp {port}) or listen on another port"
    )]
    LocalPortLabel {
        /// The port.
        port: u16,
        /// Its type.
        kind: String,
    },
    /// A webroot that already holds files, which a file-context rule
    /// would relabel as web content.
    #[error(
        "the ACME webroot {webroot} already holds files, and labelling it httpd_sys_content_t \
         (semanage fcontext, restorecon -R) would relabel them all: use an empty or new \
         directory, or label it yourself"
    )]
    WebrootInUse {
        /// The webroot.
        webroot: String,
    },
    /// Another user could change the webroot: `restorecon -R` walks it by
    /// path, so a link swapped in during the walk would label a file
    /// outside it (the same refusal as before an ACME order).
    #[error(
        "not labelling the ACME webroot {webroot}: {path} is owned by {owner} with mode {mode:04o}, \
         so another user could swap a link into the relabelling; give the webroot a directory only \
         root can write"
    )]
    WebrootNotRoots {
        /// The webroot.
        webroot: String,
        /// The directory another user could change.
        path: std::path::PathBuf,
        /// Its owner.
        owner: String,
        /// Its mode.
        mode: u32,
    },
    /// A tool's answer portico cannot read.
    #[error("`{command}` said what portico cannot read: {said:?}")]
    Unreadable {
        /// The command.
        command: String,
        /// What it said.
        said: String,
    },
}

impl From<SelinuxError> for TaskError {
    fn from(e: SelinuxError) -> Self {
        TaskError::Step(Box::new(e))
    }
}

/// Is `(setting, value)` something this task may have made (a manifest
/// entry naming anything else was not written by portico)?
pub fn may_own(setting: &str, value: &str) -> bool {
    match setting {
        "boolean" => value == NETWORK_CONNECT,
        "port" => value.parse::<u16>().is_ok_and(|p| p > 0),
        "fcontext" => webroot_spec_path(value).is_some_and(|p| {
            Path::new(&p).is_absolute() && crate::playbook::names::webroot_problem(&p).is_none()
        }),
        _ => false,
    }
}

/// The file-context rule for a webroot: it and everything below it. The
/// rule is a regular expression; of the characters a playbook path may
/// hold, `.` and `+` are special there and are escaped.
fn webroot_spec(webroot: &str) -> String {
    let mut spec = String::new();
    for c in webroot.trim_end_matches('/').chars() {
        if matches!(c, '.' | '+') {
            spec.push('\\');
        }
        spec.push(c);
    }
    spec + "(/.*)?"
}

/// The webroot a rule made by [`webroot_spec`] is for.
fn webroot_spec_path(spec: &str) -> Option<String> {
    let escaped = spec.strip_suffix("(/.*)?")?;
    let mut path = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => path.push(chars.next().filter(|c| matches!(c, '.' | '+'))?),
            '.' | '+' | '(' | ')' | '*' | '?' | '[' | ']' | '|' | '^' | '$' => return None,
            c => path.push(c),
        }
    }
    Some(path)
}

/// A change that runs `argv` and claims `thing`.
fn run(argv: &[&str], summary: String, thing: Option<Thing>) -> Change {
    let change = Change::new(
        summary,
        Action::Run(Command::mutation(argv.iter().copied())),
    );
    match thing {
        Some(t) => change.claiming(vec![t]),
        None => change,
    }
}

fn selinux_thing(setting: &str, value: &str) -> Thing {
    Thing::Selinux {
        setting: setting.into(),
        value: value.into(),
    }
}

/// The package with `semanage` on this EL.
fn semanage_package(ctx: &Ctx) -> &'static str {
    if ctx.facts.distro.version.split('.').next() == Some("7") {
        "policycoreutils-python"
    } else {
        "policycoreutils-python-utils"
    }
}

/// What `argv` printed, when it ran and exited 0.
fn ask(ctx: &Ctx, argv: &[&str]) -> Result<String, TaskError> {
    Ok(ctx
        .runner
        .run_ok(&Command::query(argv.iter().copied()))?
        .stdout)
}

impl SelinuxTask {
    fn boolean(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        if !self.proxies {
            return Ok(Vec::new());
        }
        let argv = ["getsebool", NETWORK_CONNECT];
        let said = ask(ctx, &argv)?;
        let on = selinux::boolean_on(&said).ok_or_else(|| SelinuxError::Unreadable {
            command: argv.join(" "),
            said: said.clone(),
        })?;
        if on {
            return Ok(Vec::new());
        }
        Ok(vec![run(
            &["setsebool", "-P", NETWORK_CONNECT, "on"],
            format!("setsebool -P {NETWORK_CONNECT} on (nginx connects to the backends)"),
            Some(selinux_thing("boolean", NETWORK_CONNECT)),
        )])
    }

    fn ports(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let labels = selinux::tcp_ports(&ask(ctx, &["semanage", "port", "-l"])?);
        // The administrator's own rules, asked only when a port is named.
        let mut local = None;
        let mut changes = Vec::new();
        for port in &self.ports {
            if selinux::labelled(labels.get(port), "http_port_t") {
                continue;
            }
            // Another type names this very port: modified, as semanage -a
            // refuses. A port that only falls in a range takes -a.
            let named = labels.get(port).is_some_and(|l| l.iter().any(|l| l.exact));
            if named {
                local.get_or_insert(selinux::tcp_ports(&ask(
                    ctx,
                    &["semanage", "port", "-l", "-C"],
                )?));
            }
            if let Some(mine) = local.as_ref().and_then(|l| l.get(port)) {
                if let Some(label) = mine.iter().find(|l| l.exact) {
                    return Err(SelinuxError::LocalPortLabel {
                        port: *port,
                        kind: label.kind.clone(),
                    }
                    .into());
                }
            }
            let op = if named { "-m" } else { "-a" };
            let p = port.to_string();
            changes.push(run(
                &["semanage", "port", op, "-t", "http_port_t", "-p", "tcp", &p],
                format!("semanage port {op} -t http_port_t -p tcp {p} (nginx listens on it)"),
                Some(selinux_thing("port", &p)),
            ));
        }
        Ok(changes)
    }

    fn webroot(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let Some(webroot) = &self.webroot else {
            return Ok(Vec::new());
        };
        let trusted = nix::unistd::geteuid().as_raw();
        if let Some((path, m)) = ctx.root.others_can_change(Path::new(webroot), trusted)? {
            return Err(SelinuxError::WebrootNotRoots {
                webroot: webroot.clone(),
                path,
                owner: crate::host::user_name(m.uid),
                mode: m.mode,
            }
            .into());
        }
        let spec = webroot_spec(webroot);
        let local = ask(ctx, &["semanage", "fcontext", "-l", "-C"])?;
        if selinux::has_fcontext(&local, &spec, "httpd_sys_content_t") {
            return Ok(Vec::new());
        }
        // A rule relabels everything below it: only for a directory that
        // is portico's own, or that holds nothing yet.
        let path = Path::new(webroot);
        let own = path.starts_with(paths::STATE_DIR);
        if !own && !ctx.root.list_dir(path).map_or(true, |l| l.is_empty()) {
            return Err(SelinuxError::WebrootInUse {
                webroot: webroot.clone(),
            }
            .into());
        }
        Ok(vec![run(
            &["semanage", "fcontext", "-a", "-t", "httpd_sys_content_t", &spec],
            format!("semanage fcontext -a -t httpd_sys_content_t '{spec}' (nginx serves ACME challenges from it)"),
            Some(selinux_thing("fcontext", &spec)),
        )])
    }

    /// `restorecon -R` where files carry another label than the policy's
    /// (all of them, once a new rule was just added above).
    fn relabel(&self, ctx: &Ctx, rule_added: bool) -> Result<Vec<Change>, TaskError> {
        let mut changes = Vec::new();
        // The webroot is made here when missing: a file-context rule labels
        // what restorecon sees, not what is created after it.
        if let (true, Some(w)) = (rule_added, &self.webroot) {
            if !ctx.root.exists(Path::new(w)) {
                changes.push(Change::new(
                    format!("create directory {w} (mode 0755)"),
                    Action::EnsureDir {
                        path: w.into(),
                        mode: 0o755,
                    },
                ));
            }
        }
        for file in &self.relabel_files {
            if ctx.root.exists(Path::new(file))
                && !selinux::would_relabel(&ask(ctx, &["restorecon", "-n", "-v", file])?).is_empty()
            {
                changes.push(run(
                    &["restorecon", file],
                    format!("restorecon {file} (the policy's label)"),
                    None,
                ));
            }
        }
        for dir in self.relabel.iter().chain(self.webroot.iter()) {
            let fresh_rule = rule_added && self.webroot.as_deref() == Some(dir.as_str());
            if !fresh_rule && !ctx.root.exists(Path::new(dir)) {
                continue;
            }
            if fresh_rule
                || !selinux::would_relabel(&ask(ctx, &["restorecon", "-R", "-n", "-v", dir])?)
                    .is_empty()
            {
                changes.push(run(
                    &["restorecon", "-R", dir],
                    format!("restorecon -R {dir} (the policy's labels)"),
                    None,
                ));
            }
        }
        Ok(changes)
    }
}

impl Task for SelinuxTask {
    fn id(&self) -> TaskId {
        TaskId::Step("selinux")
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    /// Everything it may add. The manifest records only what a change of
    /// a run claimed (portico added it, not found it) and keeps that while
    /// it is wanted; `remove` undoes exactly that.
    fn owns(&self) -> Vec<crate::owned::Owned> {
        let boolean = self
            .proxies
            .then(|| selinux_thing("boolean", NETWORK_CONNECT));
        let ports = self
            .ports
            .iter()
            .map(|p| selinux_thing("port", &p.to_string()));
        let rule = self
            .webroot
            .as_deref()
            .map(|w| selinux_thing("fcontext", &webroot_spec(w)));
        boolean
            .into_iter()
            .chain(ports)
            .chain(rule)
            .map(|t| crate::owned::Owned::thing(t, "selinux"))
            .collect()
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let mode = match ctx.facts.selinux {
            Mode::Disabled => return Ok(Vec::new()),
            Mode::Permissive => "permissive",
            Mode::Enforcing => "enforcing",
        };
        if !paths::SEMANAGE
            .iter()
            .any(|p| ctx.root.exists(Path::new(p)))
        {
            return Err(SelinuxError::NoSemanage {
                mode,
                package: semanage_package(ctx),
            }
            .into());
        }
        let mut changes = self.boolean(ctx)?;
        changes.extend(self.ports(ctx)?);
        let rule = self.webroot(ctx)?;
        let rule_added = !rule.is_empty();
        changes.extend(rule);
        changes.extend(self.relabel(ctx, rule_added)?);
        Ok(changes)
    }
}

/// What undoes a setting portico made (`remove`, or a playbook that no
/// longer needs it), when it is still in place.
pub fn undo(ctx: &Ctx, setting: &str, value: &str, why: &str) -> Result<Vec<Change>, TaskError> {
    if ctx.facts.selinux == Mode::Disabled {
        return Ok(Vec::new());
    }
    Ok(match setting {
        "boolean" => {
            let on = selinux::boolean_on(&ask(ctx, &["getsebool", value])?).unwrap_or(false);
            if !on {
                return Ok(Vec::new());
            }
            vec![run(
                &["setsebool", "-P", value, "off"],
                format!("setsebool -P {value} off ({why})"),
                None,
            )]
        }
        "port" => {
            let Ok(port) = value.parse::<u16>() else {
                return Ok(Vec::new());
            };
            let labels = selinux::tcp_ports(&ask(ctx, &["semanage", "port", "-l", "-C"])?);
            if !selinux::labelled(labels.get(&port), "http_port_t") {
                return Ok(Vec::new());
            }
            vec![run(
                &[
                    "semanage",
                    "port",
                    "-d",
                    "-t",
                    "http_port_t",
                    "-p",
                    "tcp",
                    value,
                ],
                format!("semanage port -d -t http_port_t -p tcp {value} ({why})"),
                None,
            )]
        }
        "fcontext" => {
            let local = ask(ctx, &["semanage", "fcontext", "-l", "-C"])?;
            if !selinux::has_fcontext(&local, value, "httpd_sys_content_t") {
                return Ok(Vec::new());
            }
            vec![run(
                &["semanage", "fcontext", "-d", value],
                format!("semanage fcontext -d '{value}' ({why})"),
                None,
            )]
        }
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webroot_rule_escapes_what_a_regular_expression_reads_and_reads_back() {
        assert_eq!(
            webroot_spec("/srv/a+b.d/"),
            "/srv/a\\+b\\.d(/.*)?".to_string()
        );
        assert_eq!(
            webroot_spec_path("/srv/a\\+b\\.d(/.*)?").as_deref(),
            Some("/srv/a+b.d")
        );
        // A rule portico would not write: not one it owns.
        assert_eq!(webroot_spec_path("/srv/a.d(/.*)?"), None);
        assert_eq!(webroot_spec_path("/srv/(a|b)(/.*)?"), None);
        assert!(may_own("fcontext", "/var/lib/portico/acme-challenge(/.*)?"));
        assert!(!may_own("fcontext", "/(/.*)?"));
    }
}

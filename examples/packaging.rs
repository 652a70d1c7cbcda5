//! Writes what the packages ship besides the binary, from the sources that
//! already say it: the man pages from the clap definitions (`portico(8)`,
//! one `portico-COMMAND(8)` per subcommand) and the README's playbook
//! reference (`portico.toml(5)`), and the bash, zsh and fish completions.
//!
//!   cargo run --example packaging -- target/assets

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

const README: &str = include_str!("../README.md");

/// Where the packages put the binary.
const PACKAGED_EXE: &str = portico::paths::PACKAGED_EXE;

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/assets".into());
    let out = Path::new(&out);
    let man = out.join("man");
    let completions = out.join("completions");
    let units = out.join("systemd");
    for dir in [&man, &completions, &units] {
        std::fs::create_dir_all(dir)?;
    }

    // The units, naming the packaged binary: the daemon's exactly as
    // `apply` would render it for /usr/bin/portico (so apply finds it and
    // writes none of its own), and the timer pair's service.
    let daemon = portico::tasks::daemon_unit::render(PACKAGED_EXE, &[])
        .expect("the packaged path is safe in a unit");
    std::fs::write(units.join("portico.service"), daemon)?;
    let renew = include_str!("../systemd/portico-renew.service")
        .replace("\"/usr/local/bin/portico\"", &format!("\"{PACKAGED_EXE}\""));
    std::fs::write(units.join("portico-renew.service"), renew)?;

    let cmd = portico::cli::Cli::command();
    let mut page = Vec::new();
    let root = clap_mangen::Man::new(cmd.clone()).section("8");
    root.render_title(&mut page)?;
    root.render_name_section(&mut page)?;
    root.render_synopsis_section(&mut page)?;
    root.render_description_section(&mut page)?;
    root.render_options_section(&mut page)?;
    root.render_subcommands_section(&mut page)?;
    page.write_all(EXTRA.as_bytes())?;
    root.render_version_section(&mut page)?;
    std::fs::write(man.join("portico.8"), page)?;
    for sub in cmd.get_subcommands() {
        let name = format!("portico-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("portico {}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).section("8").render(&mut page)?;
        std::fs::write(man.join(format!("{name}.8")), page)?;
    }
    std::fs::write(man.join("portico.toml.5"), playbook_page(README))?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "portico", &completions)?;
    }
    Ok(())
}

/// Sections clap does not know: files, exit codes, examples, see also.
const EXTRA: &str = r#".SH "EXIT STATUS"
.TP
.B 0
success (nothing to do, or everything done)
.TP
.B 1
a task failed, nginx rejected the configuration (rolled back), or a certificate needs attention (renew, status)
.TP
.B 2
bad input: the playbook or the flags; nothing was changed
.SH FILES
.TP
.I /etc/portico/playbook.toml
the playbook apply installed (0600); what renew, status and the daemon read by default
.TP
.I /etc/ssl/portico/certs/NAME.crt, /etc/ssl/portico/private/NAME.key
certificates portico makes or obtains, and their keys (0600, directory 0700)
.TP
.I /var/lib/portico/state.json
renewal state: failures, back-off, ACME Renewal Information
.TP
.I /var/lib/portico/managed.json
what portico made (files with their hashes, firewall ports, units): what a later run may prune
.TP
.I /var/lib/portico/acme/
ACME accounts (0600)
.TP
.I /lib/systemd/system/portico.service
the renewal daemon's unit (packaged); /etc/systemd/system/portico.service when apply writes its own
.SH EXAMPLES
.nf
sudo portico apply                          # the embedded default: self-signed HTTPS proxy to :3000
sudo portico apply /usr/share/doc/portico/examples/letsencrypt-reverse-proxy.toml
portico apply \-\-check \-\-diff site.toml       # the plan, with diffs; nothing touched
sudo portico renew \-\-force site.toml         # every ACME certificate, now
portico status                              # what is served, when it renews next
sudo portico remove \-\-purge                  # take back everything portico made
.fi
.SH "SEE ALSO"
.BR portico.toml (5),
.BR portico\-apply (8),
.BR nginx (8),
.BR systemctl (1)
"#;

/// `portico.toml(5)`: the README's "Playbook reference" table, one entry
/// per row, so the page and the README cannot disagree.
fn playbook_page(readme: &str) -> String {
    let section = readme
        .split("\n## Playbook reference")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Playbook reference section");
    let mut page = String::from(
        ".TH PORTICO.TOML 5 \"\" \"portico\" \"File Formats\"\n.SH NAME\nportico.toml \\- portico's playbook\n\
         .SH DESCRIPTION\nA playbook is a TOML file (version = 1) that describes one host's HTTPS front end: \
         firewall, TLS, certificates (self-signed, a private CA, files, ACME over HTTP-01 or DNS-01), \
         sites and their locations. Unknown fields are errors. Examples are in \
         /usr/share/doc/portico/examples/.\n.SH FIELDS\n",
    );
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        if cells.len() != 3 {
            continue;
        }
        page.push_str(&format!(
            ".TP\n.B {}\n{}{}\n",
            roff(&plain(cells[0])),
            if cells[1].is_empty() || cells[1] == "—" {
                String::new()
            } else if cells[1] == "required" {
                "Required. ".to_string()
            } else {
                format!("Default: {}. ", roff(&plain(cells[1])))
            },
            roff(&plain(cells[2]))
        ));
    }
    page.push_str(".SH \"SEE ALSO\"\n.BR portico (8)\n");
    page
}

/// Markdown inline marks and links dropped.
fn plain(md: &str) -> String {
    let mut out = String::new();
    let mut rest = md.replace('`', "");
    // [text](link) -> text
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..mid]);
        rest = rest[close + 1..].to_string();
    }
    out.push_str(&rest);
    out
}

/// Text safe in a roff line: backslashes and hyphens escaped, no line
/// starting with a control character.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

//! `portico facts`: what portico detects on this host.

use clap::Args;

use super::{open_root, CliError};
use crate::host::cmd::SystemRunner;

/// `portico facts`'s arguments.
#[derive(Debug, Args)]
pub struct FactsArgs {
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Which host (under another root only files are read: no tool is run).
    #[command(flatten)]
    pub host: super::HostArg,
}

/// Prints the facts, as text or JSON: the text says what the JSON says,
/// in the same words.
pub(super) fn run(f: FactsArgs) -> Result<i32, CliError> {
    let root = open_root(f.host.root)?;
    let facts = crate::facts::gather(&root, &SystemRunner);
    let mut v = serde_json::to_value(&facts).expect("facts serialize");
    // What was not asked is unknown (null), not false.
    if facts.nginx.version.is_none() {
        v["nginx"]["http2"] = serde_json::Value::Null;
        v["nginx"]["http3"] = serde_json::Value::Null;
    }
    v["schema"] = crate::report::SCHEMA.into();
    if f.json.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).expect("facts serialize")
        );
        return Ok(0);
    }
    out!("{}", text(&v));
    Ok(0)
}

/// A JSON value as a word: a string as it is, null as "unknown".
fn word(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "unknown".into(),
        other => other.to_string(),
    }
}

/// The facts as text, from their JSON.
fn text(v: &serde_json::Value) -> String {
    let d = &v["distro"];
    let n = &v["nginx"];
    let mut out = format!(
        "distro:          {} {} (family {}){}\n",
        word(&d["id"]),
        word(&d["version"]),
        word(&d["family"]),
        if d["supported"] == true {
            ""
        } else {
            " [not a supported release]"
        }
    );
    out += &format!("package manager: {}\n", word(&v["package_manager"]));
    out += &format!(
        "systemd:         {}\n",
        if v["systemd"] == true {
            "running"
        } else {
            "not running"
        }
    );
    let nginx = match (&n["version"], n["installed"] == true) {
        (serde_json::Value::String(ver), _) => format!(
            "{ver} (openssl {}, http2 {}, http3 {}, layout {})",
            word(&n["openssl"]),
            word(&n["http2"]),
            word(&n["http3"]),
            word(&n["layout"])
        ),
        (_, true) => format!("installed, version unknown (layout {})", word(&n["layout"])),
        (_, false) => format!("not installed (layout {} once it is)", word(&n["layout"])),
    };
    out += &format!("nginx:           {nginx}\n");
    let families: Vec<String> = v["firewall_families"]
        .as_array()
        .map(|a| a.iter().map(word).collect())
        .unwrap_or_default();
    out += &format!(
        "firewall:        {}{}{}\n",
        word(&v["firewall"]),
        if families.is_empty() {
            String::new()
        } else {
            format!(" ({})", families.join(", "))
        },
        match &v["firewall_persists"] {
            serde_json::Value::Bool(true) => "; its rules are restored at boot",
            serde_json::Value::Bool(false) => "; nothing restores its rules at boot",
            _ => "",
        }
    );
    let source = word(&v["hostname_source"]);
    let from = if source.starts_with('/') || source.ends_with("()") {
        format!("from {source}")
    } else {
        source
    };
    out += &format!("hostname:        {} ({from})\n", word(&v["hostname"]));
    out
}

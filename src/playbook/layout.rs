//! `portico fmt`: a playbook in one layout, its comments kept. Keys and
//! values are spaced `key = value`, nothing is indented, a table header
//! has one blank line above it, a blank line between keys (a group) stays
//! one, a comment after a value is two spaces away, lists and inline
//! tables without comments are spaced `["a", "b"]`. What the playbook says
//! never changes: the result must read as the same TOML, or nothing is
//! written.

use toml_edit::{DocumentMut, Item, Table, Value};

/// Why a playbook could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum FmtError {
    /// It is not TOML.
    #[error("not TOML: {0}")]
    Syntax(String),
    /// The layout would change what it says (a bug: nothing is written).
    #[error("laying it out would change what it says; it is left as it is")]
    Changed,
}

/// `text` in portico's layout.
pub fn format(text: &str) -> Result<String, FmtError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FmtError::Syntax(e.message().to_string()))?;
    tidy_table(doc.as_table_mut(), true);
    let trailing = comments(doc.trailing().as_str().unwrap_or(""));
    doc.set_trailing(trailing);
    let out = lines(&doc.to_string());
    let same = |t: &str| t.parse::<toml::Table>().ok();
    if same(text) != same(&out) {
        return Err(FmtError::Changed);
    }
    Ok(out)
}

/// The comment lines of a decor prefix, unindented.
fn comments(raw: &str) -> String {
    raw.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Was there a blank line above this item (before its comments)?
fn had_blank(raw: &str) -> bool {
    raw[..raw.find('#').unwrap_or(raw.len())].contains('\n')
}

fn tidy_table(t: &mut Table, top: bool) {
    if !top && !t.is_implicit() {
        let raw = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
        let kept = comments(raw);
        t.decor_mut().set_prefix(format!("\n{kept}"));
        let suffix = trailing_comment(t.decor().suffix().and_then(|p| p.as_str()).unwrap_or(""));
        t.decor_mut().set_suffix(suffix);
    }
    for (mut key, item) in t.iter_mut() {
        let raw = key
            .leaf_decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        let blank = had_blank(&raw);
        let mut prefix = comments(&raw);
        if blank {
            prefix.insert(0, '\n');
        }
        // A table's key is its header's name: `[tls]`, not `[tls ]`.
        let (prefix, suffix) = match item {
            Item::Value(_) => (prefix, " "),
            _ => (String::new(), ""),
        };
        key.leaf_decor_mut().set_prefix(prefix);
        key.leaf_decor_mut().set_suffix(suffix);
        match item {
            Item::Value(v) => tidy_value(v),
            Item::Table(sub) => tidy_table(sub, false),
            Item::ArrayOfTables(a) => {
                for sub in a.iter_mut() {
                    tidy_table(sub, false);
                }
            }
            Item::None => {}
        }
    }
}

/// `  # comment` from what followed a value or a header, or nothing.
fn trailing_comment(raw: &str) -> String {
    match raw.find('#') {
        Some(i) => format!("  {}", raw[i..].trim_end()),
        None => String::new(),
    }
}

fn tidy_value(v: &mut Value) {
    let suffix = v
        .decor()
        .suffix()
        .and_then(|p| p.as_str())
        .map(trailing_comment)
        .unwrap_or_default();
    let plain = !v.to_string().contains('#');
    match v {
        Value::Array(a) if plain && !a.to_string().contains('\n') => a.fmt(),
        Value::InlineTable(t) if plain => t.fmt(),
        _ => {}
    }
    v.decor_mut().set_prefix(" ");
    v.decor_mut().set_suffix(suffix);
}

/// No trailing spaces, at most one blank line in a row, none at the start,
/// one newline at the end.
fn lines(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines() {
        let l = line.trim_end();
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if blank > 0 && !out.is_empty() {
            out.push('\n');
        }
        blank = 0;
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_fixed_and_comments_stay() {
        let messy = "# a playbook\nversion=1\n\n\n[tls]\n  profile   =\"modern\"   # the newest\n[[site]]\n\
                     server_names=[ \"a.test\",\"b.test\" ]\n\n\ncertificate = \"web\"\n";
        let tidy = format(messy).unwrap();
        assert_eq!(
            tidy,
            "# a playbook\nversion = 1\n\n[tls]\nprofile = \"modern\"  # the newest\n\n[[site]]\n\
             server_names = [\"a.test\", \"b.test\"]\n\ncertificate = \"web\"\n"
        );
        assert_eq!(
            format(&tidy).unwrap(),
            tidy,
            "a second pass changes nothing"
        );
    }

    #[test]
    fn the_seed_playbooks_keep_what_they_say() {
        for seed in [
            include_str!("../../playbooks/self-signed-proxy.toml"),
            include_str!("../../playbooks/mtls-api.toml"),
        ] {
            let tidy = format(seed).unwrap();
            assert_eq!(format(&tidy).unwrap(), tidy);
            assert_eq!(
                tidy.lines().filter(|l| l.contains('#')).count(),
                seed.lines().filter(|l| l.contains('#')).count(),
                "every comment kept"
            );
        }
    }
}

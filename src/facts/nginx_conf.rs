//! What the host's own nginx configuration claims: which wildcard sockets
//! already have a `default_server` outside portico's files. Read from
//! `nginx -T` (the whole configuration as nginx sees it) on a live host, or
//! from the same dump assembled from the files of a tree (`--root`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::root::RootError;
use crate::host::Root;

/// The address family of a wildcard socket (`*:443` or `[::]:443`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    /// IPv4: `*:PORT`, `0.0.0.0:PORT` or a bare port.
    V4,
    /// IPv6: `[::]:PORT`.
    V6,
}

/// A wildcard listening socket: family and port.
pub type Socket = (Family, u16);

/// Words and punctuation of nginx's configuration language.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' | '{' | '}' => {
                chars.next();
                out.push(match c {
                    ';' => Token::Semicolon,
                    '{' => Token::Open,
                    _ => Token::Close,
                });
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut word = String::new();
                while let Some(ch) = chars.next() {
                    if ch == '\\' {
                        word.extend(chars.next());
                    } else if ch == quote {
                        break;
                    } else {
                        word.push(ch);
                    }
                }
                out.push(Token::Word(word));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || ";{}".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    out
}

/// Statements (`directive args...`) in order, blocks flattened.
fn statements(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    for t in tokenize(text) {
        match t {
            Token::Word(w) => words.push(w),
            Token::Semicolon | Token::Open => {
                if !words.is_empty() {
                    out.push(std::mem::take(&mut words));
                }
            }
            Token::Close => words.clear(),
        }
    }
    out
}

/// The wildcard socket(s) a `listen` address means, if it is one.
fn wildcard(addr: &str, flags: &[String]) -> Vec<Socket> {
    if addr.starts_with("unix:") {
        return Vec::new();
    }
    let port_of = |p: &str| p.parse::<u16>().ok();
    if let Some(v6) = addr.strip_prefix('[') {
        let Some((host, rest)) = v6.split_once(']') else {
            return Vec::new();
        };
        let port = match rest.strip_prefix(':') {
            Some(p) => port_of(p),
            None => Some(80),
        };
        let Some(port) = port.filter(|_| host == "::") else {
            return Vec::new();
        };
        let mut v = vec![(Family::V6, port)];
        if flags.iter().any(|f| f == "ipv6only=off") {
            v.push((Family::V4, port));
        }
        return v;
    }
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => (h, port_of(p)),
        None if addr.chars().all(|c| c.is_ascii_digit()) => ("*", port_of(addr)),
        None => (addr, Some(80)),
    };
    match (host, port) {
        ("*" | "0.0.0.0", Some(p)) => vec![(Family::V4, p)],
        _ => Vec::new(),
    }
}

/// The first line of every file portico writes (see `nginx::render::HEADER`).
const PORTICO_MARK: &str = "# Managed by portico";

/// Wildcard sockets with a `default_server` (or `default`) in a configuration
/// dump as `nginx -T` prints it, skipping the files portico manages (they
/// start with its header line).
pub fn default_sockets(dump: &str) -> BTreeSet<Socket> {
    let mut taken = BTreeSet::new();
    for (_, content) in sections(dump) {
        if content.trim_start().starts_with(PORTICO_MARK) {
            continue;
        }
        for st in statements(content) {
            if st[0] != "listen" || st.len() < 2 {
                continue;
            }
            let flags = &st[2..];
            if flags
                .iter()
                .any(|f| f == "default_server" || f == "default")
            {
                taken.extend(wildcard(&st[1], flags));
            }
        }
    }
    taken
}

/// `dump` (as `nginx -T` prints it) with the content of portico's own
/// files left out, their header lines kept: what reads a dump (the
/// sockets others claim, the files nginx opens) looks only at the rest,
/// and a host with thousands of sites need not keep them all in memory.
pub fn without_portico_files(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len().min(1 << 20));
    for (file, content) in sections(dump) {
        out.push_str("# configuration file ");
        out.push_str(file);
        out.push_str(":\n");
        if content.trim_start().starts_with(PORTICO_MARK) {
            out.push_str(PORTICO_MARK);
            out.push('\n');
        } else {
            out.push_str(content);
        }
    }
    out
}

/// `(file, content)` of each `# configuration file PATH:` section.
fn sections(dump: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    let mut offset = 0;
    for line in dump.split_inclusive('\n') {
        let header = line
            .trim_end()
            .strip_prefix("# configuration file ")
            .and_then(|l| l.strip_suffix(':'));
        if let Some(file) = header {
            if let Some((f, start)) = current.take() {
                out.push((f, &dump[start..offset]));
            }
            current = Some((file, offset + line.len()));
        }
        offset += line.len();
    }
    if let Some((f, start)) = current {
        out.push((f, &dump[start..]));
    }
    out
}

/// Assembles what `nginx -T` would print from a tree's files: the main file
/// and every `include` (globs in the last path component), in order.
pub fn dump_from_tree(root: &Root, main: &Path) -> Result<String, RootError> {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    dump_file(root, main, &mut out, &mut seen, 0)?;
    Ok(out)
}

fn dump_file(
    root: &Root,
    path: &Path,
    out: &mut String,
    seen: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> Result<(), RootError> {
    if depth > 16 || !seen.insert(path.to_path_buf()) {
        return Ok(());
    }
    let Some(text) = root.read_to_string(path)? else {
        return Ok(());
    };
    // portico's own files (thousands of sites) are named, not copied: what
    // reads a dump looks at the rest (see [`without_portico_files`]).
    if text.trim_start().starts_with(PORTICO_MARK) {
        out.push_str(&format!(
            "# configuration file {}:\n{PORTICO_MARK}\n",
            path.display()
        ));
        return Ok(());
    }
    out.push_str(&format!(
        "# configuration file {}:\n{text}\n",
        path.display()
    ));
    let conf_dir = Path::new(crate::paths::NGINX_CONF_DIR);
    for st in statements(&text) {
        if st[0] != "include" || st.len() != 2 {
            continue;
        }
        let pattern = conf_dir.join(&st[1]);
        for file in expand(root, &pattern)? {
            dump_file(root, &file, out, seen, depth + 1)?;
        }
    }
    Ok(())
}

/// The files a pattern names: itself, or the matches of a `*` glob in its
/// last component, sorted (as glob(3) does; dot files never match).
fn expand(root: &Root, pattern: &Path) -> Result<Vec<PathBuf>, RootError> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let mut files: Vec<PathBuf> = root
        .list_dir(dir)?
        .into_iter()
        .filter(|n| !n.starts_with('.') && glob_match(&name, n))
        .map(|n| dir.join(n))
        .collect();
    files.sort();
    Ok(files)
}

/// `*` matches any run of characters; everything else matches itself (the
/// globs of nginx and nft includes).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_keeps_the_admins_files_and_names_portico_s_own() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp { include /etc/nginx/sites-enabled/*; }\n\
                    # configuration file /etc/nginx/portico/live/portico-a.test.https.conf:\n\
                    # Managed by portico: do not edit\nserver { listen 443 ssl default_server; }\n\
                    # configuration file /etc/nginx/sites-enabled/default:\nserver { listen 80 default_server; }\n";
        let kept = without_portico_files(dump);
        assert!(kept.contains("# configuration file /etc/nginx/portico/live/portico-a.test.https.conf:\n# Managed by portico\n"));
        assert!(!kept.contains("listen 443"), "{kept}");
        assert!(
            kept.contains("server { listen 80 default_server; }"),
            "{kept}"
        );
        assert_eq!(default_sockets(&kept), default_sockets(dump));
    }

    #[test]
    fn listen_addresses() {
        let none: &[String] = &[];
        assert_eq!(wildcard("80", none), [(Family::V4, 80)]);
        assert_eq!(wildcard("*:443", none), [(Family::V4, 443)]);
        assert_eq!(wildcard("0.0.0.0:8443", none), [(Family::V4, 8443)]);
        assert_eq!(wildcard("[::]:80", none), [(Family::V6, 80)]);
        assert_eq!(wildcard("[::]", none), [(Family::V6, 80)]);
        assert!(wildcard("127.0.0.1:80", none).is_empty());
        assert!(wildcard("[::1]:80", none).is_empty());
        assert!(wildcard("unix:/run/x.sock", none).is_empty());
        assert!(wildcard("localhost", none).is_empty());
        assert_eq!(
            wildcard("[::]:443", &["ipv6only=off".to_string()]),
            [(Family::V6, 443), (Family::V4, 443)]
        );
    }

    #[test]
    fn comments_quotes_and_blocks() {
        let text = "server { # listen 1 default_server;\n listen \"8080\" default_server; location / { return 200 'a;b'; } }";
        let d = format!("# configuration file /x:\n{text}");
        assert_eq!(default_sockets(&d), [(Family::V4, 8080)].into());
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match("*", "default"));
        assert!(glob_match("50-*.conf", "50-mod.conf"));
    }
}

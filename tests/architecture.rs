//! The house rules, checked on the source itself:
//!
//! - no import cycle between files of `src/` (a file's `use crate::...`
//!   and `crate::...::` paths, resolved to the file they name);
//! - side effects only in `src/host/`: `std::fs`, `std::process` and
//!   `std::net` appear nowhere else (tests inside `#[cfg(test)]` aside).
//!
//! Both fail naming the files, so the fix is where the message points.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by its path relative to it.
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out.sort();
    out
}

/// `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`, `src/lib.rs` -> ``.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

/// The text that counts: without `#[cfg(test)]` modules (a test may
/// reach anywhere), comments and string literals' contents.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if skip_depth.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if pending_cfg_test && skip_depth.is_none() {
            pending_cfg_test = false;
            if opens > closes {
                skip_depth = Some(depth);
                depth += opens - closes;
                continue;
            }
            // A single item (`#[cfg(test)] use ...;`): skipped.
            depth += opens - closes;
            continue;
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        // Strings and line comments out: `"crate::x"` in a message is no import.
        let mut clean = String::new();
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
                prev = c;
                continue;
            }
            if !in_str {
                clean.push(c);
            }
            prev = c;
        }
        if let Some(i) = clean.find("//") {
            clean.truncate(i);
        }
        out.push_str(&clean);
        out.push('\n');
    }
    out
}

/// The module paths a file names: `crate::a::b::C` and the members of
/// `use crate::{a::b, c::{d, e}}`, as `a::b::C`, `c::d`, ...
fn paths_named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("crate::") {
        let start = i + at + "crate::".len();
        // A word that only ends in `crate` (`portico_crate::`) is not it.
        let before = (i + at).checked_sub(1).map(|b| bytes[b] as char);
        i = start;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        expand("", &code[start..], &mut out);
    }
    out
}

/// Expands one path after `crate::` (with nested `{...}` groups).
fn expand(prefix: &str, rest: &str, out: &mut BTreeSet<String>) {
    let mut path = String::from(prefix);
    let mut chars = rest.char_indices().peekable();
    while let Some((idx, c)) = chars.next() {
        match c {
            c if c.is_alphanumeric() || c == '_' || c == ':' => path.push(c),
            '{' => {
                // A group: each member with this prefix.
                let mut depth = 1;
                let mut end = idx + 1;
                for (j, d) in rest[idx + 1..].char_indices() {
                    match d {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = idx + 1 + j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let inner = &rest[idx + 1..end];
                let mut level = 0;
                let mut item = String::new();
                for d in inner.chars() {
                    match d {
                        '{' => {
                            level += 1;
                            item.push(d)
                        }
                        '}' => {
                            level -= 1;
                            item.push(d)
                        }
                        ',' if level == 0 => {
                            expand(&path, item.trim(), out);
                            item.clear();
                        }
                        _ => item.push(d),
                    }
                }
                if !item.trim().is_empty() {
                    expand(&path, item.trim(), out);
                }
                return;
            }
            _ => break,
        }
    }
    let path = path.trim_end_matches(':').to_string();
    if !path.is_empty() {
        out.insert(path);
    }
}

/// The file a path names: its longest prefix that is a module with a file.
fn resolve<'a>(path: &str, modules: &'a BTreeMap<String, PathBuf>) -> Option<&'a PathBuf> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

fn rel(p: &Path) -> String {
    format!("src/{}", p.strip_prefix(src()).unwrap().display())
}

/// Every cycle of the graph (Tarjan's strongly connected components of
/// more than one file, or a file naming itself through another).
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct T<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on: BTreeSet<&'a PathBuf>,
        next: usize,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a PathBuf) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.edges.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.clone());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// A path from `from` back to itself inside `scc`, to name the cycle.
fn a_cycle(
    from: &PathBuf,
    scc: &[PathBuf],
    edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
) -> Vec<PathBuf> {
    let inside: BTreeSet<&PathBuf> = scc.iter().collect();
    let mut prev: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(v).into_iter().flatten() {
            if !inside.contains(w) {
                continue;
            }
            if w == from {
                let mut path = vec![from.clone()];
                let mut at = v;
                while at != from {
                    path.push(at.clone());
                    at = prev[at];
                }
                path.push(from.clone());
                path[1..].reverse();
                return path;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    scc.to_vec()
}

#[test]
fn no_file_of_src_imports_itself_back_through_others() {
    let modules: BTreeMap<String, PathBuf> =
        files().into_iter().map(|f| (module_of(&f), f)).collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (_, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let named = paths_named(&code(&text));
        let targets: BTreeSet<PathBuf> = named
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|t| *t != file && !t.ends_with("lib.rs"))
            .cloned()
            .collect();
        edges.insert(file.clone(), targets);
    }
    let found = cycles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|scc| {
            let path = a_cycle(&scc[0], scc, &edges);
            format!(
                "{}\n    (all of: {})",
                path.iter().map(|p| rel(p)).collect::<Vec<_>>().join(" -> "),
                scc.iter().map(|p| rel(p)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} import cycle(s) between files of src/ (move what both sides use down to a \
         module both depend on):\n  {}",
        found.len(),
        described.join("\n  ")
    );
}

#[test]
fn side_effects_live_in_src_host_only() {
    let mut found = Vec::new();
    for file in files() {
        if file.starts_with(src().join("host")) || file.ends_with("main.rs") {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for (n, line) in text.lines().enumerate() {
            for what in ["std::fs", "std::process", "std::net"] {
                let hit = line.match_indices(what).any(|(i, _)| {
                    let after = line[i + what.len()..].chars().next();
                    // `std::process::ExitCode` is a type, not an effect.
                    !(what == "std::process" && line[i..].starts_with("std::process::ExitCode"))
                        && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    found.push(format!("{}: {what}: {}", rel(&file), line.trim()));
                    let _ = n;
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "side effects outside src/host/ (go through its seams: Root, Runner, Systemd, ...):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    // A cycle and an effect in made-up text are found: the parsing works.
    let named = paths_named("use crate::{a::b, c::{d, e::F}};\nlet x = crate::g::h::i();\n");
    for want in ["a::b", "c::d", "c::e::F", "g::h::i"] {
        assert!(named.contains(want), "{want} not in {named:?}");
    }
    let c = code(
        "fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::x;\n}\nfn b() { crate::y::z(); }\n",
    );
    assert!(!c.contains("crate::x") && c.contains("crate::y"), "{c}");
    let mut edges = BTreeMap::new();
    let (a, b) = (PathBuf::from("a"), PathBuf::from("b"));
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(cycles(&edges).len(), 1);
}

//! The house rules, checked on the source itself (parsed with `syn`, so a
//! path in a string or a comment is no import, and one in a macro is):
//!
//! - no import cycle between files of `src/`: a file's `crate::…`, `self::…`,
//!   `super::…` and `child::…` paths, resolved to the file they name;
//! - side effects only in `src/host/`: `std::fs`, `std::process` and
//!   `std::net` appear nowhere else (`#[cfg(test)]` code aside; address
//!   types come from `core::net`, an exit code is no effect);
//! - no function over 80 lines, unless a comment above it starts with
//!   `Better whole:` and says why (a `match` of data, a table).
//!
//! Each fails naming the files and lines, so the fix is where it points.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The longest a function may be without a reason written above it.
const MAX_LINES: usize = 80;
/// What the reason starts with.
const WHOLE: &str = "Better whole:";

/// Module path -> (file as shown, its text).
type Sources = BTreeMap<String, (String, String)>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`.
fn sources() -> Sources {
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
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(src()).unwrap().to_path_buf();
            let text = std::fs::read_to_string(&f).unwrap();
            (module_of(&rel), (format!("src/{}", rel.display()), text))
        })
        .collect()
}

/// `a/b.rs` -> `a::b`, `a/mod.rs` -> `a`, `lib.rs` -> `` (`main.rs`, the
/// binary, is `#bin`: apart from the library's root).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("mod") | Some("lib") => {
            parts.pop();
        }
        Some("main") if parts.len() == 1 => return "#bin".into(),
        _ => {}
    }
    parts.join("::")
}

/// `#[cfg(test)]`, `#[cfg(all(test, …))]`: code only tests see.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| match &a.meta {
        syn::Meta::List(l) if l.path.is_ident("cfg") => {
            let t = l.tokens.to_string();
            t.split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "test")
                && !t.contains("not")
        }
        _ => false,
    })
}

/// What one file names and does, `#[cfg(test)]` items left out.
#[derive(Default)]
struct Facts {
    /// Paths that start at `crate`, `self`, `super` or a child module, as
    /// written (`super::x::Y`).
    paths: BTreeSet<String>,
    /// `std::fs`, `std::process`, `std::net` uses, with their line.
    effects: Vec<(usize, String)>,
    /// Functions: name, first and last line.
    functions: Vec<(String, usize, usize)>,
}

struct Collect<'a> {
    facts: &'a mut Facts,
    /// The first words that make a path one of ours.
    heads: BTreeSet<String>,
}

impl Collect<'_> {
    fn path(&mut self, segments: Vec<String>, line: usize) {
        let Some(head) = segments.first() else {
            return;
        };
        if head == "std"
            && segments
                .get(1)
                .is_some_and(|s| ["fs", "process", "net"].contains(&s.as_str()))
        {
            let exit_code =
                segments[1] == "process" && segments.get(2).is_some_and(|s| s == "ExitCode");
            if !exit_code {
                self.facts.effects.push((line, segments.join("::")));
            }
        }
        if self.heads.contains(head) && segments.len() >= 2 {
            self.facts.paths.insert(segments.join("::"));
        }
    }

    /// `a::b::{c, d::e}` -> each full path.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident),
            syn::UseTree::Glob(g) => self.path(prefix.clone(), g.star_token.spans[0].start().line),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut full = prefix.to_vec();
        if ident != "self" {
            full.push(ident.to_string());
        }
        self.path(full, ident.span().start().line);
    }

    /// Paths inside a macro's tokens (`format!("{}", crate::x::Y)`): runs
    /// of `ident :: ident :: …`.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            let TokenTree::Ident(first) = &trees[i] else {
                if let TokenTree::Group(g) = &trees[i] {
                    self.tokens(g.stream());
                }
                i += 1;
                continue;
            };
            let line = first.span().start().line;
            let mut segments = vec![first.to_string()];
            let mut j = i + 1;
            while let (
                Some(TokenTree::Punct(a)),
                Some(TokenTree::Punct(b)),
                Some(TokenTree::Ident(next)),
            ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
            {
                if a.as_char() != ':' || b.as_char() != ':' {
                    break;
                }
                segments.push(next.to_string());
                j += 3;
            }
            if segments.len() > 1 {
                self.path(segments, line);
            }
            i = j;
        }
    }

    fn function(&mut self, name: &syn::Ident, first: usize, block: &syn::Block) {
        let last = block.brace_token.span.close().end().line;
        self.facts.functions.push((name.to_string(), first, last));
    }
}

impl<'ast> Visit<'ast> for Collect<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = match i {
            syn::Item::Fn(x) => &x.attrs,
            syn::Item::Mod(x) => &x.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Use(x) => &x.attrs,
            syn::Item::Const(x) => &x.attrs,
            syn::Item::Static(x) => &x.attrs,
            syn::Item::Struct(x) => &x.attrs,
            syn::Item::Enum(x) => &x.attrs,
            syn::Item::Trait(x) => &x.attrs,
            _ => return syn::visit::visit_item(self, i),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, i);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.function(&f.sig.ident, f.sig.fn_token.span.start().line, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.sig.ident, f.sig.fn_token.span.start().line, &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.function(&f.sig.ident, f.sig.fn_token.span.start().line, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        self.path(segments, line);
        syn::visit::visit_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The modules a file declares (`mod child;`, outside tests).
fn children(file: &syn::File) -> BTreeSet<String> {
    file.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if m.content.is_none() && !is_cfg_test(&m.attrs) => {
                Some(m.ident.to_string())
            }
            _ => None,
        })
        .collect()
}

fn facts_of(file: &str, text: &str) -> Facts {
    let parsed = syn::parse_file(text).unwrap_or_else(|e| panic!("{file}: does not parse: {e}"));
    let mut facts = Facts::default();
    let mut heads: BTreeSet<String> = ["crate", "self", "super"].map(String::from).into();
    heads.extend(children(&parsed));
    Collect {
        facts: &mut facts,
        heads,
    }
    .visit_file(&parsed);
    facts
}

/// `super::x` in module `a::b` -> `a::x` (`super::super::` climbs twice);
/// `child::y` -> `a::b::child::y`.
fn absolute(path: &str, module: &str) -> String {
    let mut base: Vec<&str> = module
        .trim_start_matches("#bin")
        .split("::")
        .filter(|p| !p.is_empty())
        .collect();
    let mut rest: Vec<&str> = path.split("::").collect();
    match rest[0] {
        "crate" => {
            base.clear();
            rest.remove(0);
        }
        "self" => {
            rest.remove(0);
        }
        "super" => {
            while rest.first() == Some(&"super") {
                base.pop();
                rest.remove(0);
            }
        }
        _ => {}
    }
    base.extend(rest);
    base.join("::")
}

/// The module a path names: its longest prefix that is a module with a file.
fn resolve<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

/// Is `ancestor` a module above `module` (`a` above `a::b::c`)? A module's
/// own file is what its children are written against (its facade), and
/// its `mod` lines are no imports: a child naming it closes no cycle.
fn is_ancestor(ancestor: &str, module: &str) -> bool {
    ancestor.is_empty() || module.starts_with(&format!("{ancestor}::"))
}

/// File -> the files it names.
fn graph(sources: &Sources) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, (file, text))| {
            let targets = facts_of(file, text)
                .paths
                .iter()
                .filter_map(|p| resolve(&absolute(p, module), &modules))
                .filter(|t| *t != module && !is_ancestor(t, module))
                .map(|t| sources[t].0.clone())
                .collect();
            (file.clone(), targets)
        })
        .collect()
}

/// Every cycle of the graph (Tarjan's strongly connected components of
/// more than one file).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a String, usize>,
        low: BTreeMap<&'a String, usize>,
        stack: Vec<&'a String>,
        on: BTreeSet<&'a String>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a String) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.edges.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let low = t.low[v].min(t.low[w]);
                t.low.insert(v, low);
            } else if t.on.contains(w) {
                let low = t.low[v].min(t.index[w]);
                t.low.insert(v, low);
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
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The shortest way from `from` back to itself inside `scc`, to name the
/// cycle: `a -> b -> c -> a`.
fn a_cycle(
    from: &String,
    scc: &[String],
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let inside: BTreeSet<&String> = scc.iter().collect();
    let mut prev: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for w in edges
            .get(v)
            .into_iter()
            .flatten()
            .filter(|w| inside.contains(w))
        {
            if w == from {
                let mut back = vec![v.clone()];
                let mut at = v;
                while at != from {
                    at = prev[at];
                    back.push(at.clone());
                }
                back.reverse();
                back.push(from.clone());
                return back;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    scc.to_vec()
}

/// The cycles, each as one way round and all its files.
fn cycle_report(sources: &Sources) -> Vec<String> {
    let edges = graph(sources);
    cycles(&edges)
        .iter()
        .map(|scc| {
            format!(
                "{}\n    (all of: {})",
                a_cycle(&scc[0], scc, &edges).join(" -> "),
                scc.join(", ")
            )
        })
        .collect()
}

/// Every effect outside `src/host/` (and the binary's `main`).
fn effect_report(sources: &Sources) -> Vec<String> {
    sources
        .values()
        .filter(|(file, _)| !file.starts_with("src/host/") && file != "src/main.rs")
        .flat_map(|(file, text)| {
            facts_of(file, text)
                .effects
                .into_iter()
                .map(move |(line, what)| format!("{file}:{line}: {what}"))
        })
        .collect()
}

/// Every function: its length, and where it is.
fn lengths(sources: &Sources) -> Vec<(usize, String, bool)> {
    let mut out = Vec::new();
    for (file, text) in sources.values() {
        let lines: Vec<&str> = text.lines().collect();
        for (name, first, last) in facts_of(file, text).functions {
            let len = last + 1 - first;
            out.push((
                len,
                format!("{file}:{first}: fn {name}"),
                reason_above(&lines, first),
            ));
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out
}

/// Every function over the limit without its reason.
fn length_report(sources: &Sources) -> Vec<String> {
    lengths(sources)
        .into_iter()
        .filter(|(len, _, reason)| *len > MAX_LINES && !reason)
        .map(|(len, at, _)| format!("{at} is {len} lines"))
        .collect()
}

/// Does the comment just above line `first` (1-based; attributes and the
/// rest of the signature's line skipped) start with `Better whole:`?
fn reason_above(lines: &[&str], first: usize) -> bool {
    let comment: Vec<&str> = lines[..first - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .skip_while(|l| l.starts_with("#["))
        .take_while(|l| l.starts_with("//"))
        .collect();
    comment
        .last()
        .is_some_and(|l| l.trim_start_matches('/').trim().starts_with(WHOLE))
}

#[test]
fn no_file_of_src_imports_itself_back_through_others() {
    let found = cycle_report(&sources());
    assert!(
        found.is_empty(),
        "{} import cycle(s) between files of src/ (move what both sides use down to a \
         module both depend on):\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

#[test]
fn side_effects_live_in_src_host_only() {
    let found = effect_report(&sources());
    assert!(
        found.is_empty(),
        "side effects outside src/host/ (go through its seams: Root, Runner, Systemd, ...):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_function_is_longer_than_80_lines_without_a_reason() {
    let sources = sources();
    // The longest ten, for a change's notes (PORTICO_LONGEST=1).
    if std::env::var_os("PORTICO_LONGEST").is_some() {
        for (len, at, _) in lengths(&sources).iter().take(10) {
            eprintln!("{len:>4} {at}");
        }
    }
    let found = length_report(&sources);
    assert!(
        found.is_empty(),
        "functions over {MAX_LINES} lines (split them, or say above why they are better \
         whole in a comment starting `{WHOLE}`):\n  {}",
        found.join("\n  ")
    );
}

/// Made-up crates: the checks find what they look for wherever it is
/// written, and nothing in tests, strings or comments.
#[test]
fn the_checks_see_what_they_check() {
    let crate_of = |files: &[(&str, &str)]| -> Sources {
        files
            .iter()
            .map(|(f, t)| (module_of(Path::new(f)), (format!("src/{f}"), t.to_string())))
            .collect()
    };
    // a -> b (a use group) -> c (in a macro) -> c::d (declared child) -> a
    // (super:: twice).
    let four = crate_of(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::{x, b::{Y, z::W}};"),
        ("b.rs", "fn f() { println!(\"{}\", crate::c::N); }"),
        ("c/mod.rs", "mod d; pub use d::T;"),
        ("c/d.rs", "pub struct T(super::super::a::U);"),
    ]);
    let found = cycle_report(&four);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/a.rs -> src/b.rs -> src/c/mod.rs -> src/c/d.rs -> src/a.rs"),
        "{}",
        found[0]
    );
    // Tests, strings and comments import nothing; a child naming its
    // parent closes no cycle.
    let none = crate_of(&[
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::b::X; // crate::a\n"),
        (
            "b/mod.rs",
            "mod c; use c::Z; const S: &str = \"crate::a::Y\";\n#[cfg(test)]\nmod tests { use crate::a::Y; }",
        ),
        ("b/c.rs", "use super::Q; use crate::b::R;"),
    ]);
    assert_eq!(cycle_report(&none), Vec::<String>::new());
    // Effects: in a use, a path, a macro; not in tests, not an exit code.
    let effects = crate_of(&[
        (
            "a.rs",
            "use std::fs;\nfn f() { std::process::id(); }\nfn g() -> std::process::ExitCode { todo!() }",
        ),
        ("b.rs", "fn h() { let _ = format!(\"{:?}\", std::net::TcpStream::connect(\"x\")); }"),
        ("host/c.rs", "use std::fs::File;"),
        ("d.rs", "#[cfg(test)]\nmod tests { use std::fs::File; }\nuse core::net::IpAddr;"),
    ]);
    assert_eq!(
        effect_report(&effects),
        [
            "src/a.rs:1: std::fs",
            "src/a.rs:2: std::process::id",
            "src/b.rs:1: std::net::TcpStream::connect"
        ]
    );
    // Length: 81 lines fail, 80 pass, a reason lets one through.
    let body = |n: usize| "    x();\n".repeat(n - 2);
    let long = crate_of(&[
        (
            "a.rs",
            &format!("fn long() {{\n{}}}\nfn ok() {{\n{}}}\n", body(81), body(80)),
        ),
        (
            "b.rs",
            &format!(
                "// Better whole: one match of data.\n#[allow(x)]\nfn table() {{\n{}}}\n",
                body(200)
            ),
        ),
    ]);
    assert_eq!(length_report(&long), ["src/a.rs:1: fn long is 81 lines"]);
}

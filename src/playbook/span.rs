//! Maps a field path (`site[1].location[0].proxy`) to its place in the TOML
//! text, and a byte offset back to the deepest field that contains it.

use std::fmt;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key (`site`, `proxy`).
    Key(String),
    /// An array index (`[1]`).
    Index(usize),
}

/// A path to a field, printed as `site[1].location[0].proxy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The empty path: the whole playbook.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path followed by key `k`.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        FieldPath(v)
    }

    /// This path followed by index `i`.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        FieldPath(v)
    }

    /// `site[1]` style path from a key and an index in one step.
    pub fn item(&self, k: &str, i: usize) -> Self {
        self.key(k).index(i)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Where each line starts, so a position is found by binary search: a
/// playbook with thousands of problems is located in linear time.
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Indexes the lines of `text`.
    pub fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }
}

/// The parsed document with spans, for locating fields.
pub struct SpanIndex<'i> {
    doc: Option<Spanned<DeTable<'i>>>,
}

impl<'i> SpanIndex<'i> {
    /// Parses `text` with spans; a text that does not parse locates nothing.
    pub fn new(text: &'i str) -> Self {
        SpanIndex {
            doc: DeTable::parse(text).ok(),
        }
    }

    /// Byte offset of the value at `path`, or of its deepest existing parent.
    pub fn offset_of(&self, path: &FieldPath) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut table: Option<&DeTable> = Some(doc.get_ref());
        let mut value: Option<&Spanned<DeValue>> = None;
        for seg in &path.0 {
            let next = match (seg, table, value) {
                (Seg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                    .map(|(_, v)| v),
                (Seg::Index(i), _, Some(v)) => v.get_ref().as_array().and_then(|a| a.get(*i)),
                _ => None,
            };
            let Some(v) = next else { break };
            best = Some(v.span().start);
            value = Some(v);
            table = match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        best
    }

    /// The deepest field whose key or value contains `offset`.
    pub fn path_at(&self, offset: usize) -> FieldPath {
        let mut path = Vec::new();
        if let Some(doc) = &self.doc {
            find_in_table(doc.get_ref(), offset, &mut path);
        }
        FieldPath(path)
    }
}

// Spans of `[[array]]` tables cover only their header, so a container is
// searched whether or not its own span contains the offset.
fn find_in_table(t: &DeTable, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (k, v) in t.iter() {
        path.push(Seg::Key(k.get_ref().to_string()));
        if find_in_value(v, offset, path) || contains(k.span(), offset) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(v: &Spanned<DeValue>, offset: usize, path: &mut Vec<Seg>) -> bool {
    let inner = match v.get_ref() {
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(a) => a.iter().enumerate().any(|(i, item)| {
            path.push(Seg::Index(i));
            let found = find_in_value(item, offset, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    };
    inner || contains(v.span(), offset)
}

fn contains(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

//! Every schema error of a playbook in one run. serde stops at the first
//! error; after each one the statement (or the table) it points at is
//! blanked out, with the same byte offsets and lines, and the text is read
//! again, until it reads or nothing more can be blanked. The messages are
//! put in a playbook's words (no Rust types), with a suggestion where an
//! unknown key is close to a known one.

use std::ops::Range;

use super::model::Playbook;

/// What reading a playbook found.
pub(super) struct Read {
    /// The playbook, once what was wrong was blanked out (or at once).
    pub playbook: Option<Playbook>,
    /// Each error: its byte offset in the text and what is wrong.
    pub errors: Vec<(usize, String)>,
    /// Where each table that was blanked whole starts (its header): what
    /// is in it, and the positions of later elements of its array, are not
    /// what the text says.
    pub tables_blanked: Vec<usize>,
}

/// The most errors one file reports.
const MOST: usize = 100;

/// Reads `text` as a playbook, collecting every error.
pub(super) fn read_all(text: &str) -> Read {
    let mut work = text.to_string();
    let mut errors = Vec::new();
    // (the table's header offset, the key) of each statement blanked.
    let mut gone: Vec<(usize, String)> = Vec::new();
    let mut tables_blanked = Vec::new();
    while errors.len() < MOST {
        let e = match toml::from_str::<Playbook>(&work) {
            Ok(pb) => {
                return Read {
                    playbook: Some(pb),
                    errors,
                    tables_blanked,
                }
            }
            Err(e) => e,
        };
        let message = e.message().trim().to_string();
        let Some(span) = e.span() else {
            errors.push((0, plain(&message)));
            break;
        };
        // Not TOML at all: nothing after it can be read reliably.
        if work.parse::<toml::Table>().is_err() {
            errors.push((span.start, message));
            break;
        }
        let range = if let Some(field) = missing_field(&message) {
            // A key blanked in this table that was meant to be it (`prxy`
            // for `proxy`) was reported already.
            let header = header_start(&work, span.start);
            let meant = gone
                .iter()
                .any(|(h, k)| *h == header && (k == field || suggest(k, &[field]).is_some()));
            if !meant {
                errors.push((span.start, plain(&message)));
            }
            tables_blanked.push(header);
            table_section(&work, span.start)
        } else {
            errors.push((span.start, plain(&message)));
            if is_header(&work, span.start) {
                tables_blanked.push(header_start(&work, span.start));
                table_section(&work, span.start)
            } else {
                let range = statement(&work, span.start);
                gone.push((header_start(&work, range.start), key_of(&work, range.start)));
                range
            }
        };
        if !blank(&mut work, range) {
            break;
        }
    }
    Read {
        playbook: None,
        errors,
        tables_blanked,
    }
}

/// `missing field `x`` -> `x`.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
}

/// Spaces over `range` (newlines kept): the same offsets, the same lines.
/// False when there was nothing left to blank.
fn blank(text: &mut String, range: Range<usize>) -> bool {
    let mut bytes = std::mem::take(text).into_bytes();
    let mut changed = false;
    for b in &mut bytes[range] {
        if *b != b'\n' && *b != b' ' {
            *b = b' ';
            changed = true;
        }
    }
    *text = String::from_utf8(bytes).expect("spaces over whole lines keep UTF-8 whole");
    changed
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// The header name of a `[table]` or `[[array]]` line, if it is one.
fn header_name(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.split('#').next()?.trim();
    let inner = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"));
    let inner = inner.or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
    Some(inner.trim())
}

/// Is `offset` on a table header line?
fn is_header(text: &str, offset: usize) -> bool {
    let start = line_start(text, offset);
    header_name(&text[start..line_end(text, offset)]).is_some()
}

/// Where the table holding `offset` starts (its header line; 0 for the
/// top level).
fn header_start(text: &str, offset: usize) -> usize {
    let mut at = line_start(text, offset);
    loop {
        if header_name(&text[at..line_end(text, at)]).is_some() {
            return at;
        }
        if at == 0 {
            return 0;
        }
        at = line_start(text, at - 1);
    }
}

/// The table whose header is at or above `offset`, with its subtables
/// (`[[site]]` and the `[[site.location]]` after it).
fn table_section(text: &str, offset: usize) -> Range<usize> {
    let start = header_start(text, offset);
    let name = header_name(&text[start..line_end(text, start)])
        .unwrap_or("")
        .to_string();
    let mut end = line_end(text, start);
    while end < text.len() {
        let next = line_end(text, end);
        if let Some(n) = header_name(&text[end..next]) {
            if !n.starts_with(&format!("{name}.")) {
                break;
            }
        }
        end = next;
    }
    start..end
}

/// Does `line` start a `key = value` statement?
fn starts_statement(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with(|c: char| c.is_ascii_alphanumeric() || "_-\"'".contains(c)) && l.contains('=')
}

/// The statement holding `offset`: from its key's line to the end of its
/// value, however many lines that takes (a value continues while what
/// follows does not read on its own).
fn statement(text: &str, offset: usize) -> Range<usize> {
    let mut start = line_start(text, offset);
    while start > 0 && !starts_statement(&text[start..line_end(text, start)]) {
        let prev = line_start(text, start - 1);
        if header_name(&text[prev..line_end(text, prev)]).is_some() {
            break;
        }
        start = prev;
    }
    let mut end = line_end(text, offset);
    // A value spread over lines: blanking its first lines leaves the rest
    // dangling, which is not TOML; take lines until the rest reads.
    let mut probe = text.to_string();
    blank(&mut probe, start..end);
    while end < text.len() {
        match probe.parse::<toml::Table>() {
            Err(e) if e.span().is_some_and(|s| s.start >= end) => {}
            Err(e) if e.span().is_some_and(|s| s.start >= start) => {}
            _ => break,
        }
        let next = line_end(text, end);
        if header_name(&text[end..next]).is_some() || starts_statement(&text[end..next]) {
            break;
        }
        blank(&mut probe, end..next);
        end = next;
    }
    start..end
}

/// The key a statement starts with.
fn key_of(text: &str, start: usize) -> String {
    let line = &text[start..line_end(text, start)];
    line.split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(['"', '\''])
        .to_string()
}

/// serde's message in a playbook's words.
fn plain(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = match suggest(key, &known) {
            Some(s) => format!("; did you mean `{s}`?"),
            None if known.is_empty() => String::new(),
            None => format!(" (known keys: {})", known.join(", ")),
        };
        return format!("unknown key `{key}`{hint}");
    }
    if let Some(field) = missing_field(message) {
        return format!("`{field}` is required here");
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let quoted_number = found
                .strip_prefix("string \"")
                .and_then(|s| s.strip_suffix('"'))
                .filter(|s| s.parse::<f64>().is_ok());
            let hint = match quoted_number {
                Some(n) => format!(" (write it without quotes: {n})"),
                None => String::new(),
            };
            return format!(
                "expected {}, found {}{hint}",
                kind(expected),
                found_as(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!("{} is not {}", found_as(found), kind(expected));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = match suggest(value, &known) {
            Some(s) => format!("; did you mean \"{s}\"?"),
            None => format!(" (one of: {})", known.join(", ")),
        };
        return format!("unknown value \"{value}\"{hint}");
    }
    message.to_string()
}

/// A Rust type or serde's wording as a playbook's reader knows it.
fn kind(expected: &str) -> String {
    let e = expected.trim();
    let number = |bits: u32, signed: bool| {
        if signed {
            "a whole number".to_string()
        } else {
            format!("a whole number from 0 to {}", (1u128 << bits) - 1)
        }
    };
    match e {
        "u8" => number(8, false),
        "u16" => number(16, false),
        "u32" => number(32, false),
        "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => number(0, true),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list ([...])".into(),
        "a string" => "a string (in quotes)".into(),
        "a map" => "a table".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a table".into(),
        e if e.starts_with("a sequence") => "a list ([...])".into(),
        e => e.to_string(),
    }
}

/// What serde found, in a playbook's words.
fn found_as(found: &str) -> String {
    // A string in the wrong place is not echoed: it may be a hook's
    // command line with a token in it (the error reaches logs and Ansible).
    if let Some(s) = found.strip_prefix("string ") {
        let len = s.trim_matches('"').chars().count();
        return format!("a string of {len} characters");
    }
    if let Some(n) = found
        .strip_prefix("integer `")
        .and_then(|s| s.strip_suffix('`'))
    {
        return format!("the number {n}");
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        "boolean `true`" => "true".into(),
        "boolean `false`" => "false".into(),
        f => f.to_string(),
    }
}

/// The known name closest to `unknown`, when it is close: a plural, a
/// letter or two off.
pub(super) fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let u = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&u, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance (insert, delete, replace, swap two neighbours).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_or_none() {
        assert_eq!(
            suggest("backnd", &["path", "proxy", "backend"]),
            Some("backend")
        );
        assert_eq!(suggest("sites", &["version", "site", "tls"]), Some("site"));
        assert_eq!(suggest("prxoy", &["path", "proxy"]), Some("proxy"));
        assert_eq!(suggest("zzzzzz", &["path", "proxy"]), None);
    }

    #[test]
    fn messages_speak_toml_not_rust() {
        assert_eq!(
            plain("invalid type: string \"365\", expected u32"),
            "expected a whole number from 0 to 4294967295, found a string of 3 characters (write it without quotes: 365)"
        );
        assert_eq!(
            plain("unknown field `backnd`, expected `path` or `proxy`"),
            "unknown key `backnd` (known keys: path, proxy)"
        );
        assert_eq!(
            plain("unknown field `prxy`, expected `path` or `proxy`"),
            "unknown key `prxy`; did you mean `proxy`?"
        );
        assert_eq!(plain("missing field `proxy`"), "`proxy` is required here");
    }

    #[test]
    fn blanking_keeps_offsets_and_lines() {
        let text = "a = [\n  1,\n  2,\n]\nb = 3\n";
        let r = statement(text, 0);
        assert_eq!(&text[r.clone()], "a = [\n  1,\n  2,\n]\n");
        let mut t = text.to_string();
        assert!(blank(&mut t, r));
        assert_eq!(t.len(), text.len());
        assert_eq!(t.lines().count(), text.lines().count());
        assert!(t.parse::<toml::Table>().is_ok());
    }

    #[test]
    fn a_table_goes_with_its_subtables() {
        let text = "v = 1\n[[site]]\na = 1\n[[site.location]]\nb = 2\n[tls]\nc = 3\n";
        let at = text.find("[[site]]").unwrap();
        assert_eq!(
            &text[table_section(text, at + 2)],
            "[[site]]\na = 1\n[[site.location]]\nb = 2\n"
        );
    }
}

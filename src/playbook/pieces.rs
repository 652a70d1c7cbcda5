//! A large playbook read in pieces, so that reading it costs memory in
//! proportion to one piece, not the whole text. The TOML reader holds every
//! token and event of what it reads at once (about 35 bytes for each byte
//! of text: 70 MiB for 10,000 sites); the playbook it builds is a third of
//! that.
//!
//! The text is cut only before a top-level `[[site]]` or `[[certificate]]`
//! header (a line that is that header alone, outside any string or
//! array): every element of those arrays is a table of its own, and what
//! follows such a header up to the next cut can only add to that element.
//! The part before the first cut is read as a playbook; each later piece
//! may hold sites and certificates and nothing else. Anything else, or a
//! piece that does not read, gives `None`, and the caller reads the whole
//! text the usual way, which finds and places every error; so a playbook
//! read in pieces is exactly the one read whole, and a bad one is reported
//! as before.

use serde::Deserialize;
use toml_parser::lexer::TokenKind;

use super::model::{Certificate, Playbook, Site};

/// Pieces smaller than this are joined to the next: each read has a fixed
/// cost, and below this size it is not the memory that counts.
const PIECE: usize = 64 * 1024;

/// What a piece after the first may hold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Items {
    #[serde(default)]
    site: Vec<Site>,
    #[serde(default)]
    certificate: Vec<Certificate>,
}

/// The playbook read in pieces; `None` when it cannot be (then read it
/// whole), or when it is small enough to be read whole anyway.
pub(super) fn read(text: &str) -> Option<Playbook> {
    let cuts = cuts(text);
    let first = *cuts.first()?;
    let head = &text[..first];
    // `site = []` before a `[[site]]` is an error the whole reading
    // reports (a static array cannot be appended to): leave it to it.
    let table: toml::Table = head.parse().ok()?;
    if table.contains_key("site") || table.contains_key("certificate") {
        return None;
    }
    drop(table);
    let mut pb: Playbook = toml::from_str(head).ok()?;
    let ends = cuts.iter().skip(1).copied().chain([text.len()]);
    for (start, end) in cuts.iter().copied().zip(ends) {
        let items: Items = toml::from_str(&text[start..end]).ok()?;
        pb.sites.extend(items.site);
        pb.certificates.extend(items.certificate);
    }
    // Grown piece by piece, by doubling: the room left over goes.
    pb.sites.shrink_to_fit();
    pb.certificates.shrink_to_fit();
    Some(pb)
}

/// Where the text may be cut: the first top-level `[[site]]` or
/// `[[certificate]]` header line (what comes before it is read as a
/// playbook), then the next such header at least [`PIECE`] bytes on, and
/// so on. Empty when the text is no larger than one piece.
fn cuts(text: &str) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::new();
    if text.len() <= PIECE {
        return cuts;
    }
    for at in headers(text) {
        if cuts.last().is_none_or(|last| at - last >= PIECE) {
            cuts.push(at);
        }
    }
    cuts
}

/// The offset of every line that is a `[[site]]` or `[[certificate]]`
/// header alone (a comment may follow), outside strings and values.
fn headers(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut tokens = toml_parser::Source::new(text).lex().peekable();
    // Brackets and braces open in a value (arrays span lines).
    let mut depth = 0usize;
    let mut line_start = true;
    std::iter::from_fn(move || loop {
        let token = tokens.next()?;
        let span = token.span();
        match token.kind() {
            TokenKind::Newline => {
                line_start = depth == 0;
                continue;
            }
            TokenKind::Whitespace => continue,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                line_start = false;
                // The header runs to the end of its line or a comment.
                let mut end = span.end();
                while let Some(next) = tokens.peek() {
                    if matches!(
                        next.kind(),
                        TokenKind::Newline | TokenKind::Comment | TokenKind::Eof
                    ) {
                        break;
                    }
                    end = next.span().end();
                    tokens.next();
                }
                let header = text[span.start()..end].trim_end();
                if header == "[[site]]" || header == "[[certificate]]" {
                    return Some(line_begin(text, span.start()));
                }
            }
            kind => {
                line_start = false;
                match kind {
                    TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
                    TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                        depth = depth.saturating_sub(1)
                    }
                    _ => {}
                }
            }
        }
    })
}

/// The start of the line `offset` is on.
fn line_begin(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` sites and certificates, with `extra` after the sites' proxy.
    fn big(n: usize, extra: &str) -> String {
        let mut t = String::from("version = 1\n[firewall]\nbackend = \"none\"\n");
        for i in 0..n {
            t.push_str(&format!(
                "[[certificate]]\nname = \"c{i}\"\nsource = \"self-signed\"\n\
                 [[site]]\nserver_names = [\"s{i}.test\"]\ncertificate = \"c{i}\"\n\
                 [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n{extra}"
            ));
        }
        t
    }

    fn whole(text: &str) -> Option<Playbook> {
        toml::from_str(text).ok()
    }

    #[test]
    fn a_large_playbook_reads_the_same_in_pieces_as_whole() {
        let text = big(2_000, "");
        let cut = cuts(&text);
        assert!(cut.len() > 3, "the text is cut");
        assert_eq!(
            cut[0],
            text.find("[[certificate]]").unwrap(),
            "the head holds no element"
        );
        let pieces = read(&text).expect("read in pieces");
        assert_eq!(pieces.sites.len(), 2_000);
        assert_eq!(
            format!("{pieces:?}"),
            format!("{:?}", whole(&text).unwrap())
        );
    }

    #[test]
    fn a_small_playbook_is_read_whole() {
        assert!(cuts(&big(10, "")).is_empty());
        assert!(read(&big(10, "")).is_none());
    }

    #[test]
    fn headers_inside_strings_arrays_or_with_spaces_are_not_cuts() {
        let text = "a = \"\"\"\n[[site]]\n\"\"\"\nb = '''\n[[site]]\n'''\nc = [\n  [\"x\"],\n[[site]]\n]\n\
                    [[ site ]]\n  [[site]] # indented, with a comment\n[[site.location]]\n[[site]]x\n";
        let found: Vec<usize> = headers(text).collect();
        let indented = text.find("  [[site]] #").unwrap();
        // The array's `[[site]]` is not a header; the indented one is.
        assert_eq!(found, vec![indented]);
    }

    #[test]
    fn what_only_the_whole_text_can_judge_is_left_to_it() {
        // Each of these is read whole (None): a table after the sites, a
        // static array appended to, a sub-table of an element in another
        // piece, and a piece that is not TOML.
        let late_table = format!("{}[acme]\nagree_terms = true\n", big(1_000, ""));
        assert!(read(&late_table).is_none());
        assert!(whole(&late_table).is_some(), "valid, read whole");
        let static_array = format!("site = []\n{}", big(1_000, ""));
        assert!(read(&static_array).is_none());
        assert!(whole(&static_array).is_none());
        let cross = big(1_000, "[[certificate.x]]\n");
        assert!(read(&cross).is_none());
        let broken = big(1_000, "x = \"\n");
        assert!(read(&broken).is_none());
        assert!(whole(&broken).is_none());
    }

    #[test]
    fn crlf_lines_cut_the_same() {
        let text = big(1_000, "").replace('\n', "\r\n");
        assert!(!cuts(&text).is_empty());
        assert_eq!(
            format!("{:?}", read(&text).unwrap()),
            format!("{:?}", whole(&text).unwrap())
        );
    }
}

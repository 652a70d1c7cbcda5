//! Text from outside portico (a CA's answer, a DNS name a server sent, a
//! hook's stderr) made safe to print: it reaches terminals and log lines.

/// The longest piece of outside text shown, in characters.
const SHOWN: usize = 500;

/// `text` with control characters (escape sequences, newlines that would
/// forge log lines) escaped, and at most 500 characters.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == SHOWN {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_and_bounded() {
        assert_eq!(shown("ok"), "ok");
        assert_eq!(
            shown("evil\n2026 INFO forged\x1b[31m"),
            "evil\\n2026 INFO forged\\u{1b}[31m"
        );
        assert_eq!(shown(&"x".repeat(2000)).len(), 503);
    }
}

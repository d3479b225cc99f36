//! The one way a name (or any text holding names) reaches SQL text outside a quoted identifier
//! or literal: comment lines of plan scripts, generated migrations and fixes, in every format.
//!
//! A quoted identifier may legally hold a newline, `*/`, `--` or `$$`; pasted into a `--`
//! comment, a newline ends the comment and the rest of the name runs as SQL. [`inert`] makes
//! text safe in a line comment (SQL `--`, TOML `#`, JavaScript `//`) and a block comment
//! (`/* */`) alike.

/// `text` made inert for any comment: control characters (line breaks among them, and the
/// Unicode line and paragraph separators JavaScript treats as line breaks) are shown escaped
/// (`\n`, `\u{b}`), and `/*` and `*/` are broken apart so they neither open nor close a block
/// comment. Everything else is kept, so the name still reads as itself.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
            prev = None;
            continue;
        }
        if (prev == Some('/') && c == '*') || (prev == Some('*') && c == '/') {
            out.push(' ');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// A SQL line comment (`-- text`) holding `text` made [`inert`].
pub fn comment(text: &str) -> String {
    format!("-- {}", inert(text))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Hostile names: each must come out on one line with no comment terminator or opener.
    pub(crate) const HOSTILE: &[&str] = &[
        "y\nDROP TABLE victim; --",
        "y\r\nDROP TABLE victim; --",
        "y\rDROP TABLE victim; --",
        "a */ DROP TABLE victim; /* b",
        "a/*b",
        "-- not a comment",
        "it's \"quoted\"",
        "back\\slash\\",
        "$$ DROP TABLE victim; $$",
        "tab\there\u{b}vt\u{c}ff\u{1b}esc\u{7f}del",
        "js\u{2028}line\u{2029}para\u{85}nel",
    ];

    #[test]
    fn hostile_text_stays_on_one_line_and_opens_no_block() {
        for h in HOSTILE {
            let c = comment(h);
            assert_eq!(c.lines().count(), 1, "{c:?}");
            assert!(!c.chars().any(|ch| ch.is_control()), "{c:?}");
            assert!(!c.contains("*/") && !c.contains("/*"), "{c:?}");
            assert!(!c.contains('\u{2028}') && !c.contains('\u{2029}'), "{c:?}");
            assert!(c.starts_with("-- "), "{c:?}");
        }
    }

    #[test]
    fn ordinary_names_read_as_themselves() {
        assert_eq!(inert("public.users"), "public.users");
        assert_eq!(inert("\"Weird Name\".\"x--y\""), "\"Weird Name\".\"x--y\"");
        assert_eq!(inert("a\nb"), "a\\nb");
        assert_eq!(inert("a*/b/*c"), "a* /b/ *c");
        assert_eq!(inert("/**/"), "/ ** /");
    }
}

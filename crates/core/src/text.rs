//! R12, R20: text as a screen shows it. A character that a screen does not show as itself
//! (a newline, a terminal escape, a bidirectional override, a zero-width joiner, a no-break
//! space) can forge a line, hide a change or disguise a name, so every surface shows it as an
//! escape such as `\u{202e}` instead.

use std::borrow::Cow;
use std::fmt::Write;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` does not show as itself: controls (Cc), format characters such as
/// bidirectional controls and zero-width characters (Cf), line and paragraph separators,
/// private-use and unassigned code points, and every space other than U+0020.
pub fn is_hidden(c: char) -> bool {
    use GeneralCategory as G;
    match c.general_category() {
        G::Control
        | G::Format
        | G::LineSeparator
        | G::ParagraphSeparator
        | G::PrivateUse
        | G::Surrogate
        | G::Unassigned => true,
        G::SpaceSeparator => c != ' ',
        _ => false,
    }
}

/// Whether `c` is a format character (Unicode category Cf): bidirectional controls,
/// zero-width spaces and joiners, the byte-order mark. R20 refuses them in names.
pub fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

fn escape(c: char, out: &mut String) {
    // Writing into a String cannot fail.
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

/// Free text (a justification, a note, a name) for a screen: hidden characters escaped,
/// everything else as it is. Borrowed when nothing needed escaping, which is nearly always.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as a quoted string that reads back unambiguously: `"` and `\` escaped, hidden
/// characters as `\u{…}`. Two different strings never quote alike.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hidden(c) => escape(c, &mut out),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON text with every hidden character written as a JSON `\uXXXX` escape (UTF-16 units), so
/// it is the same JSON and shows as it reads, on a page, in an edit form or on a terminal.
/// Serialisers leave line breaks raw only between tokens (inside strings they are escaped
/// already), so those stay.
pub fn json_shown(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\n' && is_hidden(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c != '\n' && is_hidden(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_screen_would_not_show_is_escaped() {
        assert_eq!(shown("plain text, ünïcödé and 漢字"), "plain text, ünïcödé and 漢字");
        assert!(matches!(shown("plain"), Cow::Borrowed(_)));
        assert_eq!(shown("a\nb"), "a\\u{a}b");
        assert_eq!(shown("\u{1b}[2Kok"), "\\u{1b}[2Kok");
        assert_eq!(shown("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(shown("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(shown("no\u{a0}break"), "no\\u{a0}break");
        assert_eq!(shown("line\u{2028}sep"), "line\\u{2028}sep");
        assert_eq!(shown("nul\0"), "nul\\u{0}");
    }

    #[test]
    fn quoting_is_injective() {
        let tricky = ["a", "a\"", "a\\", "a\\\"", "a\n", "a\\u{a}", "", "\"", "\\\"", "a\u{202e}"];
        let quoted: std::collections::BTreeSet<String> = tricky.iter().map(|s| quoted(s)).collect();
        assert_eq!(quoted.len(), tricky.len(), "{quoted:?}");
        assert_eq!(super::quoted("a\\u{a}"), "\"a\\\\u{a}\"");
        assert_eq!(super::quoted("a\n"), "\"a\\u{a}\"");
    }

    #[test]
    fn json_keeps_reading_back_as_the_same_document() {
        let json = "{\n  \"a\": \"x\u{202e}y\u{a0}\"\n}";
        let shown = json_shown(json);
        assert_eq!(shown, "{\n  \"a\": \"x\\u202ey\\u00a0\"\n}");
        let read: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(read["a"], "x\u{202e}y\u{a0}");
        assert!(matches!(json_shown("{\"a\": 1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn format_characters_are_named() {
        for c in ['\u{202e}', '\u{2066}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{ad}'] {
            assert!(is_format(c), "{c:?}");
        }
        assert!(!is_format('a') && !is_format(' ') && !is_format('\n'));
    }
}

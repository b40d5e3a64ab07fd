//! Text from outside mailhost (a provider's error, a plugin's version or description, a
//! stored email's subject) made safe for a terminal: control characters, ANSI escape
//! sequences and bidirectional overrides shown as visible escapes instead of acting on the
//! terminal, so a provider cannot draw a fake `sent` line or recolour the screen; and long text
//! capped for display.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` would act on a terminal instead of being shown: C0 and C1 controls, DEL, and
/// the Unicode bidirectional overrides and isolates.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character written as a visible escape (`\n`, `\t`,
/// `\u{1b}`, `\u{202e}`): one line, whatever it holds. Text without any is returned as is.
pub fn escape(text: &str) -> Cow<'_, str> {
    escaped(text, false)
}

/// Like [`escape`], but keeps line breaks and tabs (for multi-line text such as an email's
/// body or a table).
pub fn escape_keeping_lines(text: &str) -> String {
    escaped(text, true).into_owned()
}

fn escaped(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_lines && (c == '\n' || c == '\t');
    if !text.chars().any(|c| acts_on_terminal(c) && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if kept(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if acts_on_terminal(c) => {
                let _ = write!(out, "{}", c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
            short.push('…');
            Cow::Owned(short)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_cannot_act_on_the_terminal() {
        let forged = "failed\r\x1b[2K\x1b[32msent\x1b[0m 1234\nnext";
        let shown = escape(forged);
        assert_eq!(
            shown,
            "failed\\u{d}\\u{1b}[2K\\u{1b}[32msent\\u{1b}[0m 1234\\nnext"
        );
        assert!(!shown.chars().any(acts_on_terminal));
        assert_eq!(
            escape("caf\u{e9} \u{202e}gnp.exe"),
            "caf\u{e9} \\u{202e}gnp.exe"
        );
        assert!(matches!(escape("plain text"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(
            escape_keeping_lines("a\r\nb\x1b\tc"),
            "a\\u{d}\nb\\u{1b}\tc"
        );
    }

    #[test]
    fn shortening_counts_characters() {
        assert_eq!(shorten("ééé", 3), "ééé");
        assert_eq!(shorten("éééé", 3), "éé…");
        assert_eq!(shorten("", 0), "");
    }
}

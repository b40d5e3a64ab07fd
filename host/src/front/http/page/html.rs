//! Escaping for the page. Everything a provider, a client or a recipient wrote (subjects,
//! names, addresses, errors, header values, file names) goes through [`text`] before it lands in
//! HTML text or a double-quoted attribute, and through [`component`] before it lands in a URL.
//! The page has no inline script and no JSON in script, so there is no third context.

use std::fmt::Write as _;

/// `value` safe as HTML text and inside a double- or single-quoted attribute value.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (other than tab and line breaks) show as the replacement
            // character, never raw.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `value` percent-encoded as one URL path segment or query value: only unreserved characters
/// stay as they are. The result is also safe in an attribute.
pub fn component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// At most `max` characters of `value`, with an ellipsis when cut.
pub fn cut(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_string()
    } else {
        let mut short: String = value.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// A byte count for people: `930 bytes`, `12.5 KB`, `3.1 MB`.
pub fn size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // shown with one decimal
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_become_entities() {
        assert_eq!(
            text("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            text("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(text("a'b&c"), "a&#39;b&amp;c");
        assert_eq!(text("bell\u{7}"), "bell\u{fffd}");
    }

    #[test]
    fn url_components_keep_only_unreserved_characters() {
        assert_eq!(component("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(
            component("javascript:alert(1)"),
            "javascript%3Aalert%281%29"
        );
        assert_eq!(component("é"), "%C3%A9");
    }

    #[test]
    fn long_text_is_cut_and_sizes_read_well() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(size(930), "930 bytes");
        assert_eq!(size(12_800), "12.5 KB");
    }
}

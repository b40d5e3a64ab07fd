//! SMTP replies: a code, an enhanced status code (RFC 3463) and text, written as one or more
//! CRLF-terminated lines.

use std::fmt;

/// One reply of the server: `code`, the enhanced status (`""` for none, as in the greeting) and
/// its lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, such as `5.7.1`; empty for replies that carry none.
    pub status: &'static str,
    /// The text lines (at least one).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (EHLO, HELP).
    pub fn multi(code: u16, status: &'static str, lines: Vec<String>) -> Self {
        Self {
            code,
            status,
            lines,
        }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The reply as it goes on the wire. CR and LF inside the text are replaced, so no text
    /// that reached a reply (an address the client sent, say) can break the framing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let text: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let line = if self.status.is_empty() || i > 0 && self.code == 250 {
                format!("{}{sep}{text}\r\n", self.code)
            } else {
                format!("{}{sep}{} {text}\r\n", self.code, self.status)
            };
            out.extend_from_slice(line.as_bytes());
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            String::from_utf8_lossy(&self.to_bytes()).trim_end()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_and_control_characters_replaced() {
        let r = Reply::new(550, "5.7.1", "no\r\nRCPT TO:<x>");
        assert_eq!(r.to_bytes(), b"550 5.7.1 no  RCPT TO:<x>\r\n");
        let r = Reply::multi(250, "", vec!["host".into(), "SIZE 10".into()]);
        assert_eq!(r.to_bytes(), b"250-host\r\n250 SIZE 10\r\n");
        let r = Reply::multi(214, "2.0.0", vec!["a".into(), "b".into()]);
        assert_eq!(r.to_bytes(), b"214-2.0.0 a\r\n214 2.0.0 b\r\n");
    }
}

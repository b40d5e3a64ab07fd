//! The one reading of a message's header block that the conversions go by.
//!
//! A message from a client can be ambiguous: bare LF line ends, a line that is neither a field
//! nor a continuation, a field name with a space in it (`Bc c:`), a line of blanks. Parsers
//! disagree about such input (mail-parser, for one, reads `Bc c:` as `Bcc` and keeps reading
//! fields after a line that is not one), and a Bcc field that mailhost does not see as one but
//! Exchange does would send a copy to someone the envelope does not name (found by fuzzing).
//!
//! So before anything parses the message or removes a field, [`canonical`] rewrites it into a
//! form every parser reads the same way: every line end CRLF; a header block of well-formed
//! fields only (a name of printable ASCII without spaces or colons, then `:`, and continuation
//! lines that start with a space or a tab), ended by an empty line. The header block ends at the
//! first empty or blank line, or at the first line that is neither a field nor a continuation
//! (that line then starts the body, as sendmail and Postfix treat it, and the empty line is
//! inserted before it). In header lines a CR that does not end the line and a NUL become
//! spaces, so they cannot end a field for one reader and not for another. The body's bytes are
//! kept, apart from their line ends.

/// `mime` in canonical form (see the module documentation).
pub fn canonical(mime: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mime.len() + mime.len() / 32 + 8);
    let mut pos = 0;
    let mut in_field = false;
    while pos < mime.len() {
        let (line, next) = line_at(mime, pos);
        if line.iter().all(|&b| b == b' ' || b == b'\t') {
            // An empty (or blank) line ends the header block; it is written below.
            pos = next;
            break;
        }
        let continuation = line[0] == b' ' || line[0] == b'\t';
        if !(if continuation {
            in_field
        } else {
            is_field(line)
        }) {
            // The body starts with this line.
            break;
        }
        out.extend(
            line.iter()
                .map(|&b| if b == b'\r' || b == 0 { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
        in_field = true;
        pos = next;
    }
    out.extend_from_slice(b"\r\n");
    while pos < mime.len() {
        let (line, next) = line_at(mime, pos);
        out.extend_from_slice(line);
        if next > pos + line.len() {
            // The line had an end (LF or CRLF); a last line without one is kept without.
            out.extend_from_slice(b"\r\n");
        }
        pos = next;
    }
    out
}

/// The line that starts at `pos` without its line end (LF or CRLF), and where the next starts.
/// A last line without a line end is returned whole (a lone CR at its end included).
fn line_at(mime: &[u8], pos: usize) -> (&[u8], usize) {
    match mime[pos..].iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let line = &mime[pos..pos + lf];
            (line.strip_suffix(b"\r").unwrap_or(line), pos + lf + 1)
        }
        None => (&mime[pos..], mime.len()),
    }
}

/// Whether `line` starts a well-formed header field: `Name:` with a name of printable ASCII
/// (no space, no colon), blanks allowed between the name and the colon (obsolete syntax).
fn is_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = trim_blanks_end(&line[..colon]);
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

fn trim_blanks_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    &bytes[..end]
}

/// A canonical message split into its header fields (each with its continuation lines and
/// CRLFs) and its body (what follows the empty line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The header fields, in order.
    pub fields: Vec<&'a [u8]>,
    /// The body.
    pub body: &'a [u8],
}

/// Splits a message that [`canonical`] wrote.
pub fn split(canonical: &[u8]) -> Fields<'_> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    while pos < canonical.len() {
        let (line, next) = line_at(canonical, pos);
        if line.is_empty() {
            return Fields {
                fields,
                body: &canonical[next..],
            };
        }
        match fields.last_mut() {
            Some(field) if line[0] == b' ' || line[0] == b'\t' => {
                let start = field.as_ptr() as usize - canonical.as_ptr() as usize;
                *field = &canonical[start..next];
            }
            _ => fields.push(&canonical[pos..next]),
        }
        pos = next;
    }
    Fields {
        fields,
        body: &canonical[canonical.len()..],
    }
}

/// The name of a field of [`split`] (blanks before the colon left out).
pub fn field_name(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    trim_blanks_end(&field[..colon])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mail_parser::{HeaderName, MessageParser};

    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn line_ends_become_crlf_everywhere() {
        let out = canonical(b"To: a@x.com\nSubject: s,\n folded\r\n\nline 1\nline 2\r\nend");
        assert_eq!(
            text(&out),
            "To: a@x.com\r\nSubject: s,\r\n folded\r\n\r\nline 1\r\nline 2\r\nend"
        );
        // Already canonical: unchanged.
        assert_eq!(canonical(&out), out);
    }

    #[test]
    fn a_line_that_is_no_field_starts_the_body_after_an_inserted_empty_line() {
        let out = canonical(b"From: a@x.com\nDntent-Um\nTo: b@x.com\nBcc: eve@y.com\n\nx\n");
        assert_eq!(
            text(&out),
            "From: a@x.com\r\n\r\nDntent-Um\r\nTo: b@x.com\r\nBcc: eve@y.com\r\n\r\nx\r\n"
        );
        // A field name with a space is no field: mail-parser would read "Bc c" as Bcc.
        let out = canonical(b"To: b@x.com\nBc c: eve@y.com\n\nx\n");
        assert_eq!(
            text(&out),
            "To: b@x.com\r\n\r\nBc c: eve@y.com\r\n\r\nx\r\n"
        );
        // So would a blank line, or an orphan continuation.
        assert_eq!(
            text(&canonical(b"To: b@x.com\n \t\nBcc: eve@y.com\n\nx")),
            "To: b@x.com\r\n\r\nBcc: eve@y.com\r\n\r\nx"
        );
        assert_eq!(
            text(&canonical(b" Bcc: eve@y.com\n\nx")),
            "\r\n Bcc: eve@y.com\r\n\r\nx"
        );
        assert_eq!(text(&canonical(b"just a body")), "\r\njust a body");
        assert_eq!(text(&canonical(b"")), "\r\n");
    }

    #[test]
    fn a_cr_or_nul_inside_a_header_line_is_a_space() {
        let out = canonical(b"Subject: hi\rBcc: eve@y.com\nTo: b@x.com\0\r\r\n\r\nbody\rx\r\n");
        assert_eq!(
            text(&out),
            "Subject: hi Bcc: eve@y.com\r\nTo: b@x.com  \r\n\r\nbody\rx\r\n"
        );
    }

    #[test]
    fn mail_parser_sees_the_fields_split_sees() {
        let inputs: [&[u8]; 4] = [
            b"From: a@x.com\nDntent-Um\nFrom: a@x.com\r\nTo: b@x.com\r\nBc c:O=ld\nm\n\nbody",
            b"To: b@x.com,\n\tc@x.com\nBcc : d@x.com\nX-A: 1\n \n\nBcc: e@x.com\n",
            b"Subject : s\n\x0cBcc: e@x.com\n\nb",
            b"\n\nBcc: e@x.com\n",
        ];
        for input in inputs {
            let out = canonical(input);
            let ours: Vec<String> = split(&out)
                .fields
                .iter()
                .map(|f| text(field_name(f)).to_ascii_lowercase())
                .collect();
            // No fields at all: mail-parser reads no message.
            let parsed = MessageParser::default().parse_headers(&out);
            let headers = parsed.as_ref().map_or(&[][..], |p| p.headers());
            let theirs: Vec<String> = headers
                .iter()
                .map(|h| h.name().to_ascii_lowercase())
                .collect();
            assert_eq!(ours, theirs, "{}", text(&out));
            let bccs = headers.iter().filter(|h| h.name == HeaderName::Bcc).count();
            assert_eq!(
                bccs,
                ours.iter().filter(|n| *n == "bcc").count(),
                "{}",
                text(&out)
            );
        }
    }

    #[test]
    fn split_gives_fields_with_their_continuations_and_the_body() {
        let out = canonical(b"To: a@x.com,\n b@x.com\nSubject: s\n\nbody\n");
        let s = split(&out);
        assert_eq!(s.fields.len(), 2);
        assert_eq!(text(s.fields[0]), "To: a@x.com,\r\n b@x.com\r\n");
        assert_eq!(field_name(s.fields[1]), b"Subject");
        assert_eq!(s.body, b"body\r\n");
    }
}

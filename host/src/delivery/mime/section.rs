//! The raw layout of a message as a client wrote it: its header fields (each with its folded
//! continuation lines) and its body, split on LF or CRLF. This is where a message is checked for
//! header injection (a bare CR or a NUL in the header section) and rewritten for the spool:
//! `Bcc` fields removed, missing `Message-ID`, `Date` and `From` fields added, every line end
//! made CRLF. The body's bytes are kept as they are apart from the line ends.

use super::MimeError;

/// One header field: its name and its raw lines (the first holds `Name:`), without line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field<'a> {
    pub(super) name: &'a str,
    pub(super) lines: Vec<&'a [u8]>,
}

/// A message split into header fields and body lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Section<'a> {
    pub(super) fields: Vec<Field<'a>>,
    pub(super) body: Vec<&'a [u8]>,
}

impl<'a> Section<'a> {
    /// Splits `raw` (a final line without a line end gets one on output). A leading mbox `From ` line is dropped (sendmail does the same). The header
    /// section ends at the first empty line, or at the first line that is neither a field nor a
    /// continuation (that line then starts the body, as sendmail and Postfix treat it).
    ///
    /// # Errors
    /// [`MimeError::Empty`] for no input; [`MimeError::BareCr`] or [`MimeError::Nul`] for a CR
    /// that does not end a line, or a NUL byte, in the header section.
    pub(super) fn split(raw: &'a [u8]) -> Result<Self, MimeError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(MimeError::Empty);
        }
        let ends_open = !raw.ends_with(b"\n");
        let mut lines: Vec<&[u8]> = raw
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .collect();
        if !ends_open {
            // The split leaves an empty piece after the final LF.
            lines.pop();
        }
        let mut rest = lines.as_slice();
        if rest.first().is_some_and(|l| l.starts_with(b"From ")) {
            rest = &rest[1..];
        }
        let mut fields: Vec<Field<'a>> = Vec::new();
        let mut index = 0;
        while index < rest.len() {
            let line = rest[index];
            if line.is_empty() {
                index += 1;
                break;
            }
            let number = index + 1;
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                match fields.last_mut() {
                    Some(field) => {
                        check_header_line(line, number)?;
                        field.lines.push(line);
                        index += 1;
                        continue;
                    }
                    None => break,
                }
            }
            match field_name(line) {
                Some(name) => {
                    check_header_line(line, number)?;
                    fields.push(Field {
                        name,
                        lines: vec![line],
                    });
                    index += 1;
                }
                None => break,
            }
        }
        Ok(Self {
            fields,
            body: rest[index..].to_vec(),
        })
    }

    /// Whether a field named `name` (any case) is present.
    pub(super) fn has(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The message with CRLF line ends: the fields except those named in `drop` (any case),
    /// then `added` fields (`Name: value`, already checked), an empty line and the body.
    pub(super) fn write(&self, drop: &[&str], added: &[String]) -> Vec<u8> {
        let body_size: usize = self.body.iter().map(|l| l.len() + 2).sum();
        let mut out = Vec::with_capacity(body_size + 4096);
        for field in &self.fields {
            if drop.iter().any(|d| field.name.eq_ignore_ascii_case(d)) {
                continue;
            }
            for line in &field.lines {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
        for field in added {
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        for line in &self.body {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// The name of a header field line (`Name:` with a name of printable ASCII, no spaces), or
/// `None` when the line is not a field.
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let name = name.strip_suffix(b" ").unwrap_or(name); // "Subject :" (obsolete syntax)
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

fn check_header_line(line: &[u8], number: usize) -> Result<(), MimeError> {
    if line.contains(&b'\r') {
        return Err(MimeError::BareCr { line: number });
    }
    if line.contains(&0) {
        return Err(MimeError::Nul { line: number });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn splits_fields_with_their_continuations() {
        let raw = b"Subject: a long\n subject line\nTo: a@x.com,\n\tb@x.com\n\nBody\n";
        let s = Section::split(raw).unwrap();
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields[0].name, "Subject");
        assert_eq!(s.fields[1].lines.len(), 2);
        assert_eq!(s.body, vec![b"Body".as_slice()]);
    }

    #[test]
    fn line_ends_become_crlf_and_bcc_goes() {
        let raw =
            b"To: a@x.com\nBcc: secret@x.com,\n other@x.com\r\nSubject: s\n\nline 1\r\nline 2\n";
        let s = Section::split(raw).unwrap();
        let out = s.write(&["Bcc"], &["Message-ID: <1@mailhost>".into()]);
        assert_eq!(
            text(&out),
            "To: a@x.com\r\nSubject: s\r\nMessage-ID: <1@mailhost>\r\n\r\nline 1\r\nline 2\r\n"
        );
    }

    #[test]
    fn a_message_without_a_final_line_end_gets_one() {
        let s = Section::split(b"To: a@x.com\n\nno newline").unwrap();
        assert_eq!(
            text(&s.write(&[], &[])),
            "To: a@x.com\r\n\r\nno newline\r\n"
        );
    }

    #[test]
    fn a_non_header_line_starts_the_body() {
        let s = Section::split(b"To: a@x.com\nHello there, this is text\nmore\n").unwrap();
        assert_eq!(s.fields.len(), 1);
        assert_eq!(
            text(&s.write(&[], &[])),
            "To: a@x.com\r\n\r\nHello there, this is text\r\nmore\r\n"
        );
        let s = Section::split(b"just a body\n").unwrap();
        assert!(s.fields.is_empty());
    }

    #[test]
    fn an_mbox_from_line_is_dropped() {
        let s = Section::split(b"From adele@x.com Tue Dec  1 10:00:00 2026\nTo: a@x.com\n\nb\n")
            .unwrap();
        assert_eq!(s.fields[0].name, "To");
    }

    #[test]
    fn bare_cr_and_nul_in_headers_are_refused() {
        assert_eq!(
            Section::split(b"To: a@x.com\nSubject: hi\rBcc: evil@x.com\n\nb\n").unwrap_err(),
            MimeError::BareCr { line: 2 }
        );
        assert_eq!(
            Section::split(b"Subject: a\n folded\rX\n\nb\n").unwrap_err(),
            MimeError::BareCr { line: 2 }
        );
        assert_eq!(
            Section::split(b"Subject: a\0b\n\nb\n").unwrap_err(),
            MimeError::Nul { line: 1 }
        );
        // In the body a CR is content (kept).
        let s = Section::split(b"To: a@x.com\n\nx\ry\n").unwrap();
        assert_eq!(s.body, vec![b"x\ry".as_slice()]);
        assert_eq!(Section::split(b" \n\n").unwrap_err(), MimeError::Empty);
    }
}

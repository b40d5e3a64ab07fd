//! The message for MIME `sendMail`: Bcc from the envelope, Message-ID ensured, everything else
//! byte for byte as the client wrote it.

use mail_parser::{Address, MessageParser};

use super::{MimeError, listed};

/// The bytes to submit as MIME, or `None` when the headers name a recipient the envelope does
/// not have (the message must then go structured, where recipients are explicit).
///
/// # Errors
/// Not a message, no recipients, or a recipient that cannot go into a header.
pub fn for_mime_send(
    mime: &[u8],
    recipients: &[String],
    message_id: Option<&str>,
) -> Result<Option<Vec<u8>>, MimeError> {
    if recipients.is_empty() {
        return Err(MimeError::NoRecipients);
    }
    let headers = MessageParser::default()
        .parse_headers(mime)
        .ok_or(MimeError::NotAMessage)?;
    let mut named: Vec<String> = Vec::new();
    for list in [headers.to(), headers.cc()].into_iter().flatten() {
        named.extend(addresses(list));
    }
    if named.iter().any(|a| !listed(recipients, a)) {
        return Ok(None);
    }
    let blind: Vec<&String> = recipients.iter().filter(|r| !listed(&named, r)).collect();
    for r in &blind {
        if r.is_empty() || r.chars().any(|c| c.is_control() || c == '<' || c == '>') {
            return Err(MimeError::BadRecipient((*r).clone()));
        }
        // A quoted, non-ASCII or otherwise unusual address (spaces, specials) might be read
        // differently from a header by Exchange: such messages go structured, where
        // recipients are JSON.
        if !r.is_ascii()
            || !r.contains('@')
            || r.chars()
                .any(|c| c.is_whitespace() || ",:;\"()[]\\".contains(c))
        {
            return Ok(None);
        }
    }
    let (head_end, body_start) = split(mime).ok_or(MimeError::NotAMessage)?;
    let head = &mime[..head_end];
    // What mailhost adds goes first: a header block that a parser stops reading early (a
    // malformed line) still shows it, so no blind copy is silently lost (found by fuzzing).
    let mut out = Vec::with_capacity(mime.len() + 64 * (blind.len() + 1));
    let fields = fields(head);
    let has_message_id = fields
        .iter()
        .any(|f| field_name(f).eq_ignore_ascii_case(b"Message-ID"));
    if !has_message_id
        && let Some(id) = message_id
        && !id.chars().any(char::is_control)
    {
        out.extend_from_slice(format!("Message-ID: {}\r\n", id.trim()).as_bytes());
    }
    if !blind.is_empty() {
        out.extend_from_slice(b"Bcc: ");
        for (i, r) in blind.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\r\n ");
            }
            out.extend_from_slice(format!("<{}>", r.trim()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    for field in fields {
        // A continuation line before any field belongs to nothing; kept, it would continue
        // the fields added above.
        let orphan = field.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if orphan || field_name(field).eq_ignore_ascii_case(b"Bcc") {
            continue;
        }
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&mime[body_start..]);
    Ok(Some(out))
}

/// The addresses of an address header.
pub(crate) fn addresses(list: &Address<'_>) -> Vec<String> {
    list.iter()
        .filter_map(|a| a.address())
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Where the header block ends (after its last line's CRLF) and the body starts.
fn split(mime: &[u8]) -> Option<(usize, usize)> {
    if mime.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if let Some(p) = mime.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((p + 2, p + 4));
    }
    (!mime.is_empty()).then_some((mime.len(), mime.len()))
}

/// The header fields of a header block, each with its continuation lines and CRLF.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let end = head[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |p| i + p + 1);
        let next_is_continuation = head.get(end).is_some_and(|&b| b == b' ' || b == b'\t');
        if !next_is_continuation {
            out.push(&head[start..end]);
            start = end;
        }
        i = end;
    }
    if start < head.len() {
        out.push(&head[start..]);
    }
    out
}

fn field_name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == b':').unwrap_or(0);
    let name = &field[..end];
    let trimmed_end = name
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &name[..trimmed_end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Adele <adele@contoso.com>\r\nTo: Bob <bob@x.com>,\r\n carol@x.com\r\nBcc: old@x.com\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n";

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn blind_copies_come_from_the_envelope() {
        let out = for_mime_send(
            MSG,
            &v(&["bob@x.com", "carol@x.com", "hidden@y.com", "h2@y.com"]),
            Some("<E1@mailhost>"),
        )
        .unwrap()
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("old@x.com"), "{text}");
        assert!(
            text.contains("Bcc: <hidden@y.com>,\r\n <h2@y.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <E1@mailhost>\r\n"), "{text}");
        assert!(
            text.contains("To: Bob <bob@x.com>,\r\n carol@x.com\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nbody\r\n"), "{text}");
    }

    #[test]
    fn a_message_id_the_client_set_stays() {
        let msg = b"From: a@x.com\r\nMessage-ID: <mine@x>\r\nTo: b@x.com\r\n\r\nx\r\n";
        let out = for_mime_send(msg, &v(&["B@x.com"]), Some("<E1@mailhost>"))
            .unwrap()
            .unwrap();
        assert_eq!(out, msg);
    }

    #[test]
    fn header_recipients_outside_the_envelope_force_structured() {
        assert_eq!(for_mime_send(MSG, &v(&["bob@x.com"]), None).unwrap(), None);
    }

    #[test]
    fn refusals() {
        assert_eq!(for_mime_send(MSG, &[], None), Err(MimeError::NoRecipients));
        assert!(matches!(
            for_mime_send(
                MSG,
                &v(&["bob@x.com", "carol@x.com", "a@b\r\nBcc: c@d"]),
                None
            ),
            Err(MimeError::BadRecipient(_))
        ));
    }
}

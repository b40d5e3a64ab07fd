//! The message for MIME `sendMail`: Bcc from the envelope, Message-ID ensured, everything else
//! as the client wrote it, in the canonical form of [`header_block`] (CRLF line ends, a header
//! block of well-formed fields only).

use mail_parser::{Address, MessageParser};

use super::{MimeError, header_block, listed};

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
    if mime.is_empty() {
        return Err(MimeError::NotAMessage);
    }
    // One reading of the header block for the parser and the field removal below.
    let mime = header_block::canonical(mime);
    let headers = MessageParser::default()
        .parse_headers(&mime)
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
        // A quoted, non-ASCII or otherwise unusual address (spaces, specials, what looks like
        // an RFC 2047 encoded word, which a reader may decode) might be read differently from
        // a header by Exchange: such messages go structured, where recipients are JSON.
        if !r.is_ascii()
            || !r.contains('@')
            || r.contains("=?")
            || r.chars()
                .any(|c| c.is_whitespace() || ",:;\"()[]\\".contains(c))
        {
            return Ok(None);
        }
    }
    let block = header_block::split(&mime);
    // What mailhost adds goes first, so a reader that stops early still sees it.
    let mut out = Vec::with_capacity(mime.len() + 64 * (blind.len() + 1));
    let has_message_id = block
        .fields
        .iter()
        .any(|f| header_block::field_name(f).eq_ignore_ascii_case(b"Message-ID"));
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
    for field in &block.fields {
        let name = header_block::field_name(field);
        if DROPPED_FIELDS.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        out.extend_from_slice(field);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(block.body);
    Ok(Some(out))
}

/// The client's fields that never go to Exchange: the envelope decides the blind copies.
const DROPPED_FIELDS: [&[u8]; 2] = [b"Bcc", b"Resent-Bcc"];

/// The addresses of an address header.
pub(crate) fn addresses(list: &Address<'_>) -> Vec<String> {
    list.iter()
        .filter_map(|a| a.address())
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
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

    /// The fuzz finding (`fuzz/corpus/mime_convert/regression_bare_lf_bcc_name_with_space`):
    /// bare LF line ends, a line that is no field, and `Bc c:`, which mail-parser reads as a
    /// second Bcc field hiding the one mailhost adds (and Exchange might read as one too).
    #[test]
    fn a_field_only_a_lenient_parser_reads_as_bcc_cannot_survive() {
        let msg = b"From: a@x.\xff\xff\nDntent-Um\nFrom: a@x.com\r\nTo: b@x.com\r\nBc c: eve@y.com\nBcc: old@x.com\n\nbody\n";
        let out = for_mime_send(msg, &v(&["b@x.com", "c@x.com"]), Some("<E1@mailhost>"))
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        // The header block ends at the line that is no field: what follows is body, the To
        // field too, so both recipients are blind copies.
        assert!(
            text.starts_with(
                "Message-ID: <E1@mailhost>\r\nBcc: <b@x.com>,\r\n <c@x.com>\r\nFrom: a@x.\u{fffd}\u{fffd}\r\n\r\nDntent-Um\r\n"
            ),
            "{text}"
        );
        let parsed = MessageParser::default().parse_headers(&out).unwrap();
        let bcc: Vec<String> = parsed.bcc().map(addresses).unwrap_or_default();
        assert_eq!(bcc, ["b@x.com", "c@x.com"]);
        assert_eq!(parsed.headers().len(), 3, "{text}");
        assert!(!text.contains("\n\n") && !text.replace("\r\n", "").contains('\n'));

        // Well-formed, with a client Bcc (also `Bcc :`) and bare LFs: the fields stay, the
        // client's Bcc fields go.
        let msg = b"From: a@x.com\nTo: b@x.com\nBcc : old@x.com\nResent-Bcc: r@x.com\nBcc: c@x.com,\n eve@y.com\nSubject: s\n\nbody\n";
        let out = for_mime_send(msg, &v(&["b@x.com", "c@x.com"]), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Bcc: <c@x.com>\r\nFrom: a@x.com\r\nTo: b@x.com\r\nSubject: s\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn an_address_like_an_encoded_word_goes_structured() {
        // Found by fuzzing: mail-parser decodes the "address" when it reads the Bcc field back.
        assert_eq!(
            for_mime_send(
                MSG,
                &v(&["bob@x.com", "carol@x.com", "=?ut*-@?B?w6lsw6h2ZQ==?="]),
                None
            ),
            Ok(None)
        );
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

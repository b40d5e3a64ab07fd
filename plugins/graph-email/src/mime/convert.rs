//! A MIME message turned into the parts of a structured Graph message. mail-parser decodes
//! transfer encodings (quoted-printable, base64), charsets and RFC 2047 words, so bodies,
//! subjects and names arrive as UTF-8 text and parts as their bytes.

use mail_parser::{Address, MessageParser, MimeHeaders};

use super::{MimeError, header_block, listed};

/// Graph passes at most this many `internetMessageHeaders`.
pub const MAX_CUSTOM_HEADERS: usize = 5;

/// A recipient or sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The address.
    pub address: String,
    /// The display name, decoded; may be empty.
    pub name: String,
}

/// An attachment or inline part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The file name recipients see.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its Content-ID without angle brackets (inline images).
    pub content_id: Option<String>,
    /// Shown in the body (an HTML body refers to it by `cid:`), not as an attachment.
    pub is_inline: bool,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
}

/// The structured message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Converted {
    /// The decoded subject.
    pub subject: String,
    /// The body is HTML (else plain text).
    pub html: bool,
    /// The body.
    pub body: String,
    /// The header From.
    pub from: Option<Person>,
    /// To recipients (envelope recipients the To header names).
    pub to: Vec<Person>,
    /// Cc recipients (envelope recipients the Cc header names).
    pub cc: Vec<Person>,
    /// Every other envelope recipient.
    pub bcc: Vec<Person>,
    /// Reply-To.
    pub reply_to: Vec<Person>,
    /// `X-` headers (Graph takes at most [`MAX_CUSTOM_HEADERS`]).
    pub headers: Vec<(String, String)>,
    /// `X-` headers left out for Graph's limit.
    pub dropped_headers: usize,
    /// The Message-ID, with angle brackets.
    pub internet_message_id: Option<String>,
    /// `low`, `normal` or `high` from Importance / X-Priority.
    pub importance: Option<&'static str>,
    /// Attachments and inline parts.
    pub parts: Vec<Part>,
}

fn people(list: Option<&Address<'_>>) -> Vec<Person> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let address = a.address()?.trim().to_string();
            (!address.is_empty()).then(|| Person {
                address,
                name: clean(a.name().unwrap_or_default()),
            })
        })
        .collect()
}

/// One line of text: control characters (CR/LF from a folded or hostile header) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        "text/html" => ".html",
        "message/rfc822" => ".eml",
        "text/calendar" => ".ics",
        _ => ".bin",
    }
}

/// Converts `mime` for a structured send to the envelope `recipients`.
///
/// # Errors
/// Not a message, or no recipients.
pub fn convert(mime: &[u8], recipients: &[String]) -> Result<Converted, MimeError> {
    if recipients.is_empty() {
        return Err(MimeError::NoRecipients);
    }
    // The header block as `rewrite` reads it (see `header_block`).
    let mime = header_block::canonical(mime);
    // mail-parser 0.11.9 can panic on some malformed multiparts ("Invalid part ID, could not
    // find multipart", found by fuzzing): such a message is refused, not a crash.
    let message = std::panic::catch_unwind(|| MessageParser::default().parse(&mime))
        .ok()
        .flatten()
        .ok_or(MimeError::NotAMessage)?;
    let mut out = Converted {
        subject: clean(message.subject().unwrap_or_default()),
        from: people(message.from()).into_iter().next(),
        reply_to: people(message.reply_to()),
        internet_message_id: message
            .message_id()
            .map(|id| format!("<{}>", clean(id).trim_matches(['<', '>'])))
            .filter(|id| id.len() > 2),
        ..Converted::default()
    };

    // The envelope decides who receives; the headers give names and To/Cc placement.
    let header_to = people(message.to());
    let header_cc = people(message.cc());
    let header_bcc = people(message.bcc());
    let mut placed: Vec<String> = Vec::new();
    for (list, target) in [(&header_to, &mut out.to), (&header_cc, &mut out.cc)] {
        for p in list {
            if listed(recipients, &p.address) && !listed(&placed, &p.address) {
                placed.push(p.address.clone());
                target.push(p.clone());
            }
        }
    }
    for r in recipients {
        let r = r.trim();
        if r.is_empty() || listed(&placed, r) {
            continue;
        }
        placed.push(r.to_string());
        let name = header_bcc
            .iter()
            .find(|p| p.address.eq_ignore_ascii_case(r))
            .map(|p| p.name.clone())
            .unwrap_or_default();
        out.bcc.push(Person {
            address: r.to_string(),
            name,
        });
    }

    out.html = message.html_bodies().any(|p| p.is_text_html());
    out.body = if out.html {
        message
            .body_html(0)
            .map(|b| b.into_owned())
            .unwrap_or_default()
    } else {
        message
            .body_text(0)
            .map(|b| b.into_owned())
            .unwrap_or_default()
    };

    for (raw_name, value) in message.headers_raw() {
        let name = raw_name.trim();
        if name.len() > 2
            && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            && name.chars().all(|c| c.is_ascii_graphic() && c != ':')
        {
            if out.headers.len() < MAX_CUSTOM_HEADERS {
                out.headers.push((name.to_string(), clean(&unfold(value))));
            } else {
                out.dropped_headers += 1;
            }
        }
        if name.eq_ignore_ascii_case("Importance") || name.eq_ignore_ascii_case("X-Priority") {
            let v = value.trim().to_ascii_lowercase();
            out.importance = if v.starts_with("high") || v.starts_with('1') || v.starts_with('2') {
                Some("high")
            } else if v.starts_with("low") || v.starts_with('4') || v.starts_with('5') {
                Some("low")
            } else {
                Some("normal")
            };
        }
    }

    for (i, part) in message.attachments().enumerate() {
        let content_type = part.content_type().map_or_else(
            || "application/octet-stream".to_string(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
        );
        let content_id = part
            .content_id()
            .map(|id| clean(id).trim_matches(['<', '>']).to_string())
            .filter(|id| !id.is_empty());
        let is_inline = content_id
            .as_ref()
            .is_some_and(|id| out.html && out.body.contains(&format!("cid:{id}")));
        let name = part
            .attachment_name()
            .map(clean)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("attachment-{}{}", i + 1, extension(&content_type)));
        let bytes = match part.message() {
            Some(nested) => nested.raw_message().to_vec(),
            None => part.contents().to_vec(),
        };
        out.parts.push(Part {
            name,
            content_type,
            content_id,
            is_inline,
            bytes,
        });
    }
    Ok(out)
}

fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const RELATED: &str = concat!(
        "From: =?utf-8?q?Ad=C3=A8le?= <adele@contoso.com>\r\n",
        "To: Bob <bob@x.com>, Stranger <stranger@x.com>\r\n",
        "Cc: carol@x.com\r\n",
        "Reply-To: Sales <sales@contoso.com>\r\n",
        "Subject: =?utf-8?B?w6lsw6h2ZSDinJM=?=\r\n",
        "Message-ID: <abc@client>\r\n",
        "X-Order-Id: 42\r\n",
        "X-Mailer: printer\r\n",
        "Importance: high\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
        "\r\n",
        "--outer\r\n",
        "Content-Type: multipart/related; boundary=\"rel\"\r\n",
        "\r\n",
        "--rel\r\n",
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n",
        "\r\n",
        "--alt\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "caf=C3=A9 text\r\n",
        "--alt\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<p>caf\u{e9} <img src=\"cid:logo@x\"></p>\r\n",
        "--alt--\r\n",
        "--rel\r\n",
        "Content-Type: image/png\r\n",
        "Content-ID: <logo@x>\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "iVBORw0KGgo=\r\n",
        "--rel--\r\n",
        "--outer\r\n",
        "Content-Type: application/pdf; name=\"r\u{e9}sum\u{e9}.pdf\"\r\n",
        "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "JVBERi0xLjQ=\r\n",
        "--outer--\r\n",
    );

    #[test]
    fn a_rich_message_converts() {
        let c = convert(
            RELATED.as_bytes(),
            &v(&["bob@x.com", "CAROL@x.com", "hidden@y.com"]),
        )
        .unwrap();
        assert_eq!(c.subject, "\u{e9}l\u{e8}ve \u{2713}");
        assert_eq!(c.from.as_ref().unwrap().name, "Ad\u{e8}le");
        assert_eq!(
            c.to,
            [Person {
                address: "bob@x.com".into(),
                name: "Bob".into()
            }]
        );
        assert_eq!(c.cc[0].address, "carol@x.com");
        assert_eq!(
            c.bcc,
            [Person {
                address: "hidden@y.com".into(),
                name: String::new()
            }]
        );
        assert_eq!(c.reply_to[0].address, "sales@contoso.com");
        assert!(c.html && c.body.contains("caf\u{e9}") && c.body.contains("cid:logo@x"));
        assert_eq!(
            c.headers,
            [
                ("X-Order-Id".to_string(), "42".to_string()),
                ("X-Mailer".into(), "printer".into())
            ]
        );
        assert_eq!(c.internet_message_id.as_deref(), Some("<abc@client>"));
        assert_eq!(c.importance, Some("high"));
        assert_eq!(c.parts.len(), 2, "{:?}", c.parts);
        let logo = &c.parts[0];
        assert!(logo.is_inline && logo.content_id.as_deref() == Some("logo@x"));
        assert_eq!(logo.content_type, "image/png");
        assert_eq!(&logo.bytes[..4], b"\x89PNG");
        let pdf = &c.parts[1];
        assert!(!pdf.is_inline);
        assert_eq!(pdf.name, "r\u{e9}sum\u{e9}.pdf");
        assert_eq!(pdf.bytes, b"%PDF-1.4");
    }

    #[test]
    fn plain_text_only() {
        let c = convert(
            b"From: a@x.com\r\nTo: b@x.com\r\nSubject: hi\r\n\r\nline one\r\nline two\r\n",
            &v(&["b@x.com"]),
        )
        .unwrap();
        assert!(!c.html);
        assert_eq!(c.body, "line one\r\nline two\r\n");
        assert!(c.parts.is_empty() && c.bcc.is_empty());
    }

    #[test]
    fn more_custom_headers_than_graph_takes() {
        let mut msg = String::from("From: a@x.com\r\nTo: b@x.com\r\n");
        for i in 0..7 {
            msg.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        msg.push_str("\r\nx\r\n");
        let c = convert(msg.as_bytes(), &v(&["b@x.com"])).unwrap();
        assert_eq!((c.headers.len(), c.dropped_headers), (5, 2));
    }

    #[test]
    fn no_recipients() {
        assert_eq!(
            convert(b"From: a@x.com\r\n\r\nx", &[]),
            Err(MimeError::NoRecipients)
        );
    }
}

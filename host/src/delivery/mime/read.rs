//! Reading a message with `mail-parser` into plain fields: the addresses of From, To, Cc, Bcc
//! and Reply-To, the subject (RFC 2047 encoded-words decoded, any charset to UTF-8), the
//! Message-ID, the custom `X-` headers, the text and HTML bodies (quoted-printable and base64
//! decoded, charsets converted to UTF-8) and every attachment and inline part with its decoded
//! bytes and, for inline parts, its Content-ID.
//!
//! Every decoded value that becomes a header of a structured send is checked for CR and LF
//! (an encoded-word can hide `=0D=0A`), so nothing read here can inject a header.

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, MimeHeaders, PartType};
use mailhost_plugin_api::{Header, Mailbox, is_plausible_address};

use super::MimeError;

/// One attachment or inline part, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Part {
    /// The file name recipients see (from Content-Disposition or Content-Type, decoded), or one
    /// made up from the content type (`attachment-2.png`).
    pub name: String,
    /// `type/subtype`, lower case; text parts add `; charset=utf-8` (their bytes are UTF-8).
    pub content_type: String,
    /// The Content-ID without angle brackets, for parts shown inline (`cid:` references).
    pub content_id: Option<String>,
    /// Whether the part is meant to be shown in the body (an inline part with a Content-ID).
    pub inline: bool,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("content_id", &self.content_id)
            .field("inline", &self.inline)
            .field("size", &self.data.len())
            .finish()
    }
}

/// What a message says, decoded. Bodies have LF line ends (the spooled message keeps CRLF).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadMessage {
    /// The From header's mailboxes (usually one).
    pub from: Vec<Mailbox>,
    /// To.
    pub to: Vec<Mailbox>,
    /// Cc.
    pub cc: Vec<Mailbox>,
    /// Bcc (as written by the client; the spooled message has no Bcc header).
    pub bcc: Vec<Mailbox>,
    /// Reply-To.
    pub reply_to: Vec<Mailbox>,
    /// The subject, decoded; empty for none.
    pub subject: String,
    /// The Message-ID with angle brackets, when the message has one.
    pub message_id: Option<String>,
    /// Custom `X-` headers, decoded, in order.
    pub headers: Vec<Header>,
    /// The plain-text body (text parts joined), when there is one.
    pub text: Option<String>,
    /// The HTML body (HTML parts joined), when there is one.
    pub html: Option<String>,
    /// Attachments and inline parts, in order.
    pub parts: Vec<Part>,
}

impl ReadMessage {
    /// The inline parts (shown in the HTML body through `cid:` references).
    pub fn inline_parts(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| p.inline)
    }
}

/// Reads `raw` (LF or CRLF line ends).
///
/// # Errors
/// [`MimeError::Unreadable`] when it is not an RFC 5322 message; [`MimeError::Address`] for an
/// address that is not plausible; [`MimeError::LineBreak`] for a decoded header value holding
/// CR or LF.
pub(super) fn read(raw: &[u8]) -> Result<ReadMessage, MimeError> {
    let message = parser().parse(raw).ok_or(MimeError::Unreadable)?;
    let mut read = ReadMessage {
        from: addresses("From", message.from())?,
        to: addresses("To", message.to())?,
        cc: addresses("Cc", message.cc())?,
        bcc: addresses("Bcc", message.bcc())?,
        reply_to: addresses("Reply-To", message.reply_to())?,
        subject: checked("Subject", message.subject().unwrap_or_default())?
            .trim()
            .into(),
        message_id: message
            .message_id()
            .map(|id| checked("Message-ID", id).map(|id| format!("<{id}>")))
            .transpose()?,
        ..ReadMessage::default()
    };
    for header in message.headers() {
        let HeaderName::Other(name) = &header.name else {
            continue;
        };
        if !(name.len() > 2 && name[..2].eq_ignore_ascii_case("X-")) {
            continue;
        }
        let value = match &header.value {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::TextList(list) => list.join(", "),
            _ => continue,
        };
        let value = checked(name, &value)?;
        read.headers.push(Header {
            name: name.as_ref().into(),
            value: value.trim().into(),
        });
    }
    let mut text = Vec::new();
    let mut html = Vec::new();
    let mut body_parts = Vec::new();
    for &id in &message.html_body {
        if let Some(PartType::Html(body)) = message.part(id).map(|p| &p.body) {
            html.push(body.replace("\r\n", "\n"));
            body_parts.push(id);
        }
    }
    for &id in &message.text_body {
        if let Some(PartType::Text(body)) = message.part(id).map(|p| &p.body) {
            text.push(body.replace("\r\n", "\n"));
            body_parts.push(id);
        }
    }
    read.text = (!text.is_empty()).then(|| text.join("\n"));
    read.html = (!html.is_empty()).then(|| html.join("\n"));
    for (number, &id) in message.attachments.iter().enumerate() {
        if body_parts.contains(&id) {
            continue;
        }
        let Some(part) = message.part(id) else {
            continue;
        };
        let (kind, is_text) = match &part.body {
            PartType::Text(_) => ("text/plain", true),
            PartType::Html(_) => ("text/html", true),
            PartType::Binary(_) | PartType::InlineBinary(_) => ("application/octet-stream", false),
            PartType::Message(_) => ("message/rfc822", false),
            PartType::Multipart(_) => continue,
        };
        let mut content_type = part
            .content_type()
            .map(|ct| match &ct.c_subtype {
                Some(sub) => format!("{}/{}", ct.c_type, sub),
                None => ct.c_type.to_string(),
            })
            .filter(|ct| ct.contains('/') && !ct.contains(['\r', '\n', ';', ' ']))
            .unwrap_or_else(|| kind.to_string())
            .to_ascii_lowercase();
        if is_text && content_type.starts_with("text/") {
            content_type.push_str("; charset=utf-8");
        }
        let content_id = part
            .content_id()
            .map(|cid| checked("Content-ID", cid))
            .transpose()?
            .map(|cid| {
                cid.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|cid| !cid.is_empty());
        let disposition_attachment = part
            .content_disposition()
            .is_some_and(|cd| cd.c_type.eq_ignore_ascii_case("attachment"));
        let inline = content_id.is_some() && !disposition_attachment;
        let name = match part.attachment_name() {
            Some(name) if !name.trim().is_empty() => {
                checked("attachment file name", name)?.to_string()
            }
            _ => made_up_name(number + 1, &content_type),
        };
        read.parts.push(Part {
            name: name.trim().to_string(),
            content_type,
            content_id,
            inline,
            data: part.contents().to_vec(),
        });
    }
    Ok(read)
}

/// The parser: the standard headers as mail-parser reads them by default, and the others (the
/// X- ones) as text, unfolded and RFC 2047-decoded. (A parser with any header configured uses
/// only what it is told, so the standard ones are listed.)
fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
        .header_comma_separated(HeaderName::Keywords)
        .header_comma_separated(HeaderName::ContentLanguage)
        .header_received(HeaderName::Received)
        .header_raw(HeaderName::MimeVersion)
        .default_header_text()
}

/// `value`, refused when it holds CR or LF.
fn checked<'a>(what: &str, value: &'a str) -> Result<&'a str, MimeError> {
    if value.contains(['\r', '\n']) {
        return Err(MimeError::LineBreak(what.to_string()));
    }
    Ok(value)
}

fn addresses(field: &'static str, value: Option<&Address<'_>>) -> Result<Vec<Mailbox>, MimeError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for addr in value.iter() {
        // A group with no members ("undisclosed-recipients:;") has no entries at all; an entry
        // without an address is text that is not one.
        let Some(address) = addr.address() else {
            return Err(MimeError::Address {
                field,
                value: addr.name().unwrap_or_default().to_string(),
            });
        };
        let address = checked(field, address)?.trim();
        let name = checked(field, addr.name().unwrap_or_default())?.trim();
        if !is_plausible_address(address) {
            return Err(MimeError::Address {
                field,
                value: address.to_string(),
            });
        }
        out.push(Mailbox::new(address, name));
    }
    Ok(out)
}

/// `attachment-N.ext` for a part that has no file name.
fn made_up_name(number: usize, content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default();
    let extension = match essence {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "image/svg+xml" => ".svg",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        "text/html" => ".html",
        "text/calendar" => ".ics",
        "message/rfc822" => ".eml",
        _ => ".bin",
    };
    format!("attachment-{number}{extension}")
}

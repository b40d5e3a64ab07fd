//! A small RFC 5322 / MIME reader for `sendMail` in MIME mode (`Content-Type: text/plain`, body =
//! base64 of the message): addresses, subject, custom headers, the body and attachment sizes and
//! hashes. Enough for what Exchange reads from a submitted message; not a general parser.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use crate::graph::error::GraphError;
use crate::graph::message::empty_message;
use crate::mailbox::{AttachmentInfo, ItemBody, MessageHeader, Recipient, StoredMessage};

/// Decodes the base64 request body of a MIME send.
pub(crate) fn decode_base64_body(body: &[u8]) -> Result<Vec<u8>, GraphError> {
    let cleaned: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(&cleaned).map_err(|_| {
        GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalidBase64String",
            "Invalid base64 string for MIME content.",
        )
    })
}

type Headers = Vec<(String, String)>;

fn split_head_body(raw: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in raw.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return (&raw[..i], &raw[i + 4..]);
        }
    }
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&raw[..i], &raw[i + 2..]);
        }
    }
    (raw, &[])
}

fn parse_headers(head: &[u8]) -> Headers {
    let text = String::from_utf8_lossy(head);
    let mut headers: Headers = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?utf-8?Q?…?=`).
pub(crate) fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, after) = rest.split_at(start);
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let parts: Vec<&str> = after[2..].splitn(3, '?').collect();
        let end = if parts.len() == 3 {
            parts[2].find("?=")
        } else {
            None
        };
        {
            if let Some(end) = end {
                let (encoding, text) = (parts[1], &parts[2][..end]);
                let bytes = if encoding.eq_ignore_ascii_case("B") {
                    STANDARD.decode(text.as_bytes()).ok()
                } else if encoding.eq_ignore_ascii_case("Q") {
                    Some(quoted_printable(text.replace('_', " ").as_bytes()))
                } else {
                    None
                };
                if let Some(bytes) = bytes {
                    out.push_str(&decode_charset(parts[0], &bytes));
                    let consumed = 2 + parts[0].len() + 1 + parts[1].len() + 1 + end + 2;
                    rest = &after[consumed..];
                    last_was_word = true;
                    continue;
                }
            }
        }
        out.push_str("=?");
        rest = &after[2..];
        last_was_word = false;
    }
    out.push_str(rest);
    out
}

/// Text in `charset` (an encoded word's, `*language` suffix allowed): UTF-8 and US-ASCII, and
/// the single-byte Latin-1 family (ISO-8859-1, and Windows-1252 read as its ISO-8859-1
/// subset) that mail clients still send; other charsets are read as UTF-8, lossily.
fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    let charset = charset
        .split('*')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match charset.as_str() {
        "iso-8859-1" | "iso8859-1" | "latin1" | "l1" | "windows-1252" | "cp1252" => {
            bytes.iter().map(|&b| char::from(b)).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'=' {
            if input.get(i + 1) == Some(&b'\r') && input.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if input.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            let hex = input
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Splits an address-list header into recipients.
pub(crate) fn addresses(value: &str) -> Vec<Recipient> {
    let mut items = Vec::new();
    let (mut current, mut quoted, mut angle) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let item = item.trim();
            match (item.rfind('<'), item.rfind('>')) {
                (Some(open), Some(close)) if open < close => {
                    let name = decode_words(item[..open].trim().trim_matches('"').trim());
                    let address = item[open + 1..close].trim().to_string();
                    Recipient::new(address, (!name.is_empty()).then_some(name))
                }
                _ => Recipient::new(item.to_string(), None),
            }
        })
        .collect()
}

/// A header parameter (`boundary`, `charset`, `name`, `filename`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| decode_words(v.trim().trim_matches('"')))
    })
}

fn decode_transfer(headers: &Headers, body: &[u8]) -> Vec<u8> {
    match get(headers, "Content-Transfer-Encoding")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("base64") => {
            let cleaned: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD.decode(&cleaned).unwrap_or_default()
        }
        Some("quoted-printable") => quoted_printable(body),
        _ => body.to_vec(),
    }
}

fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    let d = delimiter.as_bytes();
    let mut i = 0;
    while i + d.len() <= text.len() {
        let at_line_start = i == 0 || text[i - 1] == b'\n';
        if at_line_start && &text[i..i + d.len()] == d {
            positions.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    for pair in positions.windows(2) {
        let start = pair[0] + d.len();
        let mut part = &text[start..pair[1]];
        // Skip the rest of the delimiter line and the CRLF before the next delimiter.
        if let Some(nl) = part.iter().position(|b| *b == b'\n') {
            part = &part[nl + 1..];
        }
        let part = part.strip_suffix(b"\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        parts.push(part);
    }
    parts
}

struct Walk {
    text: Option<ItemBody>,
    html: Option<ItemBody>,
    attachments: Vec<AttachmentInfo>,
}

fn walk(headers: &Headers, body: &[u8], out: &mut Walk, depth: usize) {
    let content_type = get(headers, "Content-Type")
        .unwrap_or("text/plain")
        .to_string();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let boundary = if mime.starts_with("multipart/") && depth < 16 {
        param(&content_type, "boundary")
    } else {
        None
    };
    if let Some(boundary) = boundary {
        for part in split_multipart(body, &boundary) {
            let (head, body) = split_head_body(part);
            walk(&parse_headers(head), body, out, depth + 1);
        }
        return;
    }
    let disposition = get(headers, "Content-Disposition")
        .unwrap_or("")
        .to_string();
    let filename = param(&disposition, "filename").or_else(|| param(&content_type, "name"));
    let is_attachment = disposition.to_ascii_lowercase().starts_with("attachment")
        || filename.is_some()
        || !(mime.starts_with("text/plain") || mime.starts_with("text/html"));
    let decoded = decode_transfer(headers, body);
    if is_attachment {
        let content_id =
            get(headers, "Content-ID").map(|v| v.trim_matches(['<', '>', ' ']).to_string());
        out.attachments.push(AttachmentInfo {
            id: crate::tokens::random_token("AAMkAGI2att", 24),
            name: filename.unwrap_or_else(|| "attachment".into()),
            content_type: if mime.is_empty() {
                "application/octet-stream".into()
            } else {
                mime.clone()
            },
            size: decoded.len() as u64,
            sha256: hex::encode(Sha256::digest(&decoded)),
            is_inline: disposition.to_ascii_lowercase().starts_with("inline")
                && content_id.is_some(),
            content_id,
        });
        return;
    }
    let content = String::from_utf8_lossy(&decoded).into_owned();
    if mime.starts_with("text/html") {
        out.html.get_or_insert(ItemBody {
            content_type: "html".into(),
            content,
        });
    } else {
        out.text.get_or_insert(ItemBody {
            content_type: "text".into(),
            content,
        });
    }
}

/// Reads a decoded RFC 5322 message.
pub(crate) fn parse_mime(raw: &[u8]) -> Result<StoredMessage, GraphError> {
    let (head, body) = split_head_body(raw);
    let headers = parse_headers(head);
    if headers.is_empty() {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalid",
            "The MIME content is not valid: no header fields were found.",
        ));
    }
    let mut m = empty_message();
    m.mime = true;
    m.subject = get(&headers, "Subject")
        .map(decode_words)
        .unwrap_or_default();
    m.from = get(&headers, "From").and_then(|v| addresses(v).into_iter().next());
    m.sender = get(&headers, "Sender").and_then(|v| addresses(v).into_iter().next());
    m.to_recipients = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("To"))
        .flat_map(|(_, v)| addresses(v))
        .collect();
    m.cc_recipients = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Cc"))
        .flat_map(|(_, v)| addresses(v))
        .collect();
    m.bcc_recipients = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Bcc"))
        .flat_map(|(_, v)| addresses(v))
        .collect();
    m.reply_to = get(&headers, "Reply-To").map(addresses).unwrap_or_default();
    m.internet_message_id = get(&headers, "Message-ID").unwrap_or("").to_string();
    m.internet_message_headers = headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-"))
        .map(|(n, v)| MessageHeader {
            name: n.clone(),
            value: decode_words(v),
        })
        .collect();
    m.importance = match get(&headers, "Importance")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("high") => "high".into(),
        Some("low") => "low".into(),
        _ => "normal".into(),
    };
    m.is_read_receipt_requested = get(&headers, "Disposition-Notification-To").is_some();
    let mut walked = Walk {
        text: None,
        html: None,
        attachments: Vec::new(),
    };
    walk(&headers, body, &mut walked, 0);
    m.body = walked.html.or(walked.text).unwrap_or_default();
    m.attachments = walked.attachments;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: \"Alex W\" <alex@contoso.onmicrosoft.com>\r\n\
To: lynne@contoso.onmicrosoft.com, \"Doe, John\" <john@example.com>\r\n\
Bcc: sales@contoso.onmicrosoft.com\r\n\
Subject: =?utf-8?B?SMOpbGxv?= world\r\n\
X-Custom-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\nX-Four: 4\r\nX-Five: 5\r\nX-Six: 6\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Hi =C3=A9\r\n\
--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b1--\r\n";

    #[test]
    fn reads_a_multipart_message() {
        let m = parse_mime(MESSAGE.as_bytes()).unwrap();
        assert_eq!(m.subject, "Héllo world");
        assert_eq!(
            decode_words("=?UTF-8?Q?Relev=C3=A9?= =?ISO-8859-1?Q?_M=FCller?="),
            "Relevé Müller"
        );
        assert_eq!(
            m.from.as_ref().map(|r| r.address()),
            Some("alex@contoso.onmicrosoft.com")
        );
        assert_eq!(m.to_recipients.len(), 2);
        assert_eq!(
            m.to_recipients[1].email_address.name.as_deref(),
            Some("Doe, John")
        );
        assert_eq!(m.bcc_recipients.len(), 1);
        assert_eq!(
            m.internet_message_headers.len(),
            6,
            "MIME is the way around the 5-header limit"
        );
        assert_eq!(m.body.content, "Hi é");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "a.pdf");
        assert_eq!(m.attachments[0].size, 5);
    }

    #[test]
    fn base64_body() {
        assert!(decode_base64_body(b"aGVs\r\nbG8=").is_ok());
        assert_eq!(
            decode_base64_body(b"not base64!").unwrap_err().code,
            "ErrorMimeContentInvalidBase64String"
        );
        assert_eq!(parse_mime(b"").unwrap_err().code, "ErrorMimeContentInvalid");
    }
}

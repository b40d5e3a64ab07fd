//! Turns a [`mailhost_plugin_api::Message`] into the bytes of a pickup file: the envelope lines
//! (`X-Sender`, `X-Receiver`) followed by an RFC 5322 MIME message built with lettre.
//!
//! The pickup-directory convention (IIS SMTP, Exchange) puts the envelope in the file itself:
//! `X-Sender` is the reverse path and there is one `X-Receiver` per recipient, Bcc included.
//! The relay that collects the file delivers to the `X-Receiver`s and strips those lines, so Bcc
//! recipients get the message without any `Bcc:` header being written.

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message as MimeMessage};
use mailhost_plugin_api::{Message, StaffMember};

use crate::error::PickupError;

/// A composed message ready to be written.
#[derive(Debug)]
pub(crate) struct Composed {
    /// The Message-ID header value, with its angle brackets.
    pub(crate) message_id: String,
    /// The file contents: envelope lines, then the message.
    pub(crate) bytes: Vec<u8>,
}

/// Refuses CR, LF and other control characters in a header value.
fn check_line(value: &str, what: impl FnOnce() -> String) -> Result<(), PickupError> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        Err(PickupError::ControlCharacter { what: what() })
    } else {
        Ok(())
    }
}

fn parse_address(address: &str, role: &'static str) -> Result<Address, PickupError> {
    address
        .trim()
        .parse::<Address>()
        .map_err(|_| PickupError::Address {
            address: address.to_string(),
            role,
        })
}

fn mailbox(address: &str, name: &str, role: &'static str) -> Result<Mailbox, PickupError> {
    check_line(name, || format!("display name of {address}"))?;
    let address = parse_address(address, role)?;
    let name = name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        address,
    ))
}

/// The From mailbox: the message's, else the staff member's address and display name.
fn from_mailbox(message: &Message, staff: &StaffMember) -> Result<Mailbox, PickupError> {
    if message.from.address.trim().is_empty() {
        mailbox(&staff.email, &staff.display_name, "From")
    } else {
        mailbox(&message.from.address, &message.from.name, "From")
    }
}

/// A new Message-ID in the From address's domain.
fn new_message_id(from: &Address) -> String {
    format!(
        "<{}.mailhost@{}>",
        uuid::Uuid::new_v4().simple(),
        from.domain()
    )
}

/// The `Message-ID` of a whole message: the first such field of its header section (ends at
/// the first empty line), unfolded and trimmed; `None` when it has none or it holds no `@`.
pub(crate) fn header_message_id(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("Message-ID") {
            continue;
        }
        let mut value = value.trim().to_string();
        // A folded value continues on lines starting with white space.
        for next in lines.by_ref() {
            if next.starts_with([' ', '\t']) {
                value.push_str(next.trim());
            } else {
                break;
            }
        }
        return Some(value).filter(|v| v.contains('@') && !v.contains(char::is_control));
    }
    None
}

/// Whether a custom header may be passed through.
fn valid_custom_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("x-")
        && lower.len() > 2
        && lower != "x-sender"
        && lower != "x-receiver"
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Builds the pickup file for `message`, sent by `staff`, with attachment contents read by
/// `read_attachment` (a path in, bytes out).
pub(crate) fn compose(
    message: &Message,
    staff: &StaffMember,
    read_attachment: &mut dyn FnMut(&str) -> Result<Vec<u8>, PickupError>,
) -> Result<Composed, PickupError> {
    let from = from_mailbox(message, staff)?;
    let message_id = message
        .message_id_header()
        .map_or_else(|| new_message_id(&from.email), str::to_string);
    let mut builder = MimeMessage::builder()
        .from(from.clone())
        .message_id(Some(message_id.clone()))
        .user_agent(format!("mailhost pickup-dir {}", env!("CARGO_PKG_VERSION")));

    // Sending as another address than the staff member's own: say who actually sent it.
    let mut reverse_path = from.email.clone();
    if !staff.email.trim().is_empty() {
        let own = parse_address(&staff.email, "Sender")?;
        if !AsRef::<str>::as_ref(&own).eq_ignore_ascii_case(from.email.as_ref()) {
            builder = builder.sender(mailbox(&staff.email, &staff.display_name, "Sender")?);
            reverse_path = own;
        }
    }

    let mut receivers: Vec<Address> = Vec::new();
    for (role, list) in [
        ("To", &message.to),
        ("Cc", &message.cc),
        ("Bcc", &message.bcc),
    ] {
        for entry in list.iter() {
            let mbox = mailbox(&entry.address, &entry.name, role)?;
            if !receivers.contains(&mbox.email) {
                receivers.push(mbox.email.clone());
            }
            builder = match role {
                "To" => builder.to(mbox),
                "Cc" => builder.cc(mbox),
                // Bcc recipients travel only in the envelope (X-Receiver).
                _ => builder,
            };
        }
    }
    if receivers.is_empty() {
        return Err(PickupError::NoRecipients);
    }
    // The envelope is explicit: Bcc recipients are in it but in no header.
    let envelope = Envelope::new(Some(reverse_path.clone()), receivers.clone())
        .map_err(|e| PickupError::Build(e.to_string()))?;
    builder = builder.envelope(envelope);
    for entry in message.reply_to.iter() {
        builder = builder.reply_to(mailbox(&entry.address, &entry.name, "Reply-To")?);
    }
    check_line(&message.subject, || "subject".to_string())?;
    builder = builder.subject(message.subject.as_str());

    for header in message.custom_headers() {
        if !valid_custom_name(&header.name) {
            return Err(PickupError::BadHeader(header.name.to_string()));
        }
        check_line(&header.value, || format!("header {}", header.name))?;
        let name = HeaderName::new_from_ascii(header.name.to_string())
            .map_err(|_| PickupError::BadHeader(header.name.to_string()))?;
        builder = builder.raw_header(HeaderValue::new(name, header.value.to_string()));
    }

    let body_part = if message.html {
        SinglePart::html(message.body.to_string())
    } else {
        SinglePart::plain(message.body.to_string())
    };
    let built = if message.attachments.is_empty() {
        builder.singlepart(body_part)
    } else {
        let mut mixed = MultiPart::mixed().singlepart(body_part);
        for attachment in message.attachments.iter() {
            let bytes = read_attachment(&attachment.path)?;
            let name = if attachment.name.trim().is_empty() {
                std::path::Path::new(attachment.path.as_str())
                    .file_name()
                    .map_or_else(
                        || "attachment".to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    )
            } else {
                attachment.name.to_string()
            };
            check_line(&name, || format!("name of attachment {}", attachment.path))?;
            let content_type =
                ContentType::parse(attachment.content_type.as_str()).unwrap_or_else(|_| {
                    // An unknown or blank type is sent as opaque bytes rather than refused.
                    ContentType::parse("application/octet-stream")
                        .unwrap_or(ContentType::TEXT_PLAIN)
                });
            mixed = mixed.singlepart(MimeAttachment::new(name).body(bytes, content_type));
        }
        builder.multipart(mixed)
    }
    .map_err(|e| PickupError::Build(e.to_string()))?;

    let mut bytes = Vec::new();
    bytes.extend_from_slice(format!("X-Sender: {reverse_path}\r\n").as_bytes());
    for receiver in &receivers {
        bytes.extend_from_slice(format!("X-Receiver: {receiver}\r\n").as_bytes());
    }
    bytes.extend_from_slice(&built.formatted());
    Ok(Composed { message_id, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_header_names() {
        assert!(valid_custom_name("X-Order-Id"));
        assert!(valid_custom_name("x-priority"));
        assert!(!valid_custom_name("Bcc"));
        assert!(!valid_custom_name("X-"));
        assert!(!valid_custom_name("X-Sender"));
        assert!(!valid_custom_name("X-Receiver"));
        assert!(!valid_custom_name("X-Bad Name"));
        assert!(!valid_custom_name("X-Bad:Name"));
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(check_line("hello\tworld", String::new).is_ok());
        assert!(check_line("hello\r\nBcc: x@y.com", String::new).is_err());
        assert!(check_line("a\nb", String::new).is_err());
    }
}

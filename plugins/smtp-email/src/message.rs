//! Turns the host's [`Message`](mailhost_plugin_api::Message) into an RFC 5322 message with
//! lettre's builder, and the SMTP envelope that goes with it.
//!
//! Bcc recipients go into the envelope only; the formatted message never carries a `Bcc`
//! header. Attachments are read from disk here and always encoded base64.

use std::path::Path;

use lettre::Address;
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use mailhost_plugin_api::{Mailbox as ApiMailbox, SendRequest};

/// A message ready for the wire.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The SMTP envelope: sender and every recipient, Bcc included.
    pub(crate) envelope: Envelope,
    /// The formatted message (headers and MIME body), without Bcc.
    pub(crate) bytes: Vec<u8>,
    /// The `Message-ID` header's value.
    pub(crate) message_id: String,
}

/// Headers a custom header may not set: the builder owns them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "return-path",
    "received",
];

/// Builds the message and envelope for `request`, refusing it when larger than `limit` bytes.
pub(crate) fn build(request: &SendRequest, limit: Option<u64>) -> Result<Outgoing, MessageError> {
    let message = &request.message;
    let staff = &request.staff;

    let (from_address, from_name) = if message.from.address.trim().is_empty() {
        (staff.email.as_str(), staff.display_name.as_str())
    } else if message.from.name.is_empty()
        && message
            .from
            .address
            .eq_ignore_ascii_case(staff.email.as_str())
    {
        (message.from.address.as_str(), staff.display_name.as_str())
    } else {
        (message.from.address.as_str(), message.from.name.as_str())
    };
    if from_address.trim().is_empty() {
        return Err(MessageError::NoFrom);
    }
    let from = mailbox(Field::From, from_address, from_name)?;

    let mut builder = lettre::Message::builder().from(from.clone());
    // Sending as another address: say who submitted it.
    let sender = if staff.email.is_empty() || staff.email.eq_ignore_ascii_case(from_address) {
        None
    } else {
        let sender = mailbox(
            Field::From,
            staff.email.as_str(),
            staff.display_name.as_str(),
        )?;
        builder = builder.sender(sender.clone());
        Some(sender)
    };

    let mut recipients = Vec::new();
    for (field, list) in [
        (Field::To, &message.to),
        (Field::Cc, &message.cc),
        (Field::Bcc, &message.bcc),
    ] {
        for entry in list.iter() {
            let mbox = api_mailbox(field, entry)?;
            recipients.push(mbox.email.clone());
            builder = match field {
                Field::To => builder.to(mbox),
                Field::Cc => builder.cc(mbox),
                _ => builder,
            };
        }
    }
    if recipients.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    for entry in message.reply_to.iter() {
        builder = builder.reply_to(api_mailbox(Field::ReplyTo, entry)?);
    }
    if has_line_break(&message.subject) {
        return Err(MessageError::LineBreak {
            name: "Subject".into(),
        });
    }
    builder = builder.subject(message.subject.as_str());

    let message_id = message.message_id_header().map_or_else(
        || message_id(message.id.as_str(), &from.email),
        str::to_string,
    );
    builder = builder.message_id(Some(message_id.clone()));

    for header in message.custom_headers() {
        builder = builder.raw_header(custom_header(header.name.as_str(), header.value.as_str())?);
    }

    if let Some(limit) = limit {
        let declared: u64 =
            message.attachments.iter().map(|a| a.size).sum::<u64>() + message.body.len() as u64;
        if declared > limit {
            return Err(MessageError::TooLarge {
                size: declared,
                limit,
            });
        }
    }

    let envelope_from = sender.as_ref().map_or(&from.email, |s| &s.email).clone();
    let envelope =
        Envelope::new(Some(envelope_from), recipients).map_err(MessageError::Envelope)?;
    builder = builder.envelope(envelope.clone());

    let body = if message.html {
        SinglePart::html(message.body.to_string())
    } else {
        SinglePart::plain(message.body.to_string())
    };
    let built = if message.attachments.is_empty() {
        builder.singlepart(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(body);
        for attachment in message.attachments.iter() {
            parts = parts.singlepart(attachment_part(
                attachment.path.as_str(),
                attachment.name.as_str(),
                attachment.content_type.as_str(),
            )?);
        }
        builder.multipart(parts)
    }
    .map_err(MessageError::Build)?;

    let bytes = built.formatted();
    match limit {
        Some(limit) if bytes.len() as u64 > limit => {
            return Err(MessageError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        _ => {}
    }
    Ok(Outgoing {
        envelope,
        bytes,
        message_id,
    })
}

/// Which header an address came from, for messages.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Field {
    /// From (or the staff member's address as Sender).
    From,
    /// To.
    To,
    /// Cc.
    Cc,
    /// Bcc.
    Bcc,
    /// Reply-To.
    ReplyTo,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::From => "From",
            Self::To => "To",
            Self::Cc => "Cc",
            Self::Bcc => "Bcc",
            Self::ReplyTo => "Reply-To",
        }
    }

    /// Whether the field names a recipient.
    pub fn is_recipient(self) -> bool {
        matches!(self, Self::To | Self::Cc | Self::Bcc)
    }
}

fn api_mailbox(field: Field, entry: &ApiMailbox) -> Result<Mailbox, MessageError> {
    mailbox(field, entry.address.as_str(), entry.name.as_str())
}

fn mailbox(field: Field, address: &str, name: &str) -> Result<Mailbox, MessageError> {
    let invalid = |reason: String| MessageError::Address {
        field,
        address: address.to_string(),
        reason,
    };
    if has_line_break(name) {
        return Err(invalid("the display name contains a line break".into()));
    }
    let parsed: Address = address
        .trim()
        .parse()
        .map_err(|e| invalid(format!("{e}")))?;
    let name = name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        parsed,
    ))
}

/// A Message-ID stable across retries of the same email, so receivers can drop a duplicate.
fn message_id(host_id: &str, from: &Address) -> String {
    let local: String = host_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let local = local.trim_matches('.');
    if local.is_empty() {
        // No id from the host: a random one.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "<mailhost.{nanos:x}.{}@{}>",
            std::process::id(),
            from.domain()
        )
    } else {
        format!("<mailhost.{local}@{}>", from.domain())
    }
}

fn custom_header(name: &str, value: &str) -> Result<HeaderValue, MessageError> {
    let valid_name = !name.is_empty()
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
        && !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str());
    if !valid_name {
        return Err(MessageError::Header { name: name.into() });
    }
    if has_line_break(value) {
        return Err(MessageError::LineBreak { name: name.into() });
    }
    let header_name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|_| MessageError::Header { name: name.into() })?;
    Ok(HeaderValue::new(header_name, value.to_string()))
}

fn attachment_part(path: &str, name: &str, content_type: &str) -> Result<SinglePart, MessageError> {
    let content = std::fs::read(path).map_err(|source| MessageError::Attachment {
        path: path.to_string(),
        source,
    })?;
    let name = if name.trim().is_empty() {
        Path::new(path).file_name().map_or_else(
            || "attachment".to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    } else {
        name.to_string()
    };
    if has_line_break(&name) {
        return Err(MessageError::LineBreak {
            name: "attachment name".into(),
        });
    }
    let content_type = if content_type.trim().is_empty() {
        "application/octet-stream"
    } else {
        content_type.trim()
    };
    let parsed = ContentType::parse(content_type).map_err(|_| MessageError::ContentType {
        name: name.clone(),
        content_type: content_type.to_string(),
    })?;
    // A `Vec<u8>` is always encoded base64; say so rather than rely on it.
    let body =
        Body::new_with_encoding(content, ContentTransferEncoding::Base64).unwrap_or_else(Body::new);
    Ok(Attachment::new(name).body(body, parsed))
}

fn has_line_break(text: &str) -> bool {
    text.contains(['\r', '\n'])
}

/// The message cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Neither the message nor the staff member has a From address.
    #[error(
        "the email has no From address: set the staff member's email (mailhost staff set ID --email ADDR) or pass --from"
    )]
    NoFrom,
    /// No To, Cc or Bcc.
    #[error("the email has no recipients: give at least one To, Cc or Bcc address")]
    NoRecipients,
    /// An address does not parse.
    #[error("{} address '{address}' is not valid: {reason}", field.name())]
    Address {
        /// The header it was given for.
        field: Field,
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// A custom header name is invalid or reserved.
    #[error(
        "header '{name}' cannot be set as a custom header: use an X- name of printable ASCII without ':'"
    )]
    Header {
        /// The header name as given.
        name: String,
    },
    /// A header value contains CR or LF.
    #[error("the {name} contains a line break, which could inject headers; remove it")]
    LineBreak {
        /// Which value.
        name: String,
    },
    /// An attachment could not be read.
    #[error("cannot read attachment {path}: {source}")]
    Attachment {
        /// The file's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An attachment's MIME type does not parse.
    #[error("attachment '{name}' has an invalid content type '{content_type}'")]
    ContentType {
        /// The attachment's name.
        name: String,
        /// The type as given.
        content_type: String,
    },
    /// The message is larger than `MaxMessageBytes`.
    #[error(
        "the email is {size} bytes, more than MaxMessageBytes ({limit}): send smaller or fewer attachments, or raise MaxMessageBytes if the server accepts more"
    )]
    TooLarge {
        /// The message's size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// lettre refused the envelope.
    #[error("cannot build the SMTP envelope: {0}")]
    Envelope(lettre::error::Error),
    /// lettre refused the message.
    #[error("cannot build the email: {0}")]
    Build(lettre::error::Error),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mailhost_plugin_api::{Header, Message, StaffMember};

    pub(crate) fn request(message: Message) -> SendRequest {
        SendRequest {
            settings: Default::default(),
            staff: StaffMember {
                id: "s1".into(),
                email: "adele@contoso.com".into(),
                display_name: "Adele Vance".into(),
                username: "adele".into(),
                password: Default::default(),
                fields: Default::default(),
            },
            message,
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn bcc_goes_to_the_envelope_only() {
        let message = Message {
            id: "42".into(),
            to: vec![ApiMailbox::new("to@example.com", "")].into(),
            bcc: vec![ApiMailbox::new("hidden@example.com", "")].into(),
            subject: "Hi".into(),
            body: "Hello".into(),
            ..Default::default()
        };
        let out = build(&request(message), None).unwrap();
        let recipients: Vec<String> = out.envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(recipients, ["to@example.com", "hidden@example.com"]);
        assert_eq!(
            out.envelope.from().unwrap().to_string(),
            "adele@contoso.com"
        );
        let formatted = text(&out.bytes);
        assert!(!formatted.contains("hidden@example.com"), "{formatted}");
        assert!(
            formatted.contains("From: \"Adele Vance\" <adele@contoso.com>"),
            "{formatted}"
        );
        assert_eq!(out.message_id, "<mailhost.42@contoso.com>");
    }

    #[test]
    fn another_from_adds_a_sender() {
        let message = Message {
            from: ApiMailbox::new("sales@contoso.com", "Sales"),
            to: vec![ApiMailbox::new("to@example.com", "")].into(),
            ..Default::default()
        };
        let out = build(&request(message), None).unwrap();
        let formatted = text(&out.bytes);
        assert!(
            formatted.contains("From: Sales <sales@contoso.com>"),
            "{formatted}"
        );
        assert!(
            formatted.contains("Sender: \"Adele Vance\" <adele@contoso.com>"),
            "{formatted}"
        );
    }

    #[test]
    fn refuses_bad_input() {
        let no_recipients = build(&request(Message::default()), None).unwrap_err();
        assert!(matches!(no_recipients, MessageError::NoRecipients));

        let bad_to = Message {
            to: vec![ApiMailbox::new("not an address", "")].into(),
            ..Default::default()
        };
        let error = build(&request(bad_to), None).unwrap_err();
        assert!(
            matches!(
                error,
                MessageError::Address {
                    field: Field::To,
                    ..
                }
            ),
            "{error}"
        );

        for (name, value) in [
            ("Bcc", "x@example.com"),
            ("X-A", "a\r\nBcc: x@example.com"),
            ("X A", "v"),
        ] {
            let message = Message {
                to: vec![ApiMailbox::new("to@example.com", "")].into(),
                headers: vec![Header {
                    name: name.into(),
                    value: value.into(),
                }]
                .into(),
                ..Default::default()
            };
            assert!(build(&request(message), None).is_err(), "{name}: {value:?}");
        }
    }

    #[test]
    fn size_limit_is_checked() {
        let message = Message {
            to: vec![ApiMailbox::new("to@example.com", "")].into(),
            body: "x".repeat(2000).into(),
            ..Default::default()
        };
        let error = build(&request(message.clone()), Some(1000)).unwrap_err();
        assert!(
            matches!(error, MessageError::TooLarge { limit: 1000, .. }),
            "{error}"
        );
        assert!(build(&request(message), Some(100_000)).is_ok());
    }

    #[test]
    fn missing_attachment_is_reported() {
        let message = Message {
            to: vec![ApiMailbox::new("to@example.com", "")].into(),
            attachments: vec![mailhost_plugin_api::Attachment {
                path: "/nonexistent/file.pdf".into(),
                name: "file.pdf".into(),
                content_type: "application/pdf".into(),
                size: 1,
            }]
            .into(),
            ..Default::default()
        };
        let error = build(&request(message), None).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/file.pdf"),
            "{error}"
        );
    }
}

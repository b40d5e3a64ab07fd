//! The shapes of a stored email: what the caller hands in ([`NewEmail`]), what comes back
//! ([`EmailRecord`]), and the conversion back to the plugin API's [`Message`].
//!
//! Records use plain Rust types with serde so the CLI can print them with `--json` directly.

use std::fmt;
use std::str::FromStr;

use mailhost_plugin_api::{
    Attachment, ErrorKind, Header, Mailbox, Message, ProviderError, Receipt,
};
use serde::{Deserialize, Serialize};

/// Where an email is in its life.
///
/// `queued` → `sending` → `sent` | `failed`, and `unknown` when the outcome of a provider call
/// is not known (the process died during the call, or the provider said so): such an email is
/// flagged for the user and never sent again without `--force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Accepted and stored; not yet handed to a provider.
    Queued,
    /// Claimed by a process that is calling the provider now.
    Sending,
    /// The provider accepted it.
    Sent,
    /// The provider refused it; the error is kept and it may be retried.
    Failed,
    /// It may or may not have been sent; the user must check before retrying with `--force`.
    Unknown,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Unknown,
    ];

    /// The lower-case name stored in `mail.db` and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an email status: use one of queued, sending, sent, failed, unknown")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// An address with an optional display name (empty for none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// The address, `user@example.com`.
    pub address: String,
    /// The display name; empty for none.
    #[serde(default)]
    pub name: String,
}

/// A stored attachment: the file is read by the provider at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// The file's path.
    pub path: String,
    /// The name recipients see.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The size in bytes when the email was accepted.
    pub size: u64,
}

/// A stored custom header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRecord {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: String,
}

/// The last error a provider (or the host, on its behalf) reported for an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// The kind's name, as [`ErrorKind::name`] gives it (`throttled`, `permission`, …).
    pub kind: String,
    /// The provider's code; empty for none.
    pub code: String,
    /// What happened and what to change.
    pub message: String,
    /// For throttling: how long the service asked to wait.
    pub retry_after_ms: Option<u64>,
}

impl LastError {
    /// Whether trying again later may succeed (the error was throttling or a temporary fault).
    pub fn is_transient(&self) -> bool {
        ErrorKind::from_name(&self.kind).is_some_and(ErrorKind::is_transient)
    }
}

impl From<&ProviderError> for LastError {
    fn from(error: &ProviderError) -> Self {
        Self {
            kind: error.kind.name().to_string(),
            code: error.code.to_string(),
            message: error.message.to_string(),
            retry_after_ms: error.retry_after_ms.into_option(),
        }
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if !self.code.is_empty() {
            write!(f, " [{}]", self.code)?;
        }
        Ok(())
    }
}

/// What the provider returned for a sent email.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// The provider's id for the message; may be empty.
    pub message_id: String,
    /// The provider's id for the request; may be empty.
    pub request_id: String,
    /// A short note from the provider; may be empty.
    pub detail: String,
}

impl From<&Receipt> for ReceiptRecord {
    fn from(receipt: &Receipt) -> Self {
        Self {
            message_id: receipt.message_id.to_string(),
            request_id: receipt.request_id.to_string(),
            detail: receipt.detail.to_string(),
        }
    }
}

/// A moment, stored as milliseconds since the Unix epoch and shown as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let now = std::time::SystemTime::now();
        let ms = match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::config::time::rfc3339(self.0.div_euclid(1000)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An email to accept into the store.
#[derive(Debug, Clone)]
pub struct NewEmail {
    /// The sending staff member's ID.
    pub staff_id: String,
    /// The registry name of the provider plugin that will send it.
    pub provider: String,
    /// The email; its `id` (a UUID chosen by the caller) becomes the record's id.
    pub message: Message,
    /// For send-batch: the key of the source line, unique across the store; `None` otherwise.
    pub source_key: Option<String>,
    /// The door it came in by.
    pub door: Door,
    /// Its `Message-ID` header value (`<id@mailhost>` unless the client set one).
    pub message_id: String,
    /// For emails that came in as a whole message: the spooled file and its envelope.
    pub mime: Option<MimeSource>,
    /// HTTP API `Idempotency-Key`: a second email with the same key is refused.
    pub idempotency_key: Option<String>,
}

impl NewEmail {
    /// A new email from `door` with no batch key, MIME source or idempotency key, and the
    /// Message-ID the message's headers give (else `<id@mailhost>`).
    pub fn new(staff_id: &str, provider: &str, message: Message, door: Door) -> Self {
        let message_id = message
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("Message-ID"))
            .map(|h| h.value.to_string())
            .unwrap_or_else(|| format!("<{}@mailhost>", message.id));
        Self {
            staff_id: staff_id.to_string(),
            provider: provider.to_string(),
            message,
            source_key: None,
            door,
            message_id,
            mime: None,
            idempotency_key: None,
        }
    }
}

/// The door an email came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// `mailhost email send`.
    Cli,
    /// `mailhost email send-batch`.
    Batch,
    /// `mailhost sendmail`.
    Sendmail,
    /// The SMTP relay.
    Smtp,
    /// The HTTP API.
    Http,
}

impl Door {
    /// The lower-case name stored in mail.db.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Batch => "batch",
            Self::Sendmail => "sendmail",
            Self::Smtp => "smtp",
            Self::Http => "http",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        [Self::Batch, Self::Sendmail, Self::Smtp, Self::Http]
            .into_iter()
            .find(|door| door.as_str() == text)
            .unwrap_or(Self::Cli)
    }
}

/// A whole RFC 5322 message kept in the spool, and the envelope it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimeSource {
    /// The spooled file.
    pub path: String,
    /// The envelope sender (may be empty).
    pub envelope_from: String,
    /// The envelope recipients (Bcc included).
    pub recipients: Vec<String>,
}

/// A stored email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailRecord {
    /// The email's id (the [`Message::id`] providers see).
    pub id: String,
    /// The sending staff member's ID.
    pub staff_id: String,
    /// The provider plugin's registry name.
    pub provider: String,
    /// The From mailbox.
    pub from: Address,
    /// To recipients.
    pub to: Vec<Address>,
    /// Cc recipients.
    pub cc: Vec<Address>,
    /// Bcc recipients.
    pub bcc: Vec<Address>,
    /// Reply-To addresses.
    pub reply_to: Vec<Address>,
    /// The subject.
    pub subject: String,
    /// The body.
    pub body: String,
    /// Whether the body is HTML.
    pub html: bool,
    /// Files to attach.
    pub attachments: Vec<AttachmentRecord>,
    /// Custom headers.
    pub headers: Vec<HeaderRecord>,
    /// Where the email is in its life.
    pub status: Status,
    /// How many times it was handed to a provider.
    pub attempts: u32,
    /// The last error, for `failed` and `unknown` emails (and for `sent` ones that were retried).
    pub error: Option<LastError>,
    /// The provider's receipt, once sent.
    pub receipt: Option<ReceiptRecord>,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When the provider accepted it.
    pub sent_at: Option<Timestamp>,
    /// For send-batch: the key of its source line.
    pub source_key: Option<String>,
    /// The door it came in by.
    pub door: Door,
    /// Its `Message-ID` header value.
    pub message_id: String,
    /// For emails that came in as a whole message: the spooled file and envelope.
    pub mime: Option<MimeSource>,
    /// Not to be tried before this time (a sending limit, or a retry's backoff).
    pub not_before: Option<Timestamp>,
    /// The mailbox the sending limits counted it against (set when first claimed).
    pub mailbox: Option<String>,
    /// How many recipients it has (To, Cc and Bcc, or the envelope's).
    pub recipient_count: u32,
    /// When its first attempt began.
    pub first_attempt_at: Option<Timestamp>,
    /// While `unknown`: when the engine next asks the provider whether it was sent.
    pub reconcile_after: Option<Timestamp>,
    /// HTTP API `Idempotency-Key`.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

impl EmailRecord {
    /// Rebuilds the plugin API message, with the same id, for a (re)send.
    pub fn to_message(&self) -> Message {
        let boxes = |list: &[Address]| list.iter().map(to_mailbox).collect::<Vec<_>>().into();
        Message {
            id: self.id.as_str().into(),
            from: to_mailbox(&self.from),
            to: boxes(&self.to),
            cc: boxes(&self.cc),
            bcc: boxes(&self.bcc),
            reply_to: boxes(&self.reply_to),
            subject: self.subject.as_str().into(),
            body: self.body.as_str().into(),
            html: self.html,
            attachments: self
                .attachments
                .iter()
                .map(|a| Attachment {
                    path: a.path.as_str().into(),
                    name: a.name.as_str().into(),
                    content_type: a.content_type.as_str().into(),
                    size: a.size,
                })
                .collect::<Vec<_>>()
                .into(),
            headers: self.headers_with_message_id().into(),
        }
    }

    /// The custom headers, with `Message-ID` first when the stored headers lack it.
    fn headers_with_message_id(&self) -> Vec<Header> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        let has_id = self
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("Message-ID"));
        if !has_id && !self.message_id.is_empty() {
            headers.push(Header {
                name: "Message-ID".into(),
                value: self.message_id.as_str().into(),
            });
        }
        headers.extend(self.headers.iter().map(|h| Header {
            name: h.name.as_str().into(),
            value: h.value.as_str().into(),
        }));
        headers
    }

    /// Whether the email may be sent again without `--force`: it is queued, or it failed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, Status::Queued | Status::Failed)
    }
}

fn to_mailbox(address: &Address) -> Mailbox {
    Mailbox::new(&address.address, &address.name)
}

/// The plain form of a plugin API mailbox.
pub(crate) fn from_mailbox(mailbox: &Mailbox) -> Address {
    Address {
        address: mailbox.address.to_string(),
        name: mailbox.name.to_string(),
    }
}

/// The plain form of a plugin API attachment.
pub(crate) fn from_attachment(attachment: &Attachment) -> AttachmentRecord {
    AttachmentRecord {
        path: attachment.path.to_string(),
        name: attachment.name.to_string(),
        content_type: attachment.content_type.to_string(),
        size: attachment.size,
    }
}

/// The plain form of a plugin API header.
pub(crate) fn from_header(header: &Header) -> HeaderRecord {
    HeaderRecord {
        name: header.name.to_string(),
        value: header.value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_print() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert_eq!(" Sent ".parse::<Status>(), Ok(Status::Sent));
        let error = "done".parse::<Status>().expect_err("must fail").to_string();
        assert!(
            error.contains("'done'") && error.contains("queued"),
            "{error}"
        );
    }

    #[test]
    fn timestamps_show_as_rfc3339() {
        assert_eq!(
            Timestamp(86_400_000 + 1500).to_string(),
            "1970-01-02T00:00:01Z"
        );
    }

    #[test]
    fn transient_errors_are_recognised() {
        let throttled = LastError::from(&ProviderError::throttled("slow", None));
        assert!(throttled.is_transient());
        let denied = LastError::from(&ProviderError::permission("no").with_code("X"));
        assert!(!denied.is_transient());
        assert_eq!(denied.to_string(), "permission: no [X]");
    }
}

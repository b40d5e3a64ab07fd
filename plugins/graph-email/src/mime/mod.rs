//! Whole RFC 5322 messages (the SMTP relay's and `sendmail`'s) made ready for Microsoft Graph,
//! as pure functions over bytes so they can be tested and fuzzed without a network:
//!
//! * [`rewrite::for_mime_send`]: the message as it goes to MIME `sendMail`. Exchange takes the
//!   recipients of a MIME submission from its To, Cc and Bcc headers, so envelope recipients
//!   the headers do not name (blind copies) are put in a `Bcc` header, which Exchange removes
//!   before delivery; a `Message-ID` is added when the message has none.
//! * [`convert::convert`]: the structured Graph message (bodies, inline parts with their
//!   Content-ID, attachments, Reply-To, `X-` headers, decoded UTF-8 subject and names) for
//!   messages too big for one request, which then go through a draft and upload sessions.
//!
//! Both read the message in the canonical form of [`header_block::canonical`] (CRLF line ends,
//! a header block of well-formed fields only), so that what removes the client's Bcc fields,
//! what parses the recipients and what Exchange reads agree on where each field is.
//!
//! In both the envelope decides who receives: header addresses that are not envelope
//! recipients receive nothing (the message goes structured so that Graph is told exactly).

pub mod convert;
pub mod header_block;
pub mod replay;
pub mod rewrite;

/// Why a message could not be made ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// Not an RFC 5322 message.
    #[error("the message does not parse as RFC 5322 (no header block)")]
    NotAMessage,
    /// No envelope recipients.
    #[error("the message has no envelope recipients")]
    NoRecipients,
    /// An envelope recipient that cannot be written into a header.
    #[error("envelope recipient '{0}' is not an address that can be written into a Bcc header")]
    BadRecipient(String),
}

/// Whether `address` is among `list` (case-insensitive, as Exchange compares them).
pub(crate) fn listed(list: &[String], address: &str) -> bool {
    list.iter()
        .any(|a| a.trim().eq_ignore_ascii_case(address.trim()))
}

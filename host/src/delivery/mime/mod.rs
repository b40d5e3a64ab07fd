//! Whole RFC 5322 messages, as `mailhost sendmail` and the SMTP relay receive them: checked,
//! rewritten for the spool, read into the plugin API's structured [`Message`], and written to
//! the email's spool folder.
//!
//! The steps, in order:
//! 1. [`prepare`] splits the raw bytes (`section.rs`), refusing header injection (a CR that does
//!    not end a line, a NUL, or a decoded header value holding CR/LF), and makes the message the
//!    spool keeps: CRLF line ends, `Bcc` (and `Resent-Bcc`) fields removed (the envelope carries
//!    those recipients), and `Message-ID: <ID@mailhost>`, `Date` and `From` added when missing.
//!    It reads the message with `mail-parser` (`read.rs`): addresses, the decoded subject, X-
//!    headers, the text and HTML bodies (quoted-printable and base64 decoded, every charset
//!    turned into UTF-8) and each attachment and inline part.
//! 2. [`spool::write`] writes `message.eml` and each part (0600 files in a 0700 folder,
//!    fsync'd).
//! 3. [`structured`] builds the [`Message`] a provider without the `mime` capability sends:
//!    - To and Cc are the header's addresses that are also envelope recipients; every other
//!      envelope recipient is a Bcc recipient (the envelope decides who receives).
//!    - One body: the HTML one when the message has HTML, else the text one. With both (a
//!      multipart/alternative), the text alternative stays in the spooled `message.eml`, which
//!      MIME-capable providers send as it is, and is left out of the structured message (its
//!      recipients' clients show the HTML).
//!    - Inline parts (a `cid:` image of a multipart/related) become ordinary attachments: the
//!      API 1.0 `Message` has no Content-ID. [`losses`] names what such a provider loses, for
//!      the info line the engine logs when it sends through one.
//!    - Headers: the `X-` headers. The Message-ID is not among them: today's structured
//!      providers accept only `X-` headers (Graph's rule) and make their own Message-ID; the
//!      record keeps the message's ([`Accepted::message_id`]) for reconciliation.

mod read;
mod section;
pub mod spool;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use mailhost_plugin_api::{Mailbox, Message};

use crate::delivery::compose::Sender;

pub use read::{Part, ReadMessage};
pub use spool::{MESSAGE_FILE, Spooled, SpooledPart};

/// What is wrong with a whole message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// No input at all.
    #[error(
        "the message is empty: write an RFC 5322 message (headers, an empty line, the body) on standard input"
    )]
    Empty,
    /// A CR that does not end a line, in the header section.
    #[error(
        "the message's header line {line} contains a carriage return (CR) that does not end the line, which could inject a header: end header lines with LF or CRLF only"
    )]
    BareCr {
        /// The header line, counting from 1.
        line: usize,
    },
    /// A NUL byte in the header section.
    #[error("the message's header line {line} contains a NUL byte: remove it")]
    Nul {
        /// The header line, counting from 1.
        line: usize,
    },
    /// A decoded header value holding CR or LF (an encoded-word can hide them).
    #[error(
        "the message's {0} contains a line break (CR or LF) once decoded, which is not allowed in email headers"
    )]
    LineBreak(String),
    /// Not parseable as a message.
    #[error("the input is not an RFC 5322 message: it needs headers, an empty line and the body")]
    Unreadable,
    /// An address that is not plausible.
    #[error("the message's {field} address '{value}' is not valid: use user@example.com")]
    Address {
        /// The header.
        field: &'static str,
        /// The address.
        value: String,
    },
    /// A spool file could not be written.
    #[error("cannot write the spool file {}: {reason}", path.display())]
    Spool {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A message made ready for the spool.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The message to spool: CRLF line ends, no Bcc field, Message-ID, Date and From present.
    pub bytes: Vec<u8>,
    /// Its Message-ID, with angle brackets (the client's, or `<ID@mailhost>`).
    pub message_id: String,
    /// What it says (read before the Bcc field was removed).
    pub read: ReadMessage,
}

/// What [`prepare`] adds to a message that lacks it.
#[derive(Debug, Clone)]
pub struct Additions<'a> {
    /// The email's id: a missing Message-ID becomes `<ID@mailhost>`.
    pub id: &'a str,
    /// The From for a message that has none (sendmail: the staff member, or `-f`/`-F`).
    pub from: Option<&'a Mailbox>,
    /// Now, in seconds since the Unix epoch, for a missing Date.
    pub now_unix: i64,
}

/// Header fields the spooled message never carries: the envelope has these recipients.
const DROPPED_FIELDS: [&str; 2] = ["Bcc", "Resent-Bcc"];

/// Checks `raw` and makes the message the spool keeps (see the module documentation).
///
/// # Errors
/// Any [`MimeError`] but [`MimeError::Spool`]: the message is refused and nothing is recorded.
pub fn prepare(raw: &[u8], additions: &Additions<'_>) -> Result<Prepared, MimeError> {
    let section = section::Section::split(raw)?;
    let mut added = Vec::new();
    let message_id = format!("<{}@mailhost>", additions.id);
    if !section.has("Message-ID") {
        added.push(format!("Message-ID: {message_id}"));
    }
    if !section.has("Date") {
        added.push(format!(
            "Date: {}",
            crate::config::time::rfc5322(additions.now_unix)
        ));
    }
    if !section.has("From")
        && let Some(from) = additions.from
    {
        added.push(format!("From: {}", mailbox_field(from)?));
    }
    let read = read::read(&section.write(&[], &added))?;
    let bytes = section.write(&DROPPED_FIELDS, &added);
    let message_id = read.message_id.clone().unwrap_or(message_id);
    Ok(Prepared {
        bytes,
        message_id,
        read,
    })
}

/// Reads a message without preparing it (sendmail reads the From and recipients before the
/// email has an id).
///
/// # Errors
/// As [`prepare`].
pub fn read_only(raw: &[u8]) -> Result<ReadMessage, MimeError> {
    let section = section::Section::split(raw)?;
    read::read(&section.write(&[], &[]))
}

/// `Name <address>` for a header, the name quoted (or RFC 2047-encoded when not ASCII).
///
/// # Errors
/// [`MimeError::LineBreak`] for a name or address holding CR or LF.
fn mailbox_field(mailbox: &Mailbox) -> Result<String, MimeError> {
    if mailbox.address.contains(['\r', '\n']) || mailbox.name.contains(['\r', '\n']) {
        return Err(MimeError::LineBreak("From".into()));
    }
    let name = mailbox.name.trim();
    if name.is_empty() {
        return Ok(mailbox.address.to_string());
    }
    let shown = if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_word(name)
    };
    Ok(format!("{shown} <{}>", mailbox.address))
}

/// An RFC 2047 `B` encoded-word for UTF-8 `text` (split so no word passes 75 characters).
fn encoded_word(text: &str) -> String {
    use base64::Engine as _;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The envelope of a whole-message email: who it is from and who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope sender (`-f`, `MAIL FROM`); empty for none.
    pub from: String,
    /// The recipients (Bcc included). They decide who receives.
    pub recipients: Vec<String>,
}

/// The structured message for providers without the `mime` capability (see the module
/// documentation for what it keeps). `parts` are the spooled parts of `read.parts`.
pub fn structured(
    id: &str,
    prepared: &Prepared,
    envelope: &Envelope,
    parts: &[SpooledPart],
    sender: &Sender,
) -> Message {
    let read = &prepared.read;
    let in_envelope = |m: &&Mailbox| {
        envelope
            .recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&m.address))
    };
    let to: Vec<Mailbox> = read.to.iter().filter(in_envelope).cloned().collect();
    let cc: Vec<Mailbox> = read
        .cc
        .iter()
        .filter(in_envelope)
        .filter(|m| {
            !to.iter()
                .any(|t| t.address.eq_ignore_ascii_case(&m.address))
        })
        .cloned()
        .collect();
    let mut bcc: Vec<Mailbox> = Vec::new();
    for recipient in &envelope.recipients {
        let listed = to
            .iter()
            .chain(&cc)
            .chain(&bcc)
            .any(|m| m.address.eq_ignore_ascii_case(recipient));
        if !listed {
            let name = read
                .bcc
                .iter()
                .find(|m| m.address.eq_ignore_ascii_case(recipient))
                .map(|m| m.name.to_string())
                .unwrap_or_default();
            bcc.push(Mailbox::new(recipient, &name));
        }
    }
    let mut from = read
        .from
        .first()
        .cloned()
        .unwrap_or_else(|| Mailbox::new(&sender.email, &sender.name));
    if from.name.is_empty() && from.address.eq_ignore_ascii_case(&sender.email) {
        from.name = sender.name.as_str().into();
    }
    let (body, html) = match (&read.html, &read.text) {
        (Some(html), _) => (html.clone(), true),
        (None, Some(text)) => (text.clone(), false),
        (None, None) => (String::new(), false),
    };
    let headers = read.headers.clone();
    Message {
        id: id.into(),
        from,
        to: to.into(),
        cc: cc.into(),
        bcc: bcc.into(),
        reply_to: read.reply_to.clone().into(),
        subject: read.subject.as_str().into(),
        body: body.into(),
        html,
        attachments: parts
            .iter()
            .map(|p| p.attachment.clone())
            .collect::<Vec<_>>()
            .into(),
        headers: headers.into(),
    }
}

/// A whole message accepted into its spool folder: the structured message for the record
/// (attachment paths in the spool) and what was written.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The structured message (see [`structured`]).
    pub message: Message,
    /// The files written.
    pub spooled: Spooled,
    /// The message's Message-ID, with angle brackets.
    pub message_id: String,
}

/// [`prepare`], [`spool::write`] into `folder` and [`structured`], in that order: the message
/// is checked before anything is written. On an error after the folder was created, the caller
/// removes the folder.
///
/// # Errors
/// The message is refused ([`prepare`]), or the spool cannot be written.
pub fn accept(
    folder: &Path,
    raw: &[u8],
    additions: &Additions<'_>,
    envelope: &Envelope,
    sender: &Sender,
) -> Result<Accepted, MimeError> {
    let prepared = prepare(raw, additions)?;
    let spooled = spool::write(folder, &prepared.bytes, &prepared.read.parts)?;
    let message = structured(additions.id, &prepared, envelope, &spooled.parts, sender);
    Ok(Accepted {
        message,
        spooled,
        message_id: prepared.message_id,
    })
}

/// [`losses`] of a spooled message file, for the info line of a send through a provider
/// without the `mime` capability (empty when the file cannot be read: the send goes on).
pub fn losses_of_file(path: &Path) -> Vec<&'static str> {
    match std::fs::read(path) {
        Ok(bytes) => read::read(&bytes).map(|r| losses(&r)).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// What a provider without the `mime` capability loses of `read`, one phrase each (empty when
/// the structured message carries everything).
pub fn losses(read: &ReadMessage) -> Vec<&'static str> {
    let mut lost = Vec::new();
    if read.inline_parts().next().is_some() {
        lost.push("inline images are sent as attachments");
    }
    if read.html.is_some() && read.text.is_some() {
        lost.push("the plain-text alternative is left out (the HTML body is sent)");
    }
    lost
}

//! Turns what a user asked for (command-line flags, or a `send-batch` JSON line) into a checked
//! [`Message`]: addresses are plausible, no header value holds CR or LF, custom headers are
//! `X-` headers, attachments are readable files (size recorded, content type guessed).
//!
//! [`Draft`] deserialises from the `send-batch` line format (`to`, `cc`, `bcc`, `reply_to`,
//! `from`, `subject`, `body`, `html`, `attach`), so both paths share one validation.

use std::fs;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::{Attachment, Header, Mailbox, Message, is_plausible_address};
use serde::{Deserialize, Serialize};

/// What is wrong with an email's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// A recipient or sender address.
    #[error(
        "{field} address '{value}' is not valid: use user@example.com or \"Name <user@example.com>\""
    )]
    Address {
        /// to, cc, bcc, reply-to, from.
        field: &'static str,
        /// The text given.
        value: String,
    },
    /// CR or LF in a header value.
    #[error("the {0} contains a line break (CR or LF), which is not allowed in email headers")]
    LineBreak(String),
    /// No recipient at all.
    #[error("no recipients: give at least one --to, --cc or --bcc address")]
    NoRecipients,
    /// Both --body and --body-file.
    #[error("give either --body or --body-file, not both")]
    TwoBodies,
    /// The body file.
    #[error("cannot read the body file {}: {reason}", path.display())]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A custom header.
    #[error("header '{header}' is not accepted: {reason}")]
    Header {
        /// The text given.
        header: String,
        /// Why.
        reason: String,
    },
    /// An attachment.
    #[error("attachment {}: {reason}", path.display())]
    Attachment {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The user's request for one email, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Draft {
    /// To addresses.
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Bcc addresses.
    pub bcc: Vec<String>,
    /// Reply-To addresses.
    pub reply_to: Vec<String>,
    /// An alternate From address (Send As / on behalf).
    pub from: Option<String>,
    /// The subject.
    pub subject: String,
    /// The body text.
    pub body: Option<String>,
    /// A file holding the body.
    pub body_file: Option<PathBuf>,
    /// Whether the body is HTML.
    pub html: bool,
    /// Files to attach.
    pub attach: Vec<PathBuf>,
    /// Custom headers, `X-Name: value`.
    pub headers: Vec<String>,
}

/// The sending staff member's own mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Their address.
    pub email: String,
    /// Their display name; may be empty.
    pub name: String,
}

/// A new email id (UUID v4).
pub fn new_email_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Validates `draft` and builds the message `id` sent by `sender`. The From is the sender's
/// mailbox, or `draft.from` with no display name unless it is the sender's own address.
///
/// # Errors
/// The first problem found, naming the field and what to change.
pub fn compose(draft: &Draft, sender: &Sender, id: &str) -> Result<Message, ComposeError> {
    let from = match &draft.from {
        None => Mailbox::new(&sender.email, &sender.name),
        Some(text) => {
            let mut mailbox = parse_mailbox("from", text)?;
            if mailbox.name.is_empty() && mailbox.address.eq_ignore_ascii_case(&sender.email) {
                mailbox.name = sender.name.as_str().into();
            }
            mailbox
        }
    };
    if from.name.contains(['\r', '\n']) {
        return Err(ComposeError::LineBreak("sender's display name".into()));
    }
    let to = parse_list("to", &draft.to)?;
    let cc = parse_list("cc", &draft.cc)?;
    let bcc = parse_list("bcc", &draft.bcc)?;
    let reply_to = parse_list("reply-to", &draft.reply_to)?;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(ComposeError::NoRecipients);
    }
    if draft.subject.contains(['\r', '\n']) {
        return Err(ComposeError::LineBreak("subject".into()));
    }
    let body = match (&draft.body, &draft.body_file) {
        (Some(_), Some(_)) => return Err(ComposeError::TwoBodies),
        (Some(body), None) => body.clone(),
        (None, Some(path)) => fs::read_to_string(path).map_err(|e| ComposeError::BodyFile {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        (None, None) => String::new(),
    };
    let headers = draft
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let attachments = draft
        .attach
        .iter()
        .map(|p| attachment(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Message {
        id: id.into(),
        from,
        to: to.into(),
        cc: cc.into(),
        bcc: bcc.into(),
        reply_to: reply_to.into(),
        subject: draft.subject.as_str().into(),
        body: body.into(),
        html: draft.html,
        attachments: attachments.into(),
        headers: headers.into(),
    })
}

fn parse_list(field: &'static str, values: &[String]) -> Result<Vec<Mailbox>, ComposeError> {
    values.iter().map(|v| parse_mailbox(field, v)).collect()
}

/// Parses `user@example.com` or `Name <user@example.com>`.
///
/// # Errors
/// The address is not plausible or the name holds a line break.
pub fn parse_mailbox(field: &'static str, text: &str) -> Result<Mailbox, ComposeError> {
    if text.contains(['\r', '\n']) {
        return Err(ComposeError::LineBreak(format!("{field} address")));
    }
    let trimmed = text.trim();
    let (name, address) = match (trimmed.rfind('<'), trimmed.strip_suffix('>')) {
        (Some(open), Some(inner)) => {
            let name = trimmed[..open].trim().trim_matches('"').trim();
            (name, inner[open + 1..].trim())
        }
        _ => ("", trimmed),
    };
    if !is_plausible_address(address) || name.contains(['<', '>']) {
        return Err(ComposeError::Address {
            field,
            value: text.to_string(),
        });
    }
    Ok(Mailbox::new(address, name))
}

/// Parses `X-Name: value`.
///
/// # Errors
/// No colon, a name that is not an `X-` token, or a line break in the value.
pub fn parse_header(text: &str) -> Result<Header, ComposeError> {
    let bad = |reason: &str| ComposeError::Header {
        header: text.to_string(),
        reason: reason.to_string(),
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("write it as 'X-Name: value'"))?;
    let name = name.trim();
    let is_token = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !is_token {
        return Err(bad("the name may hold only letters, digits, '-' and '_'"));
    }
    if !name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("X-")) || name.len() < 3 {
        return Err(bad("only custom headers starting with 'X-' may be set"));
    }
    if value.contains(['\r', '\n']) {
        return Err(bad("the value contains a line break (CR or LF)"));
    }
    Ok(Header {
        name: name.into(),
        value: value.trim().into(),
    })
}

fn attachment(path: &Path) -> Result<Attachment, ComposeError> {
    let bad = |reason: String| ComposeError::Attachment {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    fs::File::open(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let absolute = fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
    let name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into());
    if name.contains(['\r', '\n']) {
        return Err(bad("its file name contains a line break".into()));
    }
    Ok(Attachment {
        path: absolute.to_string_lossy().as_ref().into(),
        content_type: content_type_for(&name).into(),
        name: name.into(),
        size: meta.len(),
    })
}

/// The MIME type for a file name, from its extension; `application/octet-stream` if unknown.
pub fn content_type_for(name: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("pdf", "application/pdf"),
        ("txt", "text/plain"),
        ("csv", "text/csv"),
        ("htm", "text/html"),
        ("html", "text/html"),
        ("xml", "application/xml"),
        ("json", "application/json"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("svg", "image/svg+xml"),
        ("webp", "image/webp"),
        ("zip", "application/zip"),
        ("gz", "application/gzip"),
        ("doc", "application/msword"),
        (
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("xls", "application/vnd.ms-excel"),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("ics", "text/calendar"),
        ("eml", "message/rfc822"),
    ];
    let extension = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    TABLE
        .iter()
        .find(|(ext, _)| *ext == extension)
        .map_or("application/octet-stream", |(_, ty)| ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender {
            email: "adele@contoso.com".into(),
            name: "Adele Vance".into(),
        }
    }

    fn draft() -> Draft {
        Draft {
            to: vec!["alex@contoso.com".into()],
            subject: "Hello".into(),
            body: Some("Hi".into()),
            ..Draft::default()
        }
    }

    #[test]
    fn builds_a_message_from_the_staff_member() {
        let message = compose(&draft(), &sender(), "id-1").expect("compose");
        assert_eq!(message.id.as_str(), "id-1");
        assert_eq!(
            message.from,
            Mailbox::new("adele@contoso.com", "Adele Vance")
        );
        assert_eq!(message.to[0].address.as_str(), "alex@contoso.com");
        assert_eq!(message.body.as_str(), "Hi");
    }

    #[test]
    fn alternate_from_has_no_display_name_unless_own() {
        let mut d = draft();
        d.from = Some("sales@contoso.com".into());
        let message = compose(&d, &sender(), "i").expect("compose");
        assert_eq!(message.from, Mailbox::new("sales@contoso.com", ""));
        d.from = Some("ADELE@contoso.com".into());
        let message = compose(&d, &sender(), "i").expect("compose");
        assert_eq!(message.from.name.as_str(), "Adele Vance");
    }

    #[test]
    fn line_breaks_are_refused() {
        let mut d = draft();
        d.subject = "Hi\r\nBcc: evil@x.com".into();
        assert_eq!(
            compose(&d, &sender(), "i").unwrap_err(),
            ComposeError::LineBreak("subject".into())
        );
        let mut d = draft();
        d.to = vec!["Evil\n <a@x.com>".into()];
        assert!(matches!(
            compose(&d, &sender(), "i"),
            Err(ComposeError::LineBreak(_))
        ));
        let mut s = sender();
        s.name = "A\nB".into();
        assert!(compose(&draft(), &s, "i").is_err());
        assert!(parse_header("X-Id: a\r\nBcc: x").is_err());
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            parse_mailbox("to", "\"Alex W\" <alex@contoso.com>").expect("named"),
            Mailbox::new("alex@contoso.com", "Alex W")
        );
        for bad in [
            "alex",
            "alex@contoso",
            "a@x.com;b@x.com",
            "<>",
            "a <b@x.com",
        ] {
            assert!(parse_mailbox("to", bad).is_err(), "{bad}");
        }
        let mut d = draft();
        d.to.clear();
        assert_eq!(
            compose(&d, &sender(), "i").unwrap_err(),
            ComposeError::NoRecipients
        );
        d.bcc = vec!["x@y.com".into()];
        assert!(compose(&d, &sender(), "i").is_ok());
    }

    #[test]
    fn headers_must_be_custom() {
        assert_eq!(
            parse_header("X-Order-Id: 42").expect("ok"),
            Header {
                name: "X-Order-Id".into(),
                value: "42".into()
            }
        );
        assert!(parse_header("Subject: x").is_err());
        assert!(parse_header("X-: x").is_err());
        assert!(parse_header("X Bad: x").is_err());
        assert!(parse_header("X-Nocolon").is_err());
    }

    #[test]
    fn attachments_are_checked_and_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pdf = dir.path().join("Report.PDF");
        fs::write(&pdf, b"%PDF-1.4").expect("write");
        let mut d = draft();
        d.attach = vec![pdf.clone()];
        let message = compose(&d, &sender(), "i").expect("compose");
        let a = &message.attachments[0];
        assert_eq!(
            (a.name.as_str(), a.content_type.as_str(), a.size),
            ("Report.PDF", "application/pdf", 8)
        );
        d.attach = vec![dir.path().join("missing.bin")];
        assert!(matches!(
            compose(&d, &sender(), "i"),
            Err(ComposeError::Attachment { .. })
        ));
        d.attach = vec![dir.path().to_path_buf()];
        assert!(matches!(
            compose(&d, &sender(), "i"),
            Err(ComposeError::Attachment { .. })
        ));
        assert_eq!(content_type_for("x.unknown"), "application/octet-stream");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }

    #[test]
    fn body_sources_are_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("body.html");
        fs::write(&file, "<p>hi</p>").expect("write");
        let mut d = draft();
        d.body = None;
        d.body_file = Some(file);
        assert_eq!(
            compose(&d, &sender(), "i").expect("compose").body.as_str(),
            "<p>hi</p>"
        );
        d.body = Some("x".into());
        assert_eq!(
            compose(&d, &sender(), "i").unwrap_err(),
            ComposeError::TwoBodies
        );
    }

    #[test]
    fn drafts_parse_from_batch_lines() {
        let d: Draft = serde_json::from_str(
            r#"{"to":["a@x.com"],"subject":"s","html":true,"attach":["/tmp/a.pdf"],"reply_to":["r@x.com"]}"#,
        )
        .expect("parse");
        assert!(d.html && d.reply_to.len() == 1 && d.attach.len() == 1);
        assert!(serde_json::from_str::<Draft>(r#"{"too":["a@x.com"]}"#).is_err());
        assert_ne!(new_email_id(), new_email_id());
    }
}

//! The edge-case messages a check sends, each with a marker id (`mailhost-check-<case>`).

use std::path::Path;

use mailhost_plugin_api::{Attachment, Header, Mailbox, Message};

/// Recipients per field in the many-recipients case.
pub const MANY: usize = 100;

/// One send case: its check name, what it sends (for the crash line), and the message.
#[derive(Debug, Clone)]
pub struct Case {
    /// The check name, `send:<case>`.
    pub name: &'static str,
    /// What it sends, in a few words.
    pub what: &'static str,
    /// The message.
    pub message: Message,
}

/// A plain message from `from` to one recipient with the marker id `mailhost-check-<id>`.
pub fn base(id: &str, from: &Mailbox) -> Message {
    Message {
        id: format!("mailhost-check-{id}").into(),
        from: from.clone(),
        to: vec![Mailbox::new("megan.bowen@example.com", "Megan Bowen")].into(),
        subject: "mailhost plugin check".into(),
        body: "This message was sent by `mailhost plugin check`.".into(),
        ..Default::default()
    }
}

fn many(prefix: &str) -> Vec<Mailbox> {
    (0..MANY)
        .map(|i| {
            Mailbox::new(
                &format!("{prefix}{i:03}@example.com"),
                &format!("Récipient {i} ✓"),
            )
        })
        .collect()
}

/// The edge cases: unicode subject and names, empty body, HTML body, 100 each of to/cc/bcc,
/// an attachment (the file at `attachment`), a custom `X-` header.
pub fn cases(from: &Mailbox, attachment: &Path, attachment_size: u64) -> Vec<Case> {
    let mut unicode = base("unicode", from);
    unicode.subject = "Grüße aus Zürich — 測試 ✓ 🚀 Ωμέγα".into();
    unicode.to = vec![Mailbox::new("megan.bowen@example.com", "Mégan Bøwen 李 😀")].into();
    unicode.body = "Unicode body: ünïcödé, 中文, العربية, emoji 📬.".into();
    let mut empty = base("empty-body", from);
    empty.body = "".into();
    let mut html = base("html", from);
    html.html = true;
    html.body = "<!DOCTYPE html><html><body><h1>Hello</h1><p>caf&eacute; &amp; <b>bold</b> ✓</p></body></html>".into();
    let mut crowd = base("many-recipients", from);
    crowd.to = many("to").into();
    crowd.cc = many("cc").into();
    crowd.bcc = many("bcc").into();
    let mut attached = base("attachment", from);
    attached.attachments = vec![Attachment {
        path: attachment.display().to_string().into(),
        name: "check-attachment.txt".into(),
        content_type: "text/plain".into(),
        size: attachment_size,
    }]
    .into();
    let mut header = base("custom-header", from);
    header.headers = vec![Header {
        name: "X-Mailhost-Check".into(),
        value: "custom header value ✓".into(),
    }]
    .into();
    vec![
        Case {
            name: "send:unicode",
            what: "a message with a unicode subject and display names",
            message: unicode,
        },
        Case {
            name: "send:empty-body",
            what: "a message with an empty body",
            message: empty,
        },
        Case {
            name: "send:html",
            what: "an HTML message",
            message: html,
        },
        Case {
            name: "send:many-recipients",
            what: "a message to 100 To, 100 Cc and 100 Bcc recipients",
            message: crowd,
        },
        Case {
            name: "send:attachment",
            what: "a message with an attachment",
            message: attached,
        },
        Case {
            name: "send:custom-header",
            what: "a message with a custom X- header",
            message: header,
        },
    ]
}

/// The probe for panic containment: marker id `mailhost-check-panic-probe`, no recipients, no
/// From, an attachment whose file does not exist and a header with an empty name. A provider
/// should refuse it with an error; a contained panic comes back as an internal error with code
/// `panic`.
pub fn hostile(missing: &Path) -> Message {
    Message {
        id: "mailhost-check-panic-probe".into(),
        attachments: vec![Attachment {
            path: missing.display().to_string().into(),
            name: "missing.bin".into(),
            content_type: "application/octet-stream".into(),
            size: 1,
        }]
        .into(),
        headers: vec![Header {
            name: "".into(),
            value: "".into(),
        }]
        .into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_have_marker_ids_and_the_edge_cases() {
        let from = Mailbox::new("a@example.com", "A");
        let cases = cases(&from, Path::new("/tmp/a.txt"), 3);
        assert_eq!(cases.len(), 6);
        assert!(
            cases
                .iter()
                .all(|c| c.message.id.starts_with("mailhost-check-"))
        );
        let crowd = &cases[3].message;
        assert_eq!(
            (crowd.to.len(), crowd.cc.len(), crowd.bcc.len()),
            (MANY, MANY, MANY)
        );
        assert!(!cases[0].message.subject.is_ascii());
        assert!(hostile(Path::new("/nope")).recipients().next().is_none());
    }
}

//! Direct calls of the provider, reading the written files back with mail-parser.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};
use mailhost_plugin_api::abi_stable::std_types::{ROption, RVec};
use mailhost_plugin_api::{
    Attachment, ErrorKind, Header, Mailbox, Message, Provider, SendRequest, Setting, StaffMember,
};

use super::*;

fn staff() -> StaffMember {
    StaffMember {
        id: "adele".into(),
        email: "adele@contoso.com".into(),
        display_name: "Adele Vance".into(),
        username: "".into(),
        password: ROption::RNone,
        fields: RVec::new(),
    }
}

fn request(dir: &Path) -> SendRequest {
    SendRequest {
        settings: vec![Setting::new(DIRECTORY, dir.to_str().unwrap())].into(),
        staff: staff(),
        message: Message {
            id: "1".into(),
            from: Mailbox::new("adele@contoso.com", "Adele Vance"),
            to: vec![Mailbox::new("megan@contoso.com", "Megan Bowen")].into(),
            subject: "Quarterly report".into(),
            body: "Hello Megan,\r\nsee attached.\r\n".into(),
            ..Message::default()
        },
    }
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn describes_itself() {
    let info = PickupDir.describe().unwrap();
    assert_eq!(info.name.as_str(), "pickup-dir");
    assert_eq!(info.display_name.as_str(), "Pickup Directory");
    let directory = info
        .settings
        .iter()
        .find(|s| s.key.as_str() == DIRECTORY)
        .unwrap();
    assert!(directory.required);
    assert_eq!(directory.kind, SettingKind::PATH);
    let limit = info
        .settings
        .iter()
        .find(|s| s.key.as_str() == MAX_MESSAGE_BYTES)
        .unwrap();
    assert_eq!(
        limit.default.as_ref().map(|d| d.as_str()),
        ROption::RSome("36700160")
    );
}

#[test]
fn writes_one_eml_file_that_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.subject = "Rapport trimestriel — Ünïcödé ✓".into();
    req.message.cc = vec![Mailbox::new("lidia@contoso.com", "")].into();
    req.message.reply_to = vec![Mailbox::new("replies@contoso.com", "Replies")].into();
    req.message.headers = vec![Header {
        name: "X-Order-Id".into(),
        value: "PO-1234".into(),
    }]
    .into();
    let receipt = PickupDir.send(&req).unwrap();

    let files = eml_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(receipt.detail.as_str(), files[0].to_str().unwrap());
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".eml"), "{name}");
    assert!(
        name.contains(receipt.message_id.trim_matches(|c| c == '<' || c == '>')),
        "{name}"
    );

    let raw = std::fs::read(&files[0]).unwrap();
    assert!(raw.starts_with(b"X-Sender: adele@contoso.com\r\n"));
    let parsed = MessageParser::new().parse(&raw).unwrap();
    assert_eq!(parsed.subject(), Some("Rapport trimestriel — Ünïcödé ✓"));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("adele@contoso.com"));
    assert_eq!(from.name(), Some("Adele Vance"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(
        (to.address(), to.name()),
        (Some("megan@contoso.com"), Some("Megan Bowen"))
    );
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().address(),
        Some("lidia@contoso.com")
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@contoso.com")
    );
    assert_eq!(
        parsed.message_id().map(|id| format!("<{id}>")).as_deref(),
        Some(receipt.message_id.as_str())
    );
    assert_eq!(
        parsed.header("X-Order-Id").and_then(|h| h.as_text()),
        Some("PO-1234")
    );
    assert_eq!(
        parsed.body_text(0).as_deref().map(str::trim_end),
        Some("Hello Megan,\r\nsee attached.")
    );
}

#[test]
fn bcc_is_only_in_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.cc = vec![Mailbox::new("lidia@contoso.com", "")].into();
    req.message.bcc = vec![Mailbox::new("secret@contoso.com", "Hidden")].into();
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read(receipt.detail.as_str()).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with(
            "X-Sender: adele@contoso.com\r\nX-Receiver: megan@contoso.com\r\nX-Receiver: lidia@contoso.com\r\nX-Receiver: secret@contoso.com\r\n"
        ),
        "{text}"
    );
    let parsed = MessageParser::new().parse(&raw).unwrap();
    assert!(parsed.bcc().is_none());
    assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");
}

#[test]
fn a_bcc_only_message_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.to = RVec::new();
    req.message.bcc = vec![Mailbox::new("secret@contoso.com", "")].into();
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read_to_string(receipt.detail.as_str()).unwrap();
    assert!(raw.contains("X-Receiver: secret@contoso.com\r\n"), "{raw}");
}

#[test]
fn html_bodies_are_html() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.html = true;
    req.message.body = "<p>Hello <b>Megan</b></p>".into();
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read(receipt.detail.as_str()).unwrap();
    let parsed = MessageParser::new().parse(&raw).unwrap();
    assert_eq!(
        parsed.body_html(0).as_deref().map(str::trim_end),
        Some("<p>Hello <b>Megan</b></p>")
    );
}

#[test]
fn attachments_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let text_path = files.path().join("notes.txt");
    std::fs::write(&text_path, "line one\nline two\n").unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let bin_path = files.path().join("blob.bin");
    std::fs::write(&bin_path, &binary).unwrap();

    let mut req = request(dir.path());
    req.message.attachments = vec![
        Attachment {
            path: text_path.to_str().unwrap().into(),
            name: "notes.txt".into(),
            content_type: "text/plain".into(),
            size: 18,
        },
        Attachment {
            path: bin_path.to_str().unwrap().into(),
            name: "".into(),
            content_type: "application/octet-stream".into(),
            size: 70_000,
        },
    ]
    .into();
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read(receipt.detail.as_str()).unwrap();
    let parsed = MessageParser::new().parse(&raw).unwrap();
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some("notes.txt"));
    assert_eq!(attachments[0].contents(), b"line one\nline two\n");
    assert_eq!(attachments[1].attachment_name(), Some("blob.bin"));
    assert_eq!(attachments[1].contents(), binary.as_slice());
    assert!(String::from_utf8_lossy(&raw).contains("Content-Transfer-Encoding: base64"));
    assert!(parsed.body_text(0).unwrap().contains("see attached."));
}

#[test]
fn leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path());
    for _ in 0..5 {
        PickupDir.send(&req).unwrap();
    }
    let files = eml_files(dir.path());
    assert_eq!(files.len(), 5);
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "eml")),
        "{files:?}"
    );
}

#[test]
fn a_missing_directory_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = PickupDir.send(&request(&missing)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("Directory"), "{error}");
    assert!(error.message.contains("does not exist"), "{error}");
    assert!(
        error
            .message
            .contains("mailhost config set pickup-dir Directory"),
        "{error}"
    );

    let mut unset = request(dir.path());
    unset.settings = RVec::new();
    let error = PickupDir.send(&unset).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("Directory"), "{error}");

    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let error = PickupDir.send(&request(&file)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("is not a folder"), "{error}");

    let error = PickupDir
        .send(&request(Path::new("relative/dir")))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("relative"), "{error}");
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_is_a_configuration_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    // root ignores permission bits: then there is nothing to test.
    if std::fs::write(locked.join("probe"), "x").is_ok() {
        eprintln!("skipped: running with privileges that bypass file permissions");
        return;
    }
    let error = PickupDir.send(&request(&locked)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("cannot write"), "{error}");
    assert!(error.message.contains("Directory"), "{error}");
}

#[test]
fn an_unreadable_attachment_is_an_invalid_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    let missing = dir.path().join("gone.pdf");
    req.message.attachments = vec![Attachment {
        path: missing.to_str().unwrap().into(),
        name: "gone.pdf".into(),
        content_type: "application/pdf".into(),
        size: 10,
    }]
    .into();
    let error = PickupDir.send(&req).unwrap_err();
    assert_eq!(error.kind, ErrorKind::INVALID_MESSAGE);
    assert!(error.message.contains("gone.pdf"), "{error}");
    assert!(eml_files(dir.path()).is_empty());
}

#[test]
fn too_large_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 10_000]).unwrap();
    let mut req = request(dir.path());
    req.settings.push(Setting::new(MAX_MESSAGE_BYTES, "5000"));
    req.message.attachments = vec![Attachment {
        path: big.to_str().unwrap().into(),
        name: "big.bin".into(),
        content_type: "application/octet-stream".into(),
        size: 10_000,
    }]
    .into();
    let error = PickupDir.send(&req).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TOO_LARGE);
    assert!(error.message.contains("MaxMessageBytes"), "{error}");

    // Under the raw limit but over it once base64-encoded: refused after composing.
    req.settings.pop();
    req.settings.push(Setting::new(MAX_MESSAGE_BYTES, "11000"));
    let error = PickupDir.send(&req).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TOO_LARGE);
    assert!(eml_files(dir.path()).is_empty());

    req.settings.pop();
    req.settings.push(Setting::new(MAX_MESSAGE_BYTES, "lots"));
    let error = PickupDir.send(&req).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
}

#[test]
fn header_injection_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.subject = "Hi\r\nBcc: evil@example.com".into();
    assert_eq!(
        PickupDir.send(&req).unwrap_err().kind,
        ErrorKind::INVALID_MESSAGE
    );

    let mut req = request(dir.path());
    req.message.headers = vec![Header {
        name: "Bcc".into(),
        value: "evil@example.com".into(),
    }]
    .into();
    let error = PickupDir.send(&req).unwrap_err();
    assert_eq!(error.kind, ErrorKind::INVALID_MESSAGE);
    assert!(error.message.contains("Bcc"), "{error}");

    let mut req = request(dir.path());
    req.message.to = vec![Mailbox::new("not an address", "")].into();
    assert_eq!(PickupDir.send(&req).unwrap_err().kind, ErrorKind::RECIPIENT);
    assert!(eml_files(dir.path()).is_empty());
}

#[test]
fn another_from_address_names_the_staff_member_as_sender() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.from = Mailbox::new("sales@contoso.com", "Contoso Sales");
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read(receipt.detail.as_str()).unwrap();
    assert!(raw.starts_with(b"X-Sender: adele@contoso.com\r\n"));
    let parsed = MessageParser::new().parse(&raw).unwrap();
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("sales@contoso.com")
    );
    assert_eq!(
        parsed.sender().unwrap().first().unwrap().address(),
        Some("adele@contoso.com")
    );
}

#[test]
fn an_empty_from_falls_back_to_the_staff_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.message.from = Mailbox::default();
    let receipt = PickupDir.send(&req).unwrap();
    let raw = std::fs::read(receipt.detail.as_str()).unwrap();
    let parsed = MessageParser::new().parse(&raw).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.address(), from.name()),
        (Some("adele@contoso.com"), Some("Adele Vance"))
    );
    assert!(parsed.sender().is_none());
}

fn mime_request(dir: &Path, message: &[u8], extra: &[(&str, &str)]) -> MimeSendRequest {
    let file = dir.join("spooled.eml");
    std::fs::write(&file, message).unwrap();
    let mut request = request(&dir.join("out"));
    std::fs::create_dir_all(dir.join("out")).unwrap();
    for (key, value) in extra {
        request.settings.push(Setting::new(key, value));
    }
    MimeSendRequest {
        request,
        mime_path: file.to_str().unwrap().into(),
        mime_size: message.len() as u64,
        envelope_from: "adele@contoso.com".into(),
        recipients: vec!["megan@contoso.com".into(), "audit@contoso.com".into()].into(),
    }
}

#[test]
fn whole_messages_are_written_as_they_came_in() {
    let dir = tempfile::tempdir().unwrap();
    let message = b"From: adele@contoso.com\r\nTo: megan@contoso.com\r\nMessage-ID:\r\n <abc@client.example>\r\nSubject: s\r\n\r\n<p>hi</p>\r\n";
    let receipt = PickupDir
        .send_mime(&mime_request(dir.path(), message, &[]))
        .unwrap();
    assert_eq!(receipt.message_id.as_str(), "<abc@client.example>");
    let files = eml_files(&dir.path().join("out"));
    assert_eq!(files.len(), 1);
    assert!(
        files[0]
            .to_str()
            .unwrap()
            .ends_with("-abc@client.example.eml")
    );
    let written = std::fs::read(&files[0]).unwrap();
    let envelope = b"X-Sender: adele@contoso.com\r\nX-Receiver: megan@contoso.com\r\nX-Receiver: audit@contoso.com\r\n";
    assert_eq!(&written[..envelope.len()], envelope);
    assert_eq!(&written[envelope.len()..], message);
    assert!(PickupDir.describe().unwrap().has_capability("mime"));
}

#[test]
fn whole_messages_can_be_rebuilt_from_their_parts() {
    let dir = tempfile::tempdir().unwrap();
    let request = mime_request(
        dir.path(),
        b"Subject: x\r\n\r\nraw\r\n",
        &[(WHOLE_MESSAGES, "false")],
    );
    PickupDir.send_mime(&request).unwrap();
    let written = std::fs::read(&eml_files(&dir.path().join("out"))[0]).unwrap();
    let parsed = MessageParser::default().parse(&written).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Quarterly report"),
        "the structured message was written"
    );
}

#[test]
fn whole_messages_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = mime_request(dir.path(), b"Subject: x\r\n\r\nb\r\n", &[]);
    request.recipients = vec!["megan@contoso.com\r\nX-Receiver: eve@x.com".into()].into();
    let error = PickupDir.send_mime(&request).unwrap_err();
    assert_eq!(error.kind, ErrorKind::RECIPIENT);
    let mut request = mime_request(
        dir.path(),
        b"Subject: x\r\n\r\nb\r\n",
        &[(MAX_MESSAGE_BYTES, "5")],
    );
    request.mime_size = 100;
    assert_eq!(
        PickupDir.send_mime(&request).unwrap_err().kind,
        ErrorKind::TOO_LARGE
    );
    let mut request = mime_request(dir.path(), b"Subject: x\r\n\r\nb\r\n", &[]);
    request.mime_path = dir.path().join("gone.eml").to_str().unwrap().into();
    assert!(PickupDir.send_mime(&request).is_err());
    assert!(eml_files(&dir.path().join("out")).is_empty());
}

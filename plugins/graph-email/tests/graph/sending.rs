//! What is sent: bodies, recipients, headers, alternate From both ways, attachments of every
//! size, and the checks made before any request.

use std::io::Write as _;

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{Attachment, ErrorKind, Header, Mailbox};
use sha2::{Digest, Sha256};

use crate::support::*;

fn file_of(dir: &tempfile::TempDir, name: &str, size: usize) -> (Attachment, String) {
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    let mut hasher = Sha256::new();
    let mut written = 0usize;
    let mut block = vec![0u8; 64 * 1024];
    let mut seed_byte: u8 = name.len() as u8;
    while written < size {
        let n = block.len().min(size - written);
        for b in block.iter_mut().take(n) {
            seed_byte = seed_byte.wrapping_mul(31).wrapping_add(7);
            *b = seed_byte;
        }
        file.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        written += n;
    }
    let attachment = Attachment {
        path: path.to_string_lossy().as_ref().into(),
        name: name.into(),
        content_type: "application/octet-stream".into(),
        size: size as u64,
    };
    (attachment, hex::encode(hasher.finalize()))
}

#[test]
fn html_body_recipients_names_and_custom_headers_arrive() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let mut message = message("rich");
    message.html = true;
    message.body = "<p>Hello <b>Lynne</b></p>".into();
    message.cc = RVec::from(vec![Mailbox::new(seed::EXTERNAL_RECIPIENT, "Some One")]);
    message.bcc = RVec::from(vec![Mailbox::new(seed::MFA_USER_UPN, "")]);
    message.reply_to = RVec::from(vec![Mailbox::new(seed::SHARED_MAILBOX, "Sales Desk")]);
    message.headers = RVec::from(vec![
        Header {
            name: "X-Order-Id".into(),
            value: "42".into(),
        },
        Header {
            name: "X-Batch".into(),
            value: "nightly".into(),
        },
    ]);
    send(&provider, &settings, &alex("rich-1"), message).expect("sent");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    let got = &inbox[0];
    assert_eq!(got.body.content_type, "html");
    assert!(got.body.content.contains("<b>Lynne</b>"));
    assert_eq!(
        got.to_recipients[0].email_address.name.as_deref(),
        Some(seed::RECIPIENT_NAME)
    );
    assert_eq!(
        got.cc_recipients[0].email_address.name.as_deref(),
        Some("Some One")
    );
    assert_eq!(got.reply_to[0].address(), seed::SHARED_MAILBOX);
    assert_eq!(got.header("x-order-id"), Some("42"));
    assert_eq!(got.header("X-Batch"), Some("nightly"));
    assert!(
        got.bcc_recipients.is_empty(),
        "Bcc is hidden from recipients"
    );
    assert_eq!(
        emu.inbox(seed::MFA_USER_UPN).len(),
        1,
        "the Bcc recipient got it"
    );
    assert_eq!(emu.external().len(), 1, "the external Cc got it");
    let sent = emu.sent_items(seed::USER_UPN);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bcc_recipients.len(), 1);
}

#[test]
fn alternate_from_with_send_as_uses_the_users_endpoint() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let mut message = message("send as");
    message.from = Mailbox::new(seed::SHARED_MAILBOX, seed::SHARED_MAILBOX_NAME);
    let receipt =
        send(&provider, &settings, &alex("sendas-1"), message).expect("sent as the shared mailbox");
    assert!(receipt.detail.contains("users/"), "{}", receipt.detail);
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(
        inbox[0].from_address().as_deref(),
        Some(seed::SHARED_MAILBOX)
    );
    assert!(!inbox[0].is_on_behalf());
    assert_eq!(
        emu.sent_items(seed::SHARED_MAILBOX).len(),
        1,
        "the copy is in the shared mailbox's Sent Items"
    );
}

#[test]
fn alternate_from_with_send_on_behalf_uses_the_from_property() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "AlternateFromMode",
        "from-property",
    );
    let mut message = message("on behalf");
    message.from = Mailbox::new(seed::ON_BEHALF_MAILBOX, seed::ON_BEHALF_MAILBOX_NAME);
    let receipt = send(&provider, &settings, &alex("behalf-1"), message).expect("sent on behalf");
    assert!(receipt.detail.contains("/me"), "{}", receipt.detail);
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(
        inbox[0].from_address().as_deref(),
        Some(seed::ON_BEHALF_MAILBOX)
    );
    assert_eq!(inbox[0].sender_address().as_deref(), Some(seed::USER_UPN));
    assert!(inbox[0].is_on_behalf());
}

#[test]
fn alternate_from_with_send_as_through_the_from_property() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "AlternateFromMode",
        "from-property",
    );
    let mut message = message("send as via me");
    message.from = Mailbox::new(seed::SHARED_MAILBOX, "");
    send(&provider, &settings, &alex("sendas-2"), message).expect("sent as");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(
        inbox[0].from_address().as_deref(),
        Some(seed::SHARED_MAILBOX)
    );
    assert!(!inbox[0].is_on_behalf());
}

#[test]
fn alternate_from_without_rights_is_denied_with_the_admin_steps() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // /users/{from}/sendMail needs Full Access to the mailbox first.
    let mut denied = message("denied");
    denied.from = Mailbox::new(seed::NO_RIGHTS_MAILBOX, "");
    let settings_users = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let error = send(
        &provider,
        &settings_users,
        &alex("denied-1"),
        denied.clone(),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::PERMISSION, "{error}");
    assert!(error.message.contains("Add-MailboxPermission"), "{error}");
    assert!(error.message.contains("from-property"), "{error}");
    // /me/sendMail with `from` needs Send As or Send on behalf.
    let settings_me = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "AlternateFromMode",
        "from-property",
    );
    let error = send(&provider, &settings_me, &alex("denied-1"), denied).unwrap_err();
    assert_eq!(error.kind, ErrorKind::PERMISSION, "{error}");
    assert_eq!(error.code.as_str(), "ErrorSendAsDenied", "{error}");
    assert!(error.message.contains("Add-RecipientPermission"), "{error}");
    assert!(error.message.contains("Delegation > Send as"), "{error}");
    // Send on behalf alone is not enough for the users endpoint either.
    let mut behalf = message("behalf via users");
    behalf.from = Mailbox::new(seed::ON_BEHALF_MAILBOX, "");
    let error = send(&provider, &settings_users, &alex("denied-1"), behalf).unwrap_err();
    assert_eq!(error.kind, ErrorKind::PERMISSION, "{error}");
    assert!(emu.inbox(seed::RECIPIENT_UPN).is_empty());
}

#[test]
fn a_10_mb_attachment_goes_through_an_upload_session() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let dir = tempfile::tempdir().unwrap();
    let (big, big_sha) = file_of(&dir, "big.bin", 10 * 1024 * 1024);
    let (small, small_sha) = file_of(&dir, "small.txt", 1000);
    let mut message = message("large");
    message.attachments = RVec::from(vec![big, small]);
    let receipt = send(&provider, &settings, &alex("large-1"), message)
        .expect("sent with a large attachment");
    assert!(
        !receipt.message_id.is_empty(),
        "the draft id is the message id"
    );
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    let attachments = &inbox[0].attachments;
    assert_eq!(attachments.len(), 2);
    let got_big = attachments.iter().find(|a| a.name == "big.bin").unwrap();
    assert_eq!(got_big.size, 10 * 1024 * 1024);
    assert_eq!(got_big.sha256, big_sha);
    let got_small = attachments.iter().find(|a| a.name == "small.txt").unwrap();
    assert_eq!(got_small.sha256, small_sha);
    let counters = emu.counters();
    assert_eq!(
        counters.upload_puts, 3,
        "10 MiB in 3.75 MiB chunks: {counters:?}"
    );
    assert_eq!(counters.draft_sends, 1);
    assert_eq!(counters.send_mail, 0);
}

#[test]
fn small_attachments_that_together_pass_4_mb_still_arrive() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    let mut attachments = Vec::new();
    for i in 0..3 {
        let (a, sha) = file_of(&dir, &format!("part{i}.bin"), 2 * 1024 * 1024);
        attachments.push(a);
        expected.push(sha);
    }
    let mut message = message("many");
    message.attachments = RVec::from(attachments);
    send(&provider, &settings, &alex("many-1"), message).expect("sent");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    let mut got: Vec<String> = inbox[0]
        .attachments
        .iter()
        .map(|a| a.sha256.clone())
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn inline_attachment_goes_in_one_send_mail() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let dir = tempfile::tempdir().unwrap();
    let (a, sha) = file_of(&dir, "report.pdf", 2 * 1024 * 1024);
    let mut message = message("inline");
    message.attachments = RVec::from(vec![a]);
    send(&provider, &settings, &alex("inline-1"), message).expect("sent");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN)[0].attachments[0].sha256, sha);
    let counters = emu.counters();
    assert_eq!(counters.send_mail, 1);
    assert_eq!(counters.upload_puts, 0);
}

#[test]
fn more_than_5_custom_headers_are_refused_before_sending() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let mut message = message("headers");
    message.headers = RVec::from(
        (0..6)
            .map(|i| Header {
                name: format!("X-H{i}").into(),
                value: "v".into(),
            })
            .collect::<Vec<_>>(),
    );
    let error = send(&provider, &settings, &alex("headers-1"), message).unwrap_err();
    assert_eq!(error.kind, ErrorKind::INVALID_MESSAGE);
    assert!(error.message.contains("at most 5"), "{error}");
    assert_eq!(emu.counters().total_requests, 0);
}

#[test]
fn more_than_150_mb_is_refused_before_any_request() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.bin");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(151 * 1024 * 1024).unwrap(); // sparse: no disk used
    let mut message = message("huge");
    message.attachments = RVec::from(vec![Attachment {
        path: path.to_string_lossy().as_ref().into(),
        name: "huge.bin".into(),
        content_type: "application/octet-stream".into(),
        size: 151 * 1024 * 1024,
    }]);
    let error = send(&provider, &settings, &alex("huge-1"), message).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TOO_LARGE);
    assert_eq!(emu.counters().total_requests, 0);
}

#[test]
fn a_message_over_the_mailbox_limit_is_too_large() {
    let emu = emulator();
    emu.set_max_message_size(1024 * 1024);
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = file_of(&dir, "two.bin", 2 * 1024 * 1024);
    let mut message = message("too big");
    message.attachments = RVec::from(vec![a]);
    let error = send(&provider, &settings, &alex("toobig-1"), message).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TOO_LARGE, "{error}");
    assert_eq!(error.code.as_str(), "ErrorMessageSizeExceeded");
    assert!(
        error.message.contains("Message size restrictions"),
        "{error}"
    );
}

#[test]
fn a_bad_address_is_a_recipient_error() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let mut message = message("bad");
    message.to = RVec::from(vec![Mailbox::new("a@example.com;b@example.com", "")]);
    let error = send(&provider, &settings, &alex("badrcpt-1"), message).unwrap_err();
    assert_eq!(error.kind, ErrorKind::RECIPIENT);
}

#[test]
fn a_missing_attachment_file_is_refused_before_sending() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let mut message = message("missing");
    message.attachments = RVec::from(vec![Attachment {
        path: "/nonexistent/file.pdf".into(),
        name: "file.pdf".into(),
        content_type: "application/pdf".into(),
        size: 10,
    }]);
    let error = send(&provider, &settings, &alex("missing-1"), message).unwrap_err();
    assert_eq!(error.kind, ErrorKind::INVALID_MESSAGE);
    assert!(error.message.contains("/nonexistent/file.pdf"), "{error}");
    assert_eq!(emu.counters().total_requests, 0);
}

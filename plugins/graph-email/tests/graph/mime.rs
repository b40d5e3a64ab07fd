//! `send_mime`: a relayed message small enough goes as MIME sendMail, with the envelope's
//! blind copies delivered and hidden; a large one (25 MB attachment, inline image) is rebuilt
//! as a structured message and sent through a draft and upload sessions.

use std::io::Write as _;

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{Header, Mailbox, MimeSendRequest, Provider, SendRequest};
use sha2::{Digest, Sha256};

use crate::support::*;

fn request(
    emu: &mailhost_emulator::Emulator,
    path: &std::path::Path,
    recipients: &[&str],
) -> MimeSendRequest {
    let mut message = message("mime");
    message.from = Mailbox::new(seed::USER_UPN, "");
    message.headers = RVec::from(vec![Header {
        name: "Message-ID".into(),
        value: "<E42@mailhost>".into(),
    }]);
    MimeSendRequest {
        request: SendRequest {
            settings: RVec::from(settings(emu, seed::MAILHOST_CLIENT_ID)),
            staff: alex("mime-1"),
            message,
        },
        mime_path: path.to_string_lossy().as_ref().into(),
        mime_size: std::fs::metadata(path).unwrap().len(),
        envelope_from: seed::USER_UPN.into(),
        recipients: recipients.iter().map(|r| (*r).into()).collect(),
    }
}

#[test]
fn small_messages_go_as_mime_with_envelope_bcc() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    let text = format!(
        "From: Alex <{from}>\r\nTo: Lynne <{to}>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nX-Order-Id: 42\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello caf=C3=A9\r\n",
        from = seed::USER_UPN,
        to = seed::RECIPIENT_UPN
    );
    std::fs::write(&path, text).unwrap();
    let provider = GraphProvider::new();
    let r = request(&emu, &path, &[seed::RECIPIENT_UPN, seed::MFA_USER_UPN]);
    let receipt = provider.send_mime(&r).expect("sent");
    assert!(receipt.detail.contains("MIME"), "{}", receipt.detail);
    let got = &emu.inbox(seed::RECIPIENT_UPN)[0];
    assert!(got.mime, "sent as MIME");
    assert_eq!(got.subject, "caf\u{e9}");
    assert_eq!(got.internet_message_id, "<E42@mailhost>");
    assert_eq!(got.header("X-Order-Id"), Some("42"));
    assert!(got.bcc_recipients.is_empty(), "Bcc hidden from recipients");
    assert_eq!(
        emu.inbox(seed::MFA_USER_UPN).len(),
        1,
        "the blind copy arrives"
    );
}

#[test]
fn large_messages_are_rebuilt_and_uploaded() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.eml");
    let mut big = vec![0u8; 25 * 1024 * 1024];
    let mut x: u32 = 7;
    for b in big.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let sha = hex::encode(Sha256::digest(&big));
    let png = b"\x89PNG\r\n\x1a\nlogo";
    let mut file = std::fs::File::create(&path).unwrap();
    write!(
        file,
        "From: Alex <{from}>\r\nTo: Lynne <{to}>\r\nReply-To: Sales <{shared}>\r\nSubject: =?utf-8?B?w6lsw6h2ZQ==?=\r\nX-Scanner: floor-2\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: multipart/related; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>scan <img src=\"cid:logo@scan\"></p>\r\n--b2\r\nContent-Type: image/png\r\nContent-ID: <logo@scan>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n--b2--\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        from = seed::USER_UPN,
        to = seed::RECIPIENT_UPN,
        shared = seed::SHARED_MAILBOX,
        png = base64_lines(png),
    )
    .unwrap();
    file.write_all(base64_lines(&big).as_bytes()).unwrap();
    file.write_all(b"\r\n--b1--\r\n").unwrap();
    drop(file);
    let provider = GraphProvider::new();
    let r = request(&emu, &path, &[seed::RECIPIENT_UPN, seed::MFA_USER_UPN]);
    let receipt = provider.send_mime(&r).expect("sent");
    assert!(receipt.detail.contains("upload"), "{}", receipt.detail);
    let got = &emu.inbox(seed::RECIPIENT_UPN)[0];
    assert!(!got.mime);
    assert_eq!(got.subject, "\u{e9}l\u{e8}ve");
    assert_eq!(got.body.content_type, "html");
    assert_eq!(got.reply_to[0].address(), seed::SHARED_MAILBOX);
    assert_eq!(got.header("X-Scanner"), Some("floor-2"));
    // A draft's Message-ID is Exchange's to assign; exactly-once for this path rests on the
    // extended property, not on internetMessageId.
    let pdf = got
        .attachments
        .iter()
        .find(|a| a.name == "scan.pdf")
        .unwrap();
    assert_eq!(
        (pdf.size, pdf.sha256.as_str()),
        (big.len() as u64, sha.as_str())
    );
    let logo = got.attachments.iter().find(|a| a.is_inline).unwrap();
    assert_eq!(logo.content_id.as_deref(), Some("logo@scan"));
    assert_eq!(
        emu.inbox(seed::MFA_USER_UPN).len(),
        1,
        "the blind copy arrives"
    );
    assert!(
        !dir.path().join("big.eml.parts").exists(),
        "parts cleaned up"
    );
}

fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 38);
    for (i, chunk) in text.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(std::str::from_utf8(chunk).unwrap());
    }
    out
}

//! The provider in process (through the rlib) against a real SMTP server none of us wrote:
//! Python's aiosmtpd, installed from PyPI into the test virtual environment.

#![allow(clippy::unwrap_used)]

mod sink;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use mailhost_plugin_api::{
    Attachment, ErrorKind, Header, Mailbox, Message, Provider, ProviderError, SendRequest, Setting,
    StaffMember,
};
use sink::{Sink, closed_port};
use smtp_email::SmtpProvider;

const LOGIN: &str = "adele";
const PASSWORD: &str = "correct horse";

fn settings(port: u16, extra: &[(&str, &str)]) -> Vec<Setting> {
    let mut settings = vec![
        Setting::new("Host", "127.0.0.1"),
        Setting::new("Port", &port.to_string()),
        Setting::new("Security", "none"),
        Setting::new("Timeout", "5"),
    ];
    for (key, value) in extra {
        settings.retain(|s| s.key.as_str() != *key);
        settings.push(Setting::new(key, value));
    }
    settings
}

fn staff(password: Option<&str>) -> StaffMember {
    StaffMember {
        id: "adele".into(),
        email: "adele@contoso.com".into(),
        display_name: "Adele Vance".into(),
        username: LOGIN.into(),
        password: password.map(Into::into).into(),
        fields: Default::default(),
    }
}

fn simple(id: &str, to: &str) -> Message {
    Message {
        id: id.into(),
        to: vec![Mailbox::new(to, "")].into(),
        subject: format!("message {id}").into(),
        body: "Hello".into(),
        ..Default::default()
    }
}

fn request(port: u16, password: Option<&str>, message: Message) -> SendRequest {
    SendRequest {
        settings: settings(port, &[]).into(),
        staff: staff(password),
        message,
    }
}

fn send_err(provider: &SmtpProvider, request: &SendRequest) -> ProviderError {
    match provider.send(request) {
        Ok(receipt) => panic!("expected an error, got {receipt:?}"),
        Err(error) => error,
    }
}

#[test]
fn a_full_message_arrives_as_sent() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let dir = tempfile::tempdir().unwrap();
    let attachment = dir.path().join("report.bin");
    let content: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    std::fs::File::create(&attachment)
        .unwrap()
        .write_all(&content)
        .unwrap();

    let message = Message {
        id: "email-1".into(),
        from: Mailbox::new("", ""),
        to: vec![Mailbox::new("bob@example.com", "Bob Ström")].into(),
        cc: vec![Mailbox::new("carol@example.com", "")].into(),
        bcc: vec![Mailbox::new("dave@example.com", "")].into(),
        reply_to: vec![Mailbox::new("replies@contoso.com", "Replies")].into(),
        subject: "Grüße ✓ 日本".into(),
        body: "Line one\nLine two: ünïcödé".into(),
        html: false,
        attachments: vec![Attachment {
            path: attachment.to_string_lossy().as_ref().into(),
            name: "report.bin".into(),
            content_type: "application/octet-stream".into(),
            size: content.len() as u64,
        }]
        .into(),
        headers: vec![Header {
            name: "X-Order-Id".into(),
            value: "A-1001".into(),
        }]
        .into(),
    };
    let provider = SmtpProvider::new();
    let receipt = provider
        .send(&request(sink.port, Some(PASSWORD), message))
        .unwrap();
    assert_eq!(
        receipt.message_id.as_str(),
        "<mailhost.email-1@contoso.com>"
    );
    assert!(receipt.detail.contains("250"), "{receipt:?}");

    let received = sink.wait_for(1);
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.mail_from, "adele@contoso.com");
    assert_eq!(
        got.rcpt_tos,
        ["bob@example.com", "carol@example.com", "dave@example.com"]
    );
    assert_eq!(got.auth_login.as_deref(), Some(LOGIN));

    let raw = String::from_utf8_lossy(&got.raw);
    assert!(
        !raw.to_ascii_lowercase().contains("\nbcc:"),
        "Bcc header leaked:\n{raw}"
    );
    assert!(
        !raw.contains("dave@example.com"),
        "Bcc address leaked:\n{raw}"
    );
    assert!(raw.contains("Content-Transfer-Encoding: base64"), "{raw}");

    let parsed = MessageParser::default().parse(&got.raw).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Adele Vance"));
    assert_eq!(from.address(), Some("adele@contoso.com"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(
        (to.name(), to.address()),
        (Some("Bob Ström"), Some("bob@example.com"))
    );
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().address(),
        Some("carol@example.com")
    );
    assert!(parsed.bcc().is_none());
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@contoso.com")
    );
    assert_eq!(parsed.subject(), Some("Grüße ✓ 日本"));
    assert_eq!(
        parsed.header_raw("X-Order-Id").map(str::trim),
        Some("A-1001")
    );
    assert_eq!(parsed.message_id(), Some("mailhost.email-1@contoso.com"));
    let body = parsed.body_text(0).unwrap();
    assert_eq!(
        body.replace("\r\n", "\n").trim_end(),
        "Line one\nLine two: ünïcödé"
    );
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].attachment_name(), Some("report.bin"));
    assert_eq!(attachments[0].contents(), content.as_slice());
}

#[test]
fn html_bodies_are_sent_as_html() {
    let sink = Sink::start(&[]);
    let mut message = simple("html-1", "bob@example.com");
    message.body = "<p>Hello <b>there</b></p>".into();
    message.html = true;
    SmtpProvider::new()
        .send(&request(sink.port, None, message))
        .unwrap();
    let received = sink.wait_for(1);
    let parsed = MessageParser::default().parse(&received[0].raw).unwrap();
    assert_eq!(
        parsed.body_html(0).unwrap().trim(),
        "<p>Hello <b>there</b></p>"
    );
    assert_eq!(received[0].auth_login, None);
}

#[test]
fn one_connection_carries_many_sends() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let provider = SmtpProvider::new();
    for n in 0..5 {
        let message = simple(&format!("reuse-{n}"), "bob@example.com");
        provider
            .send(&request(sink.port, Some(PASSWORD), message))
            .unwrap();
    }
    let received = sink.wait_for(5);
    assert_eq!(received.len(), 5);
    assert_eq!(sink.connections(), 1, "5 sends should share one connection");
    assert!(received.iter().all(|r| r.connection == 1));
}

#[test]
fn concurrent_sends_are_safe() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let provider = SmtpProvider::new();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let provider = &provider;
            let port = sink.port;
            scope.spawn(move || {
                for n in 0..3 {
                    let message = simple(&format!("t{t}-{n}"), "bob@example.com");
                    provider
                        .send(&request(port, Some(PASSWORD), message))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(sink.wait_for(12).len(), 12);
    assert!(
        sink.connections() <= 4,
        "{} connections",
        sink.connections()
    );
}

#[test]
fn a_wrong_password_is_an_authentication_error() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let error = send_err(
        &SmtpProvider::new(),
        &request(
            sink.port,
            Some("wrong"),
            simple("auth-1", "bob@example.com"),
        ),
    );
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION, "{error}");
    assert_eq!(error.code.as_str(), "535");
    assert!(error.message.contains("535"), "{error}");
    assert!(error.message.contains("--password-stdin"), "{error}");
    assert!(
        !error.message.contains("wrong"),
        "the password leaked: {error}"
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn a_missing_password_when_the_server_requires_one() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let error = send_err(
        &SmtpProvider::new(),
        &request(sink.port, None, simple("auth-2", "bob@example.com")),
    );
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION, "{error}");
    assert_eq!(error.code.as_str(), "530");
}

#[test]
fn a_refused_recipient_is_a_recipient_error_and_the_connection_survives() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let provider = SmtpProvider::new();
    let mut message = simple("rcpt-1", "bob@example.com");
    message.cc = vec![Mailbox::new("rejectme@example.com", "")].into();
    let error = send_err(&provider, &request(sink.port, Some(PASSWORD), message));
    assert_eq!(error.kind, ErrorKind::RECIPIENT, "{error}");
    assert_eq!(error.code.as_str(), "550");
    assert!(error.message.contains("rejectme@example.com"), "{error}");
    assert!(!error.is_transient());
    assert!(sink.messages().is_empty(), "no partial delivery");

    provider
        .send(&request(
            sink.port,
            Some(PASSWORD),
            simple("rcpt-2", "bob@example.com"),
        ))
        .unwrap();
    assert_eq!(sink.wait_for(1).len(), 1);
    assert_eq!(sink.connections(), 1, "the connection was reset and reused");
}

#[test]
fn a_451_is_transient() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let error = send_err(
        &SmtpProvider::new(),
        &request(
            sink.port,
            Some(PASSWORD),
            simple("busy-1", "busy@example.com"),
        ),
    );
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert_eq!(error.code.as_str(), "451");
    assert!(error.is_transient());
}

#[test]
fn a_drop_before_data_is_transient() {
    let sink = Sink::start(&[]);
    let error = send_err(
        &SmtpProvider::new(),
        &request(sink.port, None, simple("drop-1", "dropearly@example.com")),
    );
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert!(error.message.contains("nothing was delivered"), "{error}");
}

#[test]
fn a_drop_after_the_message_is_an_unknown_outcome() {
    let sink = Sink::start(&[]);
    let error = send_err(
        &SmtpProvider::new(),
        &request(sink.port, None, simple("drop-2", "dropafter@example.com")),
    );
    assert_eq!(error.kind, ErrorKind::UNKNOWN_OUTCOME, "{error}");
    assert!(!error.is_transient());
    assert!(
        error.message.contains("may or may not have been delivered"),
        "{error}"
    );
}

#[test]
fn a_refused_connection_is_transient() {
    let error = send_err(
        &SmtpProvider::new(),
        &request(closed_port(), None, simple("refused-1", "bob@example.com")),
    );
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert!(
        error
            .message
            .contains("cannot reach the SMTP server 127.0.0.1"),
        "{error}"
    );
}

#[test]
fn a_silent_server_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut request = request(port, None, simple("timeout-1", "bob@example.com"));
    request.settings = settings(port, &[("Timeout", "1")]).into();
    let started = std::time::Instant::now();
    let error = send_err(&SmtpProvider::new(), &request);
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert_eq!(error.code.as_str(), "timeout", "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
}

#[test]
fn tls_against_a_plain_server_is_a_configuration_error() {
    let sink = Sink::start(&[]);
    let mut request = request(sink.port, None, simple("tls-1", "bob@example.com"));
    request.settings = settings(sink.port, &[("Security", "tls")]).into();
    let error = send_err(&SmtpProvider::new(), &request);
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert!(error.message.contains("SSL_CERT_FILE"), "{error}");
}

#[test]
fn starttls_not_offered_is_a_configuration_error() {
    let sink = Sink::start(&[]);
    let mut request = request(sink.port, None, simple("tls-2", "bob@example.com"));
    request.settings = settings(sink.port, &[("Security", "starttls")]).into();
    let error = send_err(&SmtpProvider::new(), &request);
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert!(error.message.contains("does not offer STARTTLS"), "{error}");
}

#[test]
fn plain_text_to_a_remote_host_is_refused_before_connecting() {
    let mut request = request(25, Some(PASSWORD), simple("plain-1", "bob@example.com"));
    request.settings = settings(25, &[("Host", "smtp.example.com")]).into();
    let error = send_err(&SmtpProvider::new(), &request);
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert!(error.message.contains("unencrypted"), "{error}");
}

//! The SMTP provider through the real `mailhost` binary against a real SMTP server none of us
//! wrote: Python's aiosmtpd (from PyPI), driven by `plugins/smtp-email/tests/smtp_sink.py`,
//! which records what it receives. The provider's finer behaviour (connection reuse, dropped
//! connections, timeouts, TLS mistakes) is covered in process by `plugins/smtp-email/tests/`.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

#[path = "../../plugins/smtp-email/tests/sink/mod.rs"]
mod sink;

use mail_parser::{MessageParser, MimeHeaders};
use mailhost_tests::homes::add_adele_args;
use mailhost_tests::{Home, build_library};
use sink::Sink;

const LOGIN: &str = "adele";
const PASSWORD: &str = "correct horse";

/// A home with smtp-email pointed at `sink`, and staff member `adele` with `password`.
fn smtp_home(sink: &Sink, password: Option<&str>) -> Home {
    let home = Home::new();
    home.register_enabled(&build_library("smtp-email", "smtp_email"));
    let port = sink.port.to_string();
    for (key, value) in [
        ("Host", "127.0.0.1"),
        ("Port", port.as_str()),
        ("Security", "none"),
        ("Timeout", "10"),
    ] {
        home.ok(&["config", "set", "smtp-email", key, value]);
    }
    let mut args = add_adele_args(
        "smtp-email",
        &["--name", "Adele Vance", "--username", LOGIN],
    );
    match password {
        Some(password) => {
            args.push("--password-stdin");
            let output = home.run_with_stdin(&args, &format!("{password}\n"));
            mailhost_tests::assert_exit(&output, 0, &args);
        }
        None => {
            home.ok(&args);
        }
    }
    home
}

/// `email send --staff adele --to TO --subject s --body b --json`.
fn send_args(to: &str) -> [&str; 11] {
    [
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        to,
        "--subject",
        "s",
        "--body",
        "b",
        "--json",
    ]
}

/// `email send ... --json` that is expected to fail: exit status 1 and the JSON result.
fn send_failing(home: &Home, to: &str) -> serde_json::Value {
    let args = send_args(to);
    let output = home.run(&args);
    mailhost_tests::assert_exit(&output, 1, &args);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn a_full_email_arrives_with_every_header_and_attachment() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let home = smtp_home(&sink, Some(PASSWORD));
    let attachment = home.path().join("data.bin");
    let content: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&attachment, &content).unwrap();
    let subject = "Relevé de compte — 請求書 ✓";

    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "megan@example.com",
        "--to",
        "alex@example.com",
        "--cc",
        "lidia@example.com",
        "--bcc",
        "audit@example.com",
        "--reply-to",
        "replies@contoso.com",
        "--subject",
        subject,
        "--body",
        "Hello Megan,\nthe statement is attached.",
        "--header",
        "X-Order-Id: A-1001",
        "--attach",
        attachment.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent:#}");

    let received = sink.wait_for(1);
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.mail_from, "adele@contoso.com");
    assert_eq!(
        got.rcpt_tos,
        [
            "megan@example.com",
            "alex@example.com",
            "lidia@example.com",
            "audit@example.com"
        ]
    );
    assert_eq!(got.auth_login.as_deref(), Some(LOGIN));

    let raw = String::from_utf8_lossy(&got.raw);
    assert!(
        !raw.to_ascii_lowercase().contains("\nbcc:"),
        "Bcc header leaked:\n{raw}"
    );
    assert!(
        !raw.contains("audit@example.com"),
        "Bcc address leaked:\n{raw}"
    );

    let message = MessageParser::default().parse(&got.raw).unwrap();
    let from = message.from().and_then(|f| f.first()).unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Adele Vance"), Some("adele@contoso.com"))
    );
    let to: Vec<_> = message
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["megan@example.com", "alex@example.com"]);
    assert_eq!(
        message
            .cc()
            .and_then(|c| c.first())
            .and_then(|a| a.address()),
        Some("lidia@example.com")
    );
    assert!(message.bcc().is_none());
    assert_eq!(
        message
            .reply_to()
            .and_then(|r| r.first())
            .and_then(|a| a.address()),
        Some("replies@contoso.com")
    );
    assert_eq!(message.subject(), Some(subject));
    assert_eq!(
        message.header_raw("X-Order-Id").map(str::trim),
        Some("A-1001")
    );
    let body = message.body_text(0).unwrap();
    assert_eq!(
        body.replace("\r\n", "\n").trim_end(),
        "Hello Megan,\nthe statement is attached."
    );
    let attachments: Vec<_> = message.attachments().collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].attachment_name(), Some("data.bin"));
    assert_eq!(attachments[0].contents(), content.as_slice());
}

#[test]
fn a_wrong_password_fails_with_the_servers_535() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let home = smtp_home(&sink, Some("not the password"));
    let result = send_failing(&home, "megan@example.com");
    assert_eq!(result["status"], "failed", "{result:#}");
    let error = result["error"].to_string();
    assert_eq!(result["error"]["kind"], "authentication", "{result:#}");
    assert_eq!(result["error"]["code"], "535", "{result:#}");
    assert!(error.contains("--password-stdin"), "{error}");
    assert!(
        !error.contains("not the password"),
        "the password leaked: {error}"
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn a_refused_recipient_fails_with_550_naming_the_address() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let home = smtp_home(&sink, Some(PASSWORD));
    let result = send_failing(&home, "rejectme@example.com");
    assert_eq!(result["status"], "failed", "{result:#}");
    let error = result["error"].to_string();
    assert_eq!(result["error"]["kind"], "recipient", "{result:#}");
    assert_eq!(result["error"]["code"], "550", "{result:#}");
    assert!(error.contains("rejectme@example.com"), "{error}");
    assert!(sink.messages().is_empty());
}

#[test]
fn a_451_is_kept_for_retry() {
    let sink = Sink::start(&[(LOGIN, PASSWORD)]);
    let home = smtp_home(&sink, Some(PASSWORD));
    let args = send_args("busy@example.com");
    let output = home.run(&args);
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_ne!(result["status"], "sent", "{result:#}");
    let error = result["error"].to_string();
    assert!(error.contains("451"), "{error}");
    assert_eq!(result["error"]["kind"], "transient", "{result:#}");
    assert_eq!(result["error"]["code"], "451", "{result:#}");
}

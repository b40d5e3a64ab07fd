//! Sending through the real pickup-dir plugin with the real binary: the `.eml` it writes reads
//! back intact with mail-parser; settings changes apply to the next send; a missing Directory
//! is reported at send time, naming the setting.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};
use mailhost_tests::homes::{adele_send_args, pickup_home};
use mailhost_tests::{Home, assert_failed, plugin_path};

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_sent_email_reads_back_intact() {
    let (home, outbox) = pickup_home();
    let files = home.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let text_file = files.join("notes.txt");
    std::fs::write(&text_file, "first line\nsecond line ✓\n").unwrap();
    let binary: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let bin_file = files.join("data.bin");
    std::fs::write(&bin_file, &binary).unwrap();
    let subject = "Relevé de compte — 請求書 ✓";

    let sent = home.json(&adele_send_args(&[
        "--to",
        "alex@contoso.com",
        "--cc",
        "lidia@contoso.com",
        "--bcc",
        "audit@contoso.com",
        "--reply-to",
        "replies@contoso.com",
        "--subject",
        subject,
        "--body",
        "Hello Megan,\nthe statement is attached.",
        "--attach",
        text_file.to_str().unwrap(),
        "--attach",
        bin_file.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert!(sent["id"].is_string() || sent["id"].is_number(), "{sent:#}");

    let written = eml_files(&outbox);
    assert_eq!(written.len(), 1, "{written:?}");
    let raw = std::fs::read(&written[0]).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // The envelope: Bcc only there, never as a header.
    assert!(
        text.starts_with("X-Sender: adele@contoso.com\r\n"),
        "{text}"
    );
    assert!(text.contains("X-Receiver: audit@contoso.com\r\n"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");

    let message = MessageParser::default()
        .parse(&raw)
        .expect("the .eml parses");
    let from = message.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.address(), Some("adele@contoso.com"));
    assert_eq!(from.name(), Some("Adele Vance"));
    let to: Vec<_> = message
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["megan@contoso.com", "alex@contoso.com"]);
    assert_eq!(
        message
            .cc()
            .and_then(|c| c.first())
            .and_then(|a| a.address()),
        Some("lidia@contoso.com")
    );
    assert_eq!(
        message
            .reply_to()
            .and_then(|c| c.first())
            .and_then(|a| a.address()),
        Some("replies@contoso.com")
    );
    assert!(message.bcc().is_none());
    assert_eq!(message.subject(), Some(subject));
    let body = message.body_text(0).expect("text body");
    assert!(body.contains("Hello Megan,"), "{body}");
    assert!(body.contains("the statement is attached."), "{body}");

    let attachments: Vec<_> = message.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some("notes.txt"));
    assert_eq!(
        attachments[0].contents(),
        std::fs::read(&text_file).unwrap().as_slice()
    );
    assert_eq!(attachments[1].attachment_name(), Some("data.bin"));
    assert_eq!(
        attachments[1].contents(),
        binary.as_slice(),
        "binary attachment changed"
    );
}

#[test]
fn an_html_email_has_an_html_body() {
    let (home, outbox) = pickup_home();
    let sent = home.json(&adele_send_args(&[
        "--subject",
        "HTML",
        "--body",
        "<h1>Hello</h1><p>World</p>",
        "--html",
        "--json",
    ]));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    let raw = std::fs::read(&eml_files(&outbox)[0]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let html = message.body_html(0).expect("html body");
    assert!(html.contains("<h1>Hello</h1><p>World</p>"), "{html}");
}

#[test]
fn a_body_file_is_sent_as_the_body() {
    let (home, outbox) = pickup_home();
    let body = home.path().join("body.txt");
    std::fs::write(&body, "Body from a file, ünïcödé.\n").unwrap();
    home.json(&adele_send_args(&[
        "--subject",
        "File",
        "--body-file",
        body.to_str().unwrap(),
        "--json",
    ]));
    let raw = std::fs::read(&eml_files(&outbox)[0]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(
        message
            .body_text(0)
            .unwrap()
            .contains("Body from a file, ünïcödé.")
    );
}

#[test]
fn a_setting_change_applies_to_the_next_send() {
    let (home, first) = pickup_home();
    let args = adele_send_args(&["--subject", "One", "--json"]);
    assert_eq!(home.json(&args)["status"], "sent");
    assert_eq!(eml_files(&first).len(), 1);

    let second = home.path().join("outbox-2");
    std::fs::create_dir(&second).unwrap();
    home.ok(&[
        "config",
        "set",
        "pickup-dir",
        "Directory",
        second.to_str().unwrap(),
    ]);
    assert_eq!(home.json(&args)["status"], "sent");
    assert_eq!(eml_files(&first).len(), 1);
    assert_eq!(eml_files(&second).len(), 1);

    // A tiny size limit now refuses the next send as too large.
    home.ok(&["config", "set", "pickup-dir", "MaxMessageBytes", "10"]);
    let output = home.run(&args);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["status"], "failed", "{json:#}");
    assert!(
        json["error"].to_string().contains("MaxMessageBytes"),
        "{json:#}"
    );
}

#[test]
fn a_missing_directory_setting_is_reported_at_send_time() {
    let home = Home::new();
    home.add_enabled(&plugin_path("pickup_dir"));
    home.add_adele("pickup-dir", &[]);
    let args = adele_send_args(&["--subject", "x"]);
    let output = home.run(&args);
    assert_failed(&output, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Directory"), "{stderr}");
    assert!(stderr.contains("pickup-dir"), "{stderr}");
}

#[test]
fn a_directory_that_does_not_exist_is_a_configuration_error() {
    let (home, outbox) = pickup_home();
    let gone = outbox.join("gone");
    // The host may refuse the path when it is set, or the plugin when it sends.
    let set = home.run(&[
        "config",
        "set",
        "pickup-dir",
        "Directory",
        gone.to_str().unwrap(),
    ]);
    if set.status.success() {
        let args = adele_send_args(&["--json"]);
        let output = home.run(&args);
        assert_failed(&output, &args);
        let all = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            all.contains("Directory") && all.contains("does not exist"),
            "{all}"
        );
    } else {
        assert_failed(&set, &["config", "set"]);
    }
}

#[test]
fn an_unreadable_attachment_is_refused() {
    let (home, outbox) = pickup_home();
    let missing = home.path().join("missing.pdf");
    let args = adele_send_args(&["--attach", missing.to_str().unwrap()]);
    let output = home.run(&args);
    assert_failed(&output, &args);
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.pdf"));
    assert!(eml_files(&outbox).is_empty());
}

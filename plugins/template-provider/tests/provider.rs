//! The template provider through its Rust API, as the host would call it.

#![allow(clippy::unwrap_used)]

use mailhost_plugin_api::testing::{MessageBuilder, RequestBuilder, staff_member};
use mailhost_plugin_api::{ErrorKind, Message, Provider, SendRequest};
use mailhost_provider_template::JsonLinesProvider;

fn request(file: Option<&str>, message: Message) -> SendRequest {
    let builder = RequestBuilder::new()
        .staff(staff_member("adele", "adele@contoso.com").with_name("Adele Vance"))
        .message(message);
    match file {
        Some(file) => builder.setting("File", file),
        None => builder,
    }
    .build()
}

fn message(id: &str, subject: &str) -> Message {
    MessageBuilder::new(id)
        .to("bob@example.com")
        .bcc("carol@example.com")
        .subject(subject)
        .body("line one\nline \"two\"\t\\")
        .build()
}

#[test]
fn describes_itself() {
    let info = JsonLinesProvider.describe().unwrap();
    assert_eq!(info.name.as_str(), "jsonl-file");
    assert_eq!(info.display_name.as_str(), "JSON Lines file");
    let file = &info.settings[0];
    assert_eq!(
        (file.key.as_str(), file.required, file.secret),
        ("File", true, false)
    );
}

#[test]
fn appends_one_valid_json_line_per_email() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let path_text = path.to_str().unwrap();
    for (id, subject) in [("1", "Grüße ✓"), ("2", "second")] {
        let receipt = JsonLinesProvider
            .send(&request(Some(path_text), message(id, subject)))
            .unwrap();
        assert_eq!(receipt.message_id.as_str(), id);
        assert!(receipt.detail.contains(path_text));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "1");
    assert_eq!(lines[0]["from"], "adele@contoso.com");
    assert_eq!(
        lines[0]["to"],
        serde_json::json!(["bob@example.com", "carol@example.com"])
    );
    assert_eq!(lines[0]["subject"], "Grüße ✓");
    assert_eq!(lines[0]["body"], "line one\nline \"two\"\t\\");
    assert_eq!(lines[1]["subject"], "second");
}

#[test]
fn a_missing_file_setting_is_a_configuration_error() {
    let error = JsonLinesProvider
        .send(&request(None, message("1", "s")))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(
        error
            .message
            .contains("mailhost config set jsonl-file File"),
        "{error}"
    );
}

#[test]
fn an_unwritable_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("out.jsonl");
    let error = JsonLinesProvider
        .send(&request(Some(path.to_str().unwrap()), message("1", "s")))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("missing-dir"), "{error}");
}

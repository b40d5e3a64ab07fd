//! The template provider (the provider author's guide's example) loads in the real host and
//! sends: the guide's code is a working plugin, not just a compiling snippet.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use mailhost_tests::{Home, build_library};

#[test]
fn the_guides_provider_loads_and_sends() {
    let home = Home::new();
    home.register_enabled(&build_library(
        "mailhost-provider-template",
        "mailhost_provider_template",
    ));
    let out = home.path().join("out.jsonl");
    home.ok(&["config", "set", "jsonl-file", "File", out.to_str().unwrap()]);
    home.add_adele("jsonl-file", &[]);
    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "bob@example.com",
        "--bcc",
        "carol@example.com",
        "--subject",
        "Grüße ✓",
        "--body",
        "line one\nline two",
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent:#}");

    let text = std::fs::read_to_string(&out).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["id"], sent["id"]);
    assert_eq!(line["from"], "adele@contoso.com");
    assert_eq!(
        line["to"],
        serde_json::json!(["bob@example.com", "carol@example.com"])
    );
    assert_eq!(line["subject"], "Grüße ✓");
    assert_eq!(line["body"], "line one\nline two");
}

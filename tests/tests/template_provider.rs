//! The template provider (the provider author's guide's example) loads in the real host and
//! sends: the guide's code is a working plugin, not just a compiling snippet.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::process::Command;

use mailhost_tests::{Home, plugin_path, workspace_root};

fn template_plugin() -> std::path::PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "-p",
        "mailhost-provider-template",
    ]);
    if mailhost_tests::profile() == "release" {
        command.arg("--release");
    }
    assert!(
        command.status().unwrap().success(),
        "cargo build -p mailhost-provider-template failed"
    );
    plugin_path("mailhost_provider_template")
}

#[test]
fn the_guides_provider_loads_and_sends() {
    let home = Home::new();
    home.ok(&[
        "plugin",
        "add",
        template_plugin().to_str().unwrap(),
        "--enable",
    ]);
    let out = home.path().join("out.jsonl");
    home.ok(&["config", "set", "jsonl-file", "File", out.to_str().unwrap()]);
    home.ok(&[
        "staff",
        "add",
        "adele",
        "--provider",
        "jsonl-file",
        "--email",
        "adele@contoso.com",
    ]);
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

//! A third party's provider, built the way the author's guide says: a stand-alone cargo project
//! in a temporary directory, outside this workspace, whose `Cargo.toml` is the guide's own
//! (`plugin-api/README.md`, section "Building it out of tree") and whose source is the guide's
//! complete provider (`plugins/template-provider/src/lib.rs`). The only change is where
//! `mailhost-plugin-api` comes from: this checkout's `plugin-api/` instead of crates.io. The
//! library is then registered with `mailhost plugin add` and sends with `mailhost email send`.

#![allow(clippy::unwrap_used)] // a test: a failed set-up step should stop it loudly

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailhost_tests::{Home, target_dir, workspace_root};

/// The guide's `Cargo.toml` for an out-of-tree provider: the first ```toml block after the
/// "Building it out of tree" heading.
fn guide_manifest() -> String {
    let guide = fs::read_to_string(workspace_root().join("plugin-api/README.md")).unwrap();
    let section = guide
        .split("## Building it out of tree")
        .nth(1)
        .expect("the guide has a 'Building it out of tree' section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section shows a Cargo.toml");
    block.to_string()
}

/// Writes the project into `dir` and builds it; returns the built library.
fn build_out_of_tree(dir: &Path) -> PathBuf {
    let manifest = guide_manifest();
    let api = workspace_root().join("plugin-api");
    let dependency_line = manifest
        .lines()
        .find(|line| line.trim_start().starts_with("mailhost-plugin-api"))
        .expect("the guide's Cargo.toml depends on mailhost-plugin-api");
    let manifest = manifest.replace(
        dependency_line,
        &format!(
            "mailhost-plugin-api = {{ path = {:?} }}",
            api.display().to_string()
        ),
    ) + "\n[workspace]\n";
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::copy(
        workspace_root().join("plugins/template-provider/src/lib.rs"),
        dir.join("src/lib.rs"),
    )
    .unwrap();
    // The workspace's lock file pins the same dependency versions, so nothing new is fetched.
    fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build_dir = target_dir().join("fixture-builds");
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--quiet", "--target-dir"])
        .arg(&build_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the out-of-tree provider failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name_line = fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("name = ")
                .map(|n| n.trim_matches('"').to_string())
        })
        .unwrap();
    let lib = build_dir.join("debug").join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name_line.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

#[test]
fn a_provider_built_out_of_tree_from_the_guide_registers_and_sends() {
    let project = tempfile::tempdir().unwrap();
    let lib = build_out_of_tree(project.path());

    // Install it as a user would: a copy in a folder of its own, not writable by others.
    let home = Home::new();
    let installed = home.path().join("providers");
    fs::create_dir_all(&installed).unwrap();
    let plugin = installed.join(lib.file_name().unwrap());
    fs::copy(&lib, &plugin).unwrap();

    let added = home.ok(&["plugin", "add", plugin.to_str().unwrap(), "--enable"]);
    assert!(added.contains("jsonl-file"), "{added}");
    let out = home.path().join("sent.jsonl");
    home.ok(&["config", "set", "jsonl-file", "File", out.to_str().unwrap()]);
    home.ok(&[
        "staff",
        "add",
        "clerk",
        "--provider",
        "JSON Lines file",
        "--email",
        "clerk@example.com",
        "--name",
        "Order Desk",
    ]);
    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        "clerk",
        "--to",
        "customer@example.org",
        "--subject",
        "Your order 1001",
        "--body",
        "It has shipped.",
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent}");

    let line = fs::read_to_string(&out).unwrap();
    let record: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let text = record.to_string();
    assert!(text.contains("customer@example.org"), "{text}");
    assert!(text.contains("Your order 1001"), "{text}");
    assert!(text.contains("clerk@example.com"), "{text}");
}

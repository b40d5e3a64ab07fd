//! The host's registry under concurrency and hand edits: parallel `plugin disable` commands
//! lose no entry, and a broken plugins.toml is reported with its line and left untouched.

#![allow(clippy::unwrap_used)] // a test: a failed set-up step should stop it loudly

use std::process::Stdio;

use mailhost_tests::fixtures::fixture_path;
use mailhost_tests::homes::add_adele_args;
use mailhost_tests::{Home, plugin_path};

#[test]
fn concurrent_commands_lose_no_entry() {
    let home = Home::new();
    home.add_enabled(&fixture_path("null"));
    home.add_enabled(&plugin_path("pickup_dir"));
    let children: Vec<_> = (0..8)
        .flat_map(|_| ["null", "pickup-dir"])
        .map(|name| {
            home.command(["plugin", "disable", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn mailhost")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let list = home.plugin_list();
    assert_eq!(list.len(), 2, "{list:#?}");
    assert!(list.iter().all(|e| e["enabled"] == false), "{list:#?}");
}

#[test]
fn a_broken_registry_names_the_line_and_is_not_overwritten() {
    let home = Home::new();
    home.add_enabled(&fixture_path("null"));
    let text = home
        .read("plugins.toml")
        .replace("enabled = true", "enabled = true\ncolour = \"red\"");
    std::fs::write(home.path().join("plugins.toml"), &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    let stderr = home.fails(&["plugin", "enable", "null"], 2);
    assert!(
        stderr.contains(&format!("plugins.toml:{line}:")),
        "{stderr}"
    );
    assert!(stderr.contains("colour"), "{stderr}");
    assert_eq!(home.read("plugins.toml"), text);
}

#[test]
fn secrets_never_leave_the_secret_store() {
    let home = Home::new();
    home.add_enabled(&plugin_path("pickup_dir"));
    let output = home.run_with_stdin(
        &add_adele_args("pickup-dir", &["--password-stdin"]),
        "hunter2\n",
    );
    assert!(output.status.success(), "{output:?}");
    for file in ["plugins.toml", "staff.toml"] {
        assert!(!home.read(file).contains("hunter2"), "{file}");
    }
    let shown = home.ok(&["staff", "show", "adele"]) + &home.ok(&["staff", "list", "--json"]);
    assert!(
        !shown.contains("hunter2") && shown.contains("set"),
        "{shown}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("secrets.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

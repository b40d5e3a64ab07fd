//! Staff Maintenance through the command line: validation of provider, address, line breaks
//! and custom fields, and passwords given on standard input that are never shown and are
//! stored only in a 0600 file, yet reach the plugin.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::path::{Path, PathBuf};

use mailhost_tests::Home;
use mailhost_tests::fixtures::fixture_path;
use mailhost_tests::homes::{add_adele_args, adele_send_args};

const PLUGIN: &str = "echo-00";

fn echo_home() -> Home {
    let home = Home::new();
    home.add_enabled(&fixture_path("echo"));
    let out = home.path().join("echo.out");
    home.ok(&["config", "set", PLUGIN, "OutFile", out.to_str().unwrap()]);
    home
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn add_show_list_set_remove_round_trip() {
    let home = echo_home();
    home.add_adele(
        PLUGIN,
        &[
            "--name",
            "Adele Vance",
            "--username",
            "adele.v",
            "--field",
            "Department=Sales",
            "--field",
            "NonInteractive=yes",
        ],
    );
    let shown = home.ok(&["staff", "show", "adele"]);
    for expected in [
        "adele@contoso.com",
        "Adele Vance",
        "adele.v",
        "Department",
        "Sales",
        PLUGIN,
    ] {
        assert!(shown.contains(expected), "{expected} missing from: {shown}");
    }
    let list = home.ok(&["staff", "list"]);
    assert!(list.contains("adele"), "{list}");
    let json = home.json(&["staff", "list", "--json"]).to_string();
    assert!(json.contains("adele@contoso.com"), "{json}");

    home.ok(&[
        "staff",
        "set",
        "adele",
        "--email",
        "adele.vance@contoso.com",
    ]);
    assert!(
        home.ok(&["staff", "show", "adele"])
            .contains("adele.vance@contoso.com")
    );

    // The plugin receives the staff member's settings, custom fields normalised.
    home.json(&adele_send_args(&["--json"]));
    let recorded = home.read("echo.out");
    assert!(
        recorded.contains("staff.email=adele.vance@contoso.com"),
        "{recorded}"
    );
    assert!(recorded.contains("field.Department=Sales"), "{recorded}");
    assert!(recorded.contains("field.NonInteractive=true"), "{recorded}");

    home.ok(&["staff", "remove", "adele"]);
    let stderr = home.refused(&["staff", "show", "adele"]);
    assert!(stderr.contains("adele"), "{stderr}");
}

#[test]
fn an_unknown_provider_is_refused() {
    let home = echo_home();
    let stderr = home.fails(&add_adele_args("carrier-pigeon", &[]), 2);
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
    assert!(
        stderr.contains(PLUGIN),
        "should list the registered providers: {stderr}"
    );
}

#[test]
fn bad_addresses_and_line_breaks_are_refused() {
    let home = echo_home();
    for email in [
        "adele",
        "adele@contoso",
        "adele@contoso.com\r\nBcc: x@evil.com",
        "a b@contoso.com",
    ] {
        let stderr = home.fails(
            &[
                "staff",
                "add",
                "adele",
                "--provider",
                PLUGIN,
                "--email",
                email,
            ],
            2,
        );
        assert!(!stderr.is_empty());
    }
    let stderr = home.fails(
        &add_adele_args(PLUGIN, &["--name", "Adele\r\nBcc: x@evil.com"]),
        2,
    );
    assert!(
        stderr.to_lowercase().contains("line break") || stderr.contains("CR"),
        "{stderr}"
    );
    let stderr = home.fails(
        &add_adele_args(PLUGIN, &["--field", "Department=Sales\nBcc: x@evil.com"]),
        2,
    );
    assert!(stderr.contains("Department"), "{stderr}");
    assert!(!home.path().join("staff.toml").exists() || !home.read("staff.toml").contains("adele"));
}

#[test]
fn unknown_and_mistyped_custom_fields_are_refused() {
    let home = echo_home();
    let stderr = home.fails(&add_adele_args(PLUGIN, &["--field", "Shoe=42"]), 2);
    assert!(stderr.contains("Shoe"), "{stderr}");
    assert!(
        stderr.contains("Department"),
        "should list the declared fields: {stderr}"
    );
    let stderr = home.fails(
        &add_adele_args(PLUGIN, &["--field", "NonInteractive=perhaps"]),
        2,
    );
    assert!(stderr.contains("NonInteractive"), "{stderr}");
}

#[test]
fn a_password_from_stdin_is_never_shown_and_stored_0600() {
    const PASSWORD: &str = "correct-horse-battery-staple-42";
    let home = echo_home();
    let output = home.run_with_stdin(
        &add_adele_args(
            PLUGIN,
            &["--username", "adele@contoso.com", "--password-stdin"],
        ),
        &format!("{PASSWORD}\n"),
    );
    mailhost_tests::assert_exit(&output, 0, &["staff", "add", "--password-stdin"]);
    for args in [
        &["staff", "show", "adele"][..],
        &["staff", "list"][..],
        &["staff", "list", "--json"][..],
    ] {
        let output = home.run(args);
        let all = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {all}");
        assert!(
            !all.contains(PASSWORD),
            "{args:?} printed the password: {all}"
        );
    }
    assert!(
        !home.read("staff.toml").contains(PASSWORD),
        "staff.toml holds the password"
    );

    // Stored somewhere, and every file holding it is 0600.
    let holders: Vec<PathBuf> = files_under(home.path())
        .into_iter()
        .filter(|p| !p.starts_with(home.libs()) && !p.ends_with("echo.out"))
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()))
                .unwrap_or(false)
        })
        .collect();
    assert!(
        !holders.is_empty(),
        "the password is stored in no file of the home"
    );
    #[cfg(unix)]
    for holder in &holders {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(holder).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            0o600,
            "{} holds the password with mode {mode:o}",
            holder.display()
        );
    }

    // And it reaches the plugin, without the trailing newline.
    home.json(&adele_send_args(&["--json"]));
    let recorded = home.read("echo.out");
    assert!(
        recorded.contains(&format!("staff.password={PASSWORD}\n")),
        "{recorded}"
    );
}

//! Helpers shared by the email-store, batch and mission tests: a home with the pickup-dir
//! provider (fast, no network), a home with the real Graph plugin pointed at an in-process
//! emulator, and readers for `mailhost email list --json`.

#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};

use mailhost_emulator::{Emulator, seed};
use mailhost_tests::{Home, plugin_path};
use serde_json::Value;

/// The staff ID used by the Graph homes.
pub(crate) const STAFF: &str = "alex";

/// A home with pickup-dir registered, enabled and configured, and staff member `adele` on it;
/// returns the home and the pickup folder.
pub(crate) fn pickup_home() -> (Home, PathBuf) {
    let home = Home::new();
    home.add_enabled(&plugin_path("pickup_dir"));
    let outbox = home.path().join("pickup");
    std::fs::create_dir(&outbox).unwrap();
    home.ok(&[
        "config",
        "set",
        "pickup-dir",
        "Directory",
        outbox.to_str().unwrap(),
    ]);
    home.ok(&[
        "staff",
        "add",
        "adele",
        "--provider",
        "pickup-dir",
        "--email",
        "adele@contoso.com",
        "--name",
        "Adele Vance",
    ]);
    (home, outbox)
}

/// The `.eml` files in `dir`.
pub(crate) fn eml_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count()
}

/// A home with the real Graph plugin pointed at `emulator`, and the NonInteractive staff
/// member [`STAFF`] (the seeded user, username and password).
pub(crate) fn graph_home(emulator: &Emulator) -> Home {
    let home = Home::new();
    configure_graph(&home, emulator);
    home
}

/// Registers and configures the Graph plugin and [`STAFF`] in `home`.
pub(crate) fn configure_graph(home: &Home, emulator: &Emulator) {
    home.add_enabled(&plugin_path("graph_email"));
    for (key, value) in [
        ("ClientID", seed::MAILHOST_CLIENT_ID),
        ("TenantID", seed::TENANT_ID),
        ("Authority", emulator.authority()),
        ("GraphEndpoint", emulator.graph_endpoint()),
    ] {
        home.ok(&["config", "set", "graph-email", key, value]);
    }
    let output = home.run_with_stdin(
        &[
            "staff",
            "add",
            STAFF,
            "--provider",
            "graph-email",
            "--email",
            seed::USER_UPN,
            "--name",
            seed::USER_NAME,
            "--username",
            seed::USER_UPN,
            "--field",
            "NonInteractive=true",
            "--password-stdin",
        ],
        &format!("{}\n", seed::USER_PASSWORD),
    );
    mailhost_tests::assert_exit(&output, 0, &["staff", "add", STAFF]);
}

/// `mailhost email list --json` as a list of records.
pub(crate) fn records(home: &Home) -> Vec<Value> {
    match home.json(&["email", "list", "--json"]) {
        Value::Array(items) => items,
        other => panic!("email list --json is not an array: {other}"),
    }
}

/// Parses the JSON a command printed on stdout, whatever its exit status.
pub(crate) fn stdout_json(output: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}):\n{text}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

//! Helpers shared by the email-store, batch and mission tests: counting the `.eml` files
//! pickup-dir wrote, and readers for `mailhost email list --json` and other JSON results. The
//! homes they start from are in `mailhost_tests::homes`.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;

use mailhost_tests::Home;
use serde_json::Value;

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

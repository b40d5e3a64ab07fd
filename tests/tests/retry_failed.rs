//! `email retry --failed` skips emails whose error sending again cannot fix (configuration,
//! recipient, invalid message) and says how many; `--force` sends them too.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use mailhost_tests::Home;
use serde_json::Value;

#[test]
fn permanent_errors_are_skipped_unless_forced() {
    let home = Home::new();
    let pickup = home.add_pickup_dir("pickup");
    let missing = home.path().join("not-yet");
    home.ok(&[
        "config",
        "set",
        "pickup-dir",
        "Directory",
        missing.to_str().unwrap(),
    ]);
    home.add_adele("pickup-dir", &[]);
    let sent = home.run(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "megan@contoso.com",
        "--subject",
        "Hi",
        "--json",
    ]);
    assert_eq!(sent.status.code(), Some(1), "{sent:?}");
    let json: Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "configuration", "{json:#}");

    // Fixed, but a configuration error is not retried without --force.
    home.ok(&[
        "config",
        "set",
        "pickup-dir",
        "Directory",
        pickup.to_str().unwrap(),
    ]);
    let output = home.run(&["email", "retry", "--failed"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skipped 1 failed email"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_dir(&pickup).unwrap().count(), 0);
    let listed = home.json(&["email", "retry", "--failed", "--json"]);
    assert_eq!(
        (listed["retried"].as_u64(), listed["skipped"].as_u64()),
        (Some(0), Some(1))
    );

    let forced = home.json(&["email", "retry", "--failed", "--force", "--json"]);
    assert_eq!(forced["sent"], 1, "{forced:#}");
    assert_eq!(std::fs::read_dir(&pickup).unwrap().count(), 1);
}

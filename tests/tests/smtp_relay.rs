//! The SMTP relay through the real `mailhost` binary: relay credentials and From lists kept
//! by `staff set` (hashed, never shown).

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use mailhost_tests::Home;
use mailhost_tests::homes::pickup_home;

fn staff_json(home: &Home) -> serde_json::Value {
    home.json(&["staff", "show", "adele", "--json"])
}

#[test]
fn relay_password_is_stored_hashed_and_from_list_kept() {
    let (home, _pickup) = pickup_home();
    assert_eq!(staff_json(&home)["relay_password"], "not set");
    let out = home.run_with_stdin(
        &["staff", "set", "adele", "--relay-password-stdin"],
        "s3cret-relay-pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = staff_json(&home);
    assert_eq!(shown["relay_password"], "set");
    let secrets = home.read("secrets.toml");
    assert!(secrets.contains("staff.adele.relay_password"), "{secrets}");
    assert!(secrets.contains("$argon2id$"), "{secrets}");
    assert!(!secrets.contains("s3cret-relay-pw"));
    for text in [
        home.read("staff.toml"),
        home.ok(&["staff", "show", "adele"]),
    ] {
        assert!(
            !text.contains("s3cret-relay-pw") && !text.contains("argon2"),
            "{text}"
        );
    }

    home.ok(&[
        "staff",
        "set",
        "adele",
        "--relay-from",
        "sales@contoso.com",
        "--relay-from",
        "info@contoso.com",
    ]);
    home.ok(&["staff", "set", "adele", "--relay-from", "SALES@contoso.com"]);
    assert_eq!(
        staff_json(&home)["relay_from"],
        serde_json::json!(["sales@contoso.com", "info@contoso.com"])
    );
    assert!(home.read("staff.toml").contains("relay_from"));
    let refused = home.refused(&["staff", "set", "adele", "--relay-from", "not-an-address"]);
    assert!(refused.contains("not-an-address"), "{refused}");
    home.ok(&[
        "staff",
        "set",
        "adele",
        "--clear-relay-from",
        "--relay-from",
        "x@contoso.com",
    ]);
    assert_eq!(
        staff_json(&home)["relay_from"],
        serde_json::json!(["x@contoso.com"])
    );
    home.ok(&["staff", "set", "adele", "--clear-relay-from"]);
    assert_eq!(staff_json(&home)["relay_from"], serde_json::json!([]));

    home.ok(&["staff", "set", "adele", "--clear-relay-password"]);
    assert_eq!(staff_json(&home)["relay_password"], "not set");
    let empty = home.run_with_stdin(&["staff", "set", "adele", "--relay-password-stdin"], "\n");
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("--relay-password-stdin"));
}

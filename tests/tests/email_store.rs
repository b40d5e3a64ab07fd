//! The durable email store through the real binary, with the pickup-dir provider (fast, no
//! network): every send is recorded; bad input is refused with exit 2 and nothing recorded; a
//! provider that cannot be used keeps the email as `failed` (exit 1) and `email retry` sends it
//! once fixed; list/show/retry round trips; a locked or corrupted mail.db is reported clearly.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::time::{Duration, Instant};

use email_support::{eml_count, records, stdout_json};
use mailhost_tests::homes::pickup_home;
use mailhost_tests::{Home, assert_exit};

/// `email send --staff adele --to TO`, then `extra`.
fn send_to<'a>(to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["email", "send", "--staff", "adele", "--to", to];
    args.extend_from_slice(extra);
    args
}

/// The basic send (to megan@contoso.com, subject Hello, body Hi) with `extra` arguments.
fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = send_to("megan@contoso.com", &["--subject", "Hello", "--body", "Hi"]);
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_send_is_recorded_and_listed_shown_and_retried() {
    let (home, pickup) = pickup_home();
    let attachment = home.path().join("report.txt");
    std::fs::write(&attachment, "numbers\n").unwrap();
    let sent = home.json(&with(&["--attach", attachment.to_str().unwrap(), "--json"]));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert_eq!(sent["provider"], "pickup-dir");
    let id = sent["id"].as_str().unwrap().to_string();
    assert_eq!(eml_count(&pickup), 1);

    let list = records(&home);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "sent");
    assert_eq!(list[0]["attempts"], 1);
    let table = home.ok(&["email", "list"]);
    assert!(
        table.contains(&id[..8]) && table.contains("sent") && table.contains("megan@contoso.com"),
        "{table}"
    );
    assert!(
        home.ok(&["email", "list", "--status", "failed"])
            .contains("no emails")
    );
    assert!(
        home.fails(&["email", "list", "--status", "done"], 2)
            .contains("queued")
    );

    // Show by a unique prefix, in both forms.
    let shown = home.ok(&["email", "show", &id[..8]]);
    assert!(
        shown.contains(&id) && shown.contains("status:      sent") && shown.contains("report.txt"),
        "{shown}"
    );
    let shown = home.json(&["email", "show", &id, "--json"]);
    assert_eq!(shown["status"], "sent");
    assert!(shown["receipt"].is_object(), "{shown:#}");
    assert_eq!(shown["attachments"][0]["name"], "report.txt");
    assert!(
        home.fails(&["email", "show", "ffffffff"], 2)
            .contains("email list")
    );

    // Retrying a sent email needs --force, and says so.
    let refusal = home.fails(&["email", "retry", &id], 2);
    assert!(
        refusal.contains("already sent") && refusal.contains("--force"),
        "{refusal}"
    );
    assert_eq!(eml_count(&pickup), 1);
    let again = home.json(&["email", "retry", &id, "--force", "--json"]);
    assert_eq!(again["status"], "sent");
    assert_eq!(again["attempts"], 2);
    assert_eq!(eml_count(&pickup), 2);
}

#[test]
fn bad_input_is_refused_and_nothing_is_recorded() {
    let (home, pickup) = pickup_home();
    let missing = home.path().join("no-such-file.pdf");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (send_to("not-an-address", &[]), "not valid"),
        (
            send_to("a@b.com", &["--subject", "Hi\r\nBcc: x@evil.com"]),
            "line break",
        ),
        (
            send_to("a@b.com", &["--subject", "Hi\nthere"]),
            "line break",
        ),
        (send_to("Evil\r\nBcc: x@evil.com <a@b.com>", &[]), ""),
        (
            send_to("a@b.com", &["--from", "Sales\n <sales@contoso.com>"]),
            "",
        ),
        (
            send_to("a@b.com", &["--attach", missing.to_str().unwrap()]),
            "no-such-file.pdf",
        ),
        (
            vec!["email", "send", "--staff", "nobody", "--to", "a@b.com"],
            "nobody",
        ),
        (vec!["email", "send", "--staff", "adele"], "recipient"),
    ];
    for (args, expected) in &cases {
        let stderr = home.fails(args, 2);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.starts_with("mailhost: "), "{args:?}: {stderr}");
    }
    assert!(records(&home).is_empty(), "{:#?}", records(&home));
    assert_eq!(eml_count(&pickup), 0);
}

/// Sends while the provider cannot be used, checks the record kept with the error, fixes the
/// cause with `fix` and retries.
fn kept_then_retried(break_it: &[&str], fix: &dyn Fn(&Home), expected: &str) {
    let (home, pickup) = pickup_home();
    home.ok(break_it);
    let output = home.run(&with(&["--json"]));
    assert_exit(&output, 1, break_it);
    let failed = stdout_json(&output);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["kind"], "configuration", "{failed:#}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains(expected), "{message}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mailhost email retry"), "{stderr}");
    let id = failed["id"].as_str().unwrap().to_string();

    let list = records(&home);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "failed");
    assert_eq!(list[0]["attempts"], 0, "the provider was never called");
    assert_eq!(list[0]["subject"], "Hello");
    // Still broken: retry keeps it failed (exit 1), nothing sent.
    home.fails(&["email", "retry", &id], 1);
    assert_eq!(eml_count(&pickup), 0);

    fix(&home);
    let retried = home.ok(&["email", "retry", &id]);
    assert!(retried.contains(&format!("sent {id}")), "{retried}");
    assert_eq!(eml_count(&pickup), 1);
    let record = home.json(&["email", "show", &id, "--json"]);
    assert_eq!(record["status"], "sent");
    assert!(record["error"].is_null(), "{record:#}");
}

#[test]
fn a_disabled_provider_keeps_the_email_for_a_retry() {
    kept_then_retried(
        &["plugin", "disable", "pickup-dir"],
        &|home| {
            home.ok(&["plugin", "enable", "pickup-dir"]);
        },
        "pickup-dir",
    );
}

#[test]
fn a_misconfigured_provider_keeps_the_email_for_a_retry() {
    kept_then_retried(
        &["config", "unset", "pickup-dir", "Directory"],
        &|home| {
            let dir = home.path().join("pickup");
            home.ok(&[
                "config",
                "set",
                "pickup-dir",
                "Directory",
                dir.to_str().unwrap(),
            ]);
        },
        "Directory",
    );
}

#[test]
fn an_unregistered_provider_keeps_the_email_and_retry_failed_sends_it() {
    let (home, pickup) = pickup_home();
    home.ok(&["plugin", "remove", "pickup-dir"]);
    for _ in 0..2 {
        home.fails(&with(&[]), 1);
    }
    assert_eq!(
        records(&home)
            .iter()
            .filter(|r| r["status"] == "failed")
            .count(),
        2
    );
    let lib = home.libs().join(format!(
        "{}pickup_dir{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    home.register_enabled(&lib);
    let out = home.ok(&["email", "retry", "--failed"]);
    assert!(out.contains("sent 2"), "{out}");
    assert_eq!(eml_count(&pickup), 2);
    assert!(records(&home).iter().all(|r| r["status"] == "sent"));
    assert!(
        home.ok(&["email", "retry", "--failed"])
            .contains("no failed emails")
    );
}

#[test]
fn a_locked_mail_db_is_reported_without_hanging() {
    let (home, _pickup) = pickup_home();
    home.ok(&with(&[]));
    let db = home.path().join("mail.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let output = home.run_env(&with(&[]), &[("MAILHOST_DB_BUSY_TIMEOUT_MS", "300")]);
    let elapsed = started.elapsed();
    assert_exit(&output, 1, &with(&[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mail.db") && stderr.contains("locked"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(records(&home).len(), 1, "the refused send recorded nothing");
}

#[test]
fn a_corrupted_mail_db_is_refused_and_left_untouched() {
    let (home, pickup) = pickup_home();
    let db = home.path().join("mail.db");
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    // Private, as mailhost's own files are: the point here is the content, not the mode.
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for args in [vec!["email", "list"], with(&[])] {
        let stderr = home.fails(&args, 2);
        assert!(
            stderr.contains("mail.db") && stderr.contains("untouched"),
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    assert_eq!(eml_count(&pickup), 0, "nothing is sent without a store");
}

#[test]
fn a_damaged_sqlite_mail_db_is_refused_and_left_untouched() {
    let (home, _pickup) = pickup_home();
    for _ in 0..3 {
        home.ok(&with(&[]));
    }
    let db = home.path().join("mail.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() >= 8192, "mail.db is {} bytes", bytes.len());
    // Scribble over every page after the first: the schema and the tables.
    for byte in bytes.iter_mut().skip(4096) {
        *byte = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let stderr = home.fails(&["email", "list"], 2);
    assert!(stderr.contains("mail.db"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

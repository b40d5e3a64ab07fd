//! `mailhost email send-batch` through the real binary with the pickup-dir provider: invalid
//! lines are reported with their numbers and skipped, the rest sent; a rerun resumes and sends
//! nothing twice; exit statuses 0/1/2.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::fmt::Write as _;
use std::path::Path;

use email_support::{eml_count, records, stdout_json};
use mailhost_tests::assert_exit;
use mailhost_tests::homes::pickup_home;

fn lines(count: usize) -> String {
    let mut text = String::new();
    for i in 1..=count {
        writeln!(
            text,
            r#"{{"to": ["megan@contoso.com"], "subject": "line {i}", "body": "hello {i}"}}"#
        )
        .unwrap();
    }
    text
}

/// `email send-batch FILE --staff STAFF`, then `extra`.
fn batch_args<'a>(file: &'a Path, staff: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "email",
        "send-batch",
        file.to_str().unwrap(),
        "--staff",
        staff,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_clean_batch_sends_every_line_once_and_resumes() {
    let (home, pickup) = pickup_home();
    let file = home.path().join("batch.jsonl");
    std::fs::write(&file, lines(25)).unwrap();
    let args = batch_args(&file, "adele", &[]);
    let output = home.run(&args);
    assert_exit(&output, 0, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sent 25, failed 0"), "{stderr}");
    assert_eq!(eml_count(&pickup), 25);

    let json_args = batch_args(&file, "adele", &["--json"]);
    let summary = home.json(&json_args);
    assert_eq!(summary["sent"], 0, "{summary:#}");
    assert_eq!(summary["skipped_sent"], 25, "{summary:#}");
    assert_eq!(eml_count(&pickup), 25, "a rerun sends nothing again");
    assert_eq!(records(&home).len(), 25);
}

#[test]
fn invalid_lines_are_reported_by_number_and_the_rest_sent() {
    let (home, pickup) = pickup_home();
    let file = home.path().join("batch.jsonl");
    let text = format!(
        "{}{}\n{}\n{}",
        lines(2),
        "{not json",
        r#"{"to": ["bad address"], "subject": "x"}"#,
        lines(1).replace("line 1", "line 5"),
    );
    std::fs::write(&file, text).unwrap();
    let args = batch_args(&file, "adele", &[]);
    let output = home.run(&args);
    assert_exit(&output, 1, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("batch.jsonl:3:"), "{stderr}");
    assert!(stderr.contains("batch.jsonl:4:"), "{stderr}");
    assert!(stderr.contains("invalid 2"), "{stderr}");
    assert_eq!(eml_count(&pickup), 3);

    let output = home.run(&batch_args(&file, "adele", &["--json"]));
    assert_exit(&output, 1, &args);
    let summary = stdout_json(&output);
    assert_eq!(summary["skipped_sent"], 3, "{summary:#}");
    assert_eq!(summary["invalid"], 2, "{summary:#}");
    assert_eq!(summary["invalid_lines"][0]["line"], 3, "{summary:#}");
    assert_eq!(eml_count(&pickup), 3);
}

#[test]
fn a_batch_that_cannot_run_exits_2() {
    let (home, pickup) = pickup_home();
    let missing = home.path().join("missing.jsonl");
    let stderr = home.fails(&batch_args(&missing, "adele", &[]), 2);
    assert!(stderr.contains("missing.jsonl"), "{stderr}");
    let file = home.path().join("batch.jsonl");
    std::fs::write(&file, lines(1)).unwrap();
    let stderr = home.fails(&batch_args(&file, "nobody", &[]), 2);
    assert!(stderr.contains("nobody"), "{stderr}");
    assert_eq!(eml_count(&pickup), 0);
    assert!(records(&home).is_empty());
}

#[test]
fn failed_lines_exit_1_and_a_rerun_after_the_fix_sends_them() {
    let (home, pickup) = pickup_home();
    let file = home.path().join("batch.jsonl");
    std::fs::write(&file, lines(3)).unwrap();
    // The provider refuses every send: its folder is gone.
    std::fs::remove_dir(&pickup).unwrap();
    let args = batch_args(&file, "adele", &["--json"]);
    let output = home.run(&args);
    assert_exit(&output, 1, &args);
    let summary = stdout_json(&output);
    assert_eq!(summary["failed"], 3, "{summary:#}");
    assert!(records(&home).iter().all(|r| r["status"] == "failed"));
    std::fs::create_dir(&pickup).unwrap();
    let summary = home.json(&args);
    assert_eq!(summary["sent"], 3, "{summary:#}");
    assert_eq!(eml_count(&pickup), 3);
}

//! kill -9 in the middle of a `send-batch` of 500 emails through the real Graph plugin and the
//! emulator, then a rerun: every email is delivered, none twice. Emails whose outcome the kill
//! made unknown are flagged `unknown` and delivered at most once.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use email_support::{records, stdout_json};
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::{STAFF, graph_home};

const EMAILS: usize = 500;

#[test]
fn a_killed_batch_resumes_and_sends_nothing_twice() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let file = home.path().join("batch.jsonl");
    let mut text = String::new();
    for i in 0..EMAILS {
        writeln!(
            text,
            r#"{{"to": ["{}"], "subject": "batch {i:04}", "body": "email {i}"}}"#,
            seed::RECIPIENT_UPN
        )
        .unwrap();
    }
    std::fs::write(&file, text).unwrap();
    let args = [
        "email",
        "send-batch",
        file.to_str().unwrap(),
        "--staff",
        STAFF,
        "--json",
    ];

    // Slow the service down a little so the kill lands mid-batch.
    emulator.set_latency(10);
    let mut child = home
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if emulator.counters().messages_delivered >= (EMAILS / 2) as u64 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the batch ended ({status}) before it could be killed");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the batch is too slow"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = emulator.counters().messages_delivered;
    assert!(
        at_kill < EMAILS as u64,
        "the batch finished before the kill"
    );
    emulator.set_latency(0);

    let output = home.run(&args);
    let summary = stdout_json(&output);
    let unknown =
        summary["skipped_unknown"].as_u64().unwrap() + summary["unknown"].as_u64().unwrap();
    assert_eq!(
        output.status.code(),
        Some(if unknown > 0 { 1 } else { 0 }),
        "{summary:#}"
    );
    assert_eq!(summary["failed"], 0, "{summary:#}");
    assert!(
        unknown <= 8,
        "at most the emails in flight at the kill are unknown: {summary:#}"
    );
    if unknown > 0 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("mailhost email show"),
            "recovery must warn: {stderr}"
        );
    }

    // Count at the service: each subject delivered exactly once (unknown ones at most once).
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for message in emulator.inbox(seed::RECIPIENT_UPN) {
        *delivered.entry(message.subject.clone()).or_default() += 1;
    }
    let records = records(&home);
    assert_eq!(records.len(), EMAILS);
    let mut unknown_seen = 0;
    for record in &records {
        let subject = record["subject"].as_str().unwrap();
        let count = delivered.get(subject).copied().unwrap_or(0);
        match record["status"].as_str().unwrap() {
            "sent" => assert_eq!(count, 1, "{subject} delivered {count} times"),
            "unknown" => {
                unknown_seen += 1;
                assert!(count <= 1, "{subject} delivered {count} times");
                let message = record["error"]["message"].as_str().unwrap();
                assert!(message.contains("--force"), "{message}");
            }
            other => panic!("{subject} ended {other}: {record:#}"),
        }
    }
    assert_eq!(unknown_seen as u64, unknown);
    assert!(
        delivered.values().all(|&n| n == 1),
        "an email was delivered twice"
    );
    assert!(delivered.len() >= EMAILS - unknown as usize);
}

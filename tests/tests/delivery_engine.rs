//! The delivery engine through the real binary, the real Graph plugin and the emulator: sending
//! limits (held sends exit 75 and say when; the per-message limit is bad input), automatic
//! retries that honour Retry-After, `--queue` + `flush`, `serve` draining the queue and
//! stopping on SIGTERM, kill -9 of `serve` with sends in flight, a disabled plugin's emails
//! kept with the reason while others go, and a write failure while recording.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use email_support::{delivered, records, send_args, serve, stdout_json, wait_for};
use mailhost_emulator::{Emulator, SendingLimits, seed};
use mailhost_tests::homes::{STAFF, graph_home};
use mailhost_tests::{assert_exit, one_line};

fn no_breaches(emulator: &Emulator) {
    let breaches = emulator.counters().limit_breaches;
    assert!(breaches.is_empty(), "sending limits breached: {breaches:?}");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "serve did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_spent_limit_keeps_the_email_queued_exits_75_and_says_when() {
    let emulator = Emulator::start().unwrap();
    emulator.set_sending_limits(SendingLimits {
        messages_per_minute: Some(2),
        recipients_per_day: None,
    });
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MessagesPerMinute", "2"]);

    home.ok(&send_args("first", &[]));
    let output = home.run(&send_args("second", &["--max-wait", "0s", "--json"]));
    assert_exit(&output, 75, &["email", "send", "second"]);
    let record = stdout_json(&output);
    assert_eq!(record["status"], "queued", "{record:#}");
    assert!(record["not_before"].is_string(), "{record:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MessagesPerMinute"), "{stderr}");
    assert!(stderr.contains("may go at"), "{stderr}");
    assert!(stderr.contains("mailhost email flush"), "{stderr}");

    // flush leaves it (the hold is 30 s away) and says so with 75.
    let output = home.run(&["email", "flush", "--json"]);
    assert_exit(&output, 75, &["email", "flush"]);
    let summary = stdout_json(&output);
    assert_eq!(summary["queued"], 1, "{summary:#}");

    let limits = home.json(&["limits", "--json"]);
    let row = &limits["mailboxes"][0];
    assert_eq!(
        row["mailbox"],
        seed::USER_UPN.to_ascii_lowercase(),
        "{limits:#}"
    );
    assert_eq!(row["messages"]["max"], 2, "{limits:#}");
    assert_eq!(row["messages"]["used"], 1, "{limits:#}");
    assert_eq!(row["recipients"]["max"], 10_000, "{limits:#}");
    assert!(
        row["held_by"]
            .as_str()
            .unwrap()
            .contains("MessagesPerMinute"),
        "{limits:#}"
    );
    let table = home.ok(&["limits"]);
    assert!(table.contains("1/2 per minute"), "{table}");

    assert_eq!(emulator.counters().messages_delivered, 1);
    no_breaches(&emulator);
}

#[test]
fn more_recipients_than_one_message_may_have_is_refused_as_input() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "RecipientsPerMessage", "2"]);
    let output = home.run(&[
        "email",
        "send",
        "--staff",
        STAFF,
        "--to",
        "a@contoso.com",
        "b@contoso.com",
        "--cc",
        "c@contoso.com",
        "--subject",
        "too many",
    ]);
    assert_exit(&output, 2, &["email", "send", "3 recipients"]);
    let line = one_line(&String::from_utf8_lossy(&output.stderr)).to_string();
    assert!(line.contains("RecipientsPerMessage"), "{line}");
    assert!(line.contains("split it"), "{line}");
    assert!(records(&home).is_empty(), "nothing is recorded");
    assert_eq!(emulator.counters().send_mail, 0);
}

#[test]
fn throttled_sends_are_retried_by_the_engine_after_retry_after() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    // The provider gives up at once, so every retry is the engine's.
    home.ok(&["config", "set", "graph-email", "MaxRetries", "0"]);
    emulator.fault_throttle(2, 1, Some("/v1.0/"));
    let started = Instant::now();
    let record = home.json(&send_args("throttled", &["--json"]));
    assert_eq!(record["status"], "sent", "{record:#}");
    assert_eq!(record["attempts"], 3, "{record:#}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "two Retry-After waits of 1 s"
    );
    let shown = home.json(&["email", "show", record["id"].as_str().unwrap(), "--json"]);
    let log = shown["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{shown:#}");
    assert_eq!(log[0]["outcome"], "retry");
    assert_eq!(log[0]["error"]["kind"], "throttled");
    assert_eq!(log[2]["outcome"], "sent");
    assert_eq!(delivered(&emulator)["throttled"], 1);
}

#[test]
fn a_retry_that_cannot_be_waited_for_leaves_the_email_queued_for_later() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MaxRetries", "0"]);
    emulator.fault_throttle(1, 120, Some("/v1.0/"));
    let output = home.run(&send_args("later", &["--max-wait", "1s", "--json"]));
    assert_exit(&output, 75, &["email", "send"]);
    let record = stdout_json(&output);
    assert_eq!(record["status"], "queued", "{record:#}");
    assert_eq!(record["error"]["kind"], "throttled", "{record:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("will be retried"), "{stderr}");
}

#[test]
fn queued_emails_are_sent_by_serve_which_stops_cleanly_on_sigterm() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    for i in 0..5 {
        let subject = format!("queued {i}");
        let record = home.json(&send_args(&subject, &["--queue", "--json"]));
        assert_eq!(record["status"], "queued", "{record:#}");
    }
    assert_eq!(emulator.counters().send_mail, 0, "--queue sends nothing");
    let mut child = serve(&home, &["--grace", "10s"]);
    wait_for("5 deliveries", Duration::from_secs(60), || {
        emulator.counters().messages_delivered >= 5
    });
    // One more, recorded while the service runs: it is picked up without a restart.
    home.json(&send_args("while serving", &["--queue", "--json"]));
    wait_for("the 6th delivery", Duration::from_secs(30), || {
        emulator.counters().messages_delivered >= 6
    });
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "serve exited {status}");
    assert!(records(&home).iter().all(|r| r["status"] == "sent"));
    assert!(delivered(&emulator).values().all(|n| *n == 1));
    no_breaches(&emulator);
}

#[test]
fn kill_9_of_serve_with_sends_in_flight_loses_nothing_and_sends_nothing_twice() {
    const EMAILS: usize = 40;
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MessagesPerMinute", "0"]);
    for i in 0..EMAILS {
        let subject = format!("kill {i:02}");
        home.json(&send_args(&subject, &["--queue", "--json"]));
    }
    emulator.set_latency(300);
    let mut child = serve(&home, &[]);
    wait_for("8 deliveries", Duration::from_secs(60), || {
        emulator.counters().messages_delivered >= 8
    });
    child.kill().unwrap(); // SIGKILL, with up to 4 sends in flight
    child.wait().unwrap();
    emulator.set_latency(0);

    // The next process turns the interrupted sends into `unknown`; the rest are still queued.
    let listed = records(&home);
    assert_eq!(listed.len(), EMAILS, "nothing is lost");
    let in_doubt = listed.iter().filter(|r| r["status"] == "unknown").count();
    assert!(
        in_doubt <= 4,
        "at most the 4 in flight are in doubt: {in_doubt}"
    );

    let mut child = serve(&home, &[]);
    wait_for("the queue to drain", Duration::from_secs(60), || {
        records(&home)
            .iter()
            .all(|r| r["status"] != "queued" && r["status"] != "sending")
    });
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());

    let seen = delivered(&emulator);
    for record in records(&home) {
        let subject = record["subject"].as_str().unwrap();
        let count = seen.get(subject).copied().unwrap_or(0);
        match record["status"].as_str().unwrap() {
            "sent" => assert_eq!(count, 1, "{subject} delivered {count} times"),
            "unknown" => assert!(count <= 1, "{subject} delivered {count} times"),
            other => panic!("{subject} ended {other}: {record:#}"),
        }
    }
}

#[test]
fn a_disabled_plugins_emails_wait_with_the_reason_while_the_others_go() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let pickup = home.add_pickup_dir("pickup");
    home.add_adele("pickup-dir", &[]);
    home.json(&send_args("through graph", &["--queue", "--json"]));
    let record = home.json(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "megan@contoso.com",
        "--subject",
        "through pickup",
        "--queue",
        "--json",
    ]);
    home.ok(&["plugin", "disable", "pickup-dir"]);

    let output = home.run(&["email", "flush", "--json"]);
    assert_exit(&output, 75, &["email", "flush"]);
    assert_eq!(delivered(&emulator)["through graph"], 1);
    let kept = home.json(&["email", "show", record["id"].as_str().unwrap(), "--json"]);
    assert_eq!(kept["status"], "queued", "{kept:#}");
    let why = kept["error"]["message"].as_str().unwrap();
    assert!(why.contains("disabled"), "{why}");
    assert!(why.contains("plugin enable pickup-dir"), "{why}");

    home.ok(&["plugin", "enable", "pickup-dir"]);
    // The kept email waits a minute before it is looked at again; a retry makes it due now.
    let id = record["id"].as_str().unwrap();
    let output = home.run(&["email", "retry", id, "--json"]);
    assert_exit(&output, 0, &["email", "retry"]);
    assert_eq!(std::fs::read_dir(&pickup).unwrap().count(), 1);
}

#[test]
fn a_write_failure_while_recording_is_a_clear_error_and_records_nothing() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let attachment = home.path().join("big.bin");
    std::fs::write(&attachment, vec![7u8; 3 << 20]).unwrap();
    // A file-size limit of 1 MiB makes the spool copy fail the way a full disk does (EFBIG
    // instead of ENOSPC), with SIGXFSZ ignored so the write returns the error.
    let bin = mailhost_tests::mailhost_bin();
    let script = format!(
        "trap '' XFSZ; ulimit -f 1024; exec '{}' --home '{}' email send --staff {STAFF} --to {} --subject big --attach '{}'",
        bin.display(),
        home.path().display(),
        seed::RECIPIENT_UPN,
        attachment.display()
    );
    let output = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_exit(&output, 1, &["email", "send", "--attach", "big.bin"]);
    let line = one_line(&String::from_utf8_lossy(&output.stderr)).to_string();
    assert!(line.contains("spool"), "{line}");
    assert!(line.contains("disk has room"), "{line}");
    assert!(records(&home).is_empty(), "nothing is recorded");
    let spool = home.path().join("spool");
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing half-written is left in the spool");
    assert_eq!(emulator.counters().send_mail, 0);
}

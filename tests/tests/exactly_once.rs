//! Exactly once end to end: kill -9 of `mailhost serve` with 4 sends in flight, then
//! `mailhost email reconcile --all` asks the Graph provider about each email in doubt (found in
//! Sent Items by the mailhost id property: `sent`; absent after ReconcileWaitSeconds: queued
//! again) and `email flush` sends the rest: every email ends `sent` and arrived exactly once,
//! counted at the emulator. And deliver-then-503 through the binary: one copy, record `sent`.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::time::Duration;

use email_support::{delivered, records, send_args, serve, stdout_json, wait_for};
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::graph_home;

#[test]
fn kill_9_mid_batch_then_reconcile_every_email_arrives_exactly_once() {
    const EMAILS: usize = 40;
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MessagesPerMinute", "0"]);
    home.ok(&["config", "set", "graph-email", "ReconcileWaitSeconds", "1"]);
    for i in 0..EMAILS {
        home.json(&send_args(&format!("kill {i:02}"), &["--queue", "--json"]));
    }
    emulator.set_latency(300);
    let mut child = serve(&home, &[]);
    wait_for("8 deliveries", Duration::from_secs(60), || {
        emulator.counters().messages_delivered >= 8
    });
    // Mid-way through the next sends' 300 ms, so the kill lands with sends in flight.
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL, with up to 4 sends in flight
    child.wait().unwrap();
    emulator.set_latency(0);
    // Let the Sent Items copies of the interrupted sends have their ReconcileWaitSeconds.
    std::thread::sleep(Duration::from_millis(1500));

    let in_doubt = records(&home)
        .iter()
        .filter(|r| r["status"] == "unknown")
        .count();
    // The kill usually leaves sends in doubt; when it happened to land between two sends,
    // the checks below still prove nothing was lost or sent twice.
    if in_doubt == 0 {
        eprintln!("note: the kill landed between sends; nothing was in doubt this time");
    }
    let reconciled = home.run(&["email", "reconcile", "--all", "--json"]);
    let summary = stdout_json(&reconciled);
    assert_eq!(
        summary["unknown"], 0,
        "every email in doubt is settled ({in_doubt} were): {summary:#}"
    );
    assert_eq!(
        summary["sent"].as_u64().unwrap() + summary["requeued"].as_u64().unwrap(),
        in_doubt as u64,
        "{summary:#}"
    );
    home.ok(&["email", "flush"]);

    let seen = delivered(&emulator);
    let all = records(&home);
    assert_eq!(all.len(), EMAILS, "nothing is lost");
    for record in all {
        let subject = record["subject"].as_str().unwrap();
        assert_eq!(record["status"], "sent", "{record:#}");
        assert_eq!(
            seen.get(subject).copied(),
            Some(1),
            "{subject} arrived once"
        );
    }
    assert_eq!(emulator.inbox(seed::RECIPIENT_UPN).len(), EMAILS);
}

#[test]
fn deliver_then_503_through_the_binary_is_one_copy_and_sent() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&send_args("warm up", &[]));
    emulator
        .fault_deliver_then(1, 503, Some(1), Some("/v1.0/me/sendMail"))
        .unwrap();
    let sent = home.json(&send_args("once only", &["--json"]));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert_eq!(delivered(&emulator).get("once only").copied(), Some(1));
    assert_eq!(emulator.counters().delivered_then_faulted, 1);
}

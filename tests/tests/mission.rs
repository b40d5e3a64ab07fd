//! The mission's testing step end to end, with the real `mailhost` binary, the real Graph plugin
//! library and the Microsoft 365 emulator in-process: an email with To, Subject, Body and an
//! attachment, saved with status Sent, is sent with no error and shows in the recipient's Inbox
//! and the sender's Sent Items; a Graph refusal is kept with its error; interactive sign-in
//! (device code) works; `mailhost demo` passes.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use email_support::{records, stdout_json};
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::{STAFF, graph_home};
use mailhost_tests::{assert_exit, mailhost_bin};

#[test]
fn the_testing_step_reaches_inbox_and_sent_items() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let attachment = home.path().join("Invoice-1001.pdf");
    let bytes: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&attachment, &bytes).unwrap();

    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        STAFF,
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "Invoice 1001",
        "--body",
        "Please find the invoice attached.",
        "--attach",
        attachment.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert_eq!(sent["provider"], "graph-email");
    assert!(sent["error"].is_null(), "{sent:#}");

    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    let arrived = &inbox[0];
    assert_eq!(arrived.subject, "Invoice 1001");
    assert_eq!(arrived.from_address().as_deref(), Some(seed::USER_UPN));
    assert!(!arrived.is_on_behalf());
    assert_eq!(arrived.attachments.len(), 1);
    assert_eq!(arrived.attachments[0].name, "Invoice-1001.pdf");
    assert_eq!(arrived.attachments[0].size, bytes.len() as u64);
    let sent_items = emulator.sent_items(seed::USER_UPN);
    assert_eq!(sent_items.len(), 1, "{sent_items:#?}");
    assert_eq!(sent_items[0].subject, "Invoice 1001");
    assert_eq!(
        sent_items[0].to_addresses(),
        vec![seed::RECIPIENT_UPN.to_string()]
    );

    // The record is final, and no listing shows the password.
    let id = sent["id"].as_str().unwrap();
    let record = home.json(&["email", "show", id, "--json"]);
    assert_eq!(record["status"], "sent");
    assert_eq!(record["attempts"], 1);
    for output in [
        home.ok(&["email", "show", id]),
        home.ok(&["email", "list"]),
        record.to_string(),
    ] {
        assert!(!output.contains(seed::USER_PASSWORD), "{output}");
    }
}

#[test]
fn a_graph_refusal_is_kept_with_its_error() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let args = [
        "email",
        "send",
        "--staff",
        STAFF,
        "--from",
        seed::NO_RIGHTS_MAILBOX,
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "Not allowed",
        "--json",
    ];
    let output = home.run(&args);
    assert_exit(&output, 1, &args);
    let failed = stdout_json(&output);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    // `/users/{from}/sendMail` without Full Access is ErrorAccessDenied; the `from` property
    // without Send As is ErrorSendAsDenied: either way a permission error with Graph's code.
    assert_eq!(failed["error"]["kind"], "permission", "{failed:#}");
    let code = failed["error"]["code"].as_str().unwrap().to_string();
    assert!(
        ["ErrorAccessDenied", "ErrorSendAsDenied"].contains(&code.as_str()),
        "{failed:#}"
    );
    assert!(failed["error"]["message"].as_str().unwrap().len() > 10);
    let list = records(&home);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "failed");
    assert_eq!(list[0]["error"]["code"], code.as_str());
    assert!(emulator.inbox(seed::RECIPIENT_UPN).is_empty());
}

#[test]
fn send_as_a_shared_mailbox() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        STAFF,
        "--from",
        seed::SHARED_MAILBOX,
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "From sales",
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent:#}");
    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].from_address().as_deref(),
        Some(seed::SHARED_MAILBOX)
    );
}

#[test]
fn login_shows_the_device_code_and_the_cached_sign_in_sends() {
    let emulator = Emulator::start().unwrap();
    emulator.set_device_code_interval(1);
    let home = graph_home(&emulator);
    home.ok(&[
        "staff",
        "add",
        "megan",
        "--provider",
        "graph-email",
        "--email",
        seed::MFA_USER_UPN,
        "--name",
        seed::MFA_USER_NAME,
        "--field",
        "NonInteractive=false",
    ]);
    let mut child = home
        .command(["login", "megan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(pending) = emulator.pending_device_codes().into_iter().next() {
            break pending.user_code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no device code was requested"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    emulator
        .approve_device_code(&code, seed::MFA_USER_UPN)
        .unwrap();
    let status = child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "login failed\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(
        format!("{out}{err}").contains(&code),
        "the user code was not shown:\n{out}\n{err}"
    );

    let sent = home.json(&[
        "email",
        "send",
        "--staff",
        "megan",
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "MFA user",
        "--json",
    ]);
    assert_eq!(sent["status"], "sent", "{sent:#}");
    home.ok(&["logout", "megan"]);
}

#[test]
fn the_demo_passes() {
    let output = std::process::Command::new(mailhost_bin())
        .arg("demo")
        .env_remove("MAILHOST_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&output, 0, &["demo"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("demo passed"), "{stdout}");
    assert!(
        stdout.contains("Inbox of lynne@contoso.onmicrosoft.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Sent Items of alex@contoso.onmicrosoft.com"),
        "{stdout}"
    );
    assert!(stdout.contains("attachment: Invoice-1001.txt"), "{stdout}");
}

//! Helpers shared by the email-store, batch, mission and engine tests: counting the `.eml`
//! files pickup-dir wrote, readers for `mailhost email list --json` and other JSON results,
//! sending one email, counting what arrived, starting `serve`, waiting for a condition. The
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

/// `mailhost email send --staff STAFF --to RECIPIENT --subject SUBJECT --body hello EXTRA...`.
pub(crate) fn send_args<'a>(subject: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "email",
        "send",
        "--staff",
        mailhost_tests::homes::STAFF,
        "--to",
        mailhost_emulator::seed::RECIPIENT_UPN,
        "--subject",
        subject,
        "--body",
        "hello",
    ];
    args.extend_from_slice(extra);
    args
}

/// How many copies of each subject the emulator's recipient mailbox received.
pub(crate) fn delivered(
    emulator: &mailhost_emulator::Emulator,
) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for message in emulator.inbox(mailhost_emulator::seed::RECIPIENT_UPN) {
        *seen.entry(message.subject.clone()).or_default() += 1;
    }
    seen
}

/// Starts `mailhost serve EXTRA...` (stdout piped, stderr inherited) and waits for its first
/// ready line.
pub(crate) fn serve(home: &Home, extra: &[&str]) -> std::process::Child {
    use std::io::BufRead as _;
    let mut args = vec!["serve"];
    args.extend_from_slice(extra);
    let mut child = home
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("mailhost serve: "),
        "serve's first line: {line:?}"
    );
    child
}

/// Polls `done` every 20 ms until it holds; fails the test after `within`.
pub(crate) fn wait_for(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

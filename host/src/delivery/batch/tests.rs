//! Tests of the batch engine against a fake transport that can throttle, fail, and count.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mailhost_plugin_api::{Mailbox, Message, ProviderError, Receipt, is_plausible_address};

use super::*;
use crate::delivery::outbox::{Outbox, Status};

/// A call the fake saw.
#[derive(Debug, Clone)]
struct Call {
    from: String,
    subject: String,
    started: Instant,
    throttled: bool,
}

/// The retry-after the fake asks for.
const THROTTLE_WAIT: Duration = Duration::from_millis(150);

/// Behaviour by subject: `throttle-N` is throttled ([`THROTTLE_WAIT`]) on its first N calls,
/// `transient-N` fails transiently N times, `deny` is refused, `unknown` has an unknown outcome.
#[derive(Default)]
struct Fake {
    delay: Duration,
    calls: Mutex<Vec<Call>>,
    sent: Mutex<Vec<String>>,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<HashMap<String, usize>>,
    total_in_flight: AtomicU64,
    max_total: AtomicU64,
    done: AtomicU64,
}

impl Fake {
    fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    fn calls_for(&self, subject: &str) -> usize {
        let calls = self.calls.lock().expect("calls");
        calls.iter().filter(|c| c.subject == subject).count()
    }

    fn sent_subjects(&self) -> Vec<String> {
        let mut sent = self.sent.lock().expect("sent").clone();
        sent.sort();
        sent
    }
}

impl Transport for Fake {
    fn send(&self, message: &Message) -> Result<Receipt, ProviderError> {
        let from = message.from.address.to_string();
        let subject = message.subject.to_string();
        {
            let mut flight = self.in_flight.lock().expect("flight");
            let now = flight.entry(from.clone()).or_default();
            *now += 1;
            let mut max = self.max_in_flight.lock().expect("max");
            let peak = max.entry(from.clone()).or_default();
            *peak = (*peak).max(*now);
        }
        let total = self.total_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_total.fetch_max(total, Ordering::SeqCst);
        let previous = self.calls_for(&subject);
        let started = Instant::now();
        std::thread::sleep(self.delay);
        let result = match subject.split_once('-') {
            Some(("throttle", n)) if previous < n.parse().unwrap_or(0) => {
                Err(ProviderError::throttled("slow down", Some(THROTTLE_WAIT)).with_code("429"))
            }
            Some(("transient", n)) if previous < n.parse().unwrap_or(usize::MAX) => {
                Err(ProviderError::transient("503 from the service"))
            }
            _ if subject == "deny" => {
                Err(ProviderError::permission("no Send As right").with_code("ErrorSendAsDenied"))
            }
            _ if subject == "unknown" => Err(ProviderError::unknown_outcome("connection reset")),
            _ => Ok(Receipt::default()),
        };
        self.calls.lock().expect("calls").push(Call {
            from: from.clone(),
            subject: subject.clone(),
            started,
            throttled: matches!(&result, Err(e) if e.kind == mailhost_plugin_api::ErrorKind::THROTTLED),
        });
        if result.is_ok() {
            self.sent.lock().expect("sent").push(subject);
        }
        self.total_in_flight.fetch_sub(1, Ordering::SeqCst);
        *self
            .in_flight
            .lock()
            .expect("flight")
            .entry(from)
            .or_default() -= 1;
        self.done.fetch_add(1, Ordering::SeqCst);
        result
    }
}

/// A stand-in for the host's compose module: checks addresses and CR/LF.
fn compose(draft: Draft) -> Result<Message, String> {
    let boxes = |list: &[String]| -> Result<Vec<Mailbox>, String> {
        list.iter()
            .map(|a| {
                if is_plausible_address(a) {
                    Ok(Mailbox::new(a, ""))
                } else {
                    Err(format!("'{a}' is not an email address"))
                }
            })
            .collect()
    };
    let subject = draft.subject.unwrap_or_default();
    if subject.contains(['\r', '\n']) {
        return Err("the subject contains a line break".into());
    }
    Ok(Message {
        from: Mailbox::new(draft.from.as_deref().unwrap_or("staff@contoso.com"), ""),
        to: boxes(&draft.to)?.into(),
        cc: boxes(&draft.cc)?.into(),
        subject: subject.into(),
        body: draft.body.unwrap_or_default().into(),
        ..Message::default()
    })
}

fn options() -> BatchOptions {
    BatchOptions {
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        progress: Progress::Hidden,
        ..BatchOptions::default()
    }
}

const TARGET: BatchTarget<'static> = BatchTarget {
    staff_id: "adele",
    provider: "fake",
};

fn line(subject: &str, from: &str) -> String {
    format!(r#"{{"to":["alex@contoso.com"],"from":"{from}","subject":"{subject}"}}"#)
}

fn write_file(dir: &Path, lines: &[String]) -> PathBuf {
    let path = dir.join("batch.jsonl");
    let mut file = std::fs::File::create(&path).expect("create batch");
    for line in lines {
        writeln!(file, "{line}").expect("write batch");
    }
    path
}

fn run(outbox: &Outbox, fake: &Fake, path: &Path, options: &BatchOptions) -> BatchSummary {
    send_batch(outbox, fake, TARGET, path, options, compose).expect("batch runs")
}

#[test]
fn in_flight_never_exceeds_the_mailbox_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<String> = (0..48)
        .map(|i| {
            line(
                &format!("m{i}"),
                if i % 2 == 0 {
                    "a@contoso.com"
                } else {
                    "b@contoso.com"
                },
            )
        })
        .collect();
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::slow(Duration::from_millis(15));
    let summary = run(&outbox, &fake, &path, &options());
    assert_eq!(summary.sent, 48, "{summary:?}");
    let max = fake.max_in_flight.lock().expect("max").clone();
    for mailbox in ["a@contoso.com", "b@contoso.com"] {
        let peak = max.get(mailbox).copied().unwrap_or(0);
        assert!((2..=4).contains(&peak), "{mailbox}: {peak} in flight");
    }
    assert!(fake.max_total.load(Ordering::SeqCst) <= 8);
    let sent = fake.sent_subjects();
    let mut unique = sent.clone();
    unique.dedup();
    assert_eq!(sent, unique, "an email was sent twice");
}

#[test]
fn throttled_emails_wait_pause_their_mailbox_and_are_sent_once() {
    let dir = tempfile::tempdir().expect("dir");
    let mut lines = vec![line("throttle-2", "a@contoso.com")];
    lines.extend((0..12).map(|i| line(&format!("m{i}"), "a@contoso.com")));
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::slow(Duration::from_millis(5));
    let summary = run(&outbox, &fake, &path, &options());
    assert_eq!(
        (summary.sent, summary.failed, summary.throttled),
        (13, 0, 2),
        "{summary:?}"
    );
    assert_eq!(fake.calls_for("throttle-2"), 3);
    assert_eq!(
        fake.sent_subjects()
            .iter()
            .filter(|s| *s == "throttle-2")
            .count(),
        1
    );
    // After each throttle answer, no call from that mailbox starts within the wait (allowing a
    // few tens of ms for calls that had already passed the gate when the answer came).
    let calls = fake.calls.lock().expect("calls").clone();
    for throttle in calls.iter().filter(|c| c.throttled) {
        let answered = throttle.started + fake.delay;
        let early = calls.iter().filter(|c| {
            c.from == throttle.from
                && c.started > answered + Duration::from_millis(30)
                && c.started < answered + THROTTLE_WAIT - Duration::from_millis(10)
        });
        assert_eq!(early.count(), 0, "a call ignored the mailbox's throttle");
    }
    let record = &outbox.list(Some(Status::Sent), None).expect("list");
    let throttled = record
        .iter()
        .find(|r| r.subject == "throttle-2")
        .expect("record");
    assert_eq!(throttled.attempts, 3);
}

#[test]
fn bad_lines_are_reported_by_number_and_skipped() {
    let dir = tempfile::tempdir().expect("dir");
    let lines = vec![
        line("first", "a@contoso.com"),
        "{not json".to_string(),
        r#"{"to":["x@contoso.com"],"bogus":1}"#.to_string(),
        r#"{"subject":"no recipients"}"#.to_string(),
        String::new(),
        r#"{"to":["not-an-address"]}"#.to_string(),
        r#"{"to":["x@contoso.com"],"subject":"a\r\nBcc: evil@x.com"}"#.to_string(),
        line("last", "a@contoso.com"),
    ];
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::default();
    let summary = run(&outbox, &fake, &path, &options());
    assert_eq!((summary.sent, summary.invalid), (2, 5), "{summary:?}");
    let numbers: Vec<u64> = summary.invalid_lines.iter().map(|p| p.line).collect();
    assert_eq!(numbers, [2, 3, 4, 6, 7]);
    let messages: Vec<&str> = summary
        .invalid_lines
        .iter()
        .map(|p| p.message.as_str())
        .collect();
    assert!(
        messages[1].contains("unknown field `bogus`"),
        "{messages:?}"
    );
    assert!(messages[2].contains("missing field `to`"), "{messages:?}");
    assert!(messages[3].contains("not-an-address"), "{messages:?}");
    assert!(messages[4].contains("line break"), "{messages:?}");
    assert_eq!(
        outbox.list(None, None).expect("list").len(),
        2,
        "invalid lines are not stored"
    );
    assert!(
        summary
            .to_string()
            .starts_with("sent 2, failed 0, skipped 0 (already sent), invalid 5 lines")
    );
}

#[test]
fn a_rerun_sends_only_what_is_left() {
    let dir = tempfile::tempdir().expect("dir");
    let mut lines: Vec<String> = (0..6)
        .map(|i| line(&format!("m{i}"), "a@contoso.com"))
        .collect();
    lines.push(line("deny", "a@contoso.com"));
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::default();
    let first = run(&outbox, &fake, &path, &options());
    assert_eq!((first.sent, first.failed), (6, 1), "{first:?}");
    assert!(
        first.failures[0].message.contains("ErrorSendAsDenied"),
        "{first:?}"
    );
    // The file grows; the refused line is still refused, the new lines are sent.
    lines.extend((6..9).map(|i| line(&format!("m{i}"), "a@contoso.com")));
    let path = write_file(dir.path(), &lines);
    let second = run(&outbox, &fake, &path, &options());
    assert_eq!(
        (second.sent, second.failed, second.skipped_sent),
        (3, 1, 6),
        "{second:?}"
    );
    assert_eq!(
        fake.calls_for("deny"),
        2,
        "a failed line is retried on rerun"
    );
    let third = run(&outbox, &fake, &path, &options());
    assert_eq!((third.sent, third.skipped_sent), (0, 9), "{third:?}");
    let sent = fake.sent_subjects();
    assert_eq!(sent.len(), 9);
    let mut unique = sent.clone();
    unique.dedup();
    assert_eq!(sent, unique);
}

#[test]
fn transient_faults_are_retried_then_recorded() {
    let dir = tempfile::tempdir().expect("dir");
    let lines = vec![
        line("transient-1", "a@contoso.com"),
        line("transient-always", "a@contoso.com"),
        line("unknown", "a@contoso.com"),
    ];
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::default();
    let opts = options();
    let summary = run(&outbox, &fake, &path, &opts);
    assert_eq!(
        (summary.sent, summary.failed, summary.unknown),
        (1, 1, 1),
        "{summary:?}"
    );
    assert_eq!(fake.calls_for("transient-1"), 2);
    assert_eq!(
        fake.calls_for("transient-always"),
        opts.transient_retries as usize + 1
    );
    assert_eq!(
        fake.calls_for("unknown"),
        1,
        "an unknown outcome is never retried"
    );
    let failed = &outbox.list(Some(Status::Failed), None).expect("list")[0];
    assert_eq!(failed.attempts, opts.transient_retries + 1);
    assert_eq!(
        failed.error.as_ref().map(|e| e.kind.as_str()),
        Some("transient")
    );
    let unknown = &outbox.list(Some(Status::Unknown), None).expect("list")[0];
    assert_eq!(unknown.subject, "unknown");
    let rerun = run(&outbox, &fake, &path, &opts);
    assert_eq!(
        (rerun.skipped_unknown, rerun.skipped_sent),
        (1, 1),
        "{rerun:?}"
    );
    assert_eq!(fake.calls_for("unknown"), 1);
}

#[test]
fn reading_stays_a_bounded_distance_ahead_of_sending() {
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<String> = (0..150)
        .map(|i| line(&format!("m{i}"), "a@contoso.com"))
        .collect();
    let path = write_file(dir.path(), &lines);
    let outbox = Outbox::in_memory().expect("store");
    let fake = Fake::slow(Duration::from_millis(1));
    let opts = BatchOptions {
        workers: 2,
        queue: 3,
        ..options()
    };
    let composed = AtomicU64::new(0);
    let widest = AtomicU64::new(0);
    let summary = send_batch(&outbox, &fake, TARGET, &path, &opts, |draft| {
        let ahead = composed.fetch_add(1, Ordering::SeqCst) + 1 - fake.done.load(Ordering::SeqCst);
        widest.fetch_max(ahead, Ordering::SeqCst);
        compose(draft)
    })
    .expect("batch");
    assert_eq!(summary.sent, 150);
    let bound = (opts.queue + opts.workers + 1) as u64;
    assert!(
        widest.load(Ordering::SeqCst) <= bound,
        "read {} ahead",
        widest.load(Ordering::SeqCst)
    );
}

/// Set in the child process of the crash test.
const CRASH_ENV: &str = "MAILHOST_TEST_BATCH_CRASH";

/// Set in the child process of the group-commit crash test.
const GROUP_CRASH_ENV: &str = "MAILHOST_TEST_BATCH_GROUP_CRASH";

/// A transport that logs each delivery to a file, and in the child aborts the process (as
/// kill -9 would) in the middle of its 7th call, after delivering it; or, with
/// `crash_before_delivery`, at the start of its first call, before delivering anything.
struct Logging {
    log: PathBuf,
    crash_at: Option<u64>,
    calls: AtomicU64,
}

impl Logging {
    fn new(log: PathBuf, crash_at: Option<u64>) -> Self {
        Self {
            log,
            crash_at,
            calls: AtomicU64::new(0),
        }
    }
}

impl Transport for Logging {
    fn send(&self, message: &Message) -> Result<Receipt, ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_at == Some(0) {
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(3));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| ProviderError::internal(e.to_string()))?;
        writeln!(log, "{}", message.subject).map_err(|e| ProviderError::internal(e.to_string()))?;
        if self.crash_at == Some(n) {
            std::process::abort();
        }
        Ok(Receipt::default())
    }
}

#[test]
fn a_crash_then_a_rerun_sends_every_email_once_except_unknown_ones() {
    if let Ok(dir) = std::env::var(CRASH_ENV) {
        // The child: run until the transport aborts the process.
        let dir = PathBuf::from(dir);
        let outbox = Outbox::open(dir.join("mail.db")).expect("child store");
        let transport = Logging::new(dir.join("delivered.log"), Some(7));
        let path = dir.join("batch.jsonl");
        let _ = send_batch(&outbox, &transport, TARGET, &path, &options(), compose);
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<String> = (0..20)
        .map(|i| line(&format!("m{i:02}"), "a@contoso.com"))
        .collect();
    let path = write_file(dir.path(), &lines);
    let exe = std::env::current_exe().expect("test binary");
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "delivery::batch::tests::a_crash_then_a_rerun_sends_every_email_once_except_unknown_ones",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run child");
    assert!(!status.success(), "the child should have crashed");
    let outbox = Outbox::open(dir.path().join("mail.db")).expect("store");
    let unknown = outbox.recover_interrupted().expect("recover");
    assert!(
        !unknown.is_empty(),
        "the email in flight at the crash is flagged"
    );
    let transport = Logging::new(dir.path().join("delivered.log"), None);
    let summary =
        send_batch(&outbox, &transport, TARGET, &path, &options(), compose).expect("rerun");
    assert_eq!(
        summary.skipped_unknown as usize,
        unknown.len(),
        "{summary:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("delivered.log")).expect("log");
    let records = outbox.list(None, None).expect("list");
    assert_eq!(records.len(), 20);
    for record in &records {
        let deliveries = log.lines().filter(|l| *l == record.subject).count();
        match record.status {
            Status::Sent => assert_eq!(
                deliveries, 1,
                "{} delivered {deliveries} times",
                record.subject
            ),
            Status::Unknown => assert!(deliveries <= 1, "{} delivered twice", record.subject),
            other => panic!("{} ended {other}", record.subject),
        }
    }
}

#[test]
fn a_crash_right_after_a_group_commit_loses_nothing_and_sends_each_email_once() {
    if let Ok(dir) = std::env::var(GROUP_CRASH_ENV) {
        // The child: the first provider call aborts the process, before delivering anything,
        // so the first group is committed and nothing of it was sent.
        let dir = PathBuf::from(dir);
        let outbox = Outbox::open(dir.join("mail.db")).expect("child store");
        let transport = Logging::new(dir.join("delivered.log"), Some(0));
        let path = dir.join("batch.jsonl");
        let _ = send_batch(&outbox, &transport, TARGET, &path, &options(), compose);
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let count = reader::GROUP_MAX + 10;
    let lines: Vec<String> = (0..count)
        .map(|i| line(&format!("m{i:03}"), "a@contoso.com"))
        .collect();
    let path = write_file(dir.path(), &lines);
    let exe = std::env::current_exe().expect("test binary");
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "delivery::batch::tests::a_crash_right_after_a_group_commit_loses_nothing_and_sends_each_email_once",
            "--test-threads=1",
        ])
        .env(GROUP_CRASH_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run child");
    assert!(!status.success(), "the child should have crashed");
    assert!(
        !dir.path().join("delivered.log").exists(),
        "nothing was delivered"
    );
    let outbox = Outbox::open(dir.path().join("mail.db")).expect("store");
    let stored = outbox.list(None, None).expect("list");
    let group = options().queue.min(reader::GROUP_MAX);
    assert_eq!(
        stored.len(),
        group,
        "the first group was committed, and only it"
    );
    // The email (or emails) whose call had started is unknown; the rest of the group queued.
    let unknown = outbox.recover_interrupted().expect("recover");
    assert!(!unknown.is_empty() && unknown.len() <= options().per_mailbox);
    let queued = outbox.list(Some(Status::Queued), None).expect("queued");
    assert_eq!(queued.len() + unknown.len(), group);
    let transport = Logging::new(dir.path().join("delivered.log"), None);
    let summary =
        send_batch(&outbox, &transport, TARGET, &path, &options(), compose).expect("rerun");
    assert_eq!(
        (summary.sent as usize, summary.skipped_unknown as usize),
        (count - unknown.len(), unknown.len()),
        "{summary:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("delivered.log")).expect("log");
    for record in outbox.list(None, None).expect("list") {
        let deliveries = log.lines().filter(|l| *l == record.subject).count();
        let expected = usize::from(record.status == Status::Sent);
        assert_eq!(
            deliveries, expected,
            "{} ({})",
            record.subject, record.status
        );
    }
}

#[test]
fn workers_are_added_per_from_address_up_to_the_maximum() {
    let job = |mailbox: &str| worker::Job {
        line: 1,
        id: "e".into(),
        mailbox: mailbox.into(),
    };
    let mut crew = Crew::new(&BatchOptions {
        per_mailbox: 4,
        workers: 10,
        ..options()
    });
    assert_eq!(
        crew.wanted(&[]),
        4,
        "one mailbox: just enough to fill its lane"
    );
    assert_eq!(crew.wanted(&[job("a"), job("a")]), 4);
    assert_eq!(crew.wanted(&[job("b")]), 8);
    assert_eq!(crew.wanted(&[job("a"), job("c"), job("d")]), 10, "capped");
    let mut single = Crew::new(&BatchOptions {
        per_mailbox: 4,
        workers: 2,
        ..options()
    });
    assert_eq!(single.wanted(&[job("a")]), 2);
}

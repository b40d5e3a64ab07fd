//! Tests of the store: opening and refusing files, the lifecycle, recovery, two processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailhost_plugin_api::{Attachment, Header, Mailbox, Message, ProviderError, Receipt};
use rusqlite::Connection;

use super::*;

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        from: Mailbox::new("adele@contoso.com", "Adele Vance"),
        to: vec![Mailbox::new("alex@contoso.com", "")].into(),
        cc: vec![Mailbox::new("cc@contoso.com", "Cc Person")].into(),
        bcc: vec![Mailbox::new("bcc@contoso.com", "")].into(),
        reply_to: vec![Mailbox::new("reply@contoso.com", "")].into(),
        subject: "Invoice 42".into(),
        body: "<p>Hello</p>".into(),
        html: true,
        attachments: vec![Attachment {
            path: "/tmp/invoice.pdf".into(),
            name: "invoice.pdf".into(),
            content_type: "application/pdf".into(),
            size: 1234,
        }]
        .into(),
        headers: vec![Header {
            name: "X-Order-Id".into(),
            value: "42".into(),
        }]
        .into(),
    }
}

/// `message(id)` as a provider receives it: with the `Message-ID` the store gives every email.
fn sent_form(id: &str) -> Message {
    let mut message = message(id);
    let mut headers: Vec<Header> = vec![Header {
        name: "Message-ID".into(),
        value: format!("<{id}@mailhost>").as_str().into(),
    }];
    headers.extend(message.headers.iter().cloned());
    message.headers = headers.into();
    message
}

pub(crate) fn new_email(id: &str) -> NewEmail {
    NewEmail::new("adele", "graph-email", message(id), super::Door::Cli)
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mail.db");
    (dir, path)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

fn short(path: &Path) -> Result<Outbox, OutboxError> {
    Outbox::open_with_timeout(path, Duration::from_millis(100))
}

#[test]
fn fresh_database_is_migrated_and_marked() {
    let (_dir, path) = temp_db();
    let outbox = Outbox::open(&path).expect("open");
    drop(outbox);
    let conn = Connection::open(&path).expect("raw open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("app id");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(version, schema::LATEST_VERSION);
    assert_eq!(app, schema::APPLICATION_ID);
    assert_eq!(mode, "wal");
}

#[test]
fn records_survive_reopen() {
    let (_dir, path) = temp_db();
    let outbox = Outbox::open(&path).expect("open");
    let accepted = outbox.accept(&new_email("e1")).expect("accept");
    drop(outbox);
    let outbox = Outbox::open(&path).expect("reopen");
    assert_eq!(outbox.get("e1").expect("get"), accepted);
    assert_eq!(accepted.status, Status::Queued);
    assert_eq!(accepted.to_message(), sent_form("e1"));
}

#[test]
fn newer_schema_is_refused_untouched() {
    let (_dir, path) = temp_db();
    drop(Outbox::open(&path).expect("open"));
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99)
            .expect("set version");
    }
    let before = read(&path);
    let error = short(&path).expect_err("newer schema must be refused");
    assert!(
        matches!(error, OutboxError::NewerSchema { found: 99, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("upgrade mailhost"), "{error}");
    assert_eq!(read(&path), before);
}

#[test]
fn foreign_sqlite_file_is_refused_untouched() {
    let (_dir, path) = temp_db();
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');")
            .expect("create");
    }
    let before = read(&path);
    let error = short(&path).expect_err("foreign db must be refused");
    assert!(
        matches!(error, OutboxError::NotMailhost { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("untouched"),
        "{text}"
    );
    assert_eq!(read(&path), before);
    assert!(!path.with_file_name("mail.db-live").exists());
}

#[test]
fn garbage_file_is_refused_untouched() {
    let (_dir, path) = temp_db();
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).expect("write");
    let error = short(&path).expect_err("garbage must be refused");
    assert!(matches!(error, OutboxError::Corrupt { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("is not a valid mailhost database") && text.contains("move it aside"),
        "{text}"
    );
    assert_eq!(read(&path), garbage);
    assert!(!path.with_file_name("mail.db-wal").exists());
}

#[test]
fn damaged_mailhost_database_is_refused_untouched() {
    let (_dir, path) = temp_db();
    {
        let outbox = Outbox::open(&path).expect("open");
        for i in 0..50 {
            outbox.accept(&new_email(&format!("e{i}"))).expect("accept");
        }
    }
    let mut bytes = read(&path);
    assert!(bytes.len() > 3 * 4096, "expected several pages");
    for byte in &mut bytes[4096..4096 + 64] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).expect("damage");
    let error = short(&path).expect_err("damaged db must be refused");
    assert!(matches!(error, OutboxError::Corrupt { .. }), "{error:?}");
    assert_eq!(read(&path), bytes);
}

#[test]
fn locked_database_gives_a_clear_error_quickly() {
    let (_dir, path) = temp_db();
    drop(Outbox::open(&path).expect("open"));
    let holder = Connection::open(&path).expect("raw open");
    holder.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let started = Instant::now();
    let error = short(&path).expect_err("locked db must be refused");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.is_locked(), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("is locked by another process; wait for it to finish"),
        "{error}"
    );
    holder.execute_batch("ROLLBACK").expect("unlock");
    assert!(short(&path).is_ok());
}

#[test]
fn lifecycle_queued_sending_sent() {
    let outbox = Outbox::in_memory().expect("memory");
    let accepted = outbox.accept(&new_email("e1")).expect("accept");
    assert_eq!((accepted.status, accepted.attempts), (Status::Queued, 0));
    let claim = outbox.claim("e1").expect("claim");
    assert_eq!(
        (claim.record.status, claim.record.attempts),
        (Status::Sending, 1)
    );
    assert_eq!(claim.message(), sent_form("e1"));
    let again = outbox.claim("e1").expect_err("double claim");
    assert!(matches!(
        again,
        OutboxError::NotClaimable {
            status: Status::Sending,
            ..
        }
    ));
    let receipt = Receipt {
        message_id: "m-1".into(),
        request_id: "r-1".into(),
        detail: "".into(),
    };
    outbox.finish_sent("e1", &receipt).expect("sent");
    let sent = outbox.get("e1").expect("get");
    assert_eq!(sent.status, Status::Sent);
    assert!(sent.sent_at.is_some() && sent.error.is_none());
    assert_eq!(
        sent.receipt.as_ref().map(|r| r.message_id.as_str()),
        Some("m-1")
    );
    let refused = outbox.claim("e1").expect_err("sent is not claimable");
    assert!(refused.to_string().contains("--force"), "{refused}");
    assert_eq!(
        outbox.claim_forced("e1").expect("forced").record.attempts,
        2
    );
}

#[test]
fn lifecycle_failed_and_unknown() {
    let outbox = Outbox::in_memory().expect("memory");
    outbox.accept(&new_email("e1")).expect("accept");
    outbox.claim("e1").expect("claim");
    let throttled =
        ProviderError::throttled("slow down", Some(Duration::from_secs(3))).with_code("429");
    assert_eq!(
        outbox.finish_failed("e1", &throttled).expect("fail"),
        Status::Failed
    );
    let failed = outbox.get("e1").expect("get");
    let error = failed.error.as_ref().expect("error kept");
    assert_eq!(
        (
            error.kind.as_str(),
            error.code.as_str(),
            error.retry_after_ms
        ),
        ("throttled", "429", Some(3000))
    );
    assert!(failed.is_retryable());
    assert_eq!(outbox.retryable_failed().expect("retryable").len(), 1);
    outbox.claim("e1").expect("retry claim");
    let unknown = ProviderError::unknown_outcome("connection reset after upload");
    assert_eq!(
        outbox.finish_failed("e1", &unknown).expect("fail"),
        Status::Unknown
    );
    assert!(outbox.retryable_failed().expect("retryable").is_empty());
    let refused = outbox.claim("e1").expect_err("unknown is not claimable");
    assert!(refused.to_string().contains("Sent Items"), "{refused}");
    assert_eq!(
        outbox.claim_forced("e1").expect("forced").record.attempts,
        3
    );
    outbox.finish_sent("e1", &Receipt::default()).expect("sent");
    let late = ProviderError::transient("late failure report");
    assert_eq!(
        outbox.finish_failed("e1", &late).expect("no downgrade"),
        Status::Sent
    );
}

#[test]
fn duplicates_and_lookups() {
    let outbox = Outbox::in_memory().expect("memory");
    let mut first = new_email("0a1b2c3d-1");
    first.source_key = Some("batch:k1".into());
    outbox.accept(&first).expect("accept");
    let dup = outbox.accept(&first).expect_err("duplicate id");
    assert!(matches!(dup, OutboxError::DuplicateId { .. }));
    let mut same_line = new_email("other");
    same_line.source_key = Some("batch:k1".into());
    let dup = outbox.accept(&same_line).expect_err("duplicate source");
    assert!(
        matches!(dup, OutboxError::DuplicateSource { ref existing } if existing == "0a1b2c3d-1")
    );
    assert_eq!(
        outbox
            .find_by_source("batch:k1")
            .expect("find")
            .map(|r| r.id),
        Some("0a1b2c3d-1".to_string())
    );
    assert!(outbox.find_by_source("batch:k2").expect("find").is_none());
    outbox.accept(&new_email("0a1b2c3d-2")).expect("accept");
    assert_eq!(outbox.get("0a1b2c3d-2").expect("exact").id, "0a1b2c3d-2");
    assert!(matches!(
        outbox.get("0a1b"),
        Err(OutboxError::AmbiguousId { count: 2, .. })
    ));
    assert!(outbox.get("0a1b2c3d-1").is_ok());
    assert!(matches!(
        outbox.get("zzzz"),
        Err(OutboxError::NotFound { .. })
    ));
    assert!(matches!(
        outbox.claim("nope"),
        Err(OutboxError::NotFound { .. })
    ));
}

#[test]
fn list_filters_by_status_and_limits() {
    let outbox = Outbox::in_memory().expect("memory");
    for i in 0..5 {
        outbox.accept(&new_email(&format!("e{i}"))).expect("accept");
    }
    outbox.claim("e1").expect("claim");
    outbox.finish_sent("e1", &Receipt::default()).expect("sent");
    assert_eq!(outbox.list(None, None).expect("all").len(), 5);
    assert_eq!(outbox.list(None, Some(2)).expect("two").len(), 2);
    let sent = outbox.list(Some(Status::Sent), None).expect("sent");
    assert_eq!(
        sent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["e1"]
    );
    let counts = outbox.counts().expect("counts");
    assert!(counts.contains(&(Status::Queued, 4)) && counts.contains(&(Status::Sent, 1)));
}

#[test]
fn interrupted_sends_become_unknown_only_when_their_process_is_gone() {
    let (_dir, path) = temp_db();
    let crashed = Outbox::open(&path).expect("first process");
    crashed.accept(&new_email("e1")).expect("accept");
    crashed.accept(&new_email("e2")).expect("accept");
    crashed.claim("e1").expect("claim");
    let other = Outbox::open(&path).expect("second process");
    assert!(
        other.recover_interrupted().expect("recover").is_empty(),
        "holder is alive"
    );
    let busy = other.claim_forced("e1").expect_err("live claim");
    assert!(matches!(
        busy,
        OutboxError::NotClaimable {
            owner_alive: true,
            ..
        }
    ));
    drop(crashed);
    assert_eq!(other.recover_interrupted().expect("recover"), ["e1"]);
    let record = other.get("e1").expect("get");
    assert_eq!(record.status, Status::Unknown);
    let error = record.error.expect("error");
    assert_eq!(error.kind, "unknown-outcome");
    assert!(
        error.message.contains("mailhost email retry e1 --force"),
        "{}",
        error.message
    );
    assert_eq!(other.get("e2").expect("get").status, Status::Queued);
}

#[test]
fn a_lock_file_left_by_a_killed_process_counts_as_dead() {
    let (dir, path) = temp_db();
    let outbox = Outbox::open(&path).expect("open");
    let live = dir.path().join("mail.db-live");
    // What kill -9 leaves: the file, with no process holding its lock.
    std::fs::write(live.join("deadbeef.lock"), b"").expect("stale file");
    assert!(!owner::is_alive(Some(&path), "deadbeef"));
    assert!(!owner::is_alive(Some(&path), "../../etc/passwd"));
    assert!(owner::is_alive(Some(&path), outbox.owner.token()));
}

#[test]
fn two_processes_never_claim_the_same_email() {
    let (_dir, path) = temp_db();
    let first = Outbox::open(&path).expect("first");
    let second = Outbox::open(&path).expect("second");
    let ids: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    for id in &ids {
        first.accept(&new_email(id)).expect("accept");
    }
    let claimed = std::thread::scope(|scope| {
        let handles: Vec<_> = [&first, &second]
            .into_iter()
            .map(|outbox| {
                let ids = &ids;
                scope.spawn(move || ids.iter().filter(|id| outbox.claim(id).is_ok()).count())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .sum::<usize>()
    });
    assert_eq!(claimed, ids.len());
}

#[test]
fn a_group_is_accepted_in_one_commit_leaving_out_lines_already_stored() {
    let (_dir, path) = temp_db();
    let outbox = Outbox::open(&path).expect("open");
    let keyed = |id: &str, key: &str| NewEmail {
        source_key: Some(key.into()),
        ..new_email(id)
    };
    outbox.accept(&keyed("old", "batch:k0")).expect("accept");
    let group = [
        keyed("g1", "batch:k1"),
        keyed("g2", "batch:k0"),
        keyed("old", "batch:k3"),
        keyed("g4", "batch:k1"),
        keyed("g5", "batch:k5"),
    ];
    let outcomes = outbox.accept_group(&group).expect("group");
    assert_eq!(
        outcomes,
        [
            GroupOutcome::Accepted,
            GroupOutcome::AlreadyAccepted {
                existing: "old".into()
            },
            GroupOutcome::DuplicateId,
            GroupOutcome::AlreadyAccepted {
                existing: "g1".into()
            },
            GroupOutcome::Accepted,
        ]
    );
    assert!(outbox.accept_group(&[]).expect("empty group").is_empty());
    drop(outbox);
    // Committed: another connection (as after a crash) sees them queued, with their content.
    let reopened = Outbox::open(&path).expect("reopen");
    for id in ["g1", "g5"] {
        let record = reopened.get(id).expect("stored");
        assert_eq!(record.status, Status::Queued);
        assert_eq!(record.to_message(), sent_form(id));
    }
    assert!(reopened.get("g2").is_err() && reopened.get("g4").is_err());
    assert_eq!(reopened.list(None, None).expect("list").len(), 3);
}

#[test]
fn admission_sums_the_day_and_reads_its_rows_only_to_say_when() {
    use crate::delivery::limits::{LimitValue, Limits};
    let outbox = Outbox::in_memory().expect("memory");
    let limits = Limits {
        recipients: Some(LimitValue {
            max: 10,
            window_ms: 86_400_000,
            setting: "RecipientsPerDay".into(),
        }),
        ..Limits::default()
    };
    for id in ["e1", "e2", "e3", "e4"] {
        outbox.accept(&new_email(id)).expect("accept");
    }
    let admit = |id: &str, at: i64| {
        let candidate = Candidate {
            id,
            mailbox: "adele@contoso.com",
            recipients: 3,
            limits: &limits,
        };
        outbox
            .admit(&[candidate], Timestamp(at))
            .expect("admit")
            .remove(0)
    };
    // 3, 6, 9 recipients: each fits, and one more one-recipient email would too.
    for (id, at) in [("e1", 1_000), ("e2", 2_000), ("e3", 3_000)] {
        match admit(id, at) {
            Admission::Claimed(claim, next) => {
                assert_eq!(claim.record.id, id);
                assert_eq!(next, NextSend::Now);
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    // 9 + 3 > 10: held until the first send's 3 leave the window, 24 h after it.
    match admit("e4", 4_000) {
        Admission::Held(hold) => {
            assert_eq!(hold.until, Some(Timestamp(1_000 + 86_400_000)));
            assert_eq!(hold.used, 9);
        }
        other => panic!("e4: {other:?}"),
    }
    // The held email shows when it may go; the scheduler's view of the queue agrees.
    assert_eq!(
        outbox.get("e4").expect("e4").not_before,
        Some(Timestamp(86_401_000))
    );
    let senders = outbox.queued_senders(None).expect("senders");
    assert_eq!(senders.len(), 1);
    assert_eq!(senders[0].staff_id, "adele");
    assert_eq!(senders[0].from, "adele@contoso.com");
    assert_eq!(senders[0].next_due, Timestamp(86_401_000));
    assert!(
        outbox
            .due_of_sender("adele", "adele@contoso.com", Timestamp(5_000), 8)
            .expect("due")
            .is_empty()
    );
    let due = outbox
        .due_of_sender("adele", "adele@contoso.com", Timestamp(86_401_000), 8)
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(
        outbox
            .next_due_of_sender("adele", "adele@contoso.com")
            .expect("next"),
        Some(Timestamp(86_401_000))
    );
}

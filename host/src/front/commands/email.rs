//! `mailhost email send|list|show|retry|send-batch|purge`: Email Maintenance through the durable
//! store, `mail.db`.
//!
//! Every email command opens the store first and recovers emails a stopped process left
//! `sending` (they become `unknown`, with a warning naming `mailhost email show ID`).
//!
//! `email send` and `email retry` exit with:
//! - 2 when the input is wrong (unknown staff member, bad address, CR/LF in a header, missing
//!   attachment): nothing is recorded;
//! - 1 when the email was recorded but not sent: the provider refused it, or the provider is not
//!   usable right now (disabled, unregistered, refused by the loader, a required setting
//!   missing). The record stays `failed` with the error and `mailhost email retry ID` sends it
//!   once the cause is fixed; `unknown` when it may have been sent;
//! - 0 when it was sent.

use std::sync::Arc;
use std::time::Duration;

use mailhost_plugin_api::ErrorKind;
use serde_json::{Value, json};

use super::{OK, print, print_json, table, warn};
use crate::config::home::Home;
use crate::delivery::compose::Draft;
use crate::delivery::engine::{Drain, Engine, EngineOptions, Scope, StopSignal, Submission};
use crate::delivery::outbox::{Door, EmailRecord, Outbox, OutboxError, Status};
use crate::error::{EXIT_FAILED, EXIT_OK, EXIT_TEMPFAIL, Error};
use crate::front::cli::{EmailCommand, SendArgs};
use crate::front::terminal;

/// The environment variable that shortens (or lengthens) how long a command waits for another
/// process's lock on `mail.db`, in milliseconds.
pub(crate) const BUSY_TIMEOUT_ENV: &str = "MAILHOST_DB_BUSY_TIMEOUT_MS";

pub(super) fn run(home: &Home, command: EmailCommand) -> Result<u8, Error> {
    let outbox = open_store(home)?;
    match command {
        EmailCommand::Send(args) => send(&engine(home, outbox)?, &args),
        EmailCommand::List {
            status,
            limit,
            json,
        } => list(&outbox, status.as_deref(), limit, json),
        EmailCommand::Show { id, json } => show(&outbox, &id, json),
        EmailCommand::Retry {
            id: Some(id),
            force,
            max_wait,
            json,
            ..
        } => retry_one(&engine(home, outbox)?, &id, force, max_wait, json),
        EmailCommand::Retry {
            id: None,
            force,
            max_wait,
            json,
            ..
        } => retry_failed(&engine(home, outbox)?, force, max_wait, json),
        EmailCommand::SendBatch(args) => super::batch::run(home, outbox, &args),
        EmailCommand::Purge(args) => super::purge::run(home, &outbox, &args),
        EmailCommand::Flush { max_wait, json } => flush(&engine(home, outbox)?, max_wait, json),
        EmailCommand::Reconcile { id, json, .. } => {
            reconcile(&engine(home, outbox)?, id.as_deref(), json)
        }
    }
}

/// The delivery engine of this command over `outbox`.
///
/// # Errors
/// The secret store cannot be opened safely.
pub(crate) fn engine(home: &Home, outbox: Outbox) -> Result<Arc<Engine>, Error> {
    Ok(Arc::new(Engine::new(
        home,
        Arc::new(outbox),
        EngineOptions::default(),
    )?))
}

/// Opens `HOME/mail.db` (busy timeout from [`BUSY_TIMEOUT_ENV`], else the store's default) and
/// turns emails left `sending` by a stopped process into `unknown`, warning about each.
///
/// # Errors
/// The store cannot be opened (locked, corrupt, not writable) or recovery failed.
pub(crate) fn open_store(home: &Home) -> Result<Outbox, Error> {
    let timeout = std::env::var(BUSY_TIMEOUT_ENV)
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(
            crate::delivery::outbox::DEFAULT_BUSY_TIMEOUT,
            Duration::from_millis,
        );
    let outbox = Outbox::open_with_timeout(home.mail_db_path(), timeout)?;
    for id in outbox.recover_interrupted()? {
        warn(&format!(
            "email {id} was being sent by a mailhost process that stopped, so it may or may not have been sent; it is now 'unknown' and will be reconciled with its provider where the provider can tell: run `mailhost email reconcile {id}` or `mailhost email show {id}`"
        ));
    }
    Ok(outbox)
}

/// The draft the flags describe.
pub(crate) fn draft_of(args: &SendArgs) -> Draft {
    Draft {
        to: args.to.clone(),
        cc: args.cc.clone(),
        bcc: args.bcc.clone(),
        reply_to: args.reply_to.clone(),
        from: args.from.clone(),
        subject: args.subject.clone(),
        body: args.body.clone(),
        body_file: args.body_file.clone(),
        html: args.html,
        attach: args.attach.clone(),
        headers: args.header.clone(),
    }
}

/// Records one email (nothing is recorded if the input is wrong; no provider code runs before
/// it is committed) and, unless `queue`, sends it now, waiting up to `max_wait` for a sending
/// limit or a short retry. Returns the record as it then is.
///
/// # Errors
/// Exit-2 input errors before anything is recorded; store errors.
pub(crate) fn submit(
    engine: &Engine,
    staff_id: &str,
    draft: &Draft,
    queue: bool,
    max_wait: Duration,
) -> Result<EmailRecord, Error> {
    let record = engine.submit(&Submission::new(staff_id, draft.clone(), Door::Cli))?;
    if queue {
        return Ok(record);
    }
    engine.send_now(&record.id, max_wait)
}

fn send(engine: &Arc<Engine>, args: &SendArgs) -> Result<u8, Error> {
    let record = submit(
        engine,
        &args.staff,
        &draft_of(args),
        args.queue,
        args.max_wait,
    )?;
    if args.queue && record.status == Status::Queued {
        if args.json {
            print_json(&outcome_json(&record))?;
        } else {
            print(&format!(
                "queued {}: `mailhost serve` or `mailhost email flush` sends it",
                record.id
            ))?;
        }
        return OK;
    }
    report(engine, &record, args.json)
}

/// Prints the outcome of a send or retry: 0 when sent, 75 when kept queued (saying until when
/// and why), else an exit-1 error whose message says what to do next.
fn report(engine: &Engine, record: &EmailRecord, json: bool) -> Result<u8, Error> {
    if json {
        print_json(&outcome_json(record))?;
    } else if record.status == Status::Sent {
        print(&terminal::escape(&sent_line(record)))?;
    }
    if record.status == Status::Queued {
        super::warn(&queued_text(engine, record));
        return Ok(EXIT_TEMPFAIL);
    }
    match outcome_error(record) {
        Some(text) => Err(Error::Failed(text)),
        None => OK,
    }
}

/// Why an email is still queued and when it may go.
pub(crate) fn queued_text(engine: &Engine, record: &EmailRecord) -> String {
    let when = record.not_before.map_or_else(
        || "as soon as possible".to_string(),
        |at| format!("at {at}"),
    );
    let why = match &record.error {
        Some(error) => format!("the last attempt failed ({error}) and will be retried"),
        None => crate::front::commands::limits::hold_reason(engine, record)
            .unwrap_or_else(|| "a sending limit of its mailbox holds it".to_string()),
    };
    format!(
        "email {} is kept queued: {why}; it may go {when}. `mailhost serve` sends it then, or run `mailhost email flush`",
        record.id
    )
}

/// `sent ID through PROVIDER: DETAIL`.
fn sent_line(record: &EmailRecord) -> String {
    let detail = record
        .receipt
        .as_ref()
        .and_then(|r| {
            [r.detail.as_str(), r.message_id.as_str()]
                .into_iter()
                .find(|s| !s.is_empty())
        })
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("sent {} through {}{detail}", record.id, record.provider)
}

/// What to tell the user about an email that was not sent, or `None` when it was.
fn outcome_error(record: &EmailRecord) -> Option<String> {
    let id = &record.id;
    let why = record
        .error
        .as_ref()
        .map_or_else(|| "no error was recorded".to_string(), ToString::to_string);
    match record.status {
        Status::Sent => None,
        Status::Unknown => Some(format!(
            "email {id} may or may not have been sent by {} ({why}); it is kept as unknown: run `mailhost email reconcile {id}`, or check the recipient's mailbox and if it did not arrive run `mailhost email retry {id} --force`",
            record.provider
        )),
        _ => Some(format!(
            "email {id} was not sent: {} failed ({why}); it is kept in mail.db as {}: fix the cause, then run `mailhost email retry {id}`",
            record.provider, record.status
        )),
    }
}

/// The `--json` object of a send or retry: id, status, provider, staff, from, to, subject,
/// attempts, receipt, error (`{kind, code, message, retry_after_ms}`) and, while queued,
/// `not_before`.
pub(crate) fn outcome_json(record: &EmailRecord) -> Value {
    json!({
        "id": record.id,
        "status": record.status,
        "provider": record.provider,
        "staff": record.staff_id,
        "from": record.from.address,
        "to": record.to.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(),
        "subject": record.subject,
        "attempts": record.attempts,
        "receipt": record.receipt,
        "error": record.error,
        "not_before": record.not_before,
    })
}

fn list(
    outbox: &Outbox,
    status: Option<&str>,
    limit: Option<usize>,
    json: bool,
) -> Result<u8, Error> {
    let status = status
        .map(str::parse::<Status>)
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let records = outbox.list(status, limit)?;
    if json {
        let value = serde_json::to_value(&records).map_err(|e| Error::Output(e.into()))?;
        return print_json(&value).map(|()| EXIT_OK);
    }
    if records.is_empty() {
        print("no emails")?;
        return OK;
    }
    let mut rows = vec![
        [
            "ID", "STATUS", "ATTEMPTS", "STAFF", "TO", "SUBJECT", "UPDATED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.extend(records.iter().map(|r| {
        vec![
            r.id.chars().take(8).collect(),
            r.status.to_string(),
            r.attempts.to_string(),
            r.staff_id.clone(),
            shorten(&addresses(&r.to), 40),
            shorten(&r.subject, 40),
            r.updated_at.to_string(),
        ]
    }));
    print(&table(&rows))?;
    OK
}

fn addresses(list: &[crate::delivery::outbox::Address]) -> String {
    list.iter()
        .map(|a| a.address.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

fn show(outbox: &Outbox, id: &str, json: bool) -> Result<u8, Error> {
    let record = outbox.get(id)?;
    let attempts = outbox.attempts(&record.id)?;
    let dropped = outbox.body_dropped_at(&record.id)?;
    if json {
        let mut value = serde_json::to_value(&record).map_err(|e| Error::Output(e.into()))?;
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "attempt_log".into(),
                serde_json::to_value(&attempts).map_err(|e| Error::Output(e.into()))?,
            );
            if let Some(ms) = dropped {
                object.insert(
                    "body_dropped_at".into(),
                    json!(crate::config::time::rfc3339(ms / 1000)),
                );
            }
        }
        return print_json(&value).map(|()| EXIT_OK);
    }
    let mut text = describe(&record);
    for a in &attempts {
        let error = a
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\nattempt {}:   {} at {}{error}",
            a.attempt, a.outcome, a.started_at
        ));
    }
    if let Some(ms) = dropped {
        text.push_str(&format!(
            "\nretention:   body and attachments dropped {} (RetainBodyDays)",
            crate::config::time::rfc3339(ms / 1000)
        ));
    }
    print(&super::terminal_safe(&text))?;
    OK
}

/// The human description of a stored email, one field a line.
fn describe(r: &EmailRecord) -> String {
    let mailbox = |a: &crate::delivery::outbox::Address| {
        if a.name.is_empty() {
            a.address.clone()
        } else {
            format!("{} <{}>", a.name, a.address)
        }
    };
    let list = |l: &[crate::delivery::outbox::Address]| {
        l.iter().map(mailbox).collect::<Vec<_>>().join(", ")
    };
    let mut lines = vec![
        format!("id:          {}", r.id),
        format!("status:      {}", r.status),
        format!("attempts:    {}", r.attempts),
        format!("staff:       {}", r.staff_id),
        format!("provider:    {}", r.provider),
        format!("from:        {}", mailbox(&r.from)),
        format!("to:          {}", list(&r.to)),
    ];
    for (label, l) in [("cc:", &r.cc), ("bcc:", &r.bcc), ("reply-to:", &r.reply_to)] {
        if !l.is_empty() {
            lines.push(format!("{label:<12} {}", list(l)));
        }
    }
    lines.push(format!("subject:     {}", r.subject));
    for a in &r.attachments {
        lines.push(format!(
            "attachment:  {} ({} bytes, {}) from {}",
            a.name, a.size, a.content_type, a.path
        ));
    }
    for h in &r.headers {
        lines.push(format!("header:      {}: {}", h.name, h.value));
    }
    if let Some(at) = r.not_before {
        lines.push(format!("not before:  {at}"));
    }
    if let Some(mailbox) = &r.mailbox {
        lines.push(format!("mailbox:     {mailbox}"));
    }
    lines.push(format!("came in by:  {}", r.door.as_str()));
    if !r.message_id.is_empty() {
        lines.push(format!("message-id:  {}", r.message_id));
    }
    lines.push(format!("created:     {}", r.created_at));
    lines.push(format!("updated:     {}", r.updated_at));
    if let Some(sent) = r.sent_at {
        lines.push(format!("sent:        {sent}"));
    }
    if let Some(receipt) = &r.receipt {
        for (label, value) in [
            ("message id:", &receipt.message_id),
            ("request id:", &receipt.request_id),
            ("detail:", &receipt.detail),
        ] {
            if !value.is_empty() {
                lines.push(format!("{label:<12} {value}"));
            }
        }
    }
    if let Some(error) = &r.error {
        lines.push(format!("error:       {error}"));
        if let Some(ms) = error.retry_after_ms {
            lines.push(format!("retry after: {ms} ms"));
        }
    }
    if let Some(hint) = next_step(r) {
        lines.push(format!("next:        {hint}"));
    }
    // Every field one line, whatever the provider or the sender put in it.
    let mut lines: Vec<String> = lines
        .iter()
        .map(|l| terminal::escape(l).into_owned())
        .collect();
    lines.push(format!(
        "{}:\n{}",
        if r.html { "body (html)" } else { "body" },
        terminal::escape_keeping_lines(&r.body)
    ));
    lines.join("\n")
}

fn next_step(r: &EmailRecord) -> Option<String> {
    match r.status {
        Status::Failed | Status::Queued => Some(format!("`mailhost email retry {}`", r.id)),
        Status::Unknown => Some(format!(
            "check the recipient's mailbox; if it did not arrive, `mailhost email retry {} --force`",
            r.id
        )),
        Status::Sent | Status::Sending => None,
    }
}

/// `email retry ID [--force]`.
fn retry_one(
    engine: &Arc<Engine>,
    id: &str,
    force: bool,
    max_wait: Duration,
    json: bool,
) -> Result<u8, Error> {
    let found = engine.outbox().get(id)?;
    if let Some(ms) = engine.outbox().body_dropped_at(&found.id)? {
        return Err(Error::Usage(format!(
            "email {}'s body and attachments were dropped by retention on {} (RetainBodyDays), so it cannot be sent again: send a new email",
            found.id,
            crate::config::time::rfc3339(ms / 1000)
        )));
    }
    let record = engine.retry(id, force)?;
    let record = engine.send_now(&record.id, max_wait)?;
    report(engine, &record, json)
}

/// Error kinds a retry cannot fix by itself: `email retry --failed` passes over them unless
/// `--force` (the user fixed the cause).
const PERMANENT: [ErrorKind; 3] = [
    ErrorKind::CONFIGURATION,
    ErrorKind::INVALID_MESSAGE,
    ErrorKind::RECIPIENT,
];

fn is_permanent(record: &EmailRecord) -> bool {
    record.error.as_ref().is_some_and(|e| {
        ErrorKind::from_name(&e.kind).is_some_and(|kind| PERMANENT.contains(&kind))
            && e.code != "PROVIDER_NOT_READY"
    })
}

/// `email retry --failed [--force]`: every failed email, oldest first, one line each, then a
/// summary.
fn retry_failed(
    engine: &Arc<Engine>,
    force: bool,
    max_wait: Duration,
    json: bool,
) -> Result<u8, Error> {
    let mut failed = engine.outbox().list(Some(Status::Failed), None)?;
    failed.reverse();
    let (retry, skipped): (Vec<_>, Vec<_>) =
        failed.into_iter().partition(|r| force || !is_permanent(r));
    let (mut sent, mut not_sent, mut queued) = (0u64, 0u64, 0u64);
    let mut results = Vec::new();
    for record in &retry {
        match engine.retry(&record.id, false) {
            Ok(_) => {}
            // Another process took it meanwhile: leave it to that process.
            Err(Error::Outbox(OutboxError::NotClaimable { .. })) => continue,
            Err(error) => return Err(error),
        }
        let done = engine.send_now(&record.id, max_wait)?;
        match done.status {
            Status::Sent => sent += 1,
            Status::Queued => queued += 1,
            _ => not_sent += 1,
        }
        if json {
            results.push(outcome_json(&done));
        } else if done.status == Status::Sent {
            print(&terminal::escape(&sent_line(&done)))?;
        } else {
            let why = done
                .error
                .as_ref()
                .map_or_else(String::new, ToString::to_string);
            print(&terminal::escape(&format!(
                "{} {}: {why}",
                done.status, done.id
            )))?;
        }
    }
    if json {
        print_json(&json!({
            "retried": retry.len(), "sent": sent, "failed": not_sent, "queued": queued,
            "skipped": skipped.len(), "results": results
        }))?;
    } else if retry.is_empty() && skipped.is_empty() {
        print("no failed emails to retry")?;
    } else {
        print(&format!(
            "retried {}: sent {sent}, not sent {not_sent}, queued {queued}",
            retry.len()
        ))?;
    }
    if !skipped.is_empty() && !json {
        warn(&format!(
            "skipped {} failed emails whose error a retry cannot fix by itself (configuration, invalid message or recipient): fix the cause, then `mailhost email retry --failed --force` or `mailhost email retry ID`",
            skipped.len()
        ));
    }
    if not_sent > 0 {
        if !json {
            warn("some emails were not sent: `mailhost email show ID` says why");
        }
        return Ok(EXIT_FAILED);
    }
    if queued > 0 {
        return Ok(EXIT_TEMPFAIL);
    }
    OK
}

/// `email flush [--max-wait D]`: sends every due email, then reports what is left.
/// `email flush` (and `sendmail -q`): sends every due email, then prints what happened.
pub(crate) fn flush(engine: &Arc<Engine>, max_wait: Duration, json: bool) -> Result<u8, Error> {
    let before = engine.metrics().snapshot();
    let summary = engine.drain(
        &Scope::All,
        &Drain {
            max_wait,
            producing: None,
        },
        &StopSignal::new(),
    )?;
    let after = engine.metrics().snapshot();
    let (sent, failed, unknown) = (
        after.sent - before.sent,
        after.failed - before.failed,
        after.unknown - before.unknown,
    );
    if json {
        print_json(&json!({
            "sent": sent, "failed": failed, "unknown": unknown,
            "queued": summary.queued, "next_due": summary.next_due,
        }))?;
    } else {
        let mut line = format!(
            "flushed: sent {sent}, failed {failed}, unknown {unknown}, still queued {}",
            summary.queued
        );
        if let Some(at) = summary.next_due.filter(|_| summary.queued > 0) {
            line.push_str(&format!(" (the next may go at {at})"));
        }
        print(&line)?;
    }
    if failed + unknown > 0 {
        Ok(EXIT_FAILED)
    } else if summary.queued > 0 {
        Ok(EXIT_TEMPFAIL)
    } else {
        OK
    }
}

/// `email reconcile ID | --all`.
fn reconcile(engine: &Arc<Engine>, id: Option<&str>, json: bool) -> Result<u8, Error> {
    let ids: Vec<String> = match id {
        Some(id) => {
            let record = engine.outbox().get(id)?;
            if record.status != Status::Unknown {
                return Err(Error::Usage(format!(
                    "email {} is {}, not unknown: only unknown emails are reconciled",
                    record.id, record.status
                )));
            }
            vec![record.id]
        }
        None => engine
            .outbox()
            .list(Some(Status::Unknown), None)?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    };
    let summary = engine.reconcile_ids(&ids)?;
    if json {
        let value = serde_json::to_value(&summary).map_err(|e| Error::Output(e.into()))?;
        print_json(&value)?;
    } else {
        for (id, detail) in &summary.details {
            print(&format!("{id}: {}", super::terminal_safe(detail)))?;
        }
        print(&format!(
            "reconciled {}: sent {}, queued again {}, still unknown {}",
            ids.len(),
            summary.sent,
            summary.requeued,
            summary.unknown
        ))?;
    }
    if summary.requeued > 0 {
        // Proven not sent: send them now, as `email flush` would.
        for (id, _) in &summary.details {
            if engine.outbox().get(id)?.status == Status::Queued {
                let record = engine.send_now(id, Duration::ZERO)?;
                if !json {
                    print(&format!("{}: {}", record.id, record.status))?;
                }
            }
        }
    }
    if summary.unknown > 0 {
        Ok(EXIT_FAILED)
    } else {
        OK
    }
}

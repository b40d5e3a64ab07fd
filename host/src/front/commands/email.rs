//! `mailhost email send|list|show|retry|send-batch`: Email Maintenance through the durable
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

use std::collections::HashMap;
use std::time::Duration;

use mailhost_plugin_api::ProviderError;
use serde_json::{Value, json};

use super::{OK, print, print_json, table, warn};
use crate::config::home::Home;
use crate::config::staff;
use crate::delivery::compose::{self, Draft, Sender};
use crate::delivery::dispatch::{Dispatcher, Route};
use crate::delivery::outbox::{EmailRecord, NewEmail, Outbox, OutboxError, Status};
use crate::error::{EXIT_FAILED, EXIT_OK, Error};
use crate::front::cli::{EmailCommand, SendArgs};
use crate::front::terminal;

/// The environment variable that shortens (or lengthens) how long a command waits for another
/// process's lock on `mail.db`, in milliseconds.
pub(crate) const BUSY_TIMEOUT_ENV: &str = "MAILHOST_DB_BUSY_TIMEOUT_MS";

pub(super) fn run(home: &Home, command: EmailCommand) -> Result<u8, Error> {
    let outbox = open_store(home)?;
    match command {
        EmailCommand::Send(args) => send(home, &outbox, &args),
        EmailCommand::List {
            status,
            limit,
            json,
        } => list(&outbox, status.as_deref(), limit, json),
        EmailCommand::Show { id, json } => show(&outbox, &id, json),
        EmailCommand::Retry {
            id: Some(id),
            force,
            json,
            ..
        } => retry_one(home, &outbox, &id, force, json),
        EmailCommand::Retry {
            id: None,
            force,
            json,
            ..
        } => retry_failed(home, &outbox, force, json),
        EmailCommand::SendBatch(args) => super::batch::run(home, &outbox, &args),
    }
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
            "email {id} was being sent by a mailhost process that stopped, so it may or may not have been sent; it is now 'unknown': run `mailhost email show {id}`"
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

/// Saves and sends one email: validates `draft` (nothing is recorded if it is wrong), records
/// it as `queued`, resolves the staff member's provider and sends. A provider that cannot be
/// used (disabled, unregistered, refused, misconfigured) does not lose the email: it is kept as
/// `failed` with that error. Returns the final record.
///
/// # Errors
/// Exit-2 input errors (unknown staff member, bad draft) before anything is recorded; store
/// errors.
pub(crate) fn submit(
    home: &Home,
    outbox: &Outbox,
    staff_id: &str,
    draft: &Draft,
) -> Result<EmailRecord, Error> {
    let staff_file = staff::load(home)?;
    let record = staff_file.require(staff_id)?;
    let sender = Sender {
        email: record.email.clone(),
        name: record.name.clone(),
    };
    let id = compose::new_email_id();
    let message = compose::compose(draft, &sender, &id)?;
    let route = Dispatcher::new(home).and_then(|d| d.prepare(staff_id));
    let provider = match &route {
        Ok(route) => route.provider_name().to_string(),
        Err(_) => record.provider.clone(),
    };
    outbox.accept(&NewEmail {
        staff_id: staff_id.to_string(),
        provider,
        message,
        source_key: None,
    })?;
    match route {
        Ok(route) => deliver(outbox, &route, &id, false),
        Err(error) => {
            outbox.finish_failed(&id, &not_ready(&error))?;
            Ok(outbox.get(&id)?)
        }
    }
}

/// The stored error of an email whose provider could not be used.
fn not_ready(error: &Error) -> ProviderError {
    ProviderError::configuration(format!("the provider could not be used: {error}"))
        .with_code("PROVIDER_NOT_READY")
}

/// Claims a stored email, hands it to the provider and records the outcome; returns the final
/// record.
fn deliver(outbox: &Outbox, route: &Route, id: &str, force: bool) -> Result<EmailRecord, Error> {
    let claim = if force {
        outbox.claim_forced(id)?
    } else {
        outbox.claim(id)?
    };
    match route.send(&claim.message()) {
        Ok(receipt) => outbox.finish_sent(id, &receipt)?,
        Err(error) => {
            outbox.finish_failed(id, &error)?;
        }
    }
    Ok(outbox.get(id)?)
}

fn send(home: &Home, outbox: &Outbox, args: &SendArgs) -> Result<u8, Error> {
    let record = submit(home, outbox, &args.staff, &draft_of(args))?;
    report(&record, args.json)
}

/// Prints the outcome of a send or retry; a record not `sent` is an exit-1 error whose message
/// says what to do next.
fn report(record: &EmailRecord, json: bool) -> Result<u8, Error> {
    if json {
        print_json(&outcome_json(record))?;
    } else if record.status == Status::Sent {
        print(&terminal::escape(&sent_line(record)))?;
    }
    match outcome_error(record) {
        Some(text) => Err(Error::Failed(text)),
        None => OK,
    }
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
            "email {id} may or may not have been sent by {} ({why}); it is kept as unknown: check the recipient's mailbox, and if it did not arrive run `mailhost email retry {id} --force`",
            record.provider
        )),
        _ => Some(format!(
            "email {id} was not sent: {} failed ({why}); it is kept in mail.db as {}: fix the cause, then run `mailhost email retry {id}`",
            record.provider, record.status
        )),
    }
}

/// The `--json` object of a send or retry: id, status, provider, staff, from, to, subject,
/// attempts, receipt and error (`{kind, code, message, retry_after_ms}`).
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
    if json {
        let value = serde_json::to_value(&record).map_err(|e| Error::Output(e.into()))?;
        return print_json(&value).map(|()| EXIT_OK);
    }
    print(&describe(&record))?;
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
fn retry_one(home: &Home, outbox: &Outbox, id: &str, force: bool, json: bool) -> Result<u8, Error> {
    let record = outbox.get(id)?;
    if !force && matches!(record.status, Status::Sent | Status::Unknown) {
        return Err(OutboxError::NotClaimable {
            id: record.id,
            status: record.status,
            owner_alive: false,
        }
        .into());
    }
    let dispatcher = Dispatcher::new(home)?;
    let record = retry(outbox, &dispatcher, &record, force, &mut HashMap::new())?;
    report(&record, json)
}

/// Routes already resolved in this run, by staff ID (an error is kept as its text).
type Routes = HashMap<String, Result<Route, String>>;

/// Sends a stored email again through its staff member's current provider; a provider that
/// cannot be used is recorded as the email's error (for a `queued` or `failed` email).
fn retry(
    outbox: &Outbox,
    dispatcher: &Dispatcher,
    record: &EmailRecord,
    force: bool,
    routes: &mut Routes,
) -> Result<EmailRecord, Error> {
    let route = routes.entry(record.staff_id.clone()).or_insert_with(|| {
        dispatcher
            .prepare(&record.staff_id)
            .map_err(|e| e.to_string())
    });
    match route {
        Ok(route) => deliver(outbox, route, &record.id, force),
        Err(text) => {
            if record.is_retryable() {
                outbox.finish_failed(&record.id, &not_ready(&Error::Usage(text.clone())))?;
                Ok(outbox.get(&record.id)?)
            } else {
                Err(Error::Usage(text.clone()))
            }
        }
    }
}

/// Whether a failed email's error is one that sending again cannot fix: the configuration,
/// a recipient or the message itself must change first. (A provider that could not be used
/// at all, `PROVIDER_NOT_READY`, is retried: enabling or fixing the plugin is the fix.)
fn is_permanent(record: &EmailRecord) -> bool {
    record.error.as_ref().is_some_and(|e| {
        let kind = e.kind.as_str();
        e.code != "PROVIDER_NOT_READY"
            && ["configuration", "recipient", "invalid-message"].contains(&kind)
    })
}

/// `email retry --failed [--force]`: every failed email, oldest first, one line each, then a
/// summary. Emails whose error is permanent are skipped (and counted) unless `force`.
fn retry_failed(home: &Home, outbox: &Outbox, force: bool, json: bool) -> Result<u8, Error> {
    let mut failed = outbox.list(Some(Status::Failed), None)?;
    failed.reverse();
    let before = failed.len();
    if !force {
        failed.retain(|r| !is_permanent(r));
    }
    let skipped = before - failed.len();
    let dispatcher = Dispatcher::new(home)?;
    let mut routes = Routes::new();
    let (mut sent, mut not_sent) = (0u64, 0u64);
    let mut results = Vec::new();
    for record in &failed {
        let done = match retry(outbox, &dispatcher, record, false, &mut routes) {
            Ok(done) => done,
            // Another process took it meanwhile: leave it to that process.
            Err(Error::Outbox(OutboxError::NotClaimable { .. })) => continue,
            Err(error) => return Err(error),
        };
        if done.status == Status::Sent {
            sent += 1;
        } else {
            not_sent += 1;
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
        print_json(
            &json!({ "retried": failed.len(), "sent": sent, "failed": not_sent, "skipped": skipped, "results": results }),
        )?;
    } else if failed.is_empty() && skipped == 0 {
        print("no failed emails to retry")?;
    } else {
        print(&format!(
            "retried {}: sent {sent}, not sent {not_sent}",
            failed.len()
        ))?;
    }
    if skipped > 0 && !json {
        warn(&format!(
            "skipped {skipped} failed email(s) whose error sending again cannot fix (configuration, recipient or invalid message): fix the cause, then `mailhost email retry ID`, or `mailhost email retry --failed --force` to send them all"
        ));
    }
    if not_sent > 0 {
        if !json {
            warn("some emails were not sent: `mailhost email show ID` says why");
        }
        return Ok(EXIT_FAILED);
    }
    OK
}

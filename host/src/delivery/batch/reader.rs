//! The reading side of a batch: lines become emails, accepted into the store a group at a
//! time (one durable commit per group), before the engine may send any of them.
//!
//! Each line is looked up by its source key: a line already `sent`, or being sent by another
//! running process, is skipped; a `queued` one is sent again; a `failed` one is queued again;
//! an `unknown` one is first reconciled with the provider (sent, proven not sent and queued
//! again, or skipped while still in doubt). A new one is parsed, composed and accepted. So:
//!
//! - a crash before a group's commit loses only lines that were never stored, and never sent:
//!   the rerun reads them again;
//! - a crash after it leaves them `queued` (or `sending`, which the next run makes `unknown`
//!   and reconciles): the rerun sends each once.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use mailhost_plugin_api::Message;

use super::input::{self, Draft};
use super::report::{LineProblem, Outcome, Reporter};
use super::{BatchError, BatchTarget};
use crate::delivery::engine::Engine;
use crate::delivery::outbox::{
    Door, EmailRecord, GroupOutcome, NewEmail, Outbox, OutboxError, Status,
};

/// An email of the batch the engine is to send.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Its line.
    pub(crate) line: u64,
    /// Its id.
    pub(crate) id: String,
}

/// The most lines accepted in one commit.
pub(crate) const GROUP_MAX: usize = 64;

/// Turns lines into jobs, or records why there is none.
pub(crate) struct Reader<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) target: BatchTarget<'a>,
    /// The folder relative attachment paths are resolved against.
    pub(crate) base: PathBuf,
    pub(crate) path_hash: String,
    pub(crate) reporter: &'a Reporter,
}

/// Lines read since the last commit, in file order.
#[derive(Default)]
struct Group {
    /// One entry per line that needs sending.
    entries: Vec<Entry>,
    /// The new emails, in the order of the [`Entry::New`] entries.
    emails: Vec<NewEmail>,
}

enum Entry {
    /// An email already stored `queued` or `failed`: send it again.
    Stored(Job),
    /// A new email (the next of [`Group::emails`]), from this line.
    New(u64),
}

impl Group {
    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Reader<'_> {
    fn outbox(&self) -> &Outbox {
        self.engine.outbox()
    }

    /// Reads `file` to the end, handing each committed group's jobs to `committed` (which
    /// wakes the engine).
    pub(crate) fn read_all<C>(
        &self,
        file: File,
        path: &Path,
        compose: &mut C,
        committed: &mut dyn FnMut(Vec<Job>),
    ) -> Result<(), BatchError>
    where
        C: FnMut(Draft) -> Result<Message, String>,
    {
        let mut lines = BufReader::new(file);
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            let mut group = Group::default();
            let mut ended = false;
            let mut failure = None;
            while group.len() < GROUP_MAX {
                buf.clear();
                match lines.read_until(b'\n', &mut buf) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(_) => number += 1,
                    Err(source) => {
                        failure = Some(BatchError::Read {
                            path: path.to_path_buf(),
                            line: number + 1,
                            source,
                        });
                        break;
                    }
                }
                self.line(number, trim_newline(&buf), compose, &mut group)?;
            }
            // What was read before a read error is still stored and sent.
            let jobs = self.commit(group)?;
            committed(jobs);
            if let Some(error) = failure {
                return Err(error);
            }
            if ended {
                return Ok(());
            }
        }
    }

    /// Adds line `number` to `group` if it needs sending; records it if not.
    fn line<C>(
        &self,
        number: u64,
        raw: &[u8],
        compose: &mut C,
        group: &mut Group,
    ) -> Result<(), OutboxError>
    where
        C: FnMut(Draft) -> Result<Message, String>,
    {
        if raw.iter().all(u8::is_ascii_whitespace) {
            self.reporter.record(Outcome::Blank);
            return Ok(());
        }
        let key = input::source_key(&self.path_hash, number, raw);
        if let Some(record) = self.outbox().find_by_source(&key)? {
            if let Some(job) = self.existing(number, &record)? {
                group.entries.push(Entry::Stored(job));
            }
            return Ok(());
        }
        let invalid = |message: String| {
            self.reporter.record(Outcome::Invalid(LineProblem {
                line: number,
                id: None,
                message,
            }));
            Ok(())
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return invalid("the line is not UTF-8 text".into());
        };
        let draft = match input::parse(text, &self.base) {
            Ok(draft) => draft,
            Err(message) => return invalid(message),
        };
        let mut message = match compose(draft) {
            Ok(message) => message,
            Err(message) => return invalid(message),
        };
        if message.id.is_empty() {
            message.id = uuid::Uuid::new_v4().to_string().into();
        }
        group.entries.push(Entry::New(number));
        let mut email = NewEmail::new(
            self.target.staff_id,
            self.target.provider,
            message,
            Door::Batch,
        );
        email.source_key = Some(key);
        group.emails.push(email);
        Ok(())
    }

    /// Accepts the group's new emails in one durable commit and returns the group's jobs, in
    /// file order. Nothing is handed to a worker before this returns.
    fn commit(&self, group: Group) -> Result<Vec<Job>, OutboxError> {
        let Group { entries, emails } = group;
        let outcomes = if emails.is_empty() {
            Vec::new()
        } else {
            self.outbox().accept_group(&emails)?
        };
        let mut fresh = emails.into_iter().zip(outcomes);
        let mut jobs = Vec::with_capacity(entries.len());
        for entry in entries {
            let line = match entry {
                Entry::Stored(job) => {
                    jobs.push(job);
                    continue;
                }
                Entry::New(line) => line,
            };
            let Some((email, outcome)) = fresh.next() else {
                break;
            };
            match outcome {
                GroupOutcome::Accepted => jobs.push(Job {
                    line,
                    id: email.message.id.to_string(),
                }),
                // Another process accepted the same line a moment ago.
                GroupOutcome::AlreadyAccepted { existing } => {
                    let record = self.outbox().get(&existing)?;
                    jobs.extend(self.existing(line, &record)?);
                }
                GroupOutcome::DuplicateId => {
                    self.reporter.record(Outcome::Invalid(LineProblem {
                        line,
                        id: None,
                        message: format!(
                            "an email with id '{}' is already stored; give the line a new id",
                            email.message.id
                        ),
                    }));
                }
            }
        }
        Ok(jobs)
    }

    /// A line whose email is already stored: skip it, or send it again if it is retryable
    /// (after reconciling it, if its outcome was in doubt).
    fn existing(&self, number: u64, record: &EmailRecord) -> Result<Option<Job>, OutboxError> {
        let problem = |message: String| LineProblem {
            line: number,
            id: Some(record.id.clone()),
            message,
        };
        let job = || Job {
            line: number,
            id: record.id.clone(),
        };
        let mut status = record.status;
        if status == Status::Unknown {
            match self.engine.reconcile_ids(std::slice::from_ref(&record.id)) {
                Ok(_) => status = self.outbox().get(&record.id)?.status,
                Err(error) => log::warn!("could not reconcile email {}: {error}", record.id),
            }
        }
        let outcome = match status {
            Status::Queued => return Ok(Some(job())),
            // This run's engine took it already (it was left queued by an earlier run).
            Status::Sending if self.outbox().is_claimed_here(&record.id)? => {
                return Ok(Some(job()));
            }
            Status::Failed => {
                self.outbox().requeue(&record.id, false)?;
                return Ok(Some(job()));
            }
            Status::Sent => Outcome::SkippedSent,
            Status::Unknown => Outcome::SkippedUnknown(problem(format!(
                "email {} may already have been sent (outcome unknown), so it is not sent again: \
                 check, then `mailhost email retry {} --force` if it did not arrive",
                record.id, record.id
            ))),
            Status::Sending => Outcome::InProgress(problem(format!(
                "email {} is being sent by another mailhost process; skipped",
                record.id
            ))),
        };
        self.reporter.record(outcome);
        Ok(None)
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

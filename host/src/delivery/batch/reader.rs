//! The reading side of a batch: lines become jobs, accepted into the store a group at a time.
//!
//! The reader waits for room in the queue (at least half of it), then reads lines until the
//! group fills that room (or [`GROUP_MAX`] lines that need sending, or the end of the file). Each
//! line is looked up by its source key: a line already `sent`, `unknown` or being sent by
//! another running process is skipped; a `queued` or `failed` one is sent again; a new one is
//! parsed and composed. The group's new emails are then accepted in *one* transaction, committed
//! (fsync'd) before any of them is handed to a worker, so:
//!
//! - a crash before the commit loses only lines that were never stored, and never sent: the
//!   rerun reads them again;
//! - a crash after it leaves them `queued`: the rerun sends each once.
//!
//! Memory stays bounded: the group is never larger than the room the queue had when it started,
//! so the queue plus the group hold at most the queue's capacity.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use mailhost_plugin_api::Message;

use super::input::{self, Draft};
use super::pace::Pacer;
use super::queue::JobQueue;
use super::report::{LineProblem, Outcome, Reporter};
use super::worker::Job;
use super::{BatchError, BatchTarget};
use crate::delivery::outbox::{EmailRecord, GroupOutcome, NewEmail, Outbox, OutboxError, Status};

/// The most lines accepted in one commit.
pub(crate) const GROUP_MAX: usize = 64;

/// Turns lines into jobs, or records why there is none.
pub(crate) struct Reader<'a> {
    pub(crate) outbox: &'a Outbox,
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
    /// Reads `file` to the end (or until the batch stops), handing jobs to `queue` a committed
    /// group at a time; `before_push` sees each group's jobs first (to add workers).
    pub(crate) fn read_all<C>(
        &self,
        file: File,
        path: &Path,
        queue: &JobQueue,
        pacer: &Pacer,
        compose: &mut C,
        before_push: &mut dyn FnMut(&[Job]),
    ) -> Result<(), BatchError>
    where
        C: FnMut(Draft) -> Result<Message, String>,
    {
        let mut lines = BufReader::new(file);
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            if pacer.is_stopped() {
                return Ok(());
            }
            let Some(room) = queue.wait_room() else {
                return Ok(());
            };
            let mut group = Group::default();
            let mut ended = false;
            let mut failure = None;
            while group.len() < room.min(GROUP_MAX) {
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
            before_push(&jobs);
            if !queue.push_all(jobs) {
                return Ok(());
            }
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
        if let Some(record) = self.outbox.find_by_source(&key)? {
            if let Some(job) = self.existing(number, &record) {
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
        group.emails.push(NewEmail {
            staff_id: self.target.staff_id.to_string(),
            provider: self.target.provider.to_string(),
            message,
            source_key: Some(key),
        });
        Ok(())
    }

    /// Accepts the group's new emails in one durable commit and returns the group's jobs, in
    /// file order. Nothing is handed to a worker before this returns.
    fn commit(&self, group: Group) -> Result<Vec<Job>, OutboxError> {
        let Group { entries, emails } = group;
        let outcomes = if emails.is_empty() {
            Vec::new()
        } else {
            self.outbox.accept_group(&emails)?
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
                    mailbox: email.message.from.address.to_ascii_lowercase(),
                }),
                // Another process accepted the same line a moment ago.
                GroupOutcome::AlreadyAccepted { existing } => {
                    let record = self.outbox.get(&existing)?;
                    jobs.extend(self.existing(line, &record));
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

    /// A line whose email is already stored: skip it, or send it again if it is retryable.
    fn existing(&self, number: u64, record: &EmailRecord) -> Option<Job> {
        let problem = |message: String| LineProblem {
            line: number,
            id: Some(record.id.clone()),
            message,
        };
        let outcome = match record.status {
            Status::Queued | Status::Failed => {
                return Some(Job {
                    line: number,
                    id: record.id.clone(),
                    mailbox: record.from.address.to_ascii_lowercase(),
                });
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
        None
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

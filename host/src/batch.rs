//! `mailhost email send-batch FILE.jsonl --staff ID`: many emails from a file of JSON lines,
//! sent concurrently per mailbox, with throttling honoured, resumable after any crash.
//!
//! The engine knows nothing of plugins: the caller supplies a [`Transport`] (the host's dispatch
//! route to the staff member's provider) and a compose step that turns a parsed [`Draft`] into a
//! [`Message`], the same validation `email send` uses (addresses, CR/LF, attachments).
//!
//! How it runs: the calling thread streams the file line by line; each line is looked up by its
//! source key (hash of the canonical path, line number, hash of the line). A line already `sent`
//! (or `unknown`, or being sent by another running process) is skipped; a `queued` or `failed`
//! one is sent again; a new one is parsed, composed and *accepted* into the store before it is
//! queued for the workers through a bounded channel, so memory stays flat however long the file
//! is. Workers claim each email before calling the provider, so a kill -9 at any moment followed
//! by a rerun sends every email exactly once, except those flagged `unknown` for the user.

mod input;
mod pace;
mod report;
mod worker;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailhost_plugin_api::{Message, ProviderError, Receipt};

pub use input::Draft;
pub use report::{BatchSummary, KEPT_PROBLEMS, LineProblem, Progress};

use crate::outbox::{NewEmail, Outbox, OutboxError, Status};
use pace::Pacer;
use report::{Outcome, Reporter};
use worker::{Context, Job};

/// Sends one message; the host implements it for its dispatch route (staff member → loaded
/// provider). Called from several threads at once.
pub trait Transport: Sync {
    /// Hands `message` to the provider.
    ///
    /// # Errors
    /// The provider's error, whose kind decides whether the batch retries.
    fn send(&self, message: &Message) -> Result<Receipt, ProviderError>;
}

/// The host's route to a staff member's provider is a transport as it is.
impl Transport for crate::dispatch::Route {
    fn send(&self, message: &Message) -> Result<Receipt, ProviderError> {
        crate::dispatch::Route::send(self, message)
    }
}

/// Who sends the batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchTarget<'a> {
    /// The staff member's ID, stored on every email.
    pub staff_id: &'a str,
    /// The provider plugin's registry name, stored on every email.
    pub provider: &'a str,
}

/// Tuning; the defaults suit Microsoft Graph.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Calls in flight per From address (Graph allows 4 concurrent requests per mailbox).
    pub per_mailbox: usize,
    /// Worker threads in all.
    pub workers: usize,
    /// Accepted emails waiting for a worker (the bound on read-ahead).
    pub queue: usize,
    /// How many times one email is retried after `THROTTLED`.
    pub throttle_retries: u32,
    /// How many times one email is retried after `TRANSIENT`.
    pub transient_retries: u32,
    /// The first backoff (doubling each retry), for transient faults and for throttling that
    /// gave no retry-after.
    pub backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest wait honoured from a retry-after.
    pub max_retry_after: Duration,
    /// What to show while running.
    pub progress: Progress,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            per_mailbox: 4,
            workers: 8,
            queue: 16,
            throttle_retries: 10,
            transient_retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
            progress: Progress::Auto,
        }
    }
}

/// Why a batch could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The batch file could not be opened.
    #[error("cannot read batch file {path}: {source}; check the path")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the batch file failed part way.
    #[error("cannot read batch file {path} at line {line}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The line being read.
        line: u64,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The email store failed; the batch stopped. Every email keeps a consistent status, so
    /// running the batch again resumes it.
    #[error("{0}; the batch stopped, and running it again resumes where it stopped")]
    Store(#[from] OutboxError),
}

/// Sends every line of the batch file at `path` through `transport`, recording each email in
/// `outbox`. `compose` turns a parsed line into a message (the From address defaulted to the
/// staff member's, addresses and attachments checked), or says what is wrong with it; the
/// message's id is kept if set, else a new UUID is given.
///
/// # Errors
/// [`BatchError`] when the file cannot be read or the store fails. A line that does not parse or
/// compose, or an email the provider refuses, is not an error: it is counted in the summary.
pub fn send_batch<C>(
    outbox: &Outbox,
    transport: &dyn Transport,
    target: BatchTarget<'_>,
    path: &Path,
    options: &BatchOptions,
    mut compose: C,
) -> Result<BatchSummary, BatchError>
where
    C: FnMut(Draft) -> Result<Message, String>,
{
    let open_error = |source| BatchError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    let canonical = std::fs::canonicalize(path).map_err(open_error)?;
    let base = canonical.parent().unwrap_or(Path::new("/")).to_path_buf();
    let total = if Reporter::wants_bar(options.progress) {
        Some(count_lines(path)?)
    } else {
        None
    };
    let reporter = Reporter::new(options.progress, path, total);
    let pacer = Pacer::new(options.per_mailbox);
    let fatal: Mutex<Option<OutboxError>> = Mutex::new(None);
    let cx = Context {
        outbox,
        transport,
        pacer: &pacer,
        reporter: &reporter,
        options,
    };
    let reader = Reader {
        outbox,
        target,
        base,
        path_hash: input::short_hash(canonical.as_os_str().as_encoded_bytes()),
        reporter: &reporter,
    };
    let read_result = std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<Job>(options.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..options.workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let (cx, fatal) = (&cx, &fatal);
            scope.spawn(move || work(cx, &receiver, fatal));
        }
        drop(receiver);
        let mut lines = BufReader::new(file);
        let mut buf = Vec::new();
        let mut number = 0u64;
        let result = loop {
            if pacer.is_stopped() {
                break Ok(());
            }
            buf.clear();
            match lines.read_until(b'\n', &mut buf) {
                Ok(0) => break Ok(()),
                Ok(_) => number += 1,
                Err(source) => {
                    break Err(BatchError::Read {
                        path: path.to_path_buf(),
                        line: number + 1,
                        source,
                    });
                }
            }
            match reader.line(number, trim_newline(&buf), &mut compose) {
                Ok(Some(job)) => {
                    if sender.send(job).is_err() {
                        break Ok(());
                    }
                }
                Ok(None) => {}
                Err(error) => break Err(BatchError::Store(error)),
            }
        };
        if result.is_err() {
            pacer.stop();
        }
        drop(sender);
        result
    });
    let fatal = fatal
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    read_result?;
    match fatal {
        Some(error) => Err(BatchError::Store(error)),
        None => Ok(reporter.finish()),
    }
}

/// A worker: takes jobs until the channel closes or the batch stops.
fn work(cx: &Context<'_>, receiver: &Mutex<Receiver<Job>>, fatal: &Mutex<Option<OutboxError>>) {
    loop {
        let job = {
            let receiver = receiver
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            receiver.recv()
        };
        let Ok(job) = job else { return };
        if let Err(error) = worker::deliver(cx, &job) {
            let mut fatal = fatal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            fatal.get_or_insert(error);
            cx.pacer.stop();
            return;
        }
        if cx.pacer.is_stopped() {
            return;
        }
    }
}

/// The reading side: turns a line into a job, or records why there is none.
struct Reader<'a> {
    outbox: &'a Outbox,
    target: BatchTarget<'a>,
    base: PathBuf,
    path_hash: String,
    reporter: &'a Reporter,
}

impl Reader<'_> {
    fn line<C>(&self, number: u64, raw: &[u8], compose: &mut C) -> Result<Option<Job>, OutboxError>
    where
        C: FnMut(Draft) -> Result<Message, String>,
    {
        if raw.iter().all(u8::is_ascii_whitespace) {
            self.reporter.record(Outcome::Blank);
            return Ok(None);
        }
        let key = input::source_key(&self.path_hash, number, raw);
        if let Some(record) = self.outbox.find_by_source(&key)? {
            return Ok(self.existing(number, &record));
        }
        let invalid = |message: String| {
            self.reporter.record(Outcome::Invalid(LineProblem {
                line: number,
                id: None,
                message,
            }));
            Ok(None)
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
        let email = NewEmail {
            staff_id: self.target.staff_id.to_string(),
            provider: self.target.provider.to_string(),
            message,
            source_key: Some(key),
        };
        match self.outbox.accept(&email) {
            Ok(record) => Ok(Some(job(number, &record))),
            // Another process accepted the same line a moment ago.
            Err(OutboxError::DuplicateSource { existing }) => {
                let record = self.outbox.get(&existing)?;
                Ok(self.existing(number, &record))
            }
            Err(error) => Err(error),
        }
    }

    /// A line whose email is already stored: skip it, or send it again if it is retryable.
    fn existing(&self, number: u64, record: &crate::outbox::EmailRecord) -> Option<Job> {
        let problem = |message: String| LineProblem {
            line: number,
            id: Some(record.id.clone()),
            message,
        };
        let outcome = match record.status {
            Status::Queued | Status::Failed => return Some(job(number, record)),
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

fn job(line: u64, record: &crate::outbox::EmailRecord) -> Job {
    Job {
        line,
        id: record.id.clone(),
        mailbox: record.from.address.to_ascii_lowercase(),
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Counts the lines of the file (for the progress bar), streaming.
fn count_lines(path: &Path) -> Result<u64, BatchError> {
    let file = File::open(path).map_err(|source| BatchError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut count = 0u64;
    let mut last = b'\n';
    loop {
        let chunk = reader.fill_buf().map_err(|source| BatchError::Read {
            path: path.to_path_buf(),
            line: count + 1,
            source,
        })?;
        let Some(&end) = chunk.last() else { break };
        count += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = end;
        let len = chunk.len();
        reader.consume(len);
    }
    Ok(count + u64::from(last != b'\n'))
}

//! `mailhost email send-batch FILE.jsonl --staff ID`: many emails from a file of JSON lines,
//! sent concurrently per mailbox, with throttling honoured, resumable after any crash.
//!
//! The engine knows nothing of plugins: the caller supplies a [`Transport`] (the host's dispatch
//! route to the staff member's provider) and a compose step that turns a parsed [`Draft`] into a
//! [`Message`], the same validation `email send` uses (addresses, CR/LF, attachments).
//!
//! How it runs: the calling thread streams the file line by line (`reader.rs`); each line is
//! looked up by its source key (hash of the canonical path, line number, hash of the line). A
//! line already `sent` (or `unknown`, or being sent by another running process) is skipped; a
//! `queued` or `failed` one is sent again; new ones are parsed, composed and *accepted* into the
//! store, a group of lines per durable commit, before they are queued for the workers through a
//! bounded queue (`queue.rs`), so memory stays flat however long the file is. Workers claim each
//! email before calling the provider, so a kill -9 at any moment followed by a rerun sends every
//! email exactly once, except those flagged `unknown` for the user.

mod input;
mod pace;
mod queue;
mod reader;
mod report;
mod worker;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mailhost_plugin_api::{Message, ProviderError, Receipt};

pub use input::Draft;
pub use report::{BatchSummary, KEPT_PROBLEMS, LineProblem, Progress};

use crate::delivery::outbox::{Outbox, OutboxError};
use pace::Pacer;
use queue::JobQueue;
use reader::Reader;
use report::Reporter;
use worker::Context;

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
impl Transport for crate::delivery::dispatch::Route {
    fn send(&self, message: &Message) -> Result<Receipt, ProviderError> {
        crate::delivery::dispatch::Route::send(self, message)
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
    /// Worker threads at most. A batch starts `per_mailbox` of them (enough to keep one
    /// mailbox's lane full without any worker waiting for a slot) and adds `per_mailbox` more
    /// for each further From address it meets, up to this many.
    pub workers: usize,
    /// Emails read ahead of the workers (the bound on read-ahead, and on memory). The reader
    /// accepts up to half of it (at most 64 lines) in one commit.
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
            queue: 64,
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
    let queue = JobQueue::new(options.queue);
    let live = AtomicUsize::new(0);
    let read_result = std::thread::scope(|scope| {
        let mut crew = Crew::new(options);
        let mut grow = |jobs: &[worker::Job]| {
            let wanted = crew.wanted(jobs);
            while crew.hired < wanted {
                crew.hired += 1;
                live.fetch_add(1, Ordering::SeqCst);
                let (cx, queue, fatal, live) = (&cx, &queue, &fatal, &live);
                scope.spawn(move || work(cx, queue, fatal, live));
            }
        };
        grow(&[]);
        let result = reader.read_all(file, path, &queue, &pacer, &mut compose, &mut grow);
        queue.close();
        if result.is_err() {
            pacer.stop();
            queue.stop();
        }
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

/// A worker: takes jobs until the queue is closed and empty, or the batch stops.
fn work(
    cx: &Context<'_>,
    queue: &JobQueue,
    fatal: &Mutex<Option<OutboxError>>,
    live: &AtomicUsize,
) {
    let _leaving = Leaving { queue, live };
    while let Some(job) = queue.pop() {
        if let Err(error) = worker::deliver(cx, &job) {
            let mut fatal = fatal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            fatal.get_or_insert(error);
            cx.pacer.stop();
            queue.stop();
            return;
        }
        if cx.pacer.is_stopped() {
            queue.stop();
            return;
        }
    }
}

/// How many workers a batch wants: `per_mailbox` per From address seen, up to the maximum.
/// One mailbox (the usual batch) gets exactly enough workers to fill its lane, so no worker
/// ever holds a job while waiting for a slot (each such wait is a sleep and a wake-up per
/// email); a batch sending from several addresses grows so each lane can still fill.
struct Crew {
    per_mailbox: usize,
    most: usize,
    mailboxes: Vec<String>,
    hired: usize,
}

impl Crew {
    fn new(options: &BatchOptions) -> Self {
        let per_mailbox = options.per_mailbox.max(1);
        Self {
            per_mailbox,
            most: options.workers.max(1),
            mailboxes: Vec::new(),
            hired: 0,
        }
    }

    /// The workers wanted once `jobs` are queued too (with none: for the first mailbox).
    fn wanted(&mut self, jobs: &[worker::Job]) -> usize {
        for job in jobs {
            if self.mailboxes.len() * self.per_mailbox >= self.most {
                break;
            }
            if !self.mailboxes.contains(&job.mailbox) {
                self.mailboxes.push(job.mailbox.clone());
            }
        }
        (self.mailboxes.len().max(1) * self.per_mailbox).min(self.most)
    }
}

/// Counts a worker out however it leaves (panics included); the last one stops the queue, so
/// the reader never waits for room that nobody will make.
struct Leaving<'a> {
    queue: &'a JobQueue,
    live: &'a AtomicUsize,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.queue.stop();
        }
    }
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

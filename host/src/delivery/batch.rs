//! `mailhost email send-batch FILE.jsonl --staff ID`: many emails from a file of JSON lines,
//! recorded a group of lines per durable commit and sent by the delivery engine under the
//! sending mailbox's limits, resumable after any crash.
//!
//! How it runs: the calling thread streams the file line by line (`reader.rs`) and records the
//! emails (a line already stored is skipped, queued again or reconciled, by its source key);
//! meanwhile the engine's workers send what is due, so memory stays flat however long the file
//! is. Sends wait when a limit is spent and the wait is short (`--max-wait`); emails that would
//! wait longer are left `queued` with the time they may go, for `mailhost serve`,
//! `mailhost email flush` or a rerun. A kill -9 at any moment followed by a rerun sends every
//! email exactly once: emails the killed run was sending are reconciled with the provider where
//! it can tell, else flagged `unknown` for the user.

mod input;
mod reader;
mod report;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mailhost_plugin_api::Message;

pub use input::Draft;
pub use report::{BatchSummary, KEPT_PROBLEMS, LineProblem, Progress};

use crate::delivery::engine::{Drain, Engine, Scope, StopSignal};
use crate::delivery::outbox::{OutboxError, Status};
use reader::{Job, Reader};
use report::{Outcome, Reporter};

/// Who sends the batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchTarget<'a> {
    /// The staff member's ID, stored on every email.
    pub staff_id: &'a str,
    /// The provider plugin's registry name, stored on every email.
    pub provider: &'a str,
}

/// Tuning.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Wait for a sending limit or a retry when it frees within this long; leave emails that
    /// would wait longer queued.
    pub max_wait: Duration,
    /// What to show while running.
    pub progress: Progress,
    /// Only record the emails (`queued`); send nothing.
    pub queue_only: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(600),
            progress: Progress::Auto,
            queue_only: false,
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
    /// The engine stopped.
    #[error("{0}; the batch stopped, and running it again resumes where it stopped")]
    Engine(String),
}

/// Records every line of the batch file at `path` and sends them through `engine`. `compose`
/// turns a parsed line into a message (the From address defaulted to the staff member's,
/// addresses and attachments checked, attachments spooled), or says what is wrong with it.
///
/// # Errors
/// [`BatchError`] when the file cannot be read or the store fails. A line that does not parse or
/// compose, or an email the provider refuses, is not an error: it is counted in the summary.
pub fn send_batch<C>(
    engine: &Arc<Engine>,
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
    let reader = Reader {
        engine,
        target,
        base,
        path_hash: input::short_hash(canonical.as_os_str().as_encoded_bytes()),
        reporter: &reporter,
    };
    let producing = Arc::new(AtomicBool::new(true));
    let stop = StopSignal::new();
    let scope = Scope::Staff(target.staff_id.to_string());
    let drain = Drain {
        max_wait: options.max_wait,
        producing: Some(Arc::clone(&producing)),
    };
    let mut jobs: Vec<Job> = Vec::new();
    let (read_result, drained) = std::thread::scope(|threads| {
        let sender = threads.spawn(|| {
            if options.queue_only {
                Ok(crate::delivery::engine::DrainSummary::default())
            } else {
                engine.drain(&scope, &drain, &stop)
            }
        });
        let result = reader.read_all(file, path, &mut compose, &mut |group| {
            jobs.extend(group);
            engine.wake();
        });
        if result.is_err() {
            stop.stop();
        }
        producing.store(false, Ordering::SeqCst);
        engine.wake();
        let drained = sender.join();
        (result, drained)
    });
    read_result?;
    let drained = match drained {
        Ok(result) => result.map_err(|e| BatchError::Engine(e.to_string()))?,
        Err(_) => return Err(BatchError::Engine("a send worker panicked".into())),
    };
    for job in &jobs {
        let record = engine.outbox().get(&job.id)?;
        let problem = |message: String| LineProblem {
            line: job.line,
            id: Some(record.id.clone()),
            message,
        };
        let why = record
            .error
            .as_ref()
            .map_or_else(|| "no error was recorded".to_string(), ToString::to_string);
        reporter.record(match record.status {
            Status::Sent => Outcome::Sent,
            Status::Failed => Outcome::Failed(problem(format!(
                "email {} was not sent: {why}; fix the cause, then run the batch again",
                record.id
            ))),
            Status::Unknown => Outcome::Unknown(problem(format!(
                "email {} may or may not have been sent ({why}); check, then `mailhost email retry {} --force` if it did not arrive",
                record.id, record.id
            ))),
            Status::Queued => Outcome::Queued,
            Status::Sending => Outcome::InProgress(problem(format!(
                "email {} is being sent by another mailhost process",
                record.id
            ))),
        });
    }
    let mut summary = reporter.finish();
    summary.next_due = match drained.next_due {
        Some(at) => Some(at).filter(|_| summary.queued > 0),
        None => engine.outbox().next_due_in(Some(target.staff_id))?,
    }
    .filter(|_| summary.queued > 0);
    Ok(summary)
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

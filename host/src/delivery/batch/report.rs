//! What a batch did: the [`BatchSummary`] it returns, and what the user sees while it runs (a
//! progress bar on a terminal, else one line per problem and a final summary line).

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How many line problems the summary keeps in full (all are counted and printed).
pub const KEPT_PROBLEMS: usize = 100;

/// What to show while a batch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A progress bar when stderr is a terminal, else a line per problem; then the summary line.
    #[default]
    Auto,
    /// Nothing: the caller prints the returned summary (for `--json`, and tests).
    Hidden,
}

/// One line that went wrong, by its number in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    /// The 1-based line number.
    pub line: u64,
    /// The email's id, when the line was accepted.
    pub id: Option<String>,
    /// What went wrong and what to do.
    pub message: String,
}

/// The result of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchSummary {
    /// Emails the provider accepted in this run.
    pub sent: u64,
    /// Emails that failed in this run (kept as `failed` with their error; a rerun retries them).
    pub failed: u64,
    /// Emails whose outcome became unknown in this run (never resent without `--force`).
    pub unknown: u64,
    /// Lines skipped because their email was already sent.
    pub skipped_sent: u64,
    /// Lines skipped because their email's outcome was already unknown.
    pub skipped_unknown: u64,
    /// Lines skipped because another mailhost process is sending their email right now.
    pub skipped_in_progress: u64,
    /// Lines that did not parse or compose; reported with their number and skipped.
    pub invalid: u64,
    /// How many times a mailbox was throttled and the email put back to be retried.
    pub throttled: u64,
    /// Emails left `queued` (a sending limit or a retry holds them past `--max-wait`); the
    /// service, `mailhost email flush` or a rerun sends them.
    pub queued: u64,
    /// When the first of them may go.
    pub next_due: Option<crate::delivery::outbox::Timestamp>,
    /// The first [`KEPT_PROBLEMS`] invalid lines.
    pub invalid_lines: Vec<LineProblem>,
    /// The first [`KEPT_PROBLEMS`] emails that failed or became unknown.
    pub failures: Vec<LineProblem>,
}

impl BatchSummary {
    /// Whether every line was sent now or before (nothing failed, unknown or invalid).
    pub fn is_success(&self) -> bool {
        self.failed == 0
            && self.unknown == 0
            && self.skipped_unknown == 0
            && self.skipped_in_progress == 0
            && self.invalid == 0
    }
}

impl fmt::Display for BatchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, failed {}, skipped {} (already sent), invalid {} lines",
            self.sent, self.failed, self.skipped_sent, self.invalid
        )?;
        let unknown = self.unknown + self.skipped_unknown;
        if unknown > 0 {
            write!(
                f,
                ", unknown {unknown} (may have been sent: see `mailhost email list --status unknown`)"
            )?;
        }
        if self.skipped_in_progress > 0 {
            write!(
                f,
                ", {} being sent by another mailhost process",
                self.skipped_in_progress
            )?;
        }
        if self.queued > 0 {
            write!(f, ", queued {}", self.queued)?;
            if let Some(at) = self.next_due {
                write!(
                    f,
                    " (held by a sending limit or a retry; the next may go at {at})"
                )?;
            }
            write!(
                f,
                ": `mailhost serve` or `mailhost email flush` sends them, or run the batch again"
            )?;
        }
        Ok(())
    }
}

/// What happened to one line.
#[derive(Debug)]
pub(crate) enum Outcome {
    Sent,
    Failed(LineProblem),
    Unknown(LineProblem),
    SkippedSent,
    SkippedUnknown(LineProblem),
    InProgress(LineProblem),
    Invalid(LineProblem),
    Queued,
    Blank,
}

/// Collects outcomes and shows them.
#[derive(Debug)]
pub(crate) struct Reporter {
    summary: Mutex<BatchSummary>,
    bar: Option<ProgressBar>,
    /// Print problems and the summary (mode `Auto`).
    verbose: bool,
    file: String,
}

impl Reporter {
    /// A reporter for `file`; `total_lines` sizes the bar (`None` when no bar is shown).
    pub(crate) fn new(progress: Progress, file: &Path, total_lines: Option<u64>) -> Self {
        let bar = total_lines.map(|total| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{wide_bar} {pos}/{len} lines {msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar
        });
        Self {
            summary: Mutex::default(),
            bar,
            verbose: progress == Progress::Auto,
            file: file.display().to_string(),
        }
    }

    /// Whether a bar should be shown for `progress`.
    pub(crate) fn wants_bar(progress: Progress) -> bool {
        progress == Progress::Auto && std::io::stderr().is_terminal()
    }

    /// Records what happened to one line.
    pub(crate) fn record(&self, outcome: Outcome) {
        let mut summary = self.lock();
        let problem = match outcome {
            Outcome::Sent => {
                summary.sent += 1;
                None
            }
            Outcome::Failed(p) => {
                summary.failed += 1;
                keep(&mut summary.failures, &p);
                Some(p)
            }
            Outcome::Unknown(p) => {
                summary.unknown += 1;
                keep(&mut summary.failures, &p);
                Some(p)
            }
            Outcome::SkippedSent => {
                summary.skipped_sent += 1;
                None
            }
            Outcome::SkippedUnknown(p) => {
                summary.skipped_unknown += 1;
                Some(p)
            }
            Outcome::InProgress(p) => {
                summary.skipped_in_progress += 1;
                Some(p)
            }
            Outcome::Invalid(p) => {
                summary.invalid += 1;
                keep(&mut summary.invalid_lines, &p);
                Some(p)
            }
            Outcome::Queued => {
                summary.queued += 1;
                None
            }
            Outcome::Blank => None,
        };
        let status = format!(
            "sent {} failed {}",
            summary.sent,
            summary.failed + summary.unknown
        );
        drop(summary);
        if let Some(problem) = problem.filter(|_| self.verbose) {
            let text = format!("{}:{}: {}", self.file, problem.line, problem.message);
            match &self.bar {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(status);
            bar.inc(1);
        }
    }

    /// Ends the display and returns the summary.
    pub(crate) fn finish(self) -> BatchSummary {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let summary = self
            .summary
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.verbose {
            eprintln!("{summary}");
        }
        summary
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchSummary> {
        self.summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn keep(list: &mut Vec<LineProblem>, problem: &LineProblem) {
    if list.len() < KEPT_PROBLEMS {
        list.push(problem.clone());
    }
}

//! Sending one batch email: claim, call, record, and the retry policy.
//!
//! - `THROTTLED`: wait the retry-after the service gave (or a backoff), pausing the whole
//!   mailbox, then send the same email again; up to `throttle_retries` times.
//! - `TRANSIENT`: wait a capped exponential backoff and send again; up to `transient_retries`.
//! - `UNKNOWN_OUTCOME`: recorded as `unknown`, never retried.
//! - anything else: recorded as `failed`; the batch goes on.
//!
//! While it waits, the email is `failed` with the error that caused the wait (not `sending`), so
//! a crash during a long wait leaves it retryable rather than `unknown`; it is claimed again
//! before the next call.

use std::time::Duration;

use mailhost_plugin_api::{ErrorKind, ProviderError};

use super::pace::Pacer;
use super::report::{LineProblem, Outcome, Reporter};
use super::{BatchOptions, Transport};
use crate::delivery::outbox::{Outbox, OutboxError, Status};

/// An accepted email waiting to be sent.
#[derive(Debug)]
pub(crate) struct Job {
    /// Its line in the file.
    pub(crate) line: u64,
    /// Its id in the store.
    pub(crate) id: String,
    /// Its From address, lower case: the pacing lane.
    pub(crate) mailbox: String,
}

/// What a worker needs.
pub(crate) struct Context<'a> {
    pub(crate) outbox: &'a Outbox,
    pub(crate) transport: &'a dyn Transport,
    pub(crate) pacer: &'a Pacer,
    pub(crate) reporter: &'a Reporter,
    pub(crate) options: &'a BatchOptions,
}

/// Sends `job` and records the outcome. `Err` only when the store fails, which stops the batch.
/// `Ok(())` is also returned when the batch was stopped before the email was claimed.
pub(crate) fn deliver(cx: &Context<'_>, job: &Job) -> Result<(), OutboxError> {
    let Some(_permit) = cx.pacer.acquire(&job.mailbox) else {
        return Ok(());
    };
    let problem = |message: String| LineProblem {
        line: job.line,
        id: Some(job.id.clone()),
        message,
    };
    let (mut throttles, mut transients) = (0u32, 0u32);
    loop {
        if !cx.pacer.wait_turn(&job.mailbox) {
            return Ok(());
        }
        let claim = match cx.outbox.claim(&job.id) {
            Ok(claim) => claim,
            Err(error @ OutboxError::NotClaimable { status, .. }) => {
                let outcome = match status {
                    Status::Sent => Outcome::SkippedSent,
                    Status::Unknown => Outcome::SkippedUnknown(problem(error.to_string())),
                    _ => Outcome::InProgress(problem(error.to_string())),
                };
                cx.reporter.record(outcome);
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let error = match cx.transport.send(&claim.message()) {
            Ok(receipt) => {
                cx.outbox.finish_sent(&job.id, &receipt)?;
                cx.reporter.record(Outcome::Sent);
                return Ok(());
            }
            Err(error) => error,
        };
        if error.kind == ErrorKind::THROTTLED && throttles < cx.options.throttle_retries {
            throttles += 1;
            let wait = error
                .retry_after()
                .unwrap_or_else(|| backoff(cx.options, throttles))
                .min(cx.options.max_retry_after);
            cx.pacer.hold_off(&job.mailbox, wait);
            cx.outbox.finish_failed(&job.id, &error)?;
            cx.reporter.throttled();
            continue;
        }
        if error.kind == ErrorKind::TRANSIENT && transients < cx.options.transient_retries {
            transients += 1;
            cx.outbox.finish_failed(&job.id, &error)?;
            if !cx.pacer.sleep(backoff(cx.options, transients)) {
                return Ok(());
            }
            continue;
        }
        let status = cx.outbox.finish_failed(&job.id, &error)?;
        cx.reporter.record(match status {
            Status::Unknown => Outcome::Unknown(problem(unknown_text(&job.id, &error))),
            Status::Sent => Outcome::Sent,
            _ => Outcome::Failed(problem(failed_text(&job.id, &error))),
        });
        return Ok(());
    }
}

/// `backoff * 2^(n-1)`, capped at `max_backoff`.
fn backoff(options: &BatchOptions, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    options
        .backoff
        .saturating_mul(factor)
        .min(options.max_backoff)
}

fn failed_text(id: &str, error: &ProviderError) -> String {
    format!(
        "email {id} failed ({}): {error}; fix the cause and run the batch again to retry it",
        error.kind
    )
}

fn unknown_text(id: &str, error: &ProviderError) -> String {
    format!(
        "email {id} may or may not have been sent ({error}): check the recipient's mailbox or \
         Sent Items, and if it did not arrive run `mailhost email retry {id} --force`"
    )
}

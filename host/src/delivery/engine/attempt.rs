//! One attempt: hand a claimed email to its provider (whole message or parsed parts), then
//! record what follows from the outcome.

use std::time::Instant;

use mailhost_plugin_api::{MimeSendRequest, ProviderError, Receipt};

use super::lanes::Lane;
use super::metrics::Counted;
use super::policy::{self, Next};
use super::{Engine, reconcile};
use crate::delivery::outbox::{
    Claim, EmailRecord, Finish, LastError, OutboxError, ReceiptRecord, Status, Timestamp,
};

impl Engine {
    /// Sends a claimed email through `lane` and records the outcome; returns the status the
    /// email now has.
    ///
    /// # Errors
    /// The outcome could not be recorded (the email stays `sending`, which recovery makes
    /// `unknown`).
    pub(crate) fn attempt(&self, lane: &Lane, claim: &Claim) -> Result<Status, OutboxError> {
        let record = &claim.record;
        let started = Instant::now();
        let result = self.call_provider(lane, record);
        let took = started.elapsed();
        let now = Timestamp::now();
        let (finish, counted) = match &result {
            Ok(receipt) => (Finish::Sent(ReceiptRecord::from(receipt)), Counted::Sent),
            Err(error) => self.after_failure(lane, record, error, now),
        };
        self.metrics
            .attempt(lane.route.provider_name(), counted, took);
        let status = self.outbox.finish_attempt(&record.id, &finish)?;
        if status == Status::Failed
            && let Err(error) = &result
        {
            self.final_failure(record, error);
        }
        log::debug!(
            "email {} attempt {} through {}: {status} after {:?}",
            record.id,
            record.attempts,
            lane.route.provider_name(),
            took
        );
        Ok(status)
    }

    fn call_provider(&self, lane: &Lane, record: &EmailRecord) -> Result<Receipt, ProviderError> {
        let plugin = lane.route.plugin();
        match &record.mime {
            Some(mime) if plugin.accepts_mime() => {
                let size = std::fs::metadata(&mime.path).map(|m| m.len()).map_err(|e| {
                    ProviderError::internal(format!(
                        "the spooled message {} of email {} cannot be read: {e}; the email cannot be sent as it came in",
                        mime.path, record.id
                    ))
                })?;
                plugin.send_mime(&MimeSendRequest {
                    request: lane.request(record),
                    mime_path: mime.path.as_str().into(),
                    mime_size: size,
                    envelope_from: mime.envelope_from.as_str().into(),
                    recipients: mime
                        .recipients
                        .iter()
                        .map(|r| r.as_str().into())
                        .collect::<Vec<_>>()
                        .into(),
                })
            }
            Some(mime) => {
                let mut lost =
                    crate::delivery::mime::losses_of_file(std::path::Path::new(&mime.path));
                lost.push("headers other than From, To, Cc, Reply-To, Subject and X- headers are not kept");
                log::info!(
                    "provider '{}' takes no whole MIME messages: email {} is sent from its parsed parts, so {}",
                    lane.route.provider_name(),
                    record.id,
                    lost.join("; ")
                );
                plugin.send(&lane.request(record))
            }
            None => plugin.send(&lane.request(record)),
        }
    }

    fn after_failure(
        &self,
        lane: &Lane,
        record: &EmailRecord,
        error: &ProviderError,
        now: Timestamp,
    ) -> (Finish, Counted) {
        let jitter = rand::random::<f64>();
        let last = LastError::from(error);
        match policy::after_failure(
            error,
            record.attempts,
            record.created_at,
            now,
            lane.retry,
            jitter,
        ) {
            Next::RetryAt(not_before) => (
                Finish::Retry {
                    error: last,
                    not_before,
                },
                Counted::Retried {
                    throttled: error.kind == mailhost_plugin_api::ErrorKind::THROTTLED,
                },
            ),
            Next::Fail(why) => {
                let mut last = last;
                if !why.is_empty() {
                    last.message = format!("{} ({why})", last.message);
                }
                (Finish::Failed(last), Counted::Failed)
            }
            Next::Unknown => (
                Finish::Unknown {
                    error: last,
                    reconcile_after: lane
                        .route
                        .plugin()
                        .reconciles()
                        .then(|| reconcile::first_check(now)),
                },
                Counted::Unknown,
            ),
        }
    }
}

//! What the HTTP door needs from the delivery engine, as a trait: record an email, read one or a
//! listing back, make one due again, and the counters behind `/metrics`. The engine implements
//! it; the router's tests implement it with a fake, so the door is tested without a provider.
//!
//! Errors come back already sorted by what the client did wrong ([`BackendError`]), so the
//! door maps each to one HTTP status and never answers bad input with a 5xx.

use std::fmt;

use crate::delivery::compose::Draft;
use crate::delivery::engine::MailboxUse;
use crate::delivery::outbox::{EmailRecord, Outbox, Status};
use crate::plugins::registry::PluginEntry;

/// One email handed in through the API.
#[derive(Debug, Clone, Default)]
pub struct ApiSubmission {
    /// The sending staff member.
    pub staff_id: String,
    /// Addresses, subject, body, custom headers (no attachment paths: see `attachments`).
    pub draft: Draft,
    /// Attachments sent inline (decoded from base64), to be copied into the spool.
    pub attachments: Vec<InlineAttachment>,
    /// The client's `Idempotency-Key`: a second submission with the same key returns the
    /// first email instead of recording another.
    pub idempotency_key: Option<String>,
}

/// An attachment whose bytes came with the request.
#[derive(Clone, Default)]
pub struct InlineAttachment {
    /// The file name recipients see.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The content.
    pub data: Vec<u8>,
}

impl fmt::Debug for InlineAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Why the engine refused or could not do what was asked, sorted by HTTP meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The input is wrong (unknown staff member, bad address, CR/LF in a header, too many
    /// recipients): nothing was recorded. HTTP 422.
    #[error("{0}")]
    Invalid(String),
    /// No such email. HTTP 404.
    #[error("{0}")]
    NotFound(String),
    /// The email is not in a state that allows this (a sent email retried without force,
    /// an id prefix matching several). HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// Cannot serve now (mail.db locked by another process, the service stopping). HTTP 503.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (a database failure, a full disk). HTTP 500.
    #[error("{0}")]
    Internal(String),
}

/// Provider calls with one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct SendCount {
    /// `sent`, `failed`, `retried`, `unknown`, `reconciled`.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// A latency histogram of one provider's sends, in seconds, Prometheus-style: cumulative
/// bucket counts by upper bound (the `+Inf` bucket is `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// The provider plugin's name.
    pub provider: String,
    /// `(upper bound in seconds, sends that took at most that)`, increasing bounds.
    pub buckets: Vec<(f64, u64)>,
    /// Total seconds of all sends.
    pub sum_seconds: f64,
    /// How many sends.
    pub count: u64,
}

/// The engine's counters since the process started (plus emails by status from mail.db).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineMetrics {
    /// Emails in mail.db by status.
    pub emails: Vec<(Status, u64)>,
    /// Provider calls by outcome.
    pub sends: Vec<SendCount>,
    /// Emails put back in the queue for another attempt.
    pub retries: u64,
    /// Sends the provider answered with throttling.
    pub throttles: u64,
    /// Sends held back because a sending limit was spent.
    pub limit_waits: u64,
    /// Per-provider send latency.
    pub latency: Vec<LatencyHistogram>,
}

/// The delivery engine as the HTTP door sees it. Calls block (SQLite, fsync): the door runs
/// them on tokio's blocking pool.
pub trait Backend: Send + Sync + 'static {
    /// Validates and records `submission` as `queued` (committed to mail.db, attachments in
    /// the spool) and wakes the sender; returns the record. With an idempotency key already
    /// used, returns the first email's record and records nothing.
    ///
    /// # Errors
    /// [`BackendError::Invalid`] for bad input (nothing recorded), else a store error.
    fn submit(&self, submission: ApiSubmission) -> Result<EmailRecord, BackendError>;

    /// The email `id` (or the one whose id starts with `id`).
    ///
    /// # Errors
    /// [`BackendError::NotFound`], [`BackendError::Conflict`] for an ambiguous prefix.
    fn get(&self, id: &str) -> Result<EmailRecord, BackendError>;

    /// Emails newest first, of `status` if given, at most `limit`.
    ///
    /// # Errors
    /// A store error.
    fn list(&self, status: Option<Status>, limit: usize) -> Result<Vec<EmailRecord>, BackendError>;

    /// Makes email `id` due again, as `mailhost email retry ID [--force]` does.
    ///
    /// # Errors
    /// [`BackendError::NotFound`]; [`BackendError::Conflict`] when it may not be retried.
    fn retry(&self, id: &str, force: bool) -> Result<EmailRecord, BackendError>;

    /// The counters behind `/metrics`.
    ///
    /// # Errors
    /// A store error (the counts by status come from mail.db).
    fn metrics(&self) -> Result<EngineMetrics, BackendError>;

    /// The store holding the API tokens.
    fn outbox(&self) -> &Outbox;

    /// The registered plugins, for the Email Maintenance page (none by default).
    ///
    /// # Errors
    /// plugins.toml cannot be read.
    fn plugins(&self) -> Result<Vec<PluginEntry>, BackendError> {
        Ok(Vec::new())
    }

    /// Each sending mailbox's limits in use, for the Email Maintenance page (none by default).
    ///
    /// # Errors
    /// staff.toml cannot be read, or a store error.
    fn mailboxes(&self) -> Result<Vec<MailboxUse>, BackendError> {
        Ok(Vec::new())
    }
}

/// The delivery engine is the API's backend: each call is the engine's own, errors sorted by
/// what the client did wrong.
impl Backend for crate::delivery::engine::Engine {
    fn submit(&self, submission: ApiSubmission) -> Result<EmailRecord, BackendError> {
        use crate::delivery::engine::{AttachmentBytes, Submission};
        let mut engine_submission = Submission::new(
            &submission.staff_id,
            submission.draft,
            crate::delivery::outbox::Door::Http,
        );
        engine_submission.idempotency_key = submission.idempotency_key;
        engine_submission.attachment_bytes = submission
            .attachments
            .into_iter()
            .map(|a| AttachmentBytes {
                name: a.name,
                content_type: a.content_type,
                data: a.data,
            })
            .collect();
        crate::delivery::engine::Engine::submit(self, &engine_submission).map_err(engine_error)
    }

    fn get(&self, id: &str) -> Result<EmailRecord, BackendError> {
        self.outbox().get(id).map_err(|e| super::store_error(&e))
    }

    fn list(&self, status: Option<Status>, limit: usize) -> Result<Vec<EmailRecord>, BackendError> {
        self.outbox()
            .list(status, Some(limit))
            .map_err(|e| super::store_error(&e))
    }

    fn retry(&self, id: &str, force: bool) -> Result<EmailRecord, BackendError> {
        crate::delivery::engine::Engine::retry(self, id, force).map_err(engine_error)
    }

    fn metrics(&self) -> Result<EngineMetrics, BackendError> {
        use crate::delivery::engine::LATENCY_BUCKETS;
        let emails = self.outbox().counts().map_err(|e| super::store_error(&e))?;
        let snapshot = crate::delivery::engine::Engine::metrics(self).snapshot();
        let sends = [
            ("sent", snapshot.sent),
            ("failed", snapshot.failed),
            ("retried", snapshot.retried),
            ("unknown", snapshot.unknown),
            ("reconciled", snapshot.reconciled),
        ]
        .into_iter()
        .map(|(outcome, count)| SendCount {
            outcome: outcome.to_string(),
            count,
        })
        .collect();
        let latency = snapshot
            .latency
            .iter()
            .map(|(provider, histogram)| LatencyHistogram {
                provider: provider.clone(),
                buckets: LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .zip(histogram.buckets.iter().copied())
                    .collect(),
                sum_seconds: histogram.sum,
                count: histogram.count,
            })
            .collect();
        Ok(EngineMetrics {
            emails,
            sends,
            retries: snapshot.retried,
            throttles: snapshot.throttled,
            limit_waits: snapshot.limit_waits,
            latency,
        })
    }

    fn outbox(&self) -> &Outbox {
        crate::delivery::engine::Engine::outbox(self)
    }

    fn plugins(&self) -> Result<Vec<PluginEntry>, BackendError> {
        crate::plugins::registry::load(self.home())
            .map(|registry| registry.plugins)
            .map_err(|e| BackendError::Internal(e.to_string()))
    }

    fn mailboxes(&self) -> Result<Vec<MailboxUse>, BackendError> {
        self.mailboxes_in_use(crate::delivery::outbox::Timestamp::now())
            .map_err(engine_error)
    }
}

/// Sorts an engine error: the client's input (422), the store (see
/// [`store_error`](super::store_error)), anything else the server's (500).
pub fn engine_error(error: crate::error::Error) -> BackendError {
    use crate::config::staff::StaffError;
    use crate::error::Error;
    match error {
        Error::Staff(StaffError::Unknown { id, .. }) => BackendError::Invalid(format!(
            "no staff member '{id}': give the ID of a staff member (`mailhost staff list` on the server shows them)"
        )),
        Error::Staff(e @ (StaffError::BadId(_) | StaffError::BadValue(_))) => {
            BackendError::Invalid(e.to_string())
        }
        Error::Usage(m) => BackendError::Invalid(m),
        Error::Compose(e) => BackendError::Invalid(e.to_string()),
        Error::Outbox(e) => super::store_error(&e),
        other => BackendError::Internal(other.to_string()),
    }
}

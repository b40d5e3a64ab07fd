//! The delivery engine: the one way an email goes from `mail.db` to a provider, whichever door
//! it came in by (`email send`, `send-batch`, `retry`, `flush`, `sendmail`, the SMTP relay, the
//! HTTP API, `mailhost serve`).
//!
//! - [`Engine::submit`] validates and records an email (`queued`), its attachments copied into
//!   the spool, before any provider code runs, the loading of the library included.
//! - The scheduler (`scheduler.rs`) picks due emails, admits each under its sending mailbox's
//!   limits (the ledger in mail.db, shared by every process on the home), and hands the
//!   admitted ones to workers; [`Engine::send_now`] does the same for one email in the calling
//!   thread.
//! - After an attempt (`attempt.rs`), throttled and transient failures go back to the queue
//!   with a `not_before` (`policy.rs`), outcomes in doubt become `unknown` and are reconciled
//!   with the provider where it can (`reconcile.rs`), the rest end `sent` or `failed`.

mod attempt;
mod lanes;
mod mailboxes;
mod metrics;
mod mime;
pub mod policy;
mod reconcile;
mod scheduler;
mod senders;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mailhost_plugin_api::{Attachment, ProviderError};

pub use lanes::{LANE_MAX_AGE, LANE_TTL, Lane, Lanes};
pub use mailboxes::{LimitsInUse, MailboxUse, WindowUse};
pub use metrics::{Histogram, LATENCY_BUCKETS, Metrics, MetricsSnapshot};
pub use mime::{MimeRecord, MimeSubmission};
pub use reconcile::ReconcileSummary;
pub use scheduler::{Drain, DrainSummary, NOT_READY_WAIT, Scope, StopSignal};

use crate::config::home::Home;
use crate::config::settings;
use crate::config::staff;
use crate::delivery::compose::{self, Draft, Sender};
use crate::delivery::dispatch::Dispatcher;
use crate::delivery::limits::Limits;
use crate::delivery::outbox::{Door, EmailRecord, MimeSource, NewEmail, Outbox, OutboxError};
use crate::delivery::spool::Spool;
use crate::error::Error;
use crate::plugins::registry;

/// An attachment given as bytes (the HTTP API), not as a file.
#[derive(Debug, Clone)]
pub struct AttachmentBytes {
    /// The file name shown to the recipient.
    pub name: String,
    /// Its MIME type; empty to guess from the name.
    pub content_type: String,
    /// The content.
    pub data: Vec<u8>,
}

/// One email to record, as a door hands it over.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The sending staff member.
    pub staff_id: String,
    /// What to send (the same fields as `email send`'s flags).
    pub draft: Draft,
    /// Attachments given as bytes.
    pub attachment_bytes: Vec<AttachmentBytes>,
    /// HTTP API `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// For send-batch: the key of the source line.
    pub source_key: Option<String>,
    /// The door it came in by.
    pub door: Door,
}

impl Submission {
    /// A submission of `draft` from `staff_id` through `door`.
    pub fn new(staff_id: &str, draft: Draft, door: Door) -> Self {
        Self {
            staff_id: staff_id.to_string(),
            draft,
            attachment_bytes: Vec::new(),
            idempotency_key: None,
            source_key: None,
            door,
        }
    }
}

/// Tuning.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads sending at once, across all mailboxes.
    pub workers: usize,
    /// How often the scheduler looks for emails other processes recorded.
    pub poll: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers: 16,
            poll: Duration::from_millis(500),
        }
    }
}

/// Called when an email ends `failed` after a provider attempt (the SMTP relay sends a DSN).
pub type FailureHook = Box<dyn Fn(&Engine, &EmailRecord, &ProviderError) + Send + Sync>;

/// The delivery engine of one process.
pub struct Engine {
    home: Home,
    outbox: Arc<Outbox>,
    lanes: Lanes,
    spool: Spool,
    metrics: Metrics,
    options: EngineOptions,
    /// What there may be new to do; the scheduler waits on it.
    wake: (Mutex<Wake>, Condvar),
    /// Run after an email finally failed.
    on_failed: std::sync::OnceLock<FailureHook>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("home", &self.home)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine of `home` over an open `outbox`.
    ///
    /// # Errors
    /// The secret store cannot be opened safely.
    pub fn new(home: &Home, outbox: Arc<Outbox>, options: EngineOptions) -> Result<Self, Error> {
        Ok(Self {
            home: home.clone(),
            outbox,
            lanes: Lanes::new(Dispatcher::new(home)?),
            spool: Spool::new(home),
            metrics: Metrics::default(),
            options,
            wake: (Mutex::new(Wake::default()), Condvar::new()),
            on_failed: std::sync::OnceLock::new(),
        })
    }

    /// Sets the hook run after an email finally failed (once; a second call is ignored).
    pub fn on_final_failure(&self, hook: FailureHook) {
        let _ = self.on_failed.set(hook);
    }

    /// Runs the final-failure hook, if any, for `record`.
    pub(crate) fn final_failure(&self, record: &EmailRecord, error: &ProviderError) {
        if let Some(hook) = self.on_failed.get() {
            hook(self, record, error);
        }
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The email store.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The staff members' routes.
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Validates and records one email as `queued`, attachments spooled, and wakes the
    /// scheduler. Runs no provider code. An idempotency key already used returns the first
    /// email's record.
    ///
    /// # Errors
    /// Exit-2 errors for bad input (unknown staff member, bad draft, more recipients than one
    /// message may have), with nothing recorded; spool and store errors.
    pub fn submit(&self, submission: &Submission) -> Result<EmailRecord, Error> {
        if let Some(key) = &submission.idempotency_key
            && let Some(existing) = self.outbox.find_by_idempotency_key(key)?
        {
            return Ok(existing);
        }
        let (staff, provider) = self.sender_of(&submission.staff_id)?;
        let id = compose::new_email_id();
        let mut message = compose::compose(&submission.draft, &staff, &id)?;
        self.check_recipients(&provider, message.recipients().count())?;
        let mut spooled: Vec<Attachment> = self
            .spool
            .store_attachments(&id, &message.attachments)
            .map_err(|e| Error::Failed(e.to_string()))?;
        for (offset, bytes) in submission.attachment_bytes.iter().enumerate() {
            let index = spooled.len() + offset;
            let path = self
                .spool
                .store_bytes(&id, index, &bytes.name, &bytes.data)
                .map_err(|e| Error::Failed(e.to_string()))?;
            spooled.push(attachment_of(bytes, path));
        }
        message.attachments = spooled.into();
        let mut email = NewEmail::new(&submission.staff_id, &provider, message, submission.door);
        email.idempotency_key = submission.idempotency_key.clone();
        email.source_key = submission.source_key.clone();
        self.record(email)
    }

    /// Records a prepared email (its files already in the spool) and wakes the scheduler;
    /// the spool folder is removed if the store refuses it.
    ///
    /// # Errors
    /// Store errors; an idempotency key taken meanwhile returns the first email instead.
    pub fn record(&self, email: NewEmail) -> Result<EmailRecord, Error> {
        let id = email.message.id.to_string();
        match self.outbox.accept(&email) {
            Ok(record) => {
                self.wake_sender(&record.staff_id, &record.from.address);
                Ok(record)
            }
            Err(OutboxError::DuplicateIdempotencyKey { existing }) => {
                self.spool.remove(&id);
                Ok(self.outbox.get(&existing)?)
            }
            Err(error) => {
                self.spool.remove(&id);
                Err(error.into())
            }
        }
    }

    /// The staff member's own mailbox and provider name, from the files only (no library is
    /// loaded).
    ///
    /// # Errors
    /// The staff member is unknown (exit 2).
    pub fn sender_of(&self, staff_id: &str) -> Result<(Sender, String), Error> {
        let staff_file = staff::load(&self.home)?;
        let record = staff_file.require(staff_id)?;
        Ok((
            Sender {
                email: record.email.clone(),
                name: record.name.clone(),
            },
            record.provider.clone(),
        ))
    }

    /// Refuses more recipients than the provider's per-message limit, read from the registry
    /// and settings (no provider code runs).
    ///
    /// # Errors
    /// Exit 2 with the limit named.
    pub fn check_recipients(&self, provider: &str, recipients: usize) -> Result<(), Error> {
        let registry = registry::load(&self.home)?;
        let Some(entry) = registry.find(provider) else {
            return Ok(());
        };
        let values = settings::load(&self.home)?;
        let resolved: Vec<mailhost_plugin_api::Setting> = settings::declarations(entry)
            .iter()
            .filter_map(|decl| {
                values
                    .value(&entry.name, &decl.key)
                    .map(str::to_string)
                    .or_else(|| decl.default.clone())
                    .map(|v| mailhost_plugin_api::Setting::new(&decl.key, &v))
            })
            .collect();
        let limits = Limits::from_specs(&entry.limit_specs(), &resolved);
        limits
            .check_message(u64::try_from(recipients).unwrap_or(u64::MAX))
            .map_err(|line| Error::Usage(line.replace("PLUGIN", &entry.name)))
    }

    /// Records a whole RFC 5322 message already written to the spool as `mime_path`, with its
    /// envelope; `message` is the host's structured reading of it (for the record and for
    /// providers that take no MIME).
    ///
    /// # Errors
    /// As [`Engine::record`].
    pub fn record_mime(
        &self,
        staff_id: &str,
        message: mailhost_plugin_api::Message,
        mime: MimeSource,
        door: Door,
    ) -> Result<EmailRecord, Error> {
        let (_, provider) = self.sender_of(staff_id)?;
        self.check_recipients(&provider, mime.recipients.len())?;
        let mut email = NewEmail::new(staff_id, &provider, message, door);
        email.mime = Some(mime);
        self.record(email)
    }

    /// Makes a failed email (or, with `force`, an `unknown` or `sent` one) due again.
    ///
    /// # Errors
    /// The email is not found, or not in a state that may be retried.
    pub fn retry(&self, id: &str, force: bool) -> Result<EmailRecord, Error> {
        let record = self.outbox.get(id)?;
        self.outbox.requeue(&record.id, force)?;
        self.wake_sender(&record.staff_id, &record.from.address);
        Ok(self.outbox.get(&record.id)?)
    }

    /// Wakes the scheduler: there may be something new to do, it does not know whose (it
    /// reads the queue again, at most every [`RESCAN_AT_MOST_EVERY`]).
    pub fn wake(&self) {
        self.wake_with(|wake| wake.rescan = true);
    }

    /// Wakes the scheduler for one sender: an email of `staff_id` from `from` was recorded,
    /// made due again, or finished (which may free a place under its mailbox's limits).
    pub fn wake_sender(&self, staff_id: &str, from: &str) {
        self.wake_with(|wake| wake.senders.push(senders::SenderKey::new(staff_id, from)));
    }

    fn wake_with(&self, note: impl FnOnce(&mut Wake)) {
        let (wake, condvar) = &self.wake;
        let mut wake = wake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wake.count = wake.count.wrapping_add(1);
        note(&mut wake);
        condvar.notify_all();
    }

    /// Waits until woken or `timeout` passes; returns what the wakes said.
    fn wait_for_wake(&self, seen: &mut u64, timeout: Duration) -> Wake {
        let (wake, condvar) = &self.wake;
        let guard = wake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut guard, _) = condvar
            .wait_timeout_while(guard, timeout, |wake| wake.count == *seen)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *seen = guard.count;
        Wake {
            count: guard.count,
            rescan: std::mem::take(&mut guard.rescan),
            senders: std::mem::take(&mut guard.senders),
        }
    }
}

/// How often, at most, a wake that names no sender makes the scheduler read the queue again.
pub const RESCAN_AT_MOST_EVERY: Duration = Duration::from_millis(50);

/// What the scheduler was woken for since it last looked.
#[derive(Debug, Default)]
struct Wake {
    /// Bumped by every wake.
    count: u64,
    /// Something changed, nobody said whose.
    rescan: bool,
    /// These senders may have an email due now.
    senders: Vec<senders::SenderKey>,
}

fn attachment_of(bytes: &AttachmentBytes, path: PathBuf) -> Attachment {
    let content_type = if bytes.content_type.trim().is_empty() {
        compose::content_type_for(&bytes.name).to_string()
    } else {
        bytes.content_type.clone()
    };
    Attachment {
        path: path.to_string_lossy().as_ref().into(),
        name: bytes.name.as_str().into(),
        content_type: content_type.into(),
        size: bytes.data.len() as u64,
    }
}

/// The stored error of an email whose provider cannot be used right now.
pub fn not_ready(reason: &str) -> ProviderError {
    ProviderError::configuration(format!("the provider could not be used: {reason}"))
        .with_code("PROVIDER_NOT_READY")
}

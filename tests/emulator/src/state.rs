//! The shared server state behind one lock.

use std::sync::{Mutex, MutexGuard};

use crate::config::RuntimeConfig;
use crate::directory::Directory;
use crate::faults::{Concurrency, Counters, Faults};
use crate::graph::upload::UploadSessions;
use crate::identity::device::DeviceCodes;
use crate::mailbox::MailStore;
use crate::tokens::TokenStore;

/// Everything mutable.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) directory: Directory,
    pub(crate) tokens: TokenStore,
    pub(crate) devices: DeviceCodes,
    /// Users approved for the next authorization-code sign-in.
    pub(crate) sign_in_approvals: Vec<String>,
    pub(crate) mail: MailStore,
    pub(crate) uploads: UploadSessions,
    pub(crate) faults: Faults,
    pub(crate) counters: Counters,
    pub(crate) concurrency: Concurrency,
    pub(crate) config: RuntimeConfig,
    pub(crate) sending: crate::sending::SendingLog,
}

/// The state shared by every request handler and the [`crate::Emulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// `http://127.0.0.1:PORT` or `https://…`, no trailing slash.
    pub(crate) base_url: String,
}

impl Shared {
    /// New state with the seed directory.
    pub(crate) fn new(base_url: String, config: RuntimeConfig, latency_ms: u64) -> Self {
        let inner = Inner {
            directory: Directory::seed(),
            tokens: TokenStore::default(),
            devices: DeviceCodes::default(),
            sign_in_approvals: Vec::new(),
            mail: MailStore::default(),
            uploads: UploadSessions::default(),
            faults: Faults {
                latency_ms,
                ..Faults::default()
            },
            counters: Counters::default(),
            concurrency: Concurrency::default(),
            config,
            sending: crate::sending::SendingLog::default(),
        };
        Self {
            inner: Mutex::new(inner),
            base_url,
        }
    }

    /// Locks the state (a panicked handler does not poison it for the others).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Empties mailboxes, tokens, sessions, counters and faults (keeps the seed and config).
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.tokens = TokenStore::default();
        inner.devices = DeviceCodes::default();
        inner.sign_in_approvals.clear();
        inner.mail = MailStore::default();
        inner.uploads = UploadSessions::default();
        inner.faults = Faults::default();
        inner.counters = Counters::default();
    }
}

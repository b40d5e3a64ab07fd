//! Calling a provider. [`Provider`] is the handle the rest of the host uses, wherever the
//! provider runs ([`Isolation`]); [`LoadedPlugin`] is a library loaded into this process: its
//! root module and self-description, with safe wrappers for the calls the host makes. The
//! library behind it is never unloaded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mailhost_plugin_api::{
    DiagnoseRequest, Finding, LimitSpec, MimeSendRequest, ProviderError, ProviderInfo,
    ProviderModule_Ref, Receipt, ReconcileOutcome, ReconcileRequest, SendRequest, SignInRequest,
    capability,
};

use crate::plugins::isolation::protocol::{Msg, functions};
use crate::plugins::isolation::supervisor::Call;
use crate::plugins::isolation::{Isolation, Supervisor};
use crate::plugins::redaction::Redactor;

/// A provider library that passed every load check and described itself.
pub struct LoadedPlugin {
    name: String,
    path: PathBuf,
    api_version: String,
    info: ProviderInfo,
    module: ProviderModule_Ref,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// Wraps a checked, initialised module.
    pub(crate) fn new(
        path: &Path,
        api_version: &str,
        info: ProviderInfo,
        module: ProviderModule_Ref,
    ) -> Self {
        Self {
            name: info.name.to_string(),
            path: path.to_path_buf(),
            api_version: api_version.to_string(),
            info,
            module,
        }
    }

    /// The name it reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin API version it was built against.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Its self-description.
    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }

    /// Sends one email.
    ///
    /// # Errors
    /// The provider's structured error (a panic inside it arrives as an internal error).
    pub fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        (self.module.send())(request).into_result()
    }

    /// Whether the provider has interactive sign-in (API 1.1 function present and the
    /// capability declared, or at least the function present).
    pub fn has_sign_in(&self) -> bool {
        self.module.sign_in().is_some() || self.info.has_capability(capability::SIGN_IN)
    }

    /// Which optional API 1.1 functions the library has: (`sign_in`, `sign_out`).
    pub fn sign_in_functions(&self) -> (bool, bool) {
        (
            self.module.sign_in().is_some(),
            self.module.sign_out().is_some(),
        )
    }

    /// Interactive sign-in; returns the line to show the user.
    ///
    /// # Errors
    /// The provider's error; [`ErrorKind::UNSUPPORTED`](mailhost_plugin_api::ErrorKind) when
    /// the plugin predates sign-in.
    pub fn sign_in(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        match self.module.sign_in() {
            Some(f) => f(request).into_result().map(String::from),
            None => Err(no_sign_in(&self.name)),
        }
    }

    /// Forgets cached sign-in state; returns the line to show the user.
    ///
    /// # Errors
    /// The provider's error; unsupported when the plugin predates sign-out.
    pub fn sign_out(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        match self.module.sign_out() {
            Some(f) => f(request).into_result().map(String::from),
            None => Err(no_sign_in(&self.name)),
        }
    }
}

/// The API 1.2 calls. A library built against 1.0 or 1.1 lacks them: it declares no limits,
/// counts against the staff member's mailbox, takes no MIME, and cannot reconcile or diagnose.
impl LoadedPlugin {
    /// Whether the library has the API 1.2 functions.
    pub fn has_api_1_2(&self) -> bool {
        self.module.limits().is_some()
    }

    /// The sending limits it declares (none before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn limits(&self) -> Result<Vec<LimitSpec>, ProviderError> {
        match self.module.limits() {
            Some(f) => f().into_result().map(Vec::from),
            None => Ok(Vec::new()),
        }
    }

    /// The mailbox `request` counts against (the staff member's address before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn sending_mailbox(&self, request: &SendRequest) -> Result<String, ProviderError> {
        match self.module.sending_mailbox() {
            Some(f) => f(request).into_result().map(String::from),
            None => Ok(request.staff.email.to_string()),
        }
    }

    /// Whether it takes whole MIME messages (API 1.2 function present and capability declared).
    pub fn accepts_mime(&self) -> bool {
        self.module.send_mime().is_some() && self.info.has_capability(capability::MIME)
    }

    /// Sends a whole MIME message.
    ///
    /// # Errors
    /// The provider's error; unsupported when it takes no MIME.
    pub fn send_mime(&self, request: &MimeSendRequest) -> Result<Receipt, ProviderError> {
        match self.module.send_mime() {
            Some(f) if self.accepts_mime() => f(request).into_result(),
            _ => Err(ProviderError::unsupported(format!(
                "provider '{}' does not take whole MIME messages",
                self.name
            ))),
        }
    }

    /// Whether the provider can tell whether an email in doubt was sent (API 1.2 `reconcile`
    /// present and the `reconcile` capability declared).
    pub fn reconciles(&self) -> bool {
        self.module.reconcile().is_some() && self.info.has_capability(capability::RECONCILE)
    }

    /// Whether an email in doubt was sent; `unknown` when the provider cannot tell.
    ///
    /// # Errors
    /// The provider's error (the lookup failed).
    pub fn reconcile(&self, request: &ReconcileRequest) -> Result<ReconcileOutcome, ProviderError> {
        match self.module.reconcile() {
            Some(f) => f(request).into_result(),
            None => Ok(ReconcileOutcome::unknown(&format!(
                "provider '{}' was built before plugin API 1.2 and cannot look up what it sent",
                self.name
            ))),
        }
    }

    /// The provider's findings for `mailhost doctor` (none before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn diagnose(&self, request: &DiagnoseRequest) -> Result<Vec<Finding>, ProviderError> {
        match self.module.diagnose() {
            Some(f) => f(request).into_result().map(Vec::from),
            None => Ok(Vec::new()),
        }
    }
}

fn no_sign_in(name: &str) -> ProviderError {
    ProviderError::unsupported(format!(
        "provider '{name}' has no interactive sign-in (it was built before plugin API 1.1)"
    ))
}

/// The one handle the rest of the host calls a provider through, wherever it runs: in a child
/// process of its own ([`Isolation::Process`], the default) or loaded into this process.
/// Thread-safe and shared (`Arc<Provider>`); concurrent calls overlap, also in one child.
#[derive(Debug)]
pub struct Provider {
    backend: Backend,
    redactor: Option<Arc<Redactor>>,
}

#[derive(Debug)]
enum Backend {
    InProcess(Arc<LoadedPlugin>),
    Isolated(Box<Supervisor>),
}

impl Provider {
    /// A provider loaded into this process.
    pub fn in_process(plugin: Arc<LoadedPlugin>) -> Self {
        Self {
            backend: Backend::InProcess(plugin),
            redactor: None,
        }
    }

    /// A provider running under `supervisor`.
    pub fn isolated(supervisor: Supervisor) -> Self {
        Self {
            backend: Backend::Isolated(Box::new(supervisor)),
            redactor: None,
        }
    }

    /// The same handle, masking the secrets `redactor` knows in every error message it
    /// returns (a provider may quote a token or password back; the error is stored and
    /// printed).
    #[must_use]
    pub fn redacting(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Where it runs.
    pub fn isolation(&self) -> Isolation {
        match &self.backend {
            Backend::InProcess(_) => Isolation::InProcess,
            Backend::Isolated(_) => Isolation::Process,
        }
    }

    /// Whether this handle still serves `entry` as the registry has it now: same file, same
    /// pinned hash and isolation mode, and (isolated) not quarantined by an earlier crash that
    /// the user has since lifted.
    pub fn serves(&self, entry: &crate::plugins::registry::PluginEntry) -> bool {
        self.isolation() == entry.isolation
            && self.path() == entry.path
            && match &self.backend {
                Backend::InProcess(_) => true,
                Backend::Isolated(s) => {
                    s.sha256() == Some(entry.sha256.as_str()) && !s.is_quarantined()
                }
            }
    }

    /// The provider process's id, when it runs in one.
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::InProcess(_) => None,
            Backend::Isolated(s) => s.pid(),
        }
    }

    /// Sets the deadline of a call (`SendTimeoutSeconds`); in-process calls have none.
    pub fn set_timeout(&self, timeout: Duration) {
        if let Backend::Isolated(s) = &self.backend {
            s.set_timeout(timeout);
        }
    }

    /// The name it reports.
    pub fn name(&self) -> &str {
        &self.info().name
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::InProcess(p) => p.path(),
            Backend::Isolated(s) => s.path(),
        }
    }

    /// The plugin API version it was built against.
    pub fn api_version(&self) -> &str {
        match &self.backend {
            Backend::InProcess(p) => p.api_version(),
            Backend::Isolated(s) => &s.loaded().api_version,
        }
    }

    /// Its self-description.
    pub fn info(&self) -> &ProviderInfo {
        match &self.backend {
            Backend::InProcess(p) => p.info(),
            Backend::Isolated(s) => &s.loaded().info,
        }
    }

    fn has(&self, bit: u32) -> bool {
        match &self.backend {
            Backend::InProcess(_) => false,
            Backend::Isolated(s) => s.loaded().functions & bit != 0,
        }
    }

    /// Sends one email.
    ///
    /// # Errors
    /// The provider's structured error; a provider process that crashed or overran
    /// `SendTimeoutSeconds` is [`ErrorKind::UNKNOWN_OUTCOME`](mailhost_plugin_api::ErrorKind)
    /// with what happened in the message.
    pub fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.send(request),
            Backend::Isolated(s) => match s.call(&Msg::Send(request.clone()), Call::Send)? {
                Msg::Receipt(receipt) => Ok(receipt),
                _ => Err(odd_reply(self.name(), "send")),
            },
        })
    }

    /// Sends a whole MIME message.
    ///
    /// # Errors
    /// As [`Provider::send`]; unsupported when it takes no MIME.
    pub fn send_mime(&self, request: &MimeSendRequest) -> Result<Receipt, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.send_mime(request),
            Backend::Isolated(s) => match s.call(&Msg::SendMime(request.clone()), Call::Send)? {
                Msg::Receipt(receipt) => Ok(receipt),
                _ => Err(odd_reply(self.name(), "send_mime")),
            },
        })
    }

    /// Whether it has interactive sign-in.
    pub fn has_sign_in(&self) -> bool {
        match &self.backend {
            Backend::InProcess(p) => p.has_sign_in(),
            Backend::Isolated(_) => {
                self.has(functions::SIGN_IN) || self.info().has_capability(capability::SIGN_IN)
            }
        }
    }

    /// Which optional API 1.1 functions the library has: (`sign_in`, `sign_out`).
    pub fn sign_in_functions(&self) -> (bool, bool) {
        match &self.backend {
            Backend::InProcess(p) => p.sign_in_functions(),
            Backend::Isolated(_) => (self.has(functions::SIGN_IN), self.has(functions::SIGN_OUT)),
        }
    }

    /// Interactive sign-in; returns the line to show the user.
    ///
    /// # Errors
    /// The provider's error; unsupported when the plugin predates sign-in.
    pub fn sign_in(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.sign_in(request),
            Backend::Isolated(s) => text(s.call(&Msg::SignIn(request.clone()), Call::SignIn)?),
        })
    }

    /// Forgets cached sign-in state; returns the line to show the user.
    ///
    /// # Errors
    /// The provider's error; unsupported when the plugin predates sign-out.
    pub fn sign_out(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.sign_out(request),
            Backend::Isolated(s) => {
                text(s.call(&Msg::SignOut(request.clone()), Call::Other("sign-out"))?)
            }
        })
    }

    /// Whether the library has the API 1.2 functions.
    pub fn has_api_1_2(&self) -> bool {
        match &self.backend {
            Backend::InProcess(p) => p.has_api_1_2(),
            Backend::Isolated(_) => self.has(functions::API_1_2),
        }
    }

    /// The sending limits it declares (none before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn limits(&self) -> Result<Vec<LimitSpec>, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.limits(),
            Backend::Isolated(s) => match s.call(&Msg::Limits, Call::Other("limits"))? {
                Msg::LimitList(limits) => Ok(limits),
                _ => Err(odd_reply(self.name(), "limits")),
            },
        })
    }

    /// The mailbox `request` counts against (the staff member's address before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn sending_mailbox(&self, request: &SendRequest) -> Result<String, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.sending_mailbox(request),
            Backend::Isolated(_) if !self.has_api_1_2() => Ok(request.staff.email.to_string()),
            Backend::Isolated(s) => text(s.call(
                &Msg::SendingMailbox(request.clone()),
                Call::Other("sending_mailbox"),
            )?),
        })
    }

    /// Whether it takes whole MIME messages.
    pub fn accepts_mime(&self) -> bool {
        match &self.backend {
            Backend::InProcess(p) => p.accepts_mime(),
            Backend::Isolated(_) => self.has(functions::MIME),
        }
    }

    /// Whether the provider can tell whether an email in doubt was sent (API 1.2 `reconcile`
    /// present and the `reconcile` capability declared).
    pub fn reconciles(&self) -> bool {
        match &self.backend {
            Backend::InProcess(p) => p.reconciles(),
            Backend::Isolated(_) => self.has(functions::RECONCILE),
        }
    }

    /// Whether an email in doubt was sent; `unknown` when the provider cannot tell.
    ///
    /// # Errors
    /// The provider's error (the lookup failed).
    pub fn reconcile(&self, request: &ReconcileRequest) -> Result<ReconcileOutcome, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.reconcile(request),
            Backend::Isolated(s) => {
                match s.call(&Msg::Reconcile(request.clone()), Call::Other("reconcile"))? {
                    Msg::Outcome(outcome) => Ok(outcome),
                    _ => Err(odd_reply(self.name(), "reconcile")),
                }
            }
        })
    }

    /// The provider's findings for `mailhost doctor` (none before API 1.2).
    ///
    /// # Errors
    /// The provider's error.
    pub fn diagnose(&self, request: &DiagnoseRequest) -> Result<Vec<Finding>, ProviderError> {
        self.capped(match &self.backend {
            Backend::InProcess(p) => p.diagnose(request),
            Backend::Isolated(s) => {
                match s.call(&Msg::Diagnose(request.clone()), Call::Other("diagnose"))? {
                    Msg::Findings(findings) => Ok(findings),
                    _ => Err(odd_reply(self.name(), "diagnose")),
                }
            }
        })
    }
}

/// The most of a provider's error message the host keeps and prints; the whole text goes to
/// the debug log.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

impl Provider {
    /// Caps the provider's error message at [`MAX_ERROR_BYTES`] (the whole of it to the debug
    /// log).
    fn capped<T>(&self, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        result.map_err(|mut error| {
            if let Some(redactor) = &self.redactor
                && let std::borrow::Cow::Owned(masked) = redactor.redact(&error.message)
            {
                error.message = masked.into();
            }
            if error.message.len() > MAX_ERROR_BYTES {
                log::debug!(
                    "plugin '{}': the whole error message ({} bytes): {}",
                    self.name(),
                    error.message.len(),
                    error.message
                );
                let mut cut = MAX_ERROR_BYTES;
                while !error.message.is_char_boundary(cut) {
                    cut -= 1;
                }
                let dropped = error.message.len() - cut;
                error.message = format!(
                    "{}… ({dropped} more bytes; RUST_LOG=debug shows them)",
                    &error.message[..cut]
                )
                .into();
            }
            if error.code.len() > 256 {
                let code: String = error.code.chars().take(64).collect();
                error.code = code.into();
            }
            error
        })
    }
}

fn text(reply: Msg) -> Result<String, ProviderError> {
    match reply {
        Msg::Text(text) => Ok(text),
        _ => Err(ProviderError::internal(
            "the provider process answered with something else than text",
        )),
    }
}

fn odd_reply(name: &str, call: &str) -> ProviderError {
    ProviderError::internal(format!(
        "the provider process of '{name}' answered {call} with something else; report it as a mailhost bug"
    ))
}

//! A loaded provider: its root module and self-description, with safe wrappers for the calls
//! the host makes. The library behind it is never unloaded.

use std::fmt;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::{
    DiagnoseRequest, Finding, LimitSpec, MimeSendRequest, ProviderError, ProviderInfo,
    ProviderModule_Ref, Receipt, ReconcileOutcome, ReconcileRequest, SendRequest, SignInRequest,
    capability,
};

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

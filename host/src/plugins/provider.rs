//! A loaded provider: its root module and self-description, with safe wrappers for the calls
//! the host makes. The library behind it is never unloaded.

use std::fmt;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::{
    ProviderError, ProviderInfo, ProviderModule_Ref, Receipt, SendRequest, SignInRequest,
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

fn no_sign_in(name: &str) -> ProviderError {
    ProviderError::unsupported(format!(
        "provider '{name}' has no interactive sign-in (it was built before plugin API 1.1)"
    ))
}

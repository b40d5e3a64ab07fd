//! From a staff member to a provider call: [`Dispatcher::prepare`] resolves the staff record,
//! its provider plugin (registered, enabled, loaded after every check) and the plugin's current
//! settings (defaults applied, secrets from the store, required ones present), and returns a
//! [`Route`] that can compose and send messages. Files are read on every `prepare`, so a
//! configuration change takes effect on the next send without a restart.
//!
//! The email store sits between [`crate::delivery::compose`] and [`Route::send`]: compose a
//! [`Message`], record it, send it, record the result.

use std::sync::Arc;

use mailhost_plugin_api::{
    Message, ProviderError, Receipt, SendRequest, Setting, SignInRequest, StaffMember,
};

use crate::config::home::Home;
use crate::config::secrets::{self, SecretStore};
use crate::config::settings;
use crate::config::staff::{self, StaffRecord};
use crate::delivery::compose::{self, ComposeError, Draft, Sender};
use crate::error::Error;
use crate::plugins::Provider;
use crate::plugins::isolation::supervisor::DEFAULT_TIMEOUT_SECS;
use crate::plugins::loader::Loader;
use crate::plugins::registry::{self, PluginEntry};

/// The sign-in setting the host adds for `mailhost login --browser`: `device-code` or `browser`.
pub const SIGN_IN_MODE: &str = "SignInMode";
/// The sign-in setting the host adds for `--no-open`: `true` or `false`.
pub const SIGN_IN_NO_OPEN: &str = "SignInNoOpen";

/// Resolves staff members to providers for one process; loaded plugins are kept.
#[derive(Debug)]
pub struct Dispatcher {
    home: Home,
    secrets: Arc<SecretStore>,
    loader: Loader,
}

impl Dispatcher {
    /// A dispatcher for `home`.
    ///
    /// # Errors
    /// The secret store cannot be opened safely.
    pub fn new(home: &Home) -> Result<Self, Error> {
        let secrets = Arc::new(SecretStore::open(home)?);
        Ok(Self::with_secrets(home, secrets))
    }

    /// A dispatcher sharing an open secret store.
    pub fn with_secrets(home: &Home, secrets: Arc<SecretStore>) -> Self {
        Self {
            home: home.clone(),
            loader: Loader::new(home, secrets.clone()),
            secrets,
        }
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The secret store.
    pub fn secrets(&self) -> &Arc<SecretStore> {
        &self.secrets
    }

    /// The plugin loader.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Resolves `staff_id` to its provider, settings and staff member, reading every file
    /// afresh.
    ///
    /// # Errors
    /// All exit-2 errors: unknown staff member, provider not registered, disabled, refused by
    /// the loader (with the reason), or a required setting missing (with the `config set` fix).
    pub fn prepare(&self, staff_id: &str) -> Result<Route, Error> {
        let staff_file = staff::load(&self.home)?;
        let record = staff_file.require(staff_id)?.clone();
        let registry = registry::load(&self.home)?;
        let entry = registry.find(&record.provider).ok_or_else(|| {
            Error::Usage(format!(
                "staff member '{staff_id}' sends through provider '{}', which is not registered: add it with `mailhost plugin add PATH` or change the provider with `mailhost staff set {staff_id} --provider PLUGIN`",
                record.provider
            ))
        })?;
        let stored = settings::load(&self.home)?;
        let plugin = self.loader.provider(entry)?;
        let settings = settings::resolve(entry, &stored, &self.secrets)?;
        plugin.set_timeout(send_timeout(&settings));
        let staff = staff_member(staff_id, &record, entry, &self.secrets)?;
        Ok(Route {
            staff_id: staff_id.to_string(),
            plugin,
            settings,
            staff,
        })
    }
}

/// `SendTimeoutSeconds` among the resolved settings: how long one call may take before its
/// provider process is stopped (default 300 s).
fn send_timeout(settings: &[Setting]) -> std::time::Duration {
    let secs = settings::number(
        settings,
        settings::SEND_TIMEOUT_SECONDS,
        DEFAULT_TIMEOUT_SECS,
    );
    std::time::Duration::from_secs(if secs == 0 {
        DEFAULT_TIMEOUT_SECS
    } else {
        secs
    })
}

/// The staff member as the plugin receives it: fields with defaults, password from the store.
fn staff_member(
    id: &str,
    record: &StaffRecord,
    entry: &PluginEntry,
    secrets: &SecretStore,
) -> Result<StaffMember, Error> {
    let mut fields = Vec::new();
    for decl in &entry.staff_fields {
        let value = record
            .fields
            .get(&decl.key)
            .cloned()
            .or_else(|| decl.default.clone());
        match value {
            Some(value) => fields.push(Setting {
                key: decl.key.as_str().into(),
                value: value.into(),
                secret: decl.secret,
            }),
            None if decl.required => {
                return Err(Error::Usage(format!(
                    "staff member '{id}' needs the field {}: run `mailhost staff set {id} --field {}=VALUE`",
                    decl.key, decl.key
                )));
            }
            None => {}
        }
    }
    let password = secrets
        .get(&secrets::staff_password_key(id))?
        .map(|s| s.expose().into());
    Ok(StaffMember {
        id: id.into(),
        email: record.email.as_str().into(),
        display_name: record.name.as_str().into(),
        username: record.username.as_str().into(),
        password: password.into(),
        fields: fields.into(),
    })
}

/// A staff member bound to their provider and its settings, ready to send.
#[derive(Debug)]
pub struct Route {
    staff_id: String,
    plugin: Arc<Provider>,
    settings: Vec<Setting>,
    staff: StaffMember,
}

impl Route {
    /// The staff ID.
    pub fn staff_id(&self) -> &str {
        &self.staff_id
    }

    /// The provider's registry name.
    pub fn provider_name(&self) -> &str {
        self.plugin.name()
    }

    /// The provider.
    pub fn plugin(&self) -> &Provider {
        &self.plugin
    }

    /// The staff member's own mailbox, the default From.
    pub fn sender(&self) -> Sender {
        Sender {
            email: self.staff.email.to_string(),
            name: self.staff.display_name.to_string(),
        }
    }

    /// Validates `draft` into a message with id `id` from this staff member.
    ///
    /// # Errors
    /// The draft is not acceptable (exit 2).
    pub fn compose(&self, draft: &Draft, id: &str) -> Result<Message, ComposeError> {
        compose::compose(draft, &self.sender(), id)
    }

    /// The provider's settings, resolved (defaults applied, secrets from the store).
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// The staff member as the provider receives them.
    pub fn staff(&self) -> &StaffMember {
        &self.staff
    }

    /// The request the provider receives for `message`.
    pub fn request(&self, message: &Message) -> SendRequest {
        SendRequest {
            settings: self.settings.clone().into(),
            staff: self.staff.clone(),
            message: message.clone(),
        }
    }

    /// Sends `message` through the provider. Thread-safe; calls may overlap.
    ///
    /// # Errors
    /// The provider's structured error (exit 1 for a single send).
    pub fn send(&self, message: &Message) -> Result<Receipt, ProviderError> {
        self.plugin.send(&self.request(message))
    }

    /// Interactive sign-in through the provider.
    ///
    /// # Errors
    /// The provider's error; [`ErrorKind::UNSUPPORTED`](mailhost_plugin_api::ErrorKind) if it
    /// has none.
    pub fn sign_in(&self) -> Result<String, ProviderError> {
        self.plugin.sign_in(&self.sign_in_request())
    }

    /// Browser sign-in through the provider: the request carries the sign-in settings
    /// `SignInMode=browser` and `SignInNoOpen` (`true`: print the address, open nothing).
    ///
    /// # Errors
    /// As [`Route::sign_in`].
    pub fn sign_in_browser(&self, no_open: bool) -> Result<String, ProviderError> {
        let mut request = self.sign_in_request();
        let mut settings: Vec<Setting> = request.settings.into_iter().collect();
        settings.retain(|s| s.key.as_str() != SIGN_IN_MODE && s.key.as_str() != SIGN_IN_NO_OPEN);
        settings.push(Setting::new(SIGN_IN_MODE, "browser"));
        settings.push(Setting::new(
            SIGN_IN_NO_OPEN,
            if no_open { "true" } else { "false" },
        ));
        request.settings = settings.into();
        self.plugin.sign_in(&request)
    }

    /// Forgets cached sign-in state through the provider.
    ///
    /// # Errors
    /// The provider's error.
    pub fn sign_out(&self) -> Result<String, ProviderError> {
        self.plugin.sign_out(&self.sign_in_request())
    }

    fn sign_in_request(&self) -> SignInRequest {
        SignInRequest {
            settings: self.settings.clone().into(),
            staff: self.staff.clone(),
        }
    }
}

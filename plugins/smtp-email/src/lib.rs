//! # smtp-email
//!
//! The mailhost provider that sends through any SMTP server, with lettre: registers as
//! `smtp-email`, display name `SMTP`.
//!
//! | module | owns |
//! | --- | --- |
//! | [`settings`] | the declared system settings and their checked form |
//! | [`message`] | the RFC 5322 message and SMTP envelope, built with lettre's builder |
//! | `transport` | the SMTP conversation and the connection pool |
//! | [`error`] | [`SmtpError`] and its mapping onto the plugin API's error kinds |
//!
//! TLS is rustls (ring) with the platform's certificate store; `SSL_CERT_FILE` selects another
//! bundle, for a server whose certificate comes from a private CA. The staff member's username
//! (or, when blank, address) and password sign in with AUTH PLAIN or LOGIN when a password is
//! stored. Connections are reused across sends.

pub mod error;
pub mod message;
pub mod settings;
mod transport;

use mailhost_plugin_api::{
    Provider, ProviderError, ProviderInfo, Receipt, SendRequest, capability, export_provider,
};

pub use crate::error::SmtpError;
pub use crate::message::MessageError;
pub use crate::settings::{Security, SettingsError, SmtpSettings};

/// The registry name.
pub const NAME: &str = "smtp-email";
/// The name users pick as Email Provider.
pub const DISPLAY_NAME: &str = "SMTP";

/// The SMTP provider. One instance lives as long as the loaded library and keeps the open
/// connections between sends.
#[derive(Debug, Default)]
pub struct SmtpProvider {
    pool: transport::Pool,
}

impl SmtpProvider {
    /// A provider with no open connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the provider declares to the host.
    pub fn info() -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            display_name: DISPLAY_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sends email through any SMTP server (STARTTLS, TLS, AUTH PLAIN/LOGIN)"
                .into(),
            settings: settings::specs().into(),
            staff_fields: Default::default(),
            capabilities: [
                capability::HTML,
                capability::ATTACHMENTS,
                capability::ALTERNATE_FROM,
                capability::CUSTOM_HEADERS,
            ]
            .map(Into::into)
            .to_vec()
            .into(),
        }
    }

    /// Sends one email, returning this crate's error rather than the API's.
    ///
    /// # Errors
    /// See [`SmtpError`]; [`SmtpError::to_provider_error`] gives the host's form.
    pub fn try_send(&self, request: &SendRequest) -> Result<Receipt, SmtpError> {
        let settings = SmtpSettings::from_settings(&request.settings)?;
        let outgoing = message::build(request, settings.max_message_bytes)?;
        let credentials = transport::Credentials::from_staff(&request.staff);
        let server = settings.server();
        log::debug!(
            "sending email {} ({} bytes, {} recipients) through {server}",
            request.message.id,
            outgoing.bytes.len(),
            outgoing.envelope.to().len()
        );
        let reply = self.pool.send(&settings, credentials.as_ref(), &outgoing)?;
        log::info!("email {} accepted by {server}: {reply}", request.message.id);
        Ok(Receipt {
            message_id: outgoing.message_id.into(),
            request_id: Default::default(),
            detail: format!("accepted by {server}: {reply}").into(),
        })
    }
}

impl Provider for SmtpProvider {
    fn describe(&self) -> Result<ProviderInfo, ProviderError> {
        Ok(Self::info())
    }

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        self.try_send(request).map_err(|error| {
            log::warn!("email {} not sent: {error}", request.message.id);
            error.to_provider_error()
        })
    }
}

export_provider!(SmtpProvider::new);

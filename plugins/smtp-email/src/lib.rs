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

    /// `mailhost doctor`: the settings parse, and for each staff member (or once, with no
    /// staff) the server answers, TLS is set up as configured and the sign-in is accepted:
    /// connect, EHLO, STARTTLS, AUTH, QUIT. Nothing is sent.
    fn diagnose(
        &self,
        request: &mailhost_plugin_api::DiagnoseRequest,
    ) -> Result<Vec<mailhost_plugin_api::Finding>, ProviderError> {
        use mailhost_plugin_api::{Finding, FindingLevel};
        let settings = match settings::SmtpSettings::from_settings(&request.settings) {
            Ok(settings) => settings,
            Err(error) => {
                return Ok(vec![Finding::new(
                    "smtp.settings",
                    FindingLevel::FAIL,
                    &error.to_string(),
                    "fix the setting with `mailhost config set smtp-email KEY VALUE`",
                )]);
            }
        };
        let server = settings.server();
        let probe = |credentials: Option<&transport::Credentials>| match self
            .pool
            .probe(&settings, credentials)
        {
            Ok(()) => (
                FindingLevel::OK,
                format!(
                    "{server} answered EHLO ({}){}",
                    settings.security,
                    if credentials.is_some() {
                        " and accepted the sign-in"
                    } else {
                        ""
                    }
                ),
                String::new(),
            ),
            Err(error) => (
                FindingLevel::FAIL,
                format!("{server}: {error}"),
                error.to_provider_error().message.to_string(),
            ),
        };
        let mut findings = Vec::new();
        if request.staff.is_empty() {
            let (level, message, fix) = probe(None);
            findings.push(Finding::new("smtp.connect", level, &message, &fix));
        }
        for staff in request.staff.iter() {
            let credentials = transport::Credentials::from_staff(staff);
            let (level, message, fix) = probe(credentials.as_ref());
            findings.push(Finding::new("smtp.connect", level, &message, &fix).for_staff(&staff.id));
        }
        Ok(findings)
    }
}

export_provider!(SmtpProvider::new);

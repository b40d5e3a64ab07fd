//! # pickup-dir
//!
//! A mailhost provider that delivers each email by writing it as an RFC 5322 `.eml` file into a
//! *pickup directory*, the folder an SMTP relay (IIS SMTP, Exchange, Postfix with a watcher)
//! collects outgoing mail from. Also handy for tests and for archiving.
//!
//! - System settings: `Directory` (required, an absolute path to an existing folder) and
//!   `MaxMessageBytes` (default 35 MiB).
//! - Each file starts with the envelope lines the pickup convention uses: `X-Sender` (reverse
//!   path) and one `X-Receiver` per recipient, Bcc included; the message itself carries no
//!   `Bcc:` header.
//! - Files are written atomically (temporary file, fsync, rename) and named
//!   `<UTC timestamp>-<message id>.eml`. The receipt's `message_id` is the Message-ID header and
//!   its `detail` is the file's path.

mod compose;
mod error;
mod write;

use std::path::Path;
use std::time::SystemTime;

use mailhost_plugin_api::{
    ProviderError, ProviderInfo, Receipt, SendRequest, SettingKind, SettingSpec, capability,
    export_provider,
};

pub use error::PickupError;

/// The registry name.
pub const NAME: &str = "pickup-dir";
/// The display name users pick as Email Provider.
pub const DISPLAY_NAME: &str = "Pickup Directory";
/// The setting naming the pickup folder.
pub const DIRECTORY: &str = "Directory";
/// The setting limiting the size of one message file, in bytes.
pub const MAX_MESSAGE_BYTES: &str = "MaxMessageBytes";
/// The default for [`MAX_MESSAGE_BYTES`]: 35 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 35 * 1024 * 1024;

/// The pickup-directory provider. Stateless: every call reads its settings from the request.
#[derive(Debug, Default, Clone, Copy)]
pub struct PickupDir;

impl PickupDir {
    /// A new provider.
    pub fn new() -> Self {
        Self
    }

    fn limit(request: &SendRequest) -> Result<u64, PickupError> {
        match request.setting(MAX_MESSAGE_BYTES) {
            None => Ok(DEFAULT_MAX_MESSAGE_BYTES),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| PickupError::BadLimit(text.to_string())),
        }
    }

    /// Writes the message; the body of [`mailhost_plugin_api::Provider::send`].
    ///
    /// # Errors
    /// See [`PickupError`].
    pub fn write(&self, request: &SendRequest) -> Result<Receipt, PickupError> {
        let dir = request
            .setting(DIRECTORY)
            .ok_or(PickupError::DirectoryNotSet)?;
        let dir = Path::new(dir.trim());
        write::check_directory(dir)?;
        let limit = Self::limit(request)?;

        // Refuse early, before reading anything, when the raw sizes alone exceed the limit.
        let message = &request.message;
        let mut estimate = u64::try_from(message.body.len()).unwrap_or(u64::MAX);
        for attachment in message.attachments.iter() {
            let size = std::fs::metadata(attachment.path.as_str())
                .map(|m| m.len())
                .unwrap_or(attachment.size);
            estimate = estimate.saturating_add(size);
        }
        if estimate > limit {
            return Err(PickupError::TooLarge {
                size: estimate,
                limit,
            });
        }

        let mut read = |path: &str| {
            std::fs::read(path).map_err(|source| PickupError::Attachment {
                path: path.to_string(),
                source,
            })
        };
        let composed = compose::compose(message, &request.staff, &mut read)?;
        let size = u64::try_from(composed.bytes.len()).unwrap_or(u64::MAX);
        if size > limit {
            return Err(PickupError::TooLarge { size, limit });
        }
        let name = write::file_name(SystemTime::now(), &composed.message_id);
        let path = write::write_atomically(dir, &name, &composed.bytes)?;
        log::info!("wrote {} ({size} bytes)", path.display());
        Ok(Receipt {
            message_id: composed.message_id.into(),
            request_id: Default::default(),
            detail: path.to_string_lossy().into_owned().into(),
        })
    }
}

impl mailhost_plugin_api::Provider for PickupDir {
    fn describe(&self) -> Result<ProviderInfo, ProviderError> {
        let default_limit = DEFAULT_MAX_MESSAGE_BYTES.to_string();
        Ok(ProviderInfo {
            name: NAME.into(),
            display_name: DISPLAY_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Writes each email as an RFC 5322 .eml file into a pickup directory for a relay to collect".into(),
            settings: vec![
                SettingSpec::new(
                    DIRECTORY,
                    SettingKind::PATH,
                    "Absolute path of the folder the .eml files are written to (the relay's pickup directory); it must exist",
                )
                .required(),
                SettingSpec::new(
                    MAX_MESSAGE_BYTES,
                    SettingKind::INTEGER,
                    "Largest message file, in bytes, attachments included; larger emails are refused",
                )
                .default_value(&default_limit),
            ]
            .into(),
            staff_fields: Default::default(),
            capabilities: vec![
                capability::HTML.into(),
                capability::ATTACHMENTS.into(),
                capability::ALTERNATE_FROM.into(),
                capability::CUSTOM_HEADERS.into(),
            ]
            .into(),
        })
    }

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        self.write(request).map_err(ProviderError::from)
    }
}

export_provider!(PickupDir::new);

#[cfg(test)]
mod tests;

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
//! - Whole messages (capability `mime`: what `mailhost sendmail` and the SMTP relay accept) are
//!   written as they came in: the envelope lines, then the host's spooled message byte for byte
//!   (inline images, the text alternative, every header kept). Setting `WholeMessages` false
//!   writes them rebuilt from their parsed parts instead, like any other email.
//! - Files are written atomically (temporary file, fsync, rename) and named
//!   `<UTC timestamp>-<message id>.eml`. The receipt's `message_id` is the Message-ID header and
//!   its `detail` is the file's path.

mod compose;
mod error;
mod write;

use std::path::Path;
use std::time::SystemTime;

use mailhost_plugin_api::{
    MimeSendRequest, ProviderError, ProviderInfo, Receipt, SendRequest, SettingKind, SettingSpec,
    capability, export_provider, is_plausible_address,
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
/// The setting choosing whether whole messages are written as they came in.
pub const WHOLE_MESSAGES: &str = "WholeMessages";
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
        Self::deliver(dir, &composed.message_id, &composed.bytes)
    }

    /// Writes a whole message as it came in; the body of
    /// [`mailhost_plugin_api::Provider::send_mime`]. With `WholeMessages` false, writes the
    /// parsed message instead ([`PickupDir::write`]).
    ///
    /// # Errors
    /// See [`PickupError`].
    pub fn write_mime(&self, request: &MimeSendRequest) -> Result<Receipt, PickupError> {
        let whole = request.request.setting(WHOLE_MESSAGES).is_none_or(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "false" | "no" | "off" | "0"
            )
        });
        if !whole {
            return self.write(&request.request);
        }
        let dir = request
            .request
            .setting(DIRECTORY)
            .ok_or(PickupError::DirectoryNotSet)?;
        let dir = Path::new(dir.trim());
        write::check_directory(dir)?;
        let limit = Self::limit(&request.request)?;
        if request.mime_size > limit {
            return Err(PickupError::TooLarge {
                size: request.mime_size,
                limit,
            });
        }
        let sender = match request.envelope_from.trim() {
            "" => request.request.staff.email.trim(),
            from => from,
        };
        let mut envelope = vec![("X-Sender", sender)];
        envelope.extend(
            request
                .recipients
                .iter()
                .map(|r| ("X-Receiver", r.as_str())),
        );
        if request.recipients.is_empty() {
            return Err(PickupError::NoRecipients);
        }
        let mut bytes = Vec::new();
        for (line, address) in envelope {
            if !is_plausible_address(address) {
                return Err(PickupError::Address {
                    address: address.to_string(),
                    role: "envelope",
                });
            }
            bytes.extend_from_slice(format!("{line}: {address}\r\n").as_bytes());
        }
        let message = std::fs::read(request.mime_path.as_str()).map_err(|source| {
            PickupError::Attachment {
                path: request.mime_path.to_string(),
                source,
            }
        })?;
        let message_id = compose::header_message_id(&message)
            .unwrap_or_else(|| format!("<{}@mailhost>", request.request.message.id));
        bytes.extend_from_slice(&message);
        Self::deliver(dir, &message_id, &bytes)
    }

    fn deliver(dir: &Path, message_id: &str, bytes: &[u8]) -> Result<Receipt, PickupError> {
        let size = bytes.len();
        let name = write::file_name(SystemTime::now(), message_id);
        let path = write::write_atomically(dir, &name, bytes)?;
        log::info!("wrote {} ({size} bytes)", path.display());
        Ok(Receipt {
            message_id: message_id.into(),
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
                SettingSpec::new(
                    WHOLE_MESSAGES,
                    SettingKind::BOOL,
                    "Write whole messages (mailhost sendmail, the SMTP relay) as they came in; false rebuilds them from their parsed parts",
                )
                .default_value("true"),
            ]
            .into(),
            staff_fields: Default::default(),
            capabilities: vec![
                capability::HTML.into(),
                capability::ATTACHMENTS.into(),
                capability::ALTERNATE_FROM.into(),
                capability::CUSTOM_HEADERS.into(),
                capability::MIME.into(),
            ]
            .into(),
        })
    }

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        self.write(request).map_err(ProviderError::from)
    }

    fn send_mime(&self, request: &MimeSendRequest) -> Result<Receipt, ProviderError> {
        self.write_mime(request).map_err(ProviderError::from)
    }

    /// `mailhost doctor`: the folder is set, exists and takes a file (one is written and
    /// removed).
    fn diagnose(
        &self,
        request: &mailhost_plugin_api::DiagnoseRequest,
    ) -> Result<Vec<mailhost_plugin_api::Finding>, ProviderError> {
        use mailhost_plugin_api::{Finding, FindingLevel};
        let Some(dir) = request.setting(DIRECTORY) else {
            return Ok(vec![Finding::new(
                "pickup-dir.directory",
                FindingLevel::FAIL,
                "Directory is not set",
                "run `mailhost config set pickup-dir Directory /path/to/folder`",
            )]);
        };
        let dir = Path::new(dir.trim());
        let probe = dir.join(format!(".mailhost-doctor-{}", std::process::id()));
        let finding = match write::check_directory(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::write(&probe, b"").map_err(|e| e.to_string()))
        {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                Finding::new(
                    "pickup-dir.directory",
                    FindingLevel::OK,
                    &format!("{} exists and takes new files", dir.display()),
                    "",
                )
            }
            Err(why) => Finding::new(
                "pickup-dir.directory",
                FindingLevel::FAIL,
                &format!("{} cannot take new files: {why}", dir.display()),
                "create the folder, or give the user mailhost runs as write access to it",
            ),
        };
        Ok(vec![finding])
    }
}

export_provider!(PickupDir::new);

#[cfg(test)]
mod tests;

//! What can go wrong while writing a pickup file, and how each failure is reported to the host.

use std::path::PathBuf;

use mailhost_plugin_api::ProviderError;

/// A failure of the pickup-directory provider. Converted to a [`ProviderError`] at the boundary;
/// every message names the setting, file or header at fault and what to change.
#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    /// The `Directory` setting is not set.
    #[error(
        "the pickup directory is not configured: set it with `mailhost config set pickup-dir Directory /path/to/pickup`"
    )]
    DirectoryNotSet,

    /// The `Directory` setting is a relative path.
    #[error(
        "the Directory setting '{0}' is a relative path: set an absolute one with `mailhost config set pickup-dir Directory /path/to/pickup`"
    )]
    DirectoryRelative(PathBuf),

    /// The `Directory` setting names a path that does not exist or is not a folder.
    #[error(
        "the pickup directory '{}' (setting Directory) {what}: create the folder, or point Directory at an existing one with `mailhost config set pickup-dir Directory PATH`",
        path.display()
    )]
    DirectoryMissing {
        /// The configured path.
        path: PathBuf,
        /// "does not exist" or "is not a folder".
        what: &'static str,
    },

    /// The pickup directory exists but cannot be written.
    #[error(
        "cannot write to the pickup directory '{}' (setting Directory): {source}; give the user running mailhost write permission on it, or choose another folder with `mailhost config set pickup-dir Directory PATH`",
        path.display()
    )]
    DirectoryNotWritable {
        /// The configured path.
        path: PathBuf,
        /// The file-system error.
        source: std::io::Error,
    },

    /// Writing the file failed for another reason (disk full, I/O error): may succeed later.
    #[error("writing '{}' failed: {source}; free disk space or check the device, then retry", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The file-system error.
        source: std::io::Error,
    },

    /// `MaxMessageBytes` is not a positive whole number.
    #[error(
        "the MaxMessageBytes setting '{0}' is not a positive whole number: set it with `mailhost config set pickup-dir MaxMessageBytes 36700160`, or unset it for the default"
    )]
    BadLimit(String),

    /// The message would be larger than `MaxMessageBytes`.
    #[error(
        "the message is {size} bytes, over the pickup directory's limit of {limit} bytes (setting MaxMessageBytes): send smaller attachments, or raise MaxMessageBytes"
    )]
    TooLarge {
        /// The (estimated or actual) message size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },

    /// An attachment could not be read.
    #[error(
        "cannot read the attachment '{path}': {source}; check that the file exists and is readable by the user running mailhost"
    )]
    Attachment {
        /// The attachment's path.
        path: String,
        /// The file-system error.
        source: std::io::Error,
    },

    /// An address is not a valid email address.
    #[error("'{address}' ({role}) is not a valid email address: correct it and send again")]
    Address {
        /// The address as given.
        address: String,
        /// Which field it came from (`From`, `To`, `Cc`, `Bcc`, `Reply-To`).
        role: &'static str,
    },

    /// A display name, subject or header value holds a line break or control character.
    #[error("the {what} contains a line break or control character: remove it and send again")]
    ControlCharacter {
        /// What held it (`subject`, `display name of ...`, `header X-...`).
        what: String,
    },

    /// A custom header is not an `X-` header or has an invalid name.
    #[error(
        "the custom header '{0}' cannot be passed through: only X- headers with a name of printable ASCII (no spaces or colons) are allowed, and X-Sender and X-Receiver are reserved for the envelope"
    )]
    BadHeader(String),

    /// The email has no recipients at all.
    #[error("the email has no recipients: add at least one To, Cc or Bcc address")]
    NoRecipients,

    /// lettre refused to build the message.
    #[error("the message could not be built: {0}")]
    Build(String),
}

impl From<PickupError> for ProviderError {
    fn from(error: PickupError) -> Self {
        let message = error.to_string();
        match error {
            PickupError::DirectoryNotSet
            | PickupError::DirectoryRelative(_)
            | PickupError::DirectoryMissing { .. }
            | PickupError::DirectoryNotWritable { .. }
            | PickupError::BadLimit(_) => ProviderError::configuration(message),
            PickupError::Write { .. } => ProviderError::transient(message),
            PickupError::TooLarge { .. } => ProviderError::too_large(message),
            PickupError::Address { .. } | PickupError::NoRecipients => {
                ProviderError::recipient(message)
            }
            PickupError::Attachment { .. }
            | PickupError::ControlCharacter { .. }
            | PickupError::BadHeader(_)
            | PickupError::Build(_) => ProviderError::invalid_message(message),
        }
    }
}

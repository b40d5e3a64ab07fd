//! The host's error type and the exit-code contract.
//!
//! Exit status: 0 success; 1 the operation failed (a send the provider refused, a plugin that
//! failed verification); 2 bad usage, configuration or input. Every message names the thing at
//! fault and what to do; `main` prints it once as `mailhost: <message>`.

use std::io;

use crate::config::files::FileError;
use crate::config::secrets::SecretError;
use crate::config::settings::SettingsError;
use crate::config::staff::StaffError;
use crate::delivery::compose::ComposeError;
use crate::plugins::loader::LoadError;
use crate::plugins::registry::RegistryError;

/// Exit status for success.
pub const EXIT_OK: u8 = 0;
/// Exit status when the operation was tried and failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for bad usage, configuration or input.
pub const EXIT_USAGE: u8 = 2;
/// Accepted and kept `queued`, not yet sent (sysexits' EX_TEMPFAIL, as sendmail uses it).
pub const EXIT_TEMPFAIL: u8 = 75;

/// Anything a mailhost command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or its input is wrong.
    #[error("{0}")]
    Usage(String),
    /// The operation was attempted and failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The home directory could not be used.
    #[error(transparent)]
    Home(#[from] crate::config::home::HomeError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The plugin registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A plugin could not be loaded (boxed: the variant is large).
    #[error(transparent)]
    Load(Box<LoadError>),
    /// The secret store.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// System configuration.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Staff records.
    #[error(transparent)]
    Staff(#[from] StaffError),
    /// An email's input.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A whole message (sendmail, the SMTP relay): refused, or its spool files not written.
    #[error(transparent)]
    Mime(#[from] crate::delivery::mime::MimeError),
    /// The email store, mail.db (locked: exit 1; unusable file: exit 2).
    #[error(transparent)]
    Outbox(#[from] crate::delivery::outbox::OutboxError),
    /// A send-batch could not run to the end (file unreadable: exit 2; store locked: exit 1).
    #[error(transparent)]
    Batch(#[from] crate::delivery::batch::BatchError),
    /// Mail or secrets readable by other users (exit 2).
    #[error(transparent)]
    Permissions(#[from] crate::config::permissions::UnsafePermissions),
    /// The audit trail could not be written or read.
    #[error(transparent)]
    Audit(#[from] crate::config::audit::AuditError),
    /// A purge failed (the store: exit 1 when locked; a spool folder: exit 2).
    #[error(transparent)]
    Retention(#[from] crate::delivery::retention::RetentionError),
    /// Writing to standard output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
}

impl From<LoadError> for Error {
    fn from(error: LoadError) -> Self {
        Self::Load(Box::new(error))
    }
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => EXIT_FAILED,
            Self::Mime(crate::delivery::mime::MimeError::Spool { .. }) => EXIT_FAILED,
            Self::Outbox(e) if store_failed(e) => EXIT_FAILED,
            Self::Batch(crate::delivery::batch::BatchError::Store(e)) if store_failed(e) => {
                EXIT_FAILED
            }
            Self::Retention(crate::delivery::retention::RetentionError::Outbox(e))
                if store_failed(e) =>
            {
                EXIT_FAILED
            }
            Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
            _ => EXIT_USAGE,
        }
    }

    /// Whether this is a broken pipe on output (the reader went away): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Whether a store error is an operation that failed (locked, an SQLite failure such as a full
/// disk) rather than a file or input that must be fixed.
fn store_failed(error: &crate::delivery::outbox::OutboxError) -> bool {
    matches!(
        error,
        crate::delivery::outbox::OutboxError::Locked { .. }
            | crate::delivery::outbox::OutboxError::Sqlite { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Failed("x".into()).exit_code(), 1);
        let pipe = Error::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 0);
        assert!(pipe.is_broken_pipe());
    }
}

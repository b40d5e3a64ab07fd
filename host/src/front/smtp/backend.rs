//! What the SMTP door needs from the rest of mailhost, as a trait the listener calls: checking
//! credentials, naming trusted client networks, and durably recording an accepted message.
//! The calls block (files, SQLite, Argon2); the listener runs them on tokio's blocking pool.

use std::net::IpAddr;

use mailhost_plugin_api::Secret;

use super::envelope::{Envelope, Identity};

/// Why an accepted message could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// A fault on this side (disk, database): the client should try again (`451 4.3.0`).
    #[error("{0}")]
    Temporary(String),
    /// The staff member's provider allows fewer recipients per message (`452 4.5.3`).
    #[error("too many recipients: at most {0} per message")]
    TooManyRecipients(usize),
    /// The message cannot be sent as it is (`554 5.6.0`).
    #[error("{0}")]
    Refused(String),
}

/// The relay's view of mailhost. Implemented by the service over the staff file, the secret
/// store and mail.db; by a fake in tests.
pub trait RelayBackend: Send + Sync + 'static {
    /// The staff member whose relay credential `user` (staff ID or address) and `password`
    /// are, or `None`. Takes as long as the password hash does, whether or not `user` exists.
    fn authenticate(&self, user: &str, password: &Secret) -> Option<Identity>;

    /// The staff member a client at `peer` sends as without AUTH (`[[smtp.trusted]]`), if any.
    fn trusted(&self, peer: IpAddr) -> Option<Identity>;

    /// Records the message durably (spooled, fsync'd, committed) and returns its email ID;
    /// the session says `250` only after this returned.
    ///
    /// # Errors
    /// See [`AcceptError`].
    fn accept(
        &self,
        identity: &Identity,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, AcceptError>;
}

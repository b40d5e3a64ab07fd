//! What can go wrong with `mail.db`, each case named for what failed and saying what to do.

use std::path::PathBuf;

use super::record::Status;

/// An error from the email store.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Another process holds the database's write lock for longer than the busy timeout.
    #[error(
        "mail.db at {path} is locked by another process; wait for it to finish or stop it, then run again"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not an SQLite database at all, or SQLite found it damaged.
    #[error(
        "mail.db at {path} is not a valid mailhost database ({detail}): move it aside and run again; it was left untouched"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was wrong, in a few words.
        detail: String,
    },
    /// The file is an SQLite database that some other program made.
    #[error(
        "{path} is an SQLite database that mailhost did not create: move it aside or point --home elsewhere; it was left untouched"
    )]
    NotMailhost {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer mailhost.
    #[error(
        "mail.db at {path} has schema version {found}, but this mailhost knows only up to {supported}: upgrade mailhost; the file was left untouched"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The database cannot be written.
    #[error("mail.db at {path} is read-only: make the file and its folder writable by this user")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The database or its folder could not be opened or created.
    #[error(
        "cannot open mail.db at {path}: {source}; check that the folder exists and is writable"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// No email has this id.
    #[error("no email with id '{id}' in mail.db; run `mailhost email list` to see the ids")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// An id prefix matched more than one email.
    #[error("'{prefix}' matches more than one email ({count}); give more of the id")]
    AmbiguousId {
        /// The prefix asked for.
        prefix: String,
        /// How many emails matched.
        count: usize,
    },
    /// An email with this id is already stored.
    #[error("an email with id '{id}' is already stored; use a new id")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A send-batch line was already accepted under this source key.
    #[error("this batch line was already accepted as email '{existing}'")]
    DuplicateSource {
        /// The id of the email already stored for the line.
        existing: String,
    },
    /// An email was already accepted under this idempotency key.
    #[error("an email was already accepted with this idempotency key: '{existing}'")]
    DuplicateIdempotencyKey {
        /// The id of the email stored first.
        existing: String,
    },
    /// The email is not in a state that may be sent now.
    #[error("{}", refusal_text(.id, *.status, .owner_alive))]
    NotClaimable {
        /// The email's id.
        id: String,
        /// Its current status.
        status: Status,
        /// For `sending`: whether the process sending it is still running.
        owner_alive: bool,
    },
    /// SQLite reported an error.
    #[error("mail.db at {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored column could not be read back (hand-edited or damaged row).
    #[error(
        "email '{id}' in mail.db has an unreadable {column} ({detail}); the row was left as it is"
    )]
    BadRow {
        /// The email's id.
        id: String,
        /// The column at fault.
        column: &'static str,
        /// What was wrong.
        detail: String,
    },
}

fn refusal_text(id: &str, status: Status, owner_alive: &bool) -> String {
    match status {
        Status::Sent => format!(
            "email '{id}' was already sent; to send it again anyway run `mailhost email retry {id} --force`"
        ),
        Status::Unknown => format!(
            "email '{id}' may already have been sent (its outcome is unknown): check the recipient's mailbox or the Sent Items, and if it did not arrive run `mailhost email retry {id} --force`"
        ),
        Status::Sending if *owner_alive => format!(
            "email '{id}' is being sent by another mailhost process right now; wait for it to finish"
        ),
        Status::Sending => format!(
            "email '{id}' was being sent by a mailhost process that stopped; run `mailhost email show {id}` to check it"
        ),
        Status::Queued | Status::Failed => format!("email '{id}' cannot be sent now"),
    }
}

impl OutboxError {
    /// Whether the error means "try again later": the database was locked.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }
}

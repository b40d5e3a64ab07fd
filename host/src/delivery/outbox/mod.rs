//! The durable email store, `mail.db`: an email once accepted is never lost. It ends `sent`, or
//! stays `queued`, `failed` (with its error) or `unknown` (flagged for the user).
//!
//! [`Outbox`] is the one type that owns the SQLite connection. It opens the file in WAL mode
//! with `synchronous=FULL`, so every commit survives kill -9, and accepts and claims survive a
//! power cut too; the outcome of a send (finish) is not fsync'd on its own, which is safe for the
//! reasons given in `durability.rs` (a finish lost to a power cut makes the email `unknown`,
//! never resent silently). It applies the numbered migrations in `migrations/` at open; and it refuses, without
//! writing a byte, a file that is not a mailhost database, one from a newer mailhost, or one that
//! fails SQLite's integrity check.
//!
//! The send protocol, which makes a crash at any moment safe:
//! 1. [`Outbox::accept`] commits the email as `queued` before any provider call
//!    ([`Outbox::accept_group`]: many emails in one commit, for send-batch).
//! 2. [`Outbox::claim`] atomically (`BEGIN IMMEDIATE`) moves it to `sending`, counts the
//!    attempt and records which process holds it; a second process cannot claim it too.
//! 3. The caller hands [`EmailRecord::to_message`] to the provider.
//! 4. [`Outbox::finish_sent`] or [`Outbox::finish_failed`] records the outcome.
//!
//! A process that dies between 2 and 4 leaves the email `sending`; the next process's
//! [`Outbox::recover_interrupted`] turns it into `unknown` (it may have reached the service),
//! unless the process holding it is still running (see `owner.rs`).

mod browse;
mod durability;
mod error;
mod group;
mod lifecycle;
mod owner;
mod purge;
mod query;
mod record;
mod recovery;
mod schedule;
mod schema;
mod tokens;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use browse::{BadCursor, Browse, BrowsePage, Cursor, MAX_PAGE, PageAt};
pub use error::OutboxError;
pub use group::GroupOutcome;
pub use lifecycle::Claim;
pub use purge::{RetentionTotals, StorePurge};
pub use record::{
    Address, AttachmentRecord, Door, EmailRecord, HeaderRecord, LastError, MimeSource, NewEmail,
    ReceiptRecord, Status, Timestamp, UnknownStatus,
};
pub use schedule::{
    Admission, AttemptOutcome, AttemptRecord, Candidate, DueEmail, Finish, NextSend, QueuedSender,
    Settled,
};

pub use tokens::{ApiTokenHash, ApiTokenRecord};

use owner::Owner;

/// How long a call waits for another process's write lock before reporting
/// [`OutboxError::Locked`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The email store: one SQLite connection, shared by the threads of one process.
#[derive(Debug)]
pub struct Outbox {
    conn: Mutex<Connection>,
    /// The database file; `None` for an in-memory store.
    path: Option<PathBuf>,
    owner: Owner,
    /// Set while a relaxed (`synchronous=NORMAL`) commit may have left the connection below
    /// FULL; see `durability.rs`. Only read and written with the connection's lock held.
    relaxed_left: AtomicBool,
}

impl Outbox {
    /// Opens (creating if missing) the store at `path`, which is usually `HOME/mail.db`.
    ///
    /// # Errors
    /// [`OutboxError::Locked`] when another process holds the write lock for longer than
    /// [`DEFAULT_BUSY_TIMEOUT`]; [`OutboxError::Corrupt`], [`OutboxError::NotMailhost`] or
    /// [`OutboxError::NewerSchema`] for a file it will not use (left untouched);
    /// [`OutboxError::Open`] when the folder is missing or not writable.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        Self::open_with_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Outbox::open`] with another busy timeout (tests use a short one).
    ///
    /// # Errors
    /// As [`Outbox::open`].
    pub fn open_with_timeout(
        path: impl AsRef<Path>,
        busy_timeout: Duration,
    ) -> Result<Self, OutboxError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Err(source) = std::fs::metadata(parent)
        {
            return Err(OutboxError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
        schema::check_header(path)?;
        let sql = |e| schema::sql_error(path, e);
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(busy_timeout).map_err(sql)?;
        // Nothing is written until the file is known to be ours and sound.
        let found = schema::inspect(&conn, path)?;
        if found != schema::Found::Fresh {
            schema::check_integrity(&conn, path)?;
        }
        if found == schema::Found::Fresh {
            schema::prepare_fresh(&conn, path)?;
        }
        configure(&conn, path)?;
        schema::migrate(&mut conn, path)?;
        schema::ensure_incremental_vacuum(&conn, path)?;
        make_private(path)?;
        let owner = Owner::register(path)?;
        owner::sweep(path, owner.token());
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
            owner,
            relaxed_left: AtomicBool::new(false),
        })
    }

    /// A private store in memory, for tests.
    ///
    /// # Errors
    /// Only if SQLite cannot allocate the database.
    pub fn in_memory() -> Result<Self, OutboxError> {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|e| schema::sql_error(path, e))?;
        schema::prepare_fresh(&conn, path)?;
        configure(&conn, path)?;
        schema::migrate(&mut conn, path)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
            owner: Owner::in_memory(),
            relaxed_left: AtomicBool::new(false),
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, for one call at a time. A panic in another thread while it held the
    /// connection leaves SQLite consistent (an open transaction is rolled back on drop), so a
    /// poisoned lock is taken over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The path used in error messages.
    fn shown_path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(":memory:"))
    }

    /// Maps an SQLite error for this store.
    fn sql(&self, error: rusqlite::Error) -> OutboxError {
        schema::sql_error(self.shown_path(), error)
    }
}

/// Narrows `mail.db` and its `-wal` and `-shm` files to 0600 (SQLite creates them with the
/// process umask; the binary narrows that too, this covers library users and older files).
fn make_private(path: &Path) -> Result<(), OutboxError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        crate::config::files::ensure_mode(Path::new(&name), crate::config::files::PRIVATE_FILE)
            .map_err(|e| OutboxError::Open {
                path: e.path,
                source: e.source,
            })?;
    }
    Ok(())
}

/// Pages the WAL may hold before a commit copies them into the database.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 8_000;

/// WAL, durable commits, foreign keys, and a query planner that keeps its plans: without
/// that, SQLite prepares a cached statement again whenever a new value bound to a `LIMIT` or
/// a range (every call of the scheduler's, whose `now` moves) might change its plan, which
/// cost the scheduler a fifth of its time; the statements here are planned on their indexes
/// whatever the values.
fn configure(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let sql = |e| schema::sql_error(path, e);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(sql)?;
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    // A busy service rewrites the same few pages (the queue's index, the ledger's) thousands
    // of times a minute; a longer WAL copies each of them once per checkpoint instead of once
    // per thousand frames. 8,000 pages is 32 MB at the 4 KiB page size.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(sql)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)
}

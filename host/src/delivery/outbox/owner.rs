//! Which process holds a claim, and whether it is still running.
//!
//! Every open [`Outbox`](super::Outbox) on a file registers an owner token and holds an
//! exclusive SQLite lock on its own small file `mail.db-live/TOKEN.lock` for as long as it lives.
//! The operating system drops that lock when the process ends, however it ends (kill -9
//! included), so another process can tell a live claim from an interrupted one by trying to take
//! the lock: no timeouts, no heartbeats, no pid reuse. Only interrupted claims are turned into
//! `unknown` by recovery; a claim held by a running `mailhost` is left alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::OutboxError;

/// A lock file left by a crashed process is removed once it is at least this old.
const STALE_AGE: Duration = Duration::from_secs(60);

/// This process's identity as a claim holder.
#[derive(Debug)]
pub(crate) struct Owner {
    token: String,
    /// The held lock: a connection inside `BEGIN EXCLUSIVE` (never used again, so the mutex
    /// only makes the type `Sync`) and the file's path.
    lock: Option<(Mutex<Connection>, PathBuf)>,
}

impl Owner {
    /// An owner with no lock file, for an in-memory store (only this process can see it).
    pub(crate) fn in_memory() -> Self {
        Self {
            token: new_token(),
            lock: None,
        }
    }

    /// Registers an owner for the database at `db`, holding the lock on its file.
    pub(crate) fn register(db: &Path) -> Result<Self, OutboxError> {
        let token = new_token();
        let dir = live_dir(db);
        crate::config::files::create_private_dir(&dir).map_err(|e| OutboxError::Open {
            path: e.path,
            source: e.source,
        })?;
        let path = dir.join(format!("{token}.lock"));
        let sql = |e| super::schema::sql_error(&path, e);
        let conn = Connection::open(&path).map_err(sql)?;
        let _ = crate::config::files::ensure_mode(&path, crate::config::files::PRIVATE_FILE);
        conn.execute_batch("BEGIN EXCLUSIVE").map_err(sql)?;
        Ok(Self {
            token,
            lock: Some((Mutex::new(conn), path)),
        })
    }

    /// The token stored in `claim_owner`.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some((conn, path)) = self.lock.take() {
            drop(conn);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether the owner `token` of the database at `db` is a running process. `None` for `db`
/// means an in-memory store, where every other token is gone.
pub(crate) fn is_alive(db: Option<&Path>, token: &str) -> bool {
    let Some(db) = db else { return false };
    if !is_token(token) {
        return false;
    }
    let path = live_dir(db).join(format!("{token}.lock"));
    probe(&path) == Probe::Alive
}

/// Removes lock files of processes that ended without cleaning up, leaving young ones (a process
/// may be between creating and locking its file).
pub(crate) fn sweep(db: &Path, own: &str) {
    let Ok(entries) = std::fs::read_dir(live_dir(db)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(token) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age >= STALE_AGE);
        if token != own && is_token(token) && old && probe(&path) == Probe::Dead {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Alive,
    Dead,
}

fn probe(path: &Path) -> Probe {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return Probe::Dead;
    };
    let _ = conn.busy_timeout(Duration::ZERO);
    match conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK") {
        Ok(()) => Probe::Dead,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            Probe::Alive
        }
        Err(_) => Probe::Dead,
    }
}

fn live_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-live");
    db.with_file_name(name)
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn is_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 64 && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

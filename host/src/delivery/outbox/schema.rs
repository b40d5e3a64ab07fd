//! The schema of `mail.db`: numbered SQL migrations applied at open inside one transaction,
//! with the version kept in `PRAGMA user_version` and the file marked as mailhost's by
//! `PRAGMA application_id`.
//!
//! Before anything is written, [`inspect`] decides whether the file is a fresh database, a
//! mailhost database this build can use, or something to refuse; a refused file is never
//! modified.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::OutboxError;

/// `application_id` of a mailhost `mail.db`: "MHst".
pub(crate) const APPLICATION_ID: i32 = 0x4d48_7374;

/// The migrations, in order; migration `n` (1-based) brings the schema to version `n`.
/// Append only: never edit or reorder a released migration.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_emails.sql"),
    include_str!("migrations/0002_engine.sql"),
    include_str!("migrations/0003_retention.sql"),
    include_str!("migrations/0004_api_tokens.sql"),
    include_str!("migrations/0005_browse.sql"),
    include_str!("migrations/0006_sender_index.sql"),
    include_str!("migrations/0007_queued_senders.sql"),
];

/// `PRAGMA auto_vacuum` value of incremental vacuum.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// The schema version this build writes.
pub(crate) const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An empty database (new or zero-length file): safe to initialise.
    Fresh,
    /// A mailhost database at this schema version.
    Mailhost(i64),
}

/// Refuses a non-empty file that does not start with the SQLite header, without letting SQLite
/// near it.
pub(crate) fn check_header(path: &Path) -> Result<(), OutboxError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(OutboxError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = Vec::with_capacity(16);
    if let Err(source) = file.by_ref().take(16).read_to_end(&mut header) {
        return Err(OutboxError::Open {
            path: path.to_path_buf(),
            source,
        });
    }
    if header.is_empty() || header == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: "it is not an SQLite database".into(),
        })
    }
}

/// Reads the file's identity without writing: fresh, mailhost (with version), or refused.
pub(crate) fn inspect(conn: &Connection, path: &Path) -> Result<Found, OutboxError> {
    let sql = |e| sql_error(path, e);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(sql)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(sql)?;
    if app_id == APPLICATION_ID {
        if version > LATEST_VERSION {
            return Err(OutboxError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: LATEST_VERSION,
            });
        }
        Ok(Found::Mailhost(version))
    } else if app_id == 0 && version == 0 && objects == 0 {
        Ok(Found::Fresh)
    } else {
        Err(OutboxError::NotMailhost {
            path: path.to_path_buf(),
        })
    }
}

/// Runs `PRAGMA quick_check` and refuses a damaged database.
pub(crate) fn check_integrity(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| sql_error(path, e))?;
    let problems = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| sql_error(path, e))?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("integrity check: {}", problems.join("; ")),
        })
    }
}

/// Applies every pending migration in one `BEGIN IMMEDIATE` transaction, re-reading the version
/// inside it so two processes opening at once migrate only once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    let sql = |e| sql_error(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    if version > LATEST_VERSION {
        return Err(OutboxError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: LATEST_VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        if target > version {
            tx.execute_batch(migration).map_err(sql)?;
            tx.pragma_update(None, "user_version", target)
                .map_err(sql)?;
        }
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// On a fresh (empty) file, before any table exists: turns on incremental vacuum, which SQLite
/// only accepts then (or through a full VACUUM).
pub(crate) fn prepare_fresh(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(|e| sql_error(path, e))
}

/// Makes an older file (created before schema 2) use incremental vacuum: one full VACUUM,
/// outside any transaction, the first time a newer mailhost opens it. Purges then give their
/// free pages back with `PRAGMA incremental_vacuum`.
pub(crate) fn ensure_incremental_vacuum(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let sql = |e| sql_error(path, e);
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .map_err(sql)?;
    if mode != AUTO_VACUUM_INCREMENTAL {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql)?;
        // Another process reading the file keeps VACUUM out: not worth failing the command for;
        // the next open tries again, and until then purges free pages without returning them.
        if let Err(e) = conn.execute_batch("VACUUM") {
            log::warn!(
                "{}: could not switch on incremental vacuum yet ({e}); it is tried again at the next open",
                path.display()
            );
        }
    }
    Ok(())
}

/// Maps an SQLite error to the store's error, telling a lock and damage apart.
pub(crate) fn sql_error(path: &Path, error: rusqlite::Error) -> OutboxError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OutboxError::Locked {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: error.to_string(),
        },
        Some(ErrorCode::ReadOnly) => OutboxError::ReadOnly {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::CannotOpen) => OutboxError::Open {
            path: path.to_path_buf(),
            source: std::io::Error::other(error.to_string()),
        },
        _ => OutboxError::Sqlite {
            path: path.to_path_buf(),
            source: error,
        },
    }
}

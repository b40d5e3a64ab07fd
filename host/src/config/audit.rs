//! The audit trail, `audit.log` in the home (mode 0600, append-only JSON lines): who changed the
//! configuration, when, and what. One line per change:
//!
//! ```json
//! {"time":"2026-12-01T10:00:00Z","uid":1000,"user":"ada","command":"config set","details":{"plugin":"graph-email","key":"ClientSecret","value":"changed"}}
//! ```
//!
//! Secret values are never written: callers pass `"changed"` for them (see [`CHANGED`]). Each
//! line is written with one `write` on a file opened for appending, so lines from processes
//! running at once do not interleave.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::files::{self, FileError};
use crate::config::home::Home;
use crate::config::time;

/// What an audit entry says instead of a secret value.
pub const CHANGED: &str = "changed";

/// Why the audit trail could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, written or read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A line of the file is not an audit entry.
    #[error("{}:{line}: not an audit entry (audit.log holds one JSON object per line); fix or remove that line", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
}

/// One line of `audit.log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, RFC 3339 in UTC.
    pub time: String,
    /// The numeric user id of the process (`null` where there is none).
    pub uid: Option<u32>,
    /// The user name.
    pub user: String,
    /// The command, such as `plugin enable` or `config set`.
    pub command: String,
    /// What changed (never a secret value).
    pub details: Value,
}

/// Appends an entry for `command` with `details` to the home's `audit.log` (created 0600).
///
/// # Errors
/// The file cannot be opened or written.
pub fn record(home: &Home, command: &str, details: Value) -> Result<(), AuditError> {
    let (uid, user) = current_user();
    let entry = AuditEntry {
        time: time::now_rfc3339(),
        uid,
        user,
        command: command.to_string(),
        details,
    };
    let path = home.audit_path();
    let mut line = serde_json::to_string(&entry)
        .map_err(|e| FileError::new("write", &path, std::io::Error::other(e.to_string())))?;
    line.push('\n');
    let mut file = files::open_private_append(&path)?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| FileError::new("append to", &path, e))?;
    Ok(())
}

/// The entries of the home's `audit.log` at or after `since` (seconds since the epoch), oldest
/// first; a missing file has none.
///
/// # Errors
/// The file cannot be read or a line does not parse.
pub fn read(home: &Home, since: Option<i64>) -> Result<Vec<AuditEntry>, AuditError> {
    let path = home.audit_path();
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileError::new("read", &path, e).into()),
    };
    let mut out = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| FileError::new("read", &path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: AuditEntry = serde_json::from_str(&line).map_err(|_| AuditError::Invalid {
            path: path.clone(),
            line: index + 1,
        })?;
        let when = time::parse_rfc3339(&entry.time);
        if since.is_none_or(|s| when.is_some_and(|w| w >= s)) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The user id and name of this process.
fn current_user() -> (Option<u32>, String) {
    let env_name = || {
        ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    };
    #[cfg(unix)]
    {
        let uid = rustix::process::getuid().as_raw();
        let name = passwd_name(uid)
            .or_else(env_name)
            .unwrap_or_else(|| uid.to_string());
        (Some(uid), name)
    }
    #[cfg(not(unix))]
    {
        (None, env_name().unwrap_or_else(|| "unknown".into()))
    }
}

/// The name of `uid` in `/etc/passwd`.
#[cfg(unix)]
fn passwd_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_append_and_filter_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        record(&home, "plugin enable", json!({"plugin": "x"})).unwrap();
        record(&home, "config set", json!({"key": "K", "value": CHANGED})).unwrap();
        let all = read(&home, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].command, "config set");
        assert!(!all[0].user.is_empty());
        assert!(
            read(&home, Some(time::now_seconds() + 60))
                .unwrap()
                .is_empty()
        );
        #[cfg(unix)]
        assert_eq!(
            files::mode_of(&std::fs::metadata(home.audit_path()).unwrap()),
            0o600
        );
        std::fs::write(home.audit_path(), "{\"time\":1}\n").unwrap();
        let error = read(&home, None).unwrap_err().to_string();
        assert!(error.contains("audit.log:1:"), "{error}");
    }
}

//! The checks made on a library file before it is opened: present, not writable by others,
//! and unchanged since it was registered (hash, with size and mtime as a cheap staleness key).

use std::fs;
use std::path::Path;

use mailhost_plugin_api::ApiVersion;

use crate::config::files;
use crate::plugins::registry::PluginEntry;

use super::error::{LoadError, Who};

/// What identifies a library file: its hash, size and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// Checks that `path` is a regular file that neither group nor others can write, in a folder
/// they cannot write either (a sticky folder such as /tmp is accepted).
///
/// # Errors
/// Missing, not a file, or writable by others.
pub fn check_file(who: &Who, path: &Path) -> Result<fs::Metadata, LoadError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing {
                who: who.clone(),
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(LoadError::Unreadable {
                who: who.clone(),
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(LoadError::NotAFile {
            who: who.clone(),
            path: path.to_path_buf(),
        });
    }
    check_mode(who, "file", path, files::mode_of(&meta))?;
    if let Some(folder) = path.parent()
        && let Ok(folder_meta) = fs::metadata(folder)
    {
        let mode = files::mode_of(&folder_meta);
        let sticky = mode & 0o1000 != 0;
        if !sticky {
            check_mode(who, "folder", folder, mode)?;
        }
    }
    Ok(meta)
}

fn check_mode(who: &Who, what: &'static str, path: &Path, mode: u32) -> Result<(), LoadError> {
    if mode & 0o022 != 0 {
        Err(LoadError::Writable {
            who: who.clone(),
            what,
            path: path.to_path_buf(),
            mode: mode & 0o777,
        })
    } else {
        Ok(())
    }
}

/// The modification time of `meta` in seconds since the epoch.
pub fn mtime_of(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .map(crate::config::time::unix_seconds)
        .unwrap_or(0)
}

/// Checks `path` (see [`check_file`]) and hashes it.
///
/// # Errors
/// See [`check_file`]; or the file cannot be read.
pub fn fingerprint(who: &Who, path: &Path) -> Result<Fingerprint, LoadError> {
    let meta = check_file(who, path)?;
    let sha256 = files::sha256_file(path).map_err(|source| LoadError::Unreadable {
        who: who.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Fingerprint {
        sha256,
        size: meta.len(),
        mtime: mtime_of(&meta),
    })
}

/// Refuses disabled and quarantined entries.
///
/// # Errors
/// The entry is disabled or quarantined.
pub fn check_usable(entry: &PluginEntry) -> Result<(), LoadError> {
    if !entry.enabled {
        return Err(LoadError::Disabled(entry.name.clone()));
    }
    if let Some(q) = entry.quarantined() {
        return Err(LoadError::Quarantined {
            name: entry.name.clone(),
            reason: q.reason.clone(),
            since: q.since.clone(),
        });
    }
    Ok(())
}

/// The cheap checks for listings: usable, recorded API version accepted by this host, file
/// present with safe permissions, and unchanged since it was pinned (when it was loaded and
/// described). The file is hashed only when its size or mtime differ from the registry's;
/// if the hash still matches, the new staleness key is returned so the caller can record it.
///
/// # Errors
/// The first check that fails.
pub fn quick_check(entry: &PluginEntry) -> Result<Option<StalenessKey>, LoadError> {
    check_usable(entry)?;
    let who = Who::Plugin(entry.name.clone());
    // The host may have been upgraded since the plugin was pinned.
    let host = ApiVersion::current();
    let recorded = ApiVersion::parse(&entry.api_version).ok_or_else(|| LoadError::BadVersion {
        who: who.clone(),
        found: entry.api_version.clone(),
        major: host.major,
    })?;
    host.accepts(recorded)
        .map_err(|incompatibility| LoadError::ApiVersion {
            who: who.clone(),
            incompatibility,
        })?;
    let meta = check_file(&who, &entry.path)?;
    if meta.len() != entry.size || mtime_of(&meta) != entry.mtime {
        let now = fingerprint(&who, &entry.path)?;
        if now.sha256 != entry.sha256 {
            return Err(LoadError::Changed {
                who,
                path: entry.path.clone(),
            });
        }
        return Ok(Some(StalenessKey {
            size: now.size,
            mtime: now.mtime,
        }));
    }
    Ok(None)
}

/// A file's size and mtime: when both match the registry, the pinned hash is assumed to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessKey {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

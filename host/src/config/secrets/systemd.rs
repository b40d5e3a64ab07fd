//! The systemd backend: read-only secrets from systemd credentials. A unit with
//! `LoadCredential=staff.ada.password:/etc/mailhost/ada.password` (or `SetCredentialEncrypted=`)
//! gets the file `$CREDENTIALS_DIRECTORY/staff.ada.password`, readable only by the service; the
//! credential's name is the secret's name (see `contrib/mailhost.service`).
//!
//! Credentials cannot be written by the service: what it must write (token caches, secrets set
//! while it runs) goes to the 0600 file backend, and credentials win over it when both hold a
//! name.

use std::path::{Path, PathBuf};

use crate::config::files::FileError;

use super::{Secret, SecretError};

/// The credentials a service was started with.
#[derive(Debug, Clone)]
pub struct SystemdStore {
    dir: Option<PathBuf>,
}

impl SystemdStore {
    /// The credentials in `$CREDENTIALS_DIRECTORY` (none when it is not set).
    pub fn from_env() -> Self {
        Self::at(
            std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        )
    }

    /// The credentials in `dir`.
    pub fn at(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The credentials folder, if the process has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        let valid = !key.is_empty() && !key.starts_with('.') && !key.contains(['/', '\\', '\0']);
        self.dir.as_ref().filter(|_| valid).map(|d| d.join(key))
    }

    /// The credential named `key` (one trailing newline removed), or `None`.
    ///
    /// # Errors
    /// The credential exists but cannot be read.
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretError> {
        let Some(path) = self.file(key) else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    FileError::new(
                        "read the systemd credential",
                        &path,
                        std::io::Error::other("it is not UTF-8 text"),
                    )
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                Ok(Some(Secret::new(text)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FileError::new("read the systemd credential", &path, e).into()),
        }
    }

    /// Whether a credential named `key` exists.
    pub fn has(&self, key: &str) -> bool {
        self.file(key).is_some_and(|p| p.is_file())
    }

    /// The credential names, sorted.
    ///
    /// # Errors
    /// The folder cannot be listed.
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| FileError::new("list the systemd credentials in", dir, e))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("staff.a.password"), "hunter2\n").unwrap();
        let store = SystemdStore::at(Some(dir.path().to_path_buf()));
        assert_eq!(
            store
                .get("staff.a.password")
                .unwrap()
                .map(|s| s.expose().to_string()),
            Some("hunter2".into())
        );
        assert!(store.get("../x").unwrap().is_none());
        assert!(store.get("missing").unwrap().is_none());
        assert_eq!(store.names().unwrap(), ["staff.a.password"]);
        assert!(SystemdStore::at(None).names().unwrap().is_empty());
    }
}

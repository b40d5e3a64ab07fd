//! The keyring backend: secrets in the operating system's keyring through the `keyring` crate
//! (Secret Service on Linux and the BSDs, Keychain on macOS, Credential Manager on Windows), for
//! desktop use. Each secret is an entry of the service `mailhost:<home folder>` (so two homes
//! never share one) with the secret's name as the user.
//!
//! Keyrings cannot be listed portably, so the names (never the values) are kept in
//! `secrets.index` in the home (0600), for `secrets list` and `secrets migrate`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::files::{self, FileLock};

use super::{Secret, SecretError};

/// The keyring store of one home.
pub struct KeyringStore {
    service: String,
    index: PathBuf,
    /// One entry per name, kept for the life of the store (the crate's mock keeps values in
    /// the entry; real keyrings are asked every time anyway).
    entries: Mutex<HashMap<String, keyring::Entry>>,
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// The store of the home at `home` with its name index at `index`.
    pub fn new(home: &Path, index: PathBuf) -> Self {
        Self {
            service: format!("mailhost:{}", home.display()),
            index,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with_entry<T>(
        &self,
        key: &str,
        f: impl FnOnce(&keyring::Entry) -> keyring::Result<T>,
    ) -> Result<T, SecretError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match entries.get(key) {
            Some(entry) => entry,
            None => {
                let entry =
                    keyring::Entry::new(&self.service, key).map_err(|e| keyring_error(key, &e))?;
                entries.entry(key.to_string()).or_insert(entry)
            }
        };
        f(entry).map_err(|e| keyring_error(key, &e))
    }

    /// The secret under `key`, or `None`.
    ///
    /// # Errors
    /// The keyring cannot be reached or refused.
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretError> {
        self.with_entry(key, |entry| match entry.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// Stores `value` under `key` and records the name in the index.
    ///
    /// # Errors
    /// The keyring or the index cannot be written.
    pub fn put(&self, key: &str, value: &str) -> Result<(), SecretError> {
        self.with_entry(key, |entry| entry.set_password(value))?;
        self.update_index(|names| {
            names.insert(key.to_string());
        })
    }

    /// Deletes the secret under `key`; a missing one is fine.
    ///
    /// # Errors
    /// The keyring or the index cannot be written.
    pub fn delete(&self, key: &str) -> Result<(), SecretError> {
        self.with_entry(key, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        })?;
        self.update_index(|names| {
            names.remove(key);
        })
    }

    /// The names in the index, sorted.
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        Ok(read_index(&self.index)?.into_iter().collect())
    }

    fn update_index(&self, change: impl FnOnce(&mut BTreeSet<String>)) -> Result<(), SecretError> {
        let _lock = FileLock::acquire(&files::lock_path_for(&self.index))?;
        let mut names = read_index(&self.index)?;
        let before = names.clone();
        change(&mut names);
        if names != before {
            let mut text = String::from(
                "# mailhost: names of the secrets kept in the operating system's keyring (no values)\n",
            );
            for name in &names {
                text.push_str(name);
                text.push('\n');
            }
            files::write_private_file(&self.index, text.as_bytes())?;
        }
        Ok(())
    }
}

fn read_index(path: &Path) -> Result<BTreeSet<String>, SecretError> {
    Ok(files::read_optional(path)?
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn keyring_error(key: &str, error: &keyring::Error) -> SecretError {
    SecretError::Keyring {
        key: key.to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate's mock keyring: no Secret Service runs in the unit tests (the integration
    /// test `data_protection` drives a real one where `gnome-keyring-daemon` is installed).
    #[test]
    fn stores_lists_and_deletes_through_the_mock_keyring() {
        keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
        let dir = tempfile::tempdir().unwrap();
        let store = KeyringStore::new(dir.path(), dir.path().join("secrets.index"));
        assert!(store.get("staff.a.password").unwrap().is_none());
        store.put("staff.a.password", "hunter2").unwrap();
        store.put("plugin.x.token", "tok").unwrap();
        assert_eq!(
            store
                .get("staff.a.password")
                .unwrap()
                .map(|s| s.expose().to_string()),
            Some("hunter2".into())
        );
        assert_eq!(
            store.names().unwrap(),
            ["plugin.x.token", "staff.a.password"]
        );
        let index = std::fs::read_to_string(dir.path().join("secrets.index")).unwrap();
        assert!(
            !index.contains("hunter2") && !index.contains("tok\n"),
            "{index}"
        );
        #[cfg(unix)]
        assert_eq!(
            files::mode_of(&std::fs::metadata(dir.path().join("secrets.index")).unwrap()),
            0o600
        );
        store.delete("staff.a.password").unwrap();
        store.delete("staff.a.password").unwrap();
        assert!(store.get("staff.a.password").unwrap().is_none());
        assert_eq!(store.names().unwrap(), ["plugin.x.token"]);
    }
}

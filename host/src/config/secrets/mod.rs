//! The secret store: staff passwords, secret system settings and plugin token caches. Keys are
//! namespaced: `staff.<id>.password`, `config.<plugin>.<key>`, `plugin.<plugin>.<key>`.
//!
//! Where secrets live is the host setting `[mailhost] SecretBackend` ([`Backend`]):
//! - `file` (the default): `secrets.toml` in the home, mode 0600 ([`file`]);
//! - `keyring`: the operating system's keyring ([`keyring`]), for desktop use;
//! - `systemd`: read-only systemd credentials from `$CREDENTIALS_DIRECTORY` ([`systemd`]), for
//!   the service; what must be written (token caches) goes to the file.
//!
//! Whatever the backend, a secret still in `secrets.toml` from before a switch is found there
//! until `mailhost secrets migrate --to BACKEND` moves it; a write goes to the chosen backend and
//! removes the file's copy, so each secret lives in one place. Token caches that providers write
//! through the host services use this same store, so they follow the backend too.
//!
//! Values are never printed: [`Secret`]'s `Debug` is redacted, listings show names and where they
//! live, and parse errors report only the line.

pub mod file;
pub mod keyring;
pub mod systemd;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use mailhost_plugin_api::Secret;

use crate::config::files::FileError;
use crate::config::home::Home;
use crate::config::settings::{self, SettingsError};

pub use file::FileStore;
pub use keyring::KeyringStore;
pub use systemd::SystemdStore;

/// Why the secret store failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read, written or locked.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file does not parse.
    #[error("{}:{line}: the secret store does not parse; fix that line by hand or delete the file and store the secrets again", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line at fault.
        line: usize,
    },
    /// The file is readable by others and could not be made private.
    #[error("{} is readable by other users (mode {mode:o}) and could not be fixed: run `chmod 600 {}`", path.display(), path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The operating system's keyring failed.
    #[error(
        "the operating system's keyring failed for secret '{key}': {message}; check that a keyring (Secret Service, Keychain, Credential Manager) is running and unlocked, or go back to the file with `mailhost secrets migrate --to file`"
    )]
    Keyring {
        /// The secret's name.
        key: String,
        /// The keyring's message.
        message: String,
    },
    /// A systemd credential cannot be changed by mailhost.
    #[error("secret '{key}' comes from the systemd credential {}, which is read-only: change it where the unit's LoadCredential= points, then restart the service", path.display())]
    ReadOnly {
        /// The secret's name.
        key: String,
        /// The credential file.
        path: PathBuf,
    },
    /// `SecretBackend` could not be read from settings.toml.
    #[error(transparent)]
    Settings(Box<SettingsError>),
    /// A backend name that does not exist.
    #[error("'{0}' is not a secret backend: use file, keyring or systemd")]
    UnknownBackend(String),
    /// `secrets migrate --to systemd`.
    #[error(
        "systemd credentials are read-only for mailhost: create one file per secret named as in `mailhost secrets list` and load it with LoadCredential= in the unit (see contrib/mailhost.service), then `mailhost config set mailhost SecretBackend systemd`"
    )]
    MigrateToSystemd,
}

/// Where secrets are kept: the host setting `[mailhost] SecretBackend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// `secrets.toml`, mode 0600.
    #[default]
    File,
    /// The operating system's keyring.
    Keyring,
    /// systemd credentials (read-only; writes go to the file).
    Systemd,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::File, Backend::Keyring, Backend::Systemd];

    /// The name used in settings and listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Keyring => "keyring",
            Self::Systemd => "systemd",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SecretError::UnknownBackend(s.to_string()))
    }
}

/// One name in [`SecretStore::list`]: where the secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The secret's name.
    pub name: String,
    /// The backend holding the value that is used.
    pub location: Backend,
}

/// The store of one home.
#[derive(Debug)]
pub struct SecretStore {
    backend: Backend,
    file: FileStore,
    keyring: Option<KeyringStore>,
    systemd: Option<SystemdStore>,
    /// Writes through this value, for [`SecretStore::stamp`].
    writes: std::sync::atomic::AtomicU64,
}

impl SecretStore {
    /// Changes whenever the store may have changed: a write through this value, or another
    /// process's write to the file. (The log redactor rebuilds its patterns when it changes.)
    pub fn stamp(&self) -> u64 {
        let own = self.writes.load(std::sync::atomic::Ordering::Relaxed);
        self.file.stamp().rotate_left(17) ^ own
    }

    /// Every value the store holds, wherever it lives (for redacting logs; never shown).
    ///
    /// # Errors
    /// A backend cannot be read.
    pub fn values(&self) -> Result<Vec<Secret>, SecretError> {
        let mut out = Vec::new();
        for listed in self.list()? {
            if let Some(value) = self.get(&listed.name)? {
                out.push(value);
            }
        }
        Ok(out)
    }

    fn wrote(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The store of `home`, with the backend its settings choose.
    ///
    /// # Errors
    /// settings.toml cannot be read, or the file backend's file is exposed and cannot be fixed.
    pub fn open(home: &Home) -> Result<Self, SecretError> {
        let stored = settings::load(home).map_err(|e| SecretError::Settings(Box::new(e)))?;
        let backend = settings::host_value(&stored, settings::SECRET_BACKEND).parse()?;
        Self::with_backend(home, backend)
    }

    /// The store of `home` with `backend` (systemd credentials from `$CREDENTIALS_DIRECTORY`).
    ///
    /// # Errors
    /// The file backend's file is exposed and cannot be fixed.
    pub fn with_backend(home: &Home, backend: Backend) -> Result<Self, SecretError> {
        Ok(Self {
            backend,
            file: FileStore::at(&home.secrets_path())?,
            keyring: (backend == Backend::Keyring)
                .then(|| KeyringStore::new(home.path(), home.secrets_index_path())),
            systemd: (backend == Backend::Systemd).then(SystemdStore::from_env),
            writes: Default::default(),
        })
    }

    /// A file-only store in the file `path` (tests, tools).
    ///
    /// # Errors
    /// The file is readable by others and cannot be fixed.
    pub fn at(path: &Path) -> Result<Self, SecretError> {
        Ok(Self {
            backend: Backend::File,
            file: FileStore::at(path)?,
            keyring: None,
            systemd: None,
            writes: Default::default(),
        })
    }

    /// A store whose systemd credentials come from `dir` (tests).
    ///
    /// # Errors
    /// The file backend's file is exposed and cannot be fixed.
    pub fn with_systemd_dir(home: &Home, dir: PathBuf) -> Result<Self, SecretError> {
        Ok(Self {
            backend: Backend::Systemd,
            file: FileStore::at(&home.secrets_path())?,
            keyring: None,
            systemd: Some(SystemdStore::at(Some(dir))),
            writes: Default::default(),
        })
    }

    /// The chosen backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file backend's file, `secrets.toml`.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The systemd credentials folder, when the backend is systemd and the process has one.
    pub fn credentials_dir(&self) -> Option<&Path> {
        self.systemd.as_ref().and_then(SystemdStore::dir)
    }

    /// The secret stored under `key`.
    ///
    /// # Errors
    /// The backend cannot be read.
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretError> {
        if let Some(systemd) = &self.systemd
            && let Some(value) = systemd.get(key)?
        {
            return Ok(Some(value));
        }
        if let Some(keyring) = &self.keyring
            && let Some(value) = keyring.get(key)?
        {
            return Ok(Some(value));
        }
        self.file.get(key)
    }

    /// Whether a secret is stored under `key`.
    ///
    /// # Errors
    /// The backend cannot be read.
    pub fn contains(&self, key: &str) -> Result<bool, SecretError> {
        Ok(self.get(key)?.is_some())
    }

    /// Stores `value` under `key` in the chosen backend (the file for systemd, whose
    /// credentials are read-only).
    ///
    /// # Errors
    /// The backend cannot be written, or `key` is a systemd credential.
    pub fn put(&self, key: &str, value: &str) -> Result<(), SecretError> {
        self.refuse_credential(key)?;
        self.wrote();
        match &self.keyring {
            Some(keyring) => {
                keyring.put(key, value)?;
                self.file.delete(key)
            }
            None => self.file.put(key, value),
        }
    }

    /// Deletes the secret under `key`; a missing one is fine.
    ///
    /// # Errors
    /// The backend cannot be written, or `key` is a systemd credential.
    pub fn delete(&self, key: &str) -> Result<(), SecretError> {
        self.refuse_credential(key)?;
        self.wrote();
        if let Some(keyring) = &self.keyring {
            keyring.delete(key)?;
        }
        self.file.delete(key)
    }

    /// Deletes every secret whose key starts with `prefix` (a removed staff member or plugin);
    /// systemd credentials are left to the unit (a warning says so).
    ///
    /// # Errors
    /// The backend cannot be written.
    pub fn delete_prefix(&self, prefix: &str) -> Result<(), SecretError> {
        self.wrote();
        if let Some(keyring) = &self.keyring {
            for name in keyring.names()? {
                if name.starts_with(prefix) {
                    keyring.delete(&name)?;
                }
            }
        }
        if let Some(systemd) = &self.systemd {
            for name in systemd.names()?.iter().filter(|n| n.starts_with(prefix)) {
                log::warn!(
                    "secret '{name}' is a systemd credential and stays until it is removed from the unit"
                );
            }
        }
        self.file.delete_prefix(prefix)
    }

    /// Every secret's name and where the value in use lives, sorted by name (never values).
    ///
    /// # Errors
    /// A backend cannot be read or listed.
    pub fn list(&self) -> Result<Vec<Listed>, SecretError> {
        let mut out: std::collections::BTreeMap<String, Backend> = self
            .file
            .names()?
            .into_iter()
            .map(|n| (n, Backend::File))
            .collect();
        if let Some(keyring) = &self.keyring {
            out.extend(keyring.names()?.into_iter().map(|n| (n, Backend::Keyring)));
        }
        if let Some(systemd) = &self.systemd {
            out.extend(systemd.names()?.into_iter().map(|n| (n, Backend::Systemd)));
        }
        Ok(out
            .into_iter()
            .map(|(name, location)| Listed { name, location })
            .collect())
    }

    /// Moves every secret to `target` (reading each where it lives now, writing it there, and
    /// removing the old copy; systemd credentials are copied, never removed). Returns the names
    /// moved. The caller then sets `SecretBackend` to `target`.
    ///
    /// # Errors
    /// `target` is systemd (read-only), or a backend failed; secrets moved before the failure
    /// stay moved and readable (reads fall back to the file).
    pub fn migrate(&self, home: &Home, target: Backend) -> Result<Vec<String>, SecretError> {
        if target == Backend::Systemd {
            return Err(SecretError::MigrateToSystemd);
        }
        // Secrets left in the keyring by an earlier backend are moved too.
        let widened;
        let source = if self.keyring.is_none() && home.secrets_index_path().is_file() {
            widened = Self {
                backend: self.backend,
                file: FileStore::at(&home.secrets_path())?,
                keyring: Some(KeyringStore::new(home.path(), home.secrets_index_path())),
                systemd: self.systemd.clone(),
                writes: Default::default(),
            };
            &widened
        } else {
            self
        };
        let destination = Self::with_backend(home, target)?;
        // The keyring of this home, even when the current backend is not keyring (a second
        // migration after an interrupted one).
        let keyring = KeyringStore::new(home.path(), home.secrets_index_path());
        let mut moved = Vec::new();
        for listed in source.list()? {
            if listed.location == target {
                continue;
            }
            let Some(value) = source.get(&listed.name)? else {
                continue;
            };
            match target {
                Backend::Keyring => destination.put(&listed.name, value.expose())?,
                _ => {
                    source.file.put(&listed.name, value.expose())?;
                    if listed.location == Backend::Keyring {
                        keyring.delete(&listed.name)?;
                    }
                }
            }
            moved.push(listed.name);
        }
        Ok(moved)
    }

    /// Names in `secrets.index` (the keyring) that this store does not look at, because the
    /// backend was switched away from keyring without `secrets migrate`.
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn stranded_in_keyring(&self, home: &Home) -> Result<Vec<String>, SecretError> {
        if self.keyring.is_some() {
            return Ok(Vec::new());
        }
        KeyringStore::new(home.path(), home.secrets_index_path()).names()
    }

    fn refuse_credential(&self, key: &str) -> Result<(), SecretError> {
        match &self.systemd {
            Some(systemd) if systemd.has(key) => Err(SecretError::ReadOnly {
                key: key.to_string(),
                path: systemd.dir().map(|d| d.join(key)).unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }
}

/// The key of a staff member's password.
pub fn staff_password_key(staff_id: &str) -> String {
    format!("staff.{staff_id}.password")
}

/// The key of a secret system setting.
pub fn setting_key(plugin: &str, key: &str) -> String {
    format!("config.{plugin}.{key}")
}

/// The key of a plugin's own secret (token caches).
pub fn plugin_key(plugin: &str, key: &str) -> String {
    format!("plugin.{plugin}.{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_credentials_win_and_writes_go_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(&dir.path().join("home")).unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        std::fs::write(creds.join("staff.a.password"), "from-systemd\n").unwrap();
        let store = SecretStore::with_systemd_dir(&home, creds.clone()).unwrap();
        assert_eq!(
            store.get("staff.a.password").unwrap().unwrap().expose(),
            "from-systemd"
        );
        let error = store.put("staff.a.password", "x").unwrap_err().to_string();
        assert!(error.contains("read-only"), "{error}");
        store.put("plugin.g.token", "cache").unwrap();
        assert_eq!(
            FileStore::at(&home.secrets_path())
                .unwrap()
                .get("plugin.g.token")
                .unwrap()
                .unwrap()
                .expose(),
            "cache"
        );
        let listed = store.list().unwrap();
        assert_eq!(
            listed,
            [
                Listed {
                    name: "plugin.g.token".into(),
                    location: Backend::File
                },
                Listed {
                    name: "staff.a.password".into(),
                    location: Backend::Systemd
                }
            ]
        );
        assert!(store.migrate(&home, Backend::Systemd).is_err());
    }

    #[test]
    fn backends_parse_by_name() {
        assert_eq!("Keyring".parse::<Backend>().unwrap(), Backend::Keyring);
        assert!("vault".parse::<Backend>().is_err());
    }
}

//! The file backend of the secret store, `secrets.toml` (mode 0600): the default, and where
//! the other backends keep what they cannot hold themselves (systemd credentials are read-only).
//!
//! Every change is a locked read-modify-write with an atomic replace; an in-process mutex
//! serialises plugin threads too. Values are never printed: [`Secret`]'s `Debug` is redacted, and
//! parse errors report only the line, never the text around it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::{Secret, SecretError};
use crate::config::files::{self, FileLock};

const HEADER: &str = "# mailhost secrets (mode 0600). Never share this file.\n\n";

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// The `secrets.toml` of one home.
pub struct FileStore {
    path: PathBuf,
    guard: Mutex<()>,
    writes: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// The store in the file `path`.
    ///
    /// # Errors
    /// The file is readable by others and cannot be fixed.
    pub fn at(path: &Path) -> Result<Self, SecretError> {
        let store = Self {
            path: path.to_path_buf(),
            guard: Mutex::new(()),
            writes: std::sync::atomic::AtomicU64::new(0),
        };
        store.check_mode()?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_mode(&self) -> Result<(), SecretError> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        let mode = files::mode_of(&meta);
        if mode & 0o077 != 0 {
            log::warn!(
                "{} had mode {mode:o}; narrowing it to 600",
                self.path.display()
            );
            files::chmod(&self.path, 0o600).map_err(|_| SecretError::Exposed {
                path: self.path.clone(),
                mode,
            })?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.guard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> Result<SecretsFile, SecretError> {
        self.check_mode()?;
        match files::read_optional(&self.path)? {
            None => Ok(SecretsFile::default()),
            Some(text) => toml::from_str(&text).map_err(|e| SecretError::Invalid {
                path: self.path.clone(),
                line: e.span().map_or(1, |s| files::line_of(&text, s.start)),
            }),
        }
    }

    fn modify(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    ) -> Result<(), SecretError> {
        let _inner = self.lock();
        let _file = FileLock::acquire(&files::lock_path_for(&self.path))?;
        let mut file = self.read()?;
        if change(&mut file.secrets) {
            let body = toml::to_string(&file).map_err(|_| SecretError::Invalid {
                path: self.path.clone(),
                line: 1,
            })?;
            files::atomic_write(&self.path, format!("{HEADER}{body}").as_bytes(), 0o600)?;
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Changes whenever the store may have changed: a write through this value, or another
    /// process's (the file's size, modification time or inode differ).
    pub fn stamp(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.writes
            .load(std::sync::atomic::Ordering::Relaxed)
            .hash(&mut hasher);
        if let Ok(meta) = std::fs::metadata(&self.path) {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
            #[cfg(unix)]
            std::os::unix::fs::MetadataExt::ino(&meta).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Every value in the store (for redacting logs; never shown).
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn values(&self) -> Result<Vec<Secret>, SecretError> {
        let _inner = self.lock();
        Ok(self
            .read()?
            .secrets
            .into_values()
            .map(Secret::new)
            .collect())
    }

    /// The secret stored under `key`.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretError> {
        let _inner = self.lock();
        Ok(self.read()?.secrets.remove(key).map(Secret::new))
    }

    /// Whether a secret is stored under `key`.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn contains(&self, key: &str) -> Result<bool, SecretError> {
        Ok(self.get(key)?.is_some())
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub fn put(&self, key: &str, value: &str) -> Result<(), SecretError> {
        self.modify(|secrets| {
            secrets
                .insert(key.to_string(), value.to_string())
                .as_deref()
                != Some(value)
        })
    }

    /// Deletes the secret under `key`; a missing one is fine.
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub fn delete(&self, key: &str) -> Result<(), SecretError> {
        self.modify(|secrets| secrets.remove(key).is_some())
    }

    /// The names of every stored secret, sorted.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        let _inner = self.lock();
        Ok(self.read()?.secrets.into_keys().collect())
    }

    /// Deletes every secret whose key starts with `prefix` (a removed staff member or plugin).
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub fn delete_prefix(&self, prefix: &str) -> Result<(), SecretError> {
        self.modify(|secrets| {
            let before = secrets.len();
            secrets.retain(|k, _| !k.starts_with(prefix));
            secrets.len() != before
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::at(&dir.path().join("secrets.toml")).expect("store");
        (dir, store)
    }

    #[test]
    fn stores_and_deletes() {
        let (_dir, store) = store();
        assert_eq!(store.get("a").expect("get"), None);
        store.put("staff.a.password", "hunter2").expect("put");
        store.put("plugin.x.token", "tok").expect("put");
        assert_eq!(
            store
                .get("staff.a.password")
                .expect("get")
                .map(|s| s.expose().to_string()),
            Some("hunter2".into())
        );
        store.delete("staff.a.password").expect("delete");
        store.delete("staff.a.password").expect("delete missing");
        assert!(!store.contains("staff.a.password").expect("contains"));
        store.delete_prefix("plugin.x.").expect("prefix");
        assert!(!store.contains("plugin.x.token").expect("contains"));
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_and_wider_modes_are_narrowed() {
        let (_dir, store) = store();
        store.put("k", "v").expect("put");
        let mode = |p: &Path| files::mode_of(&std::fs::metadata(p).expect("meta"));
        assert_eq!(mode(store.path()), 0o600);
        files::chmod(store.path(), 0o644).expect("chmod");
        let reopened = FileStore::at(store.path()).expect("reopen");
        assert_eq!(mode(reopened.path()), 0o600);
        files::chmod(store.path(), 0o640).expect("chmod");
        assert!(reopened.get("k").expect("get").is_some());
        assert_eq!(mode(reopened.path()), 0o600);
    }

    #[test]
    fn debug_forms_redact() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let (_dir, store) = store();
        store.put("k", "hunter2").expect("put");
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    #[test]
    fn parse_errors_do_not_echo_the_file() {
        let (_dir, store) = store();
        std::fs::write(store.path(), "[secrets]\n\"k\" = \"hunter2\n").expect("write");
        let error = store.get("k").unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains(":2:"), "{error}");
    }

    #[test]
    fn threads_do_not_lose_writes() {
        let (_dir, store) = store();
        let store = std::sync::Arc::new(store);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || store.put(&format!("k{i}"), "v"))
            })
            .collect();
        for t in threads {
            t.join().expect("join").expect("put");
        }
        for i in 0..8 {
            assert!(store.contains(&format!("k{i}")).expect("contains"));
        }
    }
}

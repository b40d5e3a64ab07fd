//! The mailhost home: the folder holding `plugins.toml`, `settings.toml`, `staff.toml`,
//! `secrets.toml` and `mail.db`. Chosen by `--home DIR`, else `$MAILHOST_HOME`, else the
//! platform's data directory; created with mode 0700.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why the home directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// No `--home`, no `$MAILHOST_HOME` and no platform data directory.
    #[error("no home directory: pass --home DIR or set MAILHOST_HOME")]
    NoDefault,
    /// The folder could not be created or resolved.
    #[error("cannot create the mailhost home {}: {source}", path.display())]
    Create {
        /// The home.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path exists and is not a folder.
    #[error("the mailhost home {} is not a folder: pass another --home DIR", path.display())]
    NotADirectory {
        /// The home.
        path: PathBuf,
    },
}

/// The resolved home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the home from `--home`/`$MAILHOST_HOME` (already merged by the CLI) or the
    /// platform's data directory, and creates it (mode 0700) if needed.
    ///
    /// # Errors
    /// No home can be found or created.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, HomeError> {
        let root = match explicit {
            Some(path) => path.to_path_buf(),
            None => directories::ProjectDirs::from("", "", "mailhost")
                .map(|dirs| dirs.data_dir().to_path_buf())
                .ok_or(HomeError::NoDefault)?,
        };
        Self::open(&root)
    }

    /// Uses `root` as the home, creating it (mode 0700) if needed.
    ///
    /// # Errors
    /// The folder cannot be created, or the path is a file.
    pub fn open(root: &Path) -> Result<Self, HomeError> {
        let create = |source| HomeError::Create {
            path: root.to_path_buf(),
            source,
        };
        let root = std::path::absolute(root).map_err(create)?;
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(HomeError::NotADirectory { path: root }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder.create(&root).map_err(|source| HomeError::Create {
                    path: root.clone(),
                    source,
                })?;
            }
            Err(source) => return Err(HomeError::Create { path: root, source }),
        }
        Ok(Self { root })
    }

    /// The home folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `plugins.toml`: the plugin registry.
    pub fn registry_path(&self) -> PathBuf {
        self.root.join("plugins.toml")
    }

    /// `settings.toml`: system configuration, a table per plugin.
    pub fn settings_path(&self) -> PathBuf {
        self.root.join("settings.toml")
    }

    /// `staff.toml`: staff members (no passwords).
    pub fn staff_path(&self) -> PathBuf {
        self.root.join("staff.toml")
    }

    /// `secrets.toml`: passwords, secret settings and token caches (mode 0600).
    pub fn secrets_path(&self) -> PathBuf {
        self.root.join("secrets.toml")
    }

    /// `mail.db`: email records.
    pub fn mail_db_path(&self) -> PathBuf {
        self.root.join("mail.db")
    }

    /// `spool/`: attachments and whole messages of accepted emails, a folder per email
    /// (0700 folders, 0600 files).
    pub fn spool_path(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// `spool/<id>/`: the spooled files of one email.
    pub fn spool_dir(&self, email_id: &str) -> PathBuf {
        self.spool_path().join(email_id)
    }

    /// `audit.log`: who changed the configuration, when, what (JSON lines, 0600).
    pub fn audit_path(&self) -> PathBuf {
        self.root.join("audit.log")
    }

    /// `secrets.index`: the names of secrets kept in the operating system's keyring (no
    /// values), so they can be listed and migrated.
    pub fn secrets_index_path(&self) -> PathBuf {
        self.root.join("secrets.index")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_home_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a/b");
        let home = Home::open(&root).expect("home");
        assert!(home.path().is_dir());
        #[cfg(unix)]
        assert_eq!(
            crate::config::files::mode_of(&fs::metadata(home.path()).expect("meta")),
            0o700
        );
        assert_eq!(home.registry_path(), root.join("plugins.toml"));
    }

    #[test]
    fn refuses_a_file_as_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, "x").expect("write");
        let error = Home::open(&file).unwrap_err();
        assert!(error.to_string().contains("not a folder"), "{error}");
    }
}

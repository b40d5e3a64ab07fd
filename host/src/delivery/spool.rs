//! The spool, `HOME/spool/<email id>/`: the files an accepted email needs, copied in when it is
//! recorded (attachments; for sendmail and the SMTP relay the whole message), so a later send
//! never depends on the caller's files still being there or unchanged. Folders are 0700 and
//! files 0600; every file and its folder are fsync'd before the email is committed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mailhost_plugin_api::Attachment;

use crate::config::home::Home;

/// A spool failure: names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}; check that the disk has room and the home is writable", path.display())]
pub struct SpoolError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// The spool of one home.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// The spool under `home`.
    pub fn new(home: &Home) -> Self {
        Self {
            root: home.path().join("spool"),
        }
    }

    /// The folder of one email.
    pub fn folder(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the email's folder (0700, in a 0700 spool).
    fn create_folder(&self, id: &str) -> Result<PathBuf, SpoolError> {
        let folder = self.folder(id);
        for dir in [&self.root, &folder] {
            make_private_dir(dir).map_err(|source| SpoolError {
                action: "create the spool folder",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(folder)
    }

    /// Copies each attachment into the email's folder and returns them with their spooled
    /// paths. Nothing is left behind when a copy fails.
    ///
    /// # Errors
    /// A file could not be read or written.
    pub fn store_attachments(
        &self,
        id: &str,
        attachments: &[Attachment],
    ) -> Result<Vec<Attachment>, SpoolError> {
        if attachments.is_empty() {
            return Ok(Vec::new());
        }
        let folder = self.create_folder(id)?;
        let result = attachments
            .iter()
            .enumerate()
            .map(|(index, attachment)| {
                let target = folder.join(spool_name(index, &attachment.name));
                copy_durably(Path::new(attachment.path.as_str()), &target)?;
                let mut spooled = attachment.clone();
                spooled.path = target.to_string_lossy().as_ref().into();
                Ok(spooled)
            })
            .collect::<Result<Vec<_>, SpoolError>>();
        self.finish(id, &folder, result)
    }

    /// Writes `data` as the file `name` of the email's folder and returns its path.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn store_bytes(
        &self,
        id: &str,
        index: usize,
        name: &str,
        data: &[u8],
    ) -> Result<PathBuf, SpoolError> {
        let folder = self.create_folder(id)?;
        let target = folder.join(spool_name(index, name));
        let result = write_durably(&target, data).map(|()| target);
        self.finish(id, &folder, result)
    }

    /// Syncs the folder on success; removes the email's folder on failure.
    fn finish<T>(
        &self,
        id: &str,
        folder: &Path,
        result: Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        match result.and_then(|value| {
            sync_dir(folder)?;
            sync_dir(&self.root)?;
            Ok(value)
        }) {
            Ok(value) => Ok(value),
            Err(error) => {
                self.remove(id);
                Err(error)
            }
        }
    }

    /// Removes the email's folder (an email that was not recorded after all, or whose
    /// retention ended). A folder that is not there is fine.
    pub fn remove(&self, id: &str) {
        let folder = self.folder(id);
        if let Err(error) = fs::remove_dir_all(&folder)
            && error.kind() != io::ErrorKind::NotFound
        {
            log::warn!(
                "could not remove the spool folder {}: {error}",
                folder.display()
            );
        }
    }
}

/// `NN-name`, with path separators and control characters replaced.
fn spool_name(index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    let clean = if clean.is_empty() {
        "attachment"
    } else {
        clean
    };
    format!("{index:02}-{clean}")
}

fn make_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // The umask may have narrowed the mode; a folder made by hand may be wider.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // A file that was there already keeps its mode on open: narrow it.
    crate::config::files::ensure_mode(path, crate::config::files::PRIVATE_FILE)
        .map_err(|e| e.source)?;
    Ok(file)
}

fn copy_durably(from: &Path, to: &Path) -> Result<(), SpoolError> {
    let error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| SpoolError {
            action,
            path,
            source,
        }
    };
    let mut source = File::open(from).map_err(error("read the attachment", from))?;
    let mut target = private_file(to).map_err(error("write the spool file", to))?;
    io::copy(&mut source, &mut target).map_err(error("copy the attachment into", to))?;
    target.sync_all().map_err(error("sync the spool file", to))
}

fn write_durably(path: &Path, data: &[u8]) -> Result<(), SpoolError> {
    let error = |source| SpoolError {
        action: "write the spool file",
        path: path.to_path_buf(),
        source,
    };
    let mut file = private_file(path).map_err(error)?;
    file.write_all(data).map_err(error)?;
    file.sync_all().map_err(error)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| SpoolError {
                action: "sync the spool folder",
                path: dir.to_path_buf(),
                source,
            })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(spool_name(0, "../../etc/passwd"), "00-_.._etc_passwd");
        assert_eq!(spool_name(3, "a\nb.pdf"), "03-a_b.pdf");
        assert_eq!(spool_name(1, ""), "01-attachment");
    }

    #[test]
    fn attachments_are_copied_private_and_a_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let spool = Spool::new(&home);
        let source = dir.path().join("invoice.pdf");
        fs::write(&source, b"%PDF-1.4").unwrap();
        let attachment = Attachment {
            path: source.to_string_lossy().as_ref().into(),
            name: "invoice.pdf".into(),
            content_type: "application/pdf".into(),
            size: 8,
        };
        let stored = spool
            .store_attachments("e1", std::slice::from_ref(&attachment))
            .unwrap();
        let copy = PathBuf::from(stored[0].path.as_str());
        assert_eq!(fs::read(&copy).unwrap(), b"%PDF-1.4");
        assert!(copy.starts_with(spool.folder("e1")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let folder = fs::metadata(spool.folder("e1")).unwrap();
            assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        }
        let mut missing = attachment.clone();
        missing.path = dir
            .path()
            .join("gone.pdf")
            .to_string_lossy()
            .as_ref()
            .into();
        let error = spool
            .store_attachments("e2", &[attachment, missing])
            .unwrap_err();
        assert!(error.to_string().contains("gone.pdf"), "{error}");
        assert!(!spool.folder("e2").exists());
    }
}

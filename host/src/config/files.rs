//! File plumbing shared by the stores: atomic writes (temporary file in the same folder, fsync,
//! rename), exclusive lock files held across a read-modify-write, private files and folders
//! (0600 in 0700, whatever the umask), and small helpers to read a file that may not exist and
//! to turn a byte offset into a line number.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct FileError {
    /// What was being done: `read`, `write`, `lock`...
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl FileError {
    /// A new error for `action` on `path`.
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads `path` as UTF-8, or `None` when it does not exist.
///
/// # Errors
/// The file exists but cannot be read.
pub fn read_optional(path: &Path) -> Result<Option<String>, FileError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FileError::new("read", path, e)),
    }
}

/// Replaces `path` with `contents` atomically: a temporary file in the same folder is written
/// with `mode` (unix), synced, and renamed over `path`; then the folder is synced. A reader sees
/// the old file or the new one, never a half-written one.
///
/// # Errors
/// Any step failed; `path` is then unchanged.
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| FileError::new("create a temporary file for", path, e))?;
    set_mode(temp.as_file(), mode).map_err(|e| FileError::new("set the mode of", path, e))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| FileError::new("write", path, e))?;
    temp.persist(path)
        .map_err(|e| FileError::new("replace", path, e.error))?;
    if let Ok(folder) = File::open(dir) {
        // Makes the rename durable; not every platform can sync a folder, so failure is fine.
        let _ = folder.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// The mode of every file under the home that holds mail, credentials or logs.
pub const PRIVATE_FILE: u32 = 0o600;
/// The mode of every folder under the home that holds such files.
pub const PRIVATE_DIR: u32 = 0o700;

/// Narrows the process umask to 0077, so that every file this process creates (SQLite's
/// `mail.db-wal` and `-shm` included, which it creates on its own) starts private. Called first
/// thing by the binary; the helpers below also set modes explicitly, so a library user with a
/// wider umask gets private files too. No-op on platforms without a umask.
pub fn restrict_umask() {
    #[cfg(unix)]
    {
        let _ = rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    }
}

/// Creates `path` and any missing parents as private folders (0700, whatever the umask); an
/// existing folder is narrowed to 0700.
///
/// # Errors
/// A folder cannot be created or its mode set.
pub fn create_private_dir(path: &Path) -> Result<(), FileError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR);
    }
    builder
        .create(path)
        .map_err(|e| FileError::new("create the folder", path, e))?;
    ensure_mode(path, PRIVATE_DIR)
}

/// Writes `contents` to a new or replaced private file (0600, whatever the umask), atomically,
/// creating its folder (0700) if needed.
///
/// # Errors
/// The folder or file cannot be written.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        create_private_dir(parent)?;
    }
    atomic_write(path, contents, PRIVATE_FILE)
}

/// Creates a new private file (0600, whatever the umask) for writing in pieces, such as a
/// spooled copy of a large attachment; its folder is created 0700 if needed. Fails if the file
/// exists. The caller writes, then `sync_all`s before reporting the data as stored.
///
/// # Errors
/// The folder or file cannot be created.
pub fn create_private_file(path: &Path) -> Result<File, FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        create_private_dir(parent)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE);
    }
    let file = options
        .open(path)
        .map_err(|e| FileError::new("create", path, e))?;
    ensure_mode(path, PRIVATE_FILE)?;
    Ok(file)
}

/// Opens `path` for appending, creating it private (0600) if missing; an existing file wider
/// than 0600 is narrowed.
///
/// # Errors
/// The file cannot be opened or its mode set.
pub fn open_private_append(path: &Path) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE);
    }
    let file = options
        .open(path)
        .map_err(|e| FileError::new("open", path, e))?;
    ensure_mode(path, PRIVATE_FILE)?;
    Ok(file)
}

/// Sets `path` to exactly `mode` if it exists with another one (no-op where there are no
/// modes); a missing file is fine.
///
/// # Errors
/// The mode could not be changed.
pub fn ensure_mode(path: &Path, mode: u32) -> Result<(), FileError> {
    match fs::metadata(path) {
        Ok(meta) if mode_of(&meta) != mode && cfg!(unix) => {
            chmod(path, mode).map_err(|e| FileError::new("set the mode of", path, e))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FileError::new("inspect", path, e)),
    }
}

/// An exclusive lock on a `*.lock` file beside the file it guards, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Waits for and takes the exclusive lock on `lock_path` (created with mode 0600).
    ///
    /// # Errors
    /// The lock file cannot be created or locked.
    pub fn acquire(lock_path: &Path) -> Result<Self, FileError> {
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(lock_path)
            .map_err(|e| FileError::new("open the lock file", lock_path, e))?;
        file.lock()
            .map_err(|e| FileError::new("lock", lock_path, e))?;
        Ok(Self { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The lock file guarding `path`: `path` with `.lock` appended.
pub fn lock_path_for(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The SHA-256 of the file at `path`, in lower-case hex, read in chunks.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The permission bits of `meta` (0 on platforms without them).
pub fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// Sets the permission bits of `path` (no-op on platforms without them).
///
/// # Errors
/// The mode could not be changed.
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.toml");
        atomic_write(&path, b"one", 0o600).expect("first write");
        atomic_write(&path, b"two", 0o600).expect("second write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "two");
        #[cfg(unix)]
        assert_eq!(mode_of(&fs::metadata(&path).expect("meta")), 0o600);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_helpers_ignore_a_wide_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("spool/abc");
        chmod(dir.path(), 0o755).expect("chmod");
        // Even a folder that exists already with a wider mode is narrowed.
        fs::create_dir_all(dir.path().join("spool")).expect("mkdir");
        chmod(&dir.path().join("spool"), 0o777).expect("chmod");
        create_private_dir(&dir.path().join("spool")).expect("narrow");
        write_private_file(&folder.join("message.eml"), b"x").expect("write");
        let mode = |p: &Path| mode_of(&fs::metadata(p).expect("meta"));
        assert_eq!(mode(&dir.path().join("spool")), 0o700);
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&folder.join("message.eml")), 0o600);
        let streamed = folder.join("big.bin");
        let mut file = create_private_file(&streamed).expect("create");
        file.write_all(b"data").expect("write");
        assert_eq!(mode(&streamed), 0o600);
        assert!(
            create_private_file(&streamed).is_err(),
            "an existing file is not replaced"
        );
        let log = dir.path().join("audit.log");
        fs::write(&log, "").expect("write");
        chmod(&log, 0o666).expect("chmod");
        let _ = open_private_append(&log).expect("open");
        assert_eq!(mode(&log), 0o600);
    }

    #[test]
    fn lines_are_counted_from_one() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }

    #[test]
    fn hashes_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x");
        fs::write(&path, b"abc").expect("write");
        assert_eq!(
            sha256_file(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn lock_path_appends_suffix() {
        assert_eq!(
            lock_path_for(Path::new("/h/plugins.toml")),
            PathBuf::from("/h/plugins.toml.lock")
        );
    }
}

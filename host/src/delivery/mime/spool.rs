//! Writing an accepted message into its spool folder, `HOME/spool/<id>/`: the whole message as
//! `message.eml` and each attachment or inline part as its own file (`part-01-<name>`), so a
//! provider without the `mime` capability can attach them from disk. The folders are 0700 and
//! the files 0600; every file and the folder are fsync'd before this returns, so acceptance is
//! reported only for what a power cut cannot take back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mailhost_plugin_api::Attachment;

use super::MimeError;
use super::read::Part;

/// The name of the whole message in a spool folder.
pub const MESSAGE_FILE: &str = "message.eml";

/// A part written to the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledPart {
    /// The attachment as the plugin API carries it (path in the spool).
    pub attachment: Attachment,
    /// The Content-ID of an inline part.
    pub content_id: Option<String>,
}

/// What [`write()`] put in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// `FOLDER/message.eml`.
    pub mime_path: PathBuf,
    /// Its size in bytes.
    pub mime_size: u64,
    /// The parts, in the message's order.
    pub parts: Vec<SpooledPart>,
}

/// Creates `folder` (0700, parents too) and writes `message` and `parts` into it, fsync'd.
///
/// # Errors
/// [`MimeError::Spool`] naming the file that could not be written (the folder is left for the
/// caller to remove).
pub fn write(folder: &Path, message: &[u8], parts: &[Part]) -> Result<Spooled, MimeError> {
    create_private_dir(folder).map_err(|e| spool_error(folder, e))?;
    let mime_path = folder.join(MESSAGE_FILE);
    write_private(&mime_path, message)?;
    let mut spooled = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let path = folder.join(format!(
            "part-{:02}-{}",
            index + 1,
            safe_file_name(&part.name)
        ));
        write_private(&path, &part.data)?;
        spooled.push(SpooledPart {
            attachment: Attachment {
                path: path.to_string_lossy().as_ref().into(),
                name: part.name.as_str().into(),
                content_type: part.content_type.as_str().into(),
                size: part.data.len() as u64,
            },
            content_id: part.content_id.clone().filter(|_| part.inline),
        });
    }
    sync_dir(folder).map_err(|e| spool_error(folder, e))?;
    if let Some(parent) = folder.parent() {
        sync_dir(parent).map_err(|e| spool_error(parent, e))?;
    }
    Ok(Spooled {
        mime_path,
        mime_size: message.len() as u64,
        parts: spooled,
    })
}

/// Creates `dir` and missing parents with mode 0700 (an existing folder is left as it is).
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes a new file with mode 0600 and fsyncs it; an existing file is an error (a spool
/// folder belongs to one email).
fn write_private(path: &Path, data: &[u8]) -> Result<(), MimeError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(data)?;
        file.sync_all()
    };
    write().map_err(|e| spool_error(path, e))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn spool_error(path: &Path, source: io::Error) -> MimeError {
    MimeError::Spool {
        path: path.to_path_buf(),
        reason: source.to_string(),
    }
}

/// A file-system-safe form of an attachment name: letters, digits, `.`, `-` and `_` kept,
/// anything else `_`, no leading dot, at most 60 characters (the name recipients see is kept
/// apart, in the record).
fn safe_file_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while safe.starts_with('.') {
        safe.remove(0);
    }
    if safe.len() > 60 {
        // Keep the extension, which some tools look at.
        let tail: String = safe
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .filter(|ext| ext.len() <= 10)
            .map(|ext| format!(".{ext}"))
            .unwrap_or_default();
        safe.truncate(60 - tail.len());
        safe.push_str(&tail);
    }
    if safe.is_empty() {
        safe.push_str("part");
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_file_name("Report 2026.pdf"), "Report_2026.pdf");
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("...hidden"), "hidden");
        assert_eq!(safe_file_name("Relevé.txt"), "Relev_.txt");
        assert_eq!(safe_file_name(""), "part");
        let long = format!("{}.xlsx", "a".repeat(100));
        let safe = safe_file_name(&long);
        assert_eq!(safe.len(), 60);
        assert!(safe.ends_with(".xlsx"));
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("spool").join("id-1");
        let part = Part {
            name: "a/b.png".into(),
            content_type: "image/png".into(),
            content_id: Some("logo".into()),
            inline: true,
            data: vec![1, 2, 3],
        };
        let spooled = write(&folder, b"To: a@x.com\r\n\r\nhi\r\n", &[part]).unwrap();
        assert_eq!(spooled.mime_size, 19);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&dir.path().join("spool")), 0o700);
        assert_eq!(mode(&spooled.mime_path), 0o600);
        let part_path = PathBuf::from(spooled.parts[0].attachment.path.as_str());
        assert_eq!(mode(&part_path), 0o600);
        assert_eq!(part_path.file_name().unwrap(), "part-01-a_b.png");
        assert_eq!(fs::read(&part_path).unwrap(), vec![1, 2, 3]);
        assert_eq!(spooled.parts[0].content_id.as_deref(), Some("logo"));
        assert_eq!(spooled.parts[0].attachment.name.as_str(), "a/b.png");
        assert!(matches!(
            write(&folder, b"x", &[]),
            Err(MimeError::Spool { .. })
        ));
    }
}

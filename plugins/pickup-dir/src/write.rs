//! Writes a pickup file atomically: a hidden temporary file in the pickup directory itself,
//! flushed to disk, then renamed to `<timestamp>-<message id>.eml`. A consumer polling the
//! folder for `*.eml` never sees a half-written message, and a crash leaves at most a
//! `.mailhost-*.tmp` file behind.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::PickupError;

/// Checks that `dir` is an absolute path to an existing folder.
pub(crate) fn check_directory(dir: &Path) -> Result<(), PickupError> {
    if !dir.is_absolute() {
        return Err(PickupError::DirectoryRelative(dir.to_path_buf()));
    }
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(PickupError::DirectoryMissing {
            path: dir.to_path_buf(),
            what: "is not a folder",
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(PickupError::DirectoryMissing {
            path: dir.to_path_buf(),
            what: "does not exist",
        }),
        Err(source) => Err(PickupError::DirectoryNotWritable {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The file name for a message: a sortable UTC timestamp, then the Message-ID without its angle
/// brackets and with anything but letters, digits, `.`, `-`, `_` and `@` replaced by `_`.
pub(crate) fn file_name(now: SystemTime, message_id: &str) -> String {
    let id: String = message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{id}.eml", timestamp(now))
}

/// `YYYYMMDDTHHMMSS.ffffffZ` in UTC.
pub(crate) fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Writes `bytes` into `dir` under `name`, atomically, and returns the final path.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, PickupError> {
    let not_writable = |source: std::io::Error| {
        if source.kind() == ErrorKind::PermissionDenied
            || source.kind() == ErrorKind::ReadOnlyFilesystem
        {
            PickupError::DirectoryNotWritable {
                path: dir.to_path_buf(),
                source,
            }
        } else {
            PickupError::Write {
                path: dir.to_path_buf(),
                source,
            }
        }
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".mailhost-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(not_writable)?;
    let temp_path = temp.path().to_path_buf();
    let write_error = |source: std::io::Error| PickupError::Write {
        path: temp_path.clone(),
        source,
    };
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    let target = dir.join(name);
    temp.persist_noclobber(&target)
        .map_err(|e| PickupError::Write {
            path: target.clone(),
            source: e.error,
        })?;
    // Make the rename itself durable.
    #[cfg(unix)]
    if let Ok(folder) = std::fs::File::open(dir)
        && let Err(e) = folder.sync_all()
    {
        log::warn!(
            "could not flush the pickup directory {}: {e}",
            dir.display()
        );
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_utc_and_sortable() {
        let t = UNIX_EPOCH + Duration::from_micros(1_732_894_560_123_456);
        assert_eq!(timestamp(t), "20241129T153600.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&timestamp(leap)[..8], "20000229");
    }

    #[test]
    fn file_names_are_safe() {
        let name = file_name(UNIX_EPOCH, "<abc.mailhost@example.com>");
        assert_eq!(name, "19700101T000000.000000Z-abc.mailhost@example.com.eml");
        let odd = file_name(UNIX_EPOCH, "<a/b\\c d@x>");
        assert_eq!(odd, "19700101T000000.000000Z-a_b_c_d@x.eml");
    }
}

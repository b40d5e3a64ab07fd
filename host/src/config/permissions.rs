//! The start-up permission check, as ssh checks a private key: files under the home that hold
//! mail (`mail.db`, its `-wal` and `-shm`, the `spool/`) or credentials (`secrets.toml`) must not
//! be readable by other users, or commands refuse to run (exit 2) with the `chmod` that fixes
//! them, unless `--allow-unsafe-permissions` is given. Other files of the home (the home folder
//! itself, `settings.toml`, `staff.toml`, `plugins.toml`, `audit.log`, `secrets.index`) are only
//! warned about.
//!
//! Windows keeps its ACL defaults (a user's profile folder is private): there is nothing to check
//! there, and [`check`] finds nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::files::{self, PRIVATE_DIR, PRIVATE_FILE};
use crate::config::home::Home;

/// How serious an exposed file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Mail or secrets readable by others: commands refuse to run.
    Refuse,
    /// Anything else wider than private: a warning.
    Warn,
}

/// A file or folder under the home whose mode lets other users in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file or folder.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// The mode it should have (0600 or 0700).
    pub wanted: u32,
    /// Whether commands refuse to run.
    pub severity: Severity,
}

impl Finding {
    /// The one-line warning for this finding.
    pub fn warning(&self) -> String {
        format!(
            "{} is open to other users (mode {:o}): run `chmod {:o} {}`",
            self.path.display(),
            self.mode,
            self.wanted,
            shell_quote(&self.path)
        )
    }
}

/// Mail or secrets readable by other users: the command refuses to run.
#[derive(Debug, thiserror::Error)]
#[error("{}", refusal(.0))]
pub struct UnsafePermissions(pub Vec<Finding>);

fn refusal(findings: &[Finding]) -> String {
    let shown: Vec<String> = findings
        .iter()
        .map(|f| format!("{} (mode {:o})", f.path.display(), f.mode))
        .collect();
    let mut fix = String::new();
    for wanted in [PRIVATE_FILE, PRIVATE_DIR] {
        let paths: Vec<String> = findings
            .iter()
            .filter(|f| f.wanted == wanted)
            .map(|f| shell_quote(&f.path))
            .collect();
        if !paths.is_empty() {
            if !fix.is_empty() {
                fix.push_str(" and ");
            }
            let _ = write!(fix, "`chmod {wanted:o} {}`", paths.join(" "));
        }
    }
    format!(
        "{} readable by other users: {}; run {fix} (or pass --allow-unsafe-permissions to run anyway)",
        if findings.len() == 1 {
            "mail or secrets file"
        } else {
            "mail or secrets files"
        },
        shown.join(", ")
    )
}

/// A path as a shell word: bare when it is plain, else in single quotes.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Everything under `home` that is open to other users: files holding mail or secrets that are
/// group- or world-readable (refuse), and other files or folders wider than 0600/0700 (warn).
pub fn check(home: &Home) -> Vec<Finding> {
    let mut found = Vec::new();
    if !cfg!(unix) {
        return found;
    }
    let db = home.mail_db_path();
    let mut sensitive = vec![
        home.secrets_path(),
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
    ];
    let spool = home.spool_path();
    if spool.is_dir() {
        sensitive.push(spool.clone());
        sensitive.extend(walk(&spool, 2));
    }
    for path in sensitive {
        inspect(&path, true, &mut found);
    }
    inspect(home.path(), false, &mut found);
    for path in [
        home.settings_path(),
        home.staff_path(),
        home.registry_path(),
        home.audit_path(),
        home.secrets_index_path(),
    ] {
        inspect(&path, false, &mut found);
    }
    found
}

/// Splits the findings: warnings to print, and the refusal unless `allow_unsafe`.
///
/// # Errors
/// Mail or secrets readable by others and `allow_unsafe` is false.
pub fn enforce(home: &Home, allow_unsafe: bool) -> Result<Vec<String>, UnsafePermissions> {
    let (refused, warned): (Vec<Finding>, Vec<Finding>) = check(home)
        .into_iter()
        .partition(|f| f.severity == Severity::Refuse);
    let mut warnings: Vec<String> = warned.iter().map(Finding::warning).collect();
    if !refused.is_empty() {
        if !allow_unsafe {
            return Err(UnsafePermissions(refused));
        }
        warnings.extend(refused.iter().map(Finding::warning));
    }
    Ok(warnings)
}

fn inspect(path: &Path, sensitive: bool, found: &mut Vec<Finding>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = files::mode_of(&meta);
    let wanted = if meta.is_dir() {
        PRIVATE_DIR
    } else {
        PRIVATE_FILE
    };
    if mode & 0o077 == 0 {
        return;
    }
    let severity = if sensitive && mode & 0o044 != 0 {
        Severity::Refuse
    } else {
        Severity::Warn
    };
    found.push(Finding {
        path: path.to_path_buf(),
        mode,
        wanted,
        severity,
    });
}

/// The entries under `dir`, down to `depth` levels (symbolic links are not followed).
fn walk(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.push(path.clone());
        if is_dir {
            out.extend(walk(&path, depth - 1));
        }
    }
    out
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn readable_mail_is_refused_and_other_files_warned() {
        let dir = tempfile::tempdir().unwrap();
        files::chmod(dir.path(), 0o700).unwrap();
        let home = Home::open(dir.path()).unwrap();
        assert!(check(&home).is_empty(), "{:?}", check(&home));
        std::fs::write(home.mail_db_path(), "").unwrap();
        files::chmod(&home.mail_db_path(), 0o644).unwrap();
        std::fs::write(home.settings_path(), "").unwrap();
        files::chmod(&home.settings_path(), 0o644).unwrap();
        files::create_private_dir(&home.spool_dir("e 1")).unwrap();
        files::chmod(&home.spool_dir("e 1"), 0o755).unwrap();
        let error = enforce(&home, false).unwrap_err().to_string();
        assert!(
            error.contains(&format!("chmod 600 {}", home.mail_db_path().display())),
            "{error}"
        );
        assert!(error.contains("`chmod 700 '"), "{error}");
        assert!(error.contains("--allow-unsafe-permissions"), "{error}");
        assert!(!error.contains("settings.toml"), "{error}");
        let warnings = enforce(&home, true).unwrap();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("settings.toml")));
    }

    #[test]
    fn writable_but_unreadable_mail_is_only_warned() {
        let dir = tempfile::tempdir().unwrap();
        files::chmod(dir.path(), 0o700).unwrap();
        let home = Home::open(dir.path()).unwrap();
        std::fs::write(home.secrets_path(), "").unwrap();
        files::chmod(&home.secrets_path(), 0o620).unwrap();
        let warnings = enforce(&home, false).unwrap();
        assert_eq!(warnings.len(), 1);
    }
}

//! `mailhost plugin check PATH [--setting KEY=VALUE]... [--timeout SECS] [--json]`: the
//! conformance run (see [`crate::plugins::check`]). Exit status 0 when every check passes (warnings
//! allowed), 1 when one fails, 2 when the path or the options cannot be used.

use std::fs;
use std::path::Path;

use super::{OK, print, print_json};
use crate::error::Error;
use crate::front::cli::CheckArgs;
use crate::plugins::check::{self, Options, child, report, supervise};
use crate::plugins::loader::{LoadError, Who};

pub(super) fn run(args: &CheckArgs) -> Result<u8, Error> {
    let options = Options {
        settings: parse_settings(&args.settings)?,
        timeout_secs: args.timeout,
    };
    if let Some(work) = &args.child_work {
        child::run(&args.path, work, &options);
        return OK;
    }
    let path = usable_path(&args.path)?;
    let report = supervise::run(&path, &options)?;
    if args.json {
        print_json(&report::json(&report))?;
    } else {
        print(&report::text(&report))?;
    }
    if report.passed {
        OK
    } else {
        Err(Error::Failed(format!(
            "library {} failed {} of {} checks ({}): fix them and run `mailhost plugin check` again",
            path.display(),
            report.count(check::Status::Fail),
            report.checks.len(),
            report::failed_names(&report).join(", ")
        )))
    }
}

/// `KEY=VALUE` pairs from `--setting`.
fn parse_settings(raw: &[String]) -> Result<Vec<(String, String)>, Error> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
            _ => Err(Error::Usage(format!(
                "--setting '{pair}' is not KEY=VALUE: write it as --setting Directory=/var/mail/pickup"
            ))),
        })
        .collect()
}

/// The library's absolute path, if it names a readable regular file (else exit 2). The
/// loader's permission check runs later, as the `file` check.
fn usable_path(path: &Path) -> Result<std::path::PathBuf, Error> {
    let who = Who::Library(path.to_path_buf());
    let meta = fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing {
            who: who.clone(),
            path: path.to_path_buf(),
        },
        _ => LoadError::Unreadable {
            who: who.clone(),
            path: path.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_file() {
        return Err(LoadError::NotAFile {
            who,
            path: path.to_path_buf(),
        }
        .into());
    }
    fs::File::open(path).map_err(|source| LoadError::Unreadable {
        who: who.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_must_be_key_value() {
        let parsed = parse_settings(&["Directory=/a=b".into()]).unwrap();
        assert_eq!(parsed, [("Directory".to_string(), "/a=b".to_string())]);
        let error = parse_settings(&["Directory".into()]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("KEY=VALUE"), "{error}");
    }

    #[test]
    fn missing_paths_are_unusable() {
        let error = usable_path(Path::new("/nonexistent/libx.so")).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .to_string()
                .contains("/nonexistent/libx.so is missing"),
            "{error}"
        );
    }
}

//! `serve.toml` in the home: the service's settings. The command line's flags override it.
//!
//! ```toml
//! [engine]
//! workers = 64            # sends in flight at once, across every mailbox
//! grace_seconds = 30      # how long in-flight sends may finish after SIGTERM
//!
//! [smtp]                  # the SMTP relay (see README)
//! [http]                  # the HTTP API and the Email Maintenance page (see README)
//! ```
//!
//! A file that does not parse, or names an unknown key, is refused with its file and line;
//! nothing starts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::files;
use crate::config::home::Home;

/// Why serve.toml was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServeConfigError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] files::FileError),
    /// It does not parse, or has an unknown key or a wrong value.
    #[error("{}:{line}: {message}; fix that line (see the serve.toml section of the README)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The delivery engine.
    #[serde(default)]
    pub engine: EngineSection,
    /// The SMTP relay's section, read by the relay.
    #[serde(default)]
    pub smtp: Option<toml::Table>,
    /// The HTTP listener's section, read by the listener.
    #[serde(default)]
    pub http: Option<toml::Table>,
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Sends in flight at once, across every mailbox.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Seconds in-flight sends may take to finish after SIGTERM or Ctrl-C.
    #[serde(default = "default_grace")]
    pub grace_seconds: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            grace_seconds: default_grace(),
        }
    }
}

fn default_workers() -> usize {
    64
}

fn default_grace() -> u64 {
    30
}

impl ServeConfig {
    /// `HOME/serve.toml`; a missing file is the defaults.
    ///
    /// # Errors
    /// The file cannot be read, or is refused with its line.
    pub fn load(home: &Home) -> Result<Self, ServeConfigError> {
        Self::load_path(&home.path().join("serve.toml"))
    }

    /// The file at `path`.
    ///
    /// # Errors
    /// As [`ServeConfig::load`].
    pub fn load_path(path: &Path) -> Result<Self, ServeConfigError> {
        let Some(text) = files::read_optional(path)? else {
            return Ok(Self::default());
        };
        let config: Self = toml::from_str(&text).map_err(|e| ServeConfigError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| files::line_of(&text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        if config.engine.workers == 0 {
            return Err(ServeConfigError::Invalid {
                path: path.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("workers"))
                    .map_or(1, |i| i + 1),
                message: "workers must be at least 1".into(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_defaults_and_a_bad_key_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        let config = ServeConfig::load_path(&path).unwrap();
        assert_eq!(config.engine.workers, 64);
        std::fs::write(&path, "[engine]\nworkers = 8\nwrokers = 9\n").unwrap();
        let error = ServeConfig::load_path(&path).unwrap_err().to_string();
        assert!(error.contains("serve.toml:3:"), "{error}");
        assert!(error.contains("wrokers"), "{error}");
        std::fs::write(&path, "[engine]\nworkers = 0\n").unwrap();
        let error = ServeConfig::load_path(&path).unwrap_err().to_string();
        assert!(error.contains(":2:"), "{error}");
    }
}

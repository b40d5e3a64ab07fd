//! Provider isolation: by default every provider runs in a child process of its own, the same
//! `mailhost` executable started with a hidden subcommand, which loads the library with the
//! loader's checks and answers the host's calls over a Unix socket. A provider that crashes
//! (a signal, `exit`, a stack overflow), hangs past `SendTimeoutSeconds` or writes to standard
//! output cannot take the host down or corrupt what it prints.
//!
//! - [`protocol`]: the framed protocol (handshake first, request ids, replies in any order);
//!   [`wire`] encodes its values.
//! - [`child`]: the child side (loads the library, runs calls on worker threads, proxies host
//!   services).
//! - [`supervisor`]: the host side (starts the child, sends calls with a deadline, turns a
//!   death or a stall into a structured error, restarts with backoff, counts crashes towards
//!   quarantine).
//! - [`ending`]: how a process ended, in words.
//!
//! `isolation = "in-process"` in plugins.toml (`mailhost plugin isolate NAME in-process`)
//! loads the library into the host instead, trading that safety for the last microseconds.

pub mod child;
pub mod ending;
pub mod protocol;
pub mod supervisor;
pub mod wire;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use supervisor::Supervisor;

/// Where a provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a child process of its own (the default).
    #[default]
    Process,
    /// Inside the mailhost process.
    InProcess,
}

impl Isolation {
    /// The name in plugins.toml and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::InProcess => "in-process",
        }
    }

    /// Whether this is the default (not written to plugins.toml).
    pub fn is_default(&self) -> bool {
        *self == Self::Process
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isolation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "process" => Ok(Self::Process),
            "in-process" => Ok(Self::InProcess),
            other => Err(format!(
                "'{other}' is not an isolation mode: use process or in-process"
            )),
        }
    }
}

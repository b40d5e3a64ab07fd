//! What a load refusal says: [`Who`] it is about and the [`LoadError`] line that names the fix.

use std::fmt;
use std::path::PathBuf;

use mailhost_plugin_api::{Incompatibility, ProviderError};

use crate::config::files::FileError;

/// Who a load error is about: a registered plugin, or a library being added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A registered plugin.
    Plugin(String),
    /// A library file not registered yet.
    Library(PathBuf),
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plugin(name) => write!(f, "plugin '{name}'"),
            Self::Library(path) => write!(f, "library {}", path.display()),
        }
    }
}

impl Who {
    fn missing_fix(&self) -> String {
        match self {
            Self::Plugin(name) => format!("reinstall it or `mailhost plugin remove {name}`"),
            Self::Library(_) => "check the path".into(),
        }
    }
}

/// Why a plugin was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Disabled in the registry.
    #[error("plugin '{0}' is disabled: run `mailhost plugin enable {0}`")]
    Disabled(String),
    /// Quarantined after a crash.
    #[error(
        "plugin '{name}' is quarantined since {since}: {reason}; install a fixed file and run `mailhost plugin add PATH`, or run `mailhost plugin enable {name}` to try it again"
    )]
    Quarantined {
        /// The plugin.
        name: String,
        /// Why.
        reason: String,
        /// Since when.
        since: String,
    },
    /// The file does not exist.
    #[error("{who}: file {} is missing: {}", path.display(), who.missing_fix())]
    Missing {
        /// Whose.
        who: Who,
        /// The file.
        path: PathBuf,
    },
    /// The path is not a regular file.
    #[error("{who}: {} is not a regular file", path.display())]
    NotAFile {
        /// Whose.
        who: Who,
        /// The path.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("{who}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// Whose.
        who: Who,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Others could replace the library.
    #[error("{who}: the {what} {} is writable by other users (mode {mode:o}), so anyone could replace the plugin: run `chmod go-w {}`", path.display(), path.display())]
    Writable {
        /// Whose.
        who: Who,
        /// "file" or "folder".
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The hash differs from the pinned one.
    #[error("{who}: {} changed since it was registered: if you trust the new file, run `mailhost plugin add {}` again", path.display(), path.display())]
    Changed {
        /// Whose.
        who: Who,
        /// The file.
        path: PathBuf,
    },
    /// The OS loader refused the file.
    #[error("{who} is not a loadable library: {detail}")]
    NotLoadable {
        /// Whose.
        who: Who,
        /// The loader's message.
        detail: String,
    },
    /// No abi_stable root module.
    #[error("{who} is not a mailhost plugin (no abi_stable root module)")]
    NotAPlugin {
        /// Whose.
        who: Who,
    },
    /// Built against another plugin API version.
    #[error("{who} was {incompatibility}")]
    ApiVersion {
        /// Whose.
        who: Who,
        /// Why not.
        incompatibility: Incompatibility,
    },
    /// The version recorded in the library cannot be read.
    #[error(
        "{who} records an unreadable plugin API version '{found}': rebuild it against mailhost-plugin-api {major}.x"
    )]
    BadVersion {
        /// Whose.
        who: Who,
        /// What it records.
        found: String,
        /// This host's major version.
        major: u32,
    },
    /// abi_stable's layout check failed.
    #[error(
        "{who}: its interface layout does not match this host's: rebuild against mailhost-plugin-api {major}.x (run with RUST_LOG=debug for abi_stable's report)"
    )]
    Layout {
        /// Whose.
        who: Who,
        /// This host's major version.
        major: u32,
    },
    /// Built with an incompatible abi_stable or C ABI.
    #[error(
        "{who} was built with an incompatible abi_stable or compiler ABI ({detail}): rebuild against mailhost-plugin-api {major}.x"
    )]
    AbiHeader {
        /// Whose.
        who: Who,
        /// What differs.
        detail: String,
        /// This host's major version.
        major: u32,
    },
    /// The root module constructor returned an error or panicked.
    #[error("{who}: its root module failed to start: {detail}")]
    Constructor {
        /// Whose.
        who: Who,
        /// What happened.
        detail: String,
    },
    /// `init` returned an error.
    #[error("{who} failed to initialise: {error}")]
    Init {
        /// Whose.
        who: Who,
        /// The provider's error.
        error: ProviderError,
    },
    /// `describe` returned an error.
    #[error("{who} failed to describe itself: {error}")]
    Describe {
        /// Whose.
        who: Who,
        /// The provider's error.
        error: ProviderError,
    },
    /// It reports another name than it was registered under.
    #[error("plugin '{registered}' now reports the name '{reported}': run `mailhost plugin remove {registered}` and `mailhost plugin add {}`", path.display())]
    Renamed {
        /// The registered name.
        registered: String,
        /// The name it reports.
        reported: String,
        /// The file.
        path: PathBuf,
    },
    /// It reports a name the registry cannot hold.
    #[error(
        "{who} reports the name '{name}', which is not a valid plugin name (1 to 64 lower-case letters, digits and '-', starting with a letter); ask its author to fix it"
    )]
    BadName {
        /// Whose.
        who: Who,
        /// The name reported.
        name: String,
    },
    /// It reports the name of the host's own settings table, `mailhost`.
    #[error(
        "{who} reports the name '{name}', which is reserved for the host's own settings (`mailhost config set mailhost KEY VALUE`); ask its author to pick another name"
    )]
    ReservedName {
        /// Whose.
        who: Who,
        /// The name reported.
        name: String,
    },
    /// The crash marker could not be written.
    #[error(transparent)]
    Marker(#[from] FileError),
    /// The provider child refused the library (its loader's own line).
    #[error("{message}")]
    Refused {
        /// The refusal's state name (see [`LoadError::state`]).
        state: &'static str,
        /// The child's one line.
        message: String,
    },
    /// The library crashed or stalled the provider child while it was loaded.
    #[error(
        "{who} crashed its provider process while loading: the process {how}; it was not used: install a fixed file, or ask its author (`mailhost plugin check PATH` shows more)"
    )]
    Crashed {
        /// Whose.
        who: Who,
        /// What happened: a signal name, an exit status or a timeout.
        how: String,
    },
    /// The provider child could not be started.
    #[error("{who}: cannot start its provider process: {detail}")]
    Spawn {
        /// Whose.
        who: Who,
        /// Why.
        detail: String,
    },
}

impl LoadError {
    /// The state name `state` stands for, for a refusal that crossed the isolation protocol.
    pub fn state_named(state: &str) -> &'static str {
        [
            "disabled",
            "quarantined",
            "missing",
            "unsafe-permissions",
            "changed",
            "incompatible",
            "not-a-plugin",
            "renamed",
            "crashed",
        ]
        .into_iter()
        .find(|s| *s == state)
        .unwrap_or("failed")
    }

    /// A short state name for listings: disabled, quarantined, missing, unsafe-permissions,
    /// changed, incompatible, not-a-plugin or failed.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Disabled(_) => "disabled",
            Self::Quarantined { .. } => "quarantined",
            Self::Missing { .. } | Self::NotAFile { .. } | Self::Unreadable { .. } => "missing",
            Self::Writable { .. } => "unsafe-permissions",
            Self::Changed { .. } => "changed",
            Self::ApiVersion { .. }
            | Self::BadVersion { .. }
            | Self::Layout { .. }
            | Self::AbiHeader { .. } => "incompatible",
            Self::NotLoadable { .. } | Self::NotAPlugin { .. } => "not-a-plugin",
            Self::Renamed { .. } | Self::BadName { .. } | Self::ReservedName { .. } => "renamed",
            Self::Constructor { .. }
            | Self::Init { .. }
            | Self::Describe { .. }
            | Self::Marker(_)
            | Self::Spawn { .. } => "failed",
            Self::Crashed { .. } => "crashed",
            Self::Refused { state, .. } => state,
        }
    }
}

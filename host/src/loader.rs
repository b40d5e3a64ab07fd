//! Loading provider libraries safely, in this order, each step refusing with one clear line:
//! 1. disabled or quarantined entries are skipped;
//! 2. the file must exist, and neither it nor its folder may be writable by group or others;
//! 3. its SHA-256 must equal the pinned hash, checked *before* the library is opened (opening
//!    runs code);
//! 4. abi_stable reads the library header (`lib_header_from_path`, not `load_from_file`, which
//!    caches one library per root-module type); the plugin API version it was built against is
//!    checked with [`ApiVersion::accepts`];
//! 5. abi_stable checks the layout and runs the constructor; then the host calls `init` and
//!    `describe`.
//!
//! Steps 4–5 run under a [`LoadingMarker`] so a crash quarantines the plugin. Libraries are
//! never unloaded. [`quick_check`] does steps 1–3 cheaply (hashing only when size or mtime
//! differ from the registry), for `plugin list`.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{LibHeader, LibraryError, RootModuleError, lib_header_from_path};
use mailhost_plugin_api::{ApiVersion, HostServicesBox, Incompatibility, LogLevel, ProviderError, ProviderModule_Ref};

use crate::files::{self, FileError};
use crate::home::Home;
use crate::provider::LoadedPlugin;
use crate::quarantine::LoadingMarker;
use crate::registry::PluginEntry;
use crate::secrets::SecretStore;
use crate::services::PluginServices;

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
    #[error("plugin '{name}' is quarantined since {since}: {reason}; install a fixed file and run `mailhost plugin add PATH`, or run `mailhost plugin enable {name}` to try it again")]
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
    #[error("{who} records an unreadable plugin API version '{found}': rebuild it against mailhost-plugin-api {major}.x")]
    BadVersion {
        /// Whose.
        who: Who,
        /// What it records.
        found: String,
        /// This host's major version.
        major: u32,
    },
    /// abi_stable's layout check failed.
    #[error("{who}: its interface layout does not match this host's: rebuild against mailhost-plugin-api {major}.x (run with RUST_LOG=debug for abi_stable's report)")]
    Layout {
        /// Whose.
        who: Who,
        /// This host's major version.
        major: u32,
    },
    /// Built with an incompatible abi_stable or C ABI.
    #[error("{who} was built with an incompatible abi_stable or compiler ABI ({detail}): rebuild against mailhost-plugin-api {major}.x")]
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
    #[error("{who} reports the name '{name}', which is not a valid plugin name (1 to 64 lower-case letters, digits and '-', starting with a letter); ask its author to fix it")]
    BadName {
        /// Whose.
        who: Who,
        /// The name reported.
        name: String,
    },
    /// The crash marker could not be written.
    #[error(transparent)]
    Marker(#[from] FileError),
}

impl LoadError {
    /// A short state name for listings: disabled, quarantined, missing, unsafe-permissions,
    /// changed, incompatible, not-a-plugin or failed.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Disabled(_) => "disabled",
            Self::Quarantined { .. } => "quarantined",
            Self::Missing { .. } | Self::NotAFile { .. } | Self::Unreadable { .. } => "missing",
            Self::Writable { .. } => "unsafe-permissions",
            Self::Changed { .. } => "changed",
            Self::ApiVersion { .. } | Self::BadVersion { .. } | Self::Layout { .. } | Self::AbiHeader { .. } => {
                "incompatible"
            }
            Self::NotLoadable { .. } | Self::NotAPlugin { .. } => "not-a-plugin",
            Self::Renamed { .. } | Self::BadName { .. } => "renamed",
            Self::Constructor { .. } | Self::Init { .. } | Self::Describe { .. } | Self::Marker(_) => "failed",
        }
    }
}

/// What identifies a library file: its hash, size and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// Checks that `path` is a regular file that neither group nor others can write, in a folder
/// they cannot write either (a sticky folder such as /tmp is accepted).
///
/// # Errors
/// Missing, not a file, or writable by others.
pub fn check_file(who: &Who, path: &Path) -> Result<fs::Metadata, LoadError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing {
                who: who.clone(),
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(LoadError::Unreadable {
                who: who.clone(),
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(LoadError::NotAFile {
            who: who.clone(),
            path: path.to_path_buf(),
        });
    }
    check_mode(who, "file", path, files::mode_of(&meta))?;
    if let Some(folder) = path.parent()
        && let Ok(folder_meta) = fs::metadata(folder)
    {
        let mode = files::mode_of(&folder_meta);
        let sticky = mode & 0o1000 != 0;
        if !sticky {
            check_mode(who, "folder", folder, mode)?;
        }
    }
    Ok(meta)
}

fn check_mode(who: &Who, what: &'static str, path: &Path, mode: u32) -> Result<(), LoadError> {
    if mode & 0o022 != 0 {
        Err(LoadError::Writable {
            who: who.clone(),
            what,
            path: path.to_path_buf(),
            mode: mode & 0o777,
        })
    } else {
        Ok(())
    }
}

/// The modification time of `meta` in seconds since the epoch.
pub fn mtime_of(meta: &fs::Metadata) -> i64 {
    meta.modified().map(crate::time::unix_seconds).unwrap_or(0)
}

/// Checks `path` (see [`check_file`]) and hashes it.
///
/// # Errors
/// See [`check_file`]; or the file cannot be read.
pub fn fingerprint(who: &Who, path: &Path) -> Result<Fingerprint, LoadError> {
    let meta = check_file(who, path)?;
    let sha256 = files::sha256_file(path).map_err(|source| LoadError::Unreadable {
        who: who.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Fingerprint {
        sha256,
        size: meta.len(),
        mtime: mtime_of(&meta),
    })
}

/// Refuses disabled and quarantined entries.
///
/// # Errors
/// The entry is disabled or quarantined.
pub fn check_usable(entry: &PluginEntry) -> Result<(), LoadError> {
    if !entry.enabled {
        return Err(LoadError::Disabled(entry.name.clone()));
    }
    if let Some(q) = entry.quarantined() {
        return Err(LoadError::Quarantined {
            name: entry.name.clone(),
            reason: q.reason.clone(),
            since: q.since.clone(),
        });
    }
    Ok(())
}

/// The cheap checks for listings: usable, recorded API version accepted by this host, file
/// present with safe permissions, and unchanged since it was pinned (when it was loaded and
/// described). The file is hashed only when its size or mtime differ from the registry's;
/// if the hash still matches, the new staleness key is returned so the caller can record it.
///
/// # Errors
/// The first check that fails.
pub fn quick_check(entry: &PluginEntry) -> Result<Option<StalenessKey>, LoadError> {
    check_usable(entry)?;
    let who = Who::Plugin(entry.name.clone());
    // The host may have been upgraded since the plugin was pinned.
    let host = ApiVersion::current();
    let recorded = ApiVersion::parse(&entry.api_version).ok_or_else(|| LoadError::BadVersion {
        who: who.clone(),
        found: entry.api_version.clone(),
        major: host.major,
    })?;
    host.accepts(recorded).map_err(|incompatibility| LoadError::ApiVersion {
        who: who.clone(),
        incompatibility,
    })?;
    let meta = check_file(&who, &entry.path)?;
    if meta.len() != entry.size || mtime_of(&meta) != entry.mtime {
        let now = fingerprint(&who, &entry.path)?;
        if now.sha256 != entry.sha256 {
            return Err(LoadError::Changed {
                who,
                path: entry.path.clone(),
            });
        }
        return Ok(Some(StalenessKey {
            size: now.size,
            mtime: now.mtime,
        }));
    }
    Ok(None)
}

/// A file's size and mtime: when both match the registry, the pinned hash is assumed to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessKey {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// Loads plugins for one process, each library at most once.
#[derive(Debug)]
pub struct Loader {
    home: Home,
    secrets: Arc<SecretStore>,
    loaded: Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>>,
}

impl Loader {
    /// A loader for `home`, lending plugins `secrets`.
    pub fn new(home: &Home, secrets: Arc<SecretStore>) -> Self {
        Self {
            home: home.clone(),
            secrets,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Loads a registered plugin after every check. A plugin loaded earlier in this process is
    /// returned again without reloading.
    ///
    /// # Errors
    /// The first check that fails, as one line.
    pub fn load(&self, entry: &PluginEntry) -> Result<Arc<LoadedPlugin>, LoadError> {
        check_usable(entry)?;
        self.load_unchecked_state(entry)
    }

    /// Like [`Loader::load`] but also loads disabled plugins (for `plugin verify`/`info` of a
    /// plugin the user asks about explicitly). Quarantined plugins are still refused.
    ///
    /// # Errors
    /// The first check that fails, as one line.
    pub fn load_even_disabled(&self, entry: &PluginEntry) -> Result<Arc<LoadedPlugin>, LoadError> {
        if let Some(q) = entry.quarantined() {
            return Err(LoadError::Quarantined {
                name: entry.name.clone(),
                reason: q.reason.clone(),
                since: q.since.clone(),
            });
        }
        self.load_unchecked_state(entry)
    }

    fn load_unchecked_state(&self, entry: &PluginEntry) -> Result<Arc<LoadedPlugin>, LoadError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plugin) = loaded.get(&entry.path) {
            return Ok(plugin.clone());
        }
        let who = Who::Plugin(entry.name.clone());
        let print = fingerprint(&who, &entry.path)?;
        if print.sha256 != entry.sha256 {
            return Err(LoadError::Changed {
                who,
                path: entry.path.clone(),
            });
        }
        let services = PluginServices::named(&entry.name, self.secrets.clone());
        let plugin = open(&self.home, &who, &entry.path, &print.sha256, services)?;
        if plugin.name() != entry.name {
            return Err(LoadError::Renamed {
                registered: entry.name.clone(),
                reported: plugin.name().to_string(),
                path: entry.path.clone(),
            });
        }
        let plugin = Arc::new(plugin);
        loaded.insert(entry.path.clone(), plugin.clone());
        Ok(plugin)
    }

    /// Checks, hashes and loads a library that is not registered yet (`plugin add`).
    ///
    /// # Errors
    /// The first check that fails, as one line.
    pub fn inspect(&self, path: &Path) -> Result<(Arc<LoadedPlugin>, Fingerprint), LoadError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let who = Who::Library(path.to_path_buf());
        let print = fingerprint(&who, path)?;
        if let Some(plugin) = loaded.get(path) {
            return Ok((plugin.clone(), print));
        }
        let services = PluginServices::unnamed(self.secrets.clone());
        let plugin = open(&self.home, &who, path, &print.sha256, services)?;
        if !mailhost_plugin_api::is_valid_plugin_name(plugin.name()) {
            return Err(LoadError::BadName {
                who,
                name: plugin.name().to_string(),
            });
        }
        let plugin = Arc::new(plugin);
        loaded.insert(path.to_path_buf(), plugin.clone());
        Ok((plugin, print))
    }
}


/// Opens the library, checks its API version and layout, runs init and describe: all under a
/// crash marker.
fn open(home: &Home, who: &Who, path: &Path, sha256: &str, services: PluginServices) -> Result<LoadedPlugin, LoadError> {
    let level = LogLevel::from_filter(log::max_level());
    let plugin = open_with(home, who, path, sha256, services.clone().into_box(), level)?;
    services.set_name(plugin.name());
    Ok(plugin)
}

/// Opens a library that is not registered, lending it `services` and logging at up to
/// `max_level`, with the same checks as a registered load (API version, layout, constructor,
/// init, describe) under a crash marker in `home`. Nothing is cached or registered. The caller
/// checks the file first ([`fingerprint`]). Used by `mailhost plugin check`.
///
/// # Errors
/// The first check that fails, as one line.
pub fn open_unregistered(
    home: &Home,
    path: &Path,
    sha256: &str,
    services: HostServicesBox,
    max_level: LogLevel,
) -> Result<LoadedPlugin, LoadError> {
    open_with(home, &Who::Library(path.to_path_buf()), path, sha256, services, max_level)
}

fn open_with(
    home: &Home,
    who: &Who,
    path: &Path,
    sha256: &str,
    services: HostServicesBox,
    level: LogLevel,
) -> Result<LoadedPlugin, LoadError> {
    let name = match who {
        Who::Plugin(name) => name.as_str(),
        Who::Library(_) => "",
    };
    let _marker = LoadingMarker::arm(home, name, path, sha256)?;
    let host = ApiVersion::current();
    let header = lib_header_from_path(path).map_err(|e| library_error(who, e))?;
    let recorded = header.version_strings().version.as_str().to_string();
    let plugin_version = ApiVersion::parse(&recorded).ok_or_else(|| LoadError::BadVersion {
        who: who.clone(),
        found: recorded.clone(),
        major: host.major,
    })?;
    host.accepts(plugin_version).map_err(|incompatibility| LoadError::ApiVersion {
        who: who.clone(),
        incompatibility,
    })?;
    let module = init_module(who, header)?;
    (module.init())(services, level)
        .into_result()
        .map_err(|error| LoadError::Init {
            who: who.clone(),
            error,
        })?;
    let info = (module.describe())()
        .into_result()
        .map_err(|error| LoadError::Describe {
            who: who.clone(),
            error,
        })?;
    log::debug!(
        "loaded {} {} (plugin API {recorded}) from {}",
        info.name,
        info.version,
        path.display()
    );
    Ok(LoadedPlugin::new(path, &plugin_version.to_string(), info, module))
}

/// Checks the root module's layout and runs the library's constructor.
///
/// abi_stable's own `init_root_module` requires a library's prefix types to have at least the
/// host's fields: it supports libraries *newer* than their user. This API promises the reverse:
/// a host of API 1.n loads a plugin built against 1.k for k <= n (newer minors were refused by
/// the version check before this point), and reads the fields the plugin lacks as `None`. So
/// the same layout check runs with the roles swapped: the library's layout is the interface
/// the host's layout must implement. Every shared field, and every type they reach, must still
/// match exactly.
#[allow(unsafe_code)]
fn init_module(who: &Who, header: &'static LibHeader) -> Result<ProviderModule_Ref, LoadError> {
    let major = ApiVersion::current().major;
    let Some(library_layout) = header.layout() else {
        log::debug!("{who}: the library carries no layout information");
        return Err(LoadError::Layout { who: who.clone(), major });
    };
    check_layout_compatibility(library_layout, <ProviderModule_Ref as StableAbi>::LAYOUT).map_err(|report| {
        log::debug!("{who}: abi_stable layout report:\n{report}");
        LoadError::Layout { who: who.clone(), major }
    })?;
    // SAFETY: the root module's layout was checked against this host's just above (see the
    // function's documentation for the direction); the version was checked by the caller and
    // is checked again by abi_stable here. The prefix metadata the library exports tells the
    // accessors which fields it has.
    unsafe { header.init_root_module_with_unchecked_layout::<ProviderModule_Ref>() }
        .map_err(|e| library_error(who, e))
}

/// One line for each way abi_stable can refuse a library.
fn library_error(who: &Who, error: LibraryError) -> LoadError {
    let major = ApiVersion::current().major;
    match error {
        LibraryError::OpenError { err, .. } => LoadError::NotLoadable {
            who: who.clone(),
            detail: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { who: who.clone() },
        LibraryError::ParseVersionError(e) => LoadError::BadVersion {
            who: who.clone(),
            found: e.to_string(),
            major,
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => {
            let host = ApiVersion {
                major: expected_version.major,
                minor: expected_version.minor,
                patch: expected_version.patch,
            };
            let plugin = ApiVersion {
                major: actual_version.major,
                minor: actual_version.minor,
                patch: actual_version.patch,
            };
            match host.accepts(plugin) {
                Err(incompatibility) => LoadError::ApiVersion {
                    who: who.clone(),
                    incompatibility,
                },
                Ok(()) => LoadError::BadVersion {
                    who: who.clone(),
                    found: plugin.to_string(),
                    major,
                },
            }
        }
        LibraryError::RootModule { err, .. } => LoadError::Constructor {
            who: who.clone(),
            detail: match err {
                RootModuleError::Returned(e) => format!("it returned an error: {e}"),
                RootModuleError::Unwound => "it panicked".into(),
            },
        },
        LibraryError::AbiInstability(report) => {
            log::debug!("{who}: abi_stable layout report:\n{report}");
            LoadError::Layout { who: who.clone(), major }
        }
        LibraryError::InvalidAbiHeader(header) => LoadError::AbiHeader {
            who: who.clone(),
            detail: format!("abi_stable ABI {}.{}", header.abi_major, header.abi_minor),
            major,
        },
        LibraryError::InvalidCAbi { .. } => LoadError::AbiHeader {
            who: who.clone(),
            detail: "C ABI self-test failed".into(),
            major,
        },
        LibraryError::Many(errors) => match errors.into_iter().next() {
            Some(first) => library_error(who, first),
            None => LoadError::NotLoadable {
                who: who.clone(),
                detail: "unknown error".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &Path) -> PluginEntry {
        PluginEntry {
            name: "p".into(),
            display_name: String::new(),
            description: String::new(),
            path: path.to_path_buf(),
            enabled: true,
            version: "1".into(),
            api_version: "1.1.0".into(),
            sha256: String::new(),
            size: 0,
            mtime: 0,
            added: String::new(),
            capabilities: Vec::new(),
            settings: Vec::new(),
            staff_fields: Vec::new(),
            quarantine: None,
        }
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        files::chmod(dir.path(), 0o700).expect("chmod");
        dir
    }

    #[test]
    fn missing_files_say_how_to_fix() {
        let error = check_file(&Who::Plugin("x".into()), Path::new("/nonexistent/libx.so")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "plugin 'x': file /nonexistent/libx.so is missing: reinstall it or `mailhost plugin remove x`"
        );
        assert_eq!(error.state(), "missing");
    }

    #[cfg(unix)]
    #[test]
    fn writable_files_and_folders_are_refused() {
        let dir = private_dir();
        let lib = dir.path().join("libp.so");
        fs::write(&lib, b"x").expect("write");
        files::chmod(&lib, 0o644).expect("chmod");
        assert!(check_file(&Who::Plugin("p".into()), &lib).is_ok());
        files::chmod(&lib, 0o666).expect("chmod");
        let error = check_file(&Who::Plugin("p".into()), &lib).unwrap_err().to_string();
        assert!(error.contains("writable by other users") && error.contains("chmod go-w"), "{error}");
        files::chmod(&lib, 0o644).expect("chmod");
        files::chmod(dir.path(), 0o777).expect("chmod");
        let error = check_file(&Who::Plugin("p".into()), &lib).unwrap_err().to_string();
        assert!(error.contains("the folder"), "{error}");
        files::chmod(dir.path(), 0o1777).expect("chmod");
        assert!(check_file(&Who::Plugin("p".into()), &lib).is_ok(), "sticky folders are fine");
        files::chmod(dir.path(), 0o700).expect("chmod");
    }

    #[test]
    fn changed_files_are_caught_even_with_the_same_size() {
        let dir = private_dir();
        let lib = dir.path().join("libp.so");
        fs::write(&lib, b"one").expect("write");
        let print = fingerprint(&Who::Plugin("p".into()), &lib).expect("fingerprint");
        let mut e = entry(&lib);
        e.sha256 = print.sha256;
        e.size = print.size;
        e.mtime = print.mtime;
        assert_eq!(quick_check(&e).expect("unchanged"), None);
        e.mtime -= 5; // touched: re-hashed, same content, new key reported
        assert_eq!(
            quick_check(&e).expect("same content"),
            Some(StalenessKey { size: print.size, mtime: print.mtime })
        );
        e.mtime = print.mtime;
        fs::write(&lib, b"two").expect("write");
        e.mtime -= 10; // as if the rewrite were later
        let error = quick_check(&e).unwrap_err();
        assert_eq!(error.state(), "changed");
        assert!(error.to_string().contains("mailhost plugin add"), "{error}");
    }

    #[test]
    fn disabled_and_quarantined_are_skipped() {
        let mut e = entry(Path::new("/x"));
        e.enabled = false;
        assert_eq!(check_usable(&e).unwrap_err().state(), "disabled");
        e.enabled = true;
        e.quarantine = Some(crate::registry::Quarantine {
            reason: "it crashed".into(),
            since: "t".into(),
            sha256: e.sha256.clone(),
        });
        let error = check_usable(&e).unwrap_err();
        assert_eq!(error.state(), "quarantined");
        assert!(error.to_string().contains("mailhost plugin enable p"), "{error}");
    }

    #[test]
    fn version_refusals_are_one_line() {
        let error = LoadError::ApiVersion {
            who: Who::Plugin("x".into()),
            incompatibility: Incompatibility::Major {
                host: ApiVersion { major: 1, minor: 1, patch: 0 },
                plugin: ApiVersion { major: 2, minor: 0, patch: 0 },
            },
        };
        assert_eq!(
            error.to_string(),
            "plugin 'x' was built for plugin API 2.0; this host provides 1.1: rebuild it against mailhost-plugin-api 1.x"
        );
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused_before_running() {
        let dir = private_dir();
        let home = Home::open(&dir.path().join("home")).expect("home");
        let lib = dir.path().join("libnot.so");
        fs::write(&lib, b"not a library").expect("write");
        let secrets = Arc::new(SecretStore::open(&home).expect("secrets"));
        let loader = Loader::new(&home, secrets);
        let error = loader.inspect(&lib).unwrap_err();
        assert_eq!(error.state(), "not-a-plugin", "{error}");
        assert!(error.to_string().contains("not a loadable library"), "{error}");
        // The marker is gone: no crash is recorded.
        assert!(crate::quarantine::find_crashes(&home).is_empty());
        let mut e = entry(&lib);
        e.sha256 = "00".repeat(32);
        assert_eq!(loader.load(&e).unwrap_err().state(), "changed");
    }
}

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

mod error;
mod file;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{LibHeader, LibraryError, RootModuleError, lib_header_from_path};
use mailhost_plugin_api::{ApiVersion, HostServicesBox, LogLevel, ProviderModule_Ref};

use crate::config::home::Home;
use crate::config::secrets::SecretStore;
use crate::plugins::isolation::Isolation;
use crate::plugins::isolation::supervisor::{Supervisor, Target};
use crate::plugins::provider::{LoadedPlugin, Provider};
use crate::plugins::quarantine::LoadingMarker;
use crate::plugins::redaction::Redactor;
use crate::plugins::registry::PluginEntry;
use crate::plugins::services::PluginServices;

pub use error::{LoadError, Who};
pub use file::{
    Fingerprint, StalenessKey, check_file, check_usable, fingerprint, mtime_of, quick_check,
};

/// Loads plugins for one process, each library at most once, and starts at most one provider
/// process per plugin.
#[derive(Debug)]
pub struct Loader {
    home: Home,
    secrets: Arc<SecretStore>,
    loaded: Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>>,
    providers: Mutex<HashMap<String, Arc<Provider>>>,
    redactor: Arc<Redactor>,
    child_exe: Option<PathBuf>,
}

impl Loader {
    /// A loader for `home`, lending plugins `secrets`.
    pub fn new(home: &Home, secrets: Arc<SecretStore>) -> Self {
        Self {
            redactor: Arc::new(Redactor::new(secrets.clone())),
            home: home.clone(),
            secrets,
            loaded: Mutex::new(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
            child_exe: None,
        }
    }

    /// Runs provider processes with `exe` (a `mailhost` binary) instead of this executable:
    /// for programs that link the host library (benchmarks, embedders).
    #[must_use]
    pub fn with_child_exe(mut self, exe: &Path) -> Self {
        self.child_exe = Some(exe.to_path_buf());
        self
    }

    fn child_exe(&self, who: &Who) -> Result<PathBuf, LoadError> {
        match &self.child_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe().map_err(|e| LoadError::Spawn {
                who: who.clone(),
                detail: format!("cannot find the mailhost executable: {e}"),
            }),
        }
    }

    /// The provider handle of a registered plugin, where its registry entry says it runs: in
    /// its own process (started now, with the loader's checks made in the child) or loaded
    /// into this one. One handle per plugin per process: later calls return the same one while
    /// the pinned file and the isolation mode are unchanged.
    ///
    /// # Errors
    /// The first check that fails, as one line; a provider process that could not start or
    /// crashed while loading.
    pub fn provider(&self, entry: &PluginEntry) -> Result<Arc<Provider>, LoadError> {
        check_usable(entry)?;
        self.provider_unchecked_state(entry)
    }

    /// Like [`Loader::provider`] but also for disabled plugins (`plugin verify`). Quarantined
    /// plugins are still refused.
    ///
    /// # Errors
    /// As [`Loader::provider`].
    pub fn provider_even_disabled(&self, entry: &PluginEntry) -> Result<Arc<Provider>, LoadError> {
        if let Some(q) = entry.quarantined() {
            return Err(LoadError::Quarantined {
                name: entry.name.clone(),
                reason: q.reason.clone(),
                since: q.since.clone(),
            });
        }
        self.provider_unchecked_state(entry)
    }

    fn provider_unchecked_state(&self, entry: &PluginEntry) -> Result<Arc<Provider>, LoadError> {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(provider) = providers.get(&entry.name)
            && provider.serves(entry)
        {
            return Ok(provider.clone());
        }
        let provider = match entry.isolation {
            Isolation::InProcess => Provider::in_process(self.load_unchecked_state(entry)?),
            Isolation::Process => {
                let who = Who::Plugin(entry.name.clone());
                let target = Target {
                    name: Some(entry.name.clone()),
                    path: entry.path.clone(),
                    sha256: Some(entry.sha256.clone()),
                };
                let services = PluginServices::named(&entry.name, self.secrets.clone());
                let supervisor =
                    Supervisor::start(target, &self.child_exe(&who)?, Some(&self.home), services)?;
                Provider::isolated(supervisor)
            }
        };
        let provider = Arc::new(provider.redacting(self.redactor.clone()));
        providers.insert(entry.name.clone(), provider.clone());
        Ok(provider)
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

    /// Loads a registered plugin in a provider process of its own, whatever its isolation
    /// mode, with every check (`plugin verify`). The process is not kept; crashes are reported
    /// but not counted towards quarantine.
    ///
    /// # Errors
    /// The first check that fails, as one line; a crash while loading.
    pub fn inspect_registered(&self, entry: &PluginEntry) -> Result<Arc<Provider>, LoadError> {
        let who = Who::Plugin(entry.name.clone());
        let target = Target {
            name: Some(entry.name.clone()),
            path: entry.path.clone(),
            sha256: Some(entry.sha256.clone()),
        };
        let services = PluginServices::named(&entry.name, self.secrets.clone());
        let supervisor = Supervisor::start(target, &self.child_exe(&who)?, None, services)?;
        Ok(Arc::new(Provider::isolated(supervisor)))
    }

    /// Checks, hashes and loads a library that is not registered yet (`plugin add`), always
    /// in a provider process of its own: a library whose static initialisers crash is refused
    /// with one line, and nothing of it runs in this process. The fingerprint is of the file
    /// the child opened.
    ///
    /// # Errors
    /// The first check that fails, as one line; a crash while loading.
    pub fn inspect(&self, path: &Path) -> Result<(Arc<Provider>, Fingerprint), LoadError> {
        let who = Who::Library(path.to_path_buf());
        // The cheap file checks first, here: no process is started for a missing file.
        check_file(&who, path)?;
        let target = Target {
            name: None,
            path: path.to_path_buf(),
            sha256: None,
        };
        let services = PluginServices::unnamed(self.secrets.clone());
        let supervisor = Supervisor::start(target, &self.child_exe(&who)?, None, services)?;
        if supervisor.loaded().info.name.as_str() == crate::config::settings::HOST_TABLE {
            return Err(LoadError::ReservedName {
                who,
                name: supervisor.loaded().info.name.to_string(),
            });
        }
        let loaded = supervisor.loaded();
        let print = Fingerprint {
            sha256: loaded.sha256.clone(),
            size: loaded.size,
            mtime: loaded.mtime,
        };
        Ok((Arc::new(Provider::isolated(supervisor)), print))
    }
}

/// Opens the library, checks its API version and layout, runs init and describe: all under a
/// crash marker.
fn open(
    home: &Home,
    who: &Who,
    path: &Path,
    sha256: &str,
    services: PluginServices,
) -> Result<LoadedPlugin, LoadError> {
    let level = LogLevel::from_filter(log::max_level());
    let plugin = open_with(
        Some(home),
        who,
        path,
        sha256,
        services.clone().into_box(),
        level,
    )?;
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
    open_with(
        Some(home),
        &Who::Library(path.to_path_buf()),
        path,
        sha256,
        services,
        max_level,
    )
}

/// Opens a library inside the provider child: the file checks, the hash (against `sha256`
/// when the host pinned one), then the same load as in process, without a crash marker (the
/// host watches the child instead). With `name`, the library must report that name; without,
/// it must report a valid one.
///
/// # Errors
/// The first check that fails, as one line.
pub fn open_in_child(
    path: &Path,
    sha256: Option<&str>,
    name: Option<&str>,
    services: HostServicesBox,
    level: LogLevel,
) -> Result<(LoadedPlugin, Fingerprint), LoadError> {
    let who = match name {
        Some(name) => Who::Plugin(name.to_string()),
        None => Who::Library(path.to_path_buf()),
    };
    let print = fingerprint(&who, path)?;
    if let Some(pinned) = sha256
        && pinned != print.sha256
    {
        return Err(LoadError::Changed {
            who,
            path: path.to_path_buf(),
        });
    }
    let plugin = open_with(None, &who, path, &print.sha256, services, level)?;
    match name {
        Some(name) if plugin.name() != name => Err(LoadError::Renamed {
            registered: name.to_string(),
            reported: plugin.name().to_string(),
            path: path.to_path_buf(),
        }),
        None if !mailhost_plugin_api::is_valid_plugin_name(plugin.name()) => {
            Err(LoadError::BadName {
                who,
                name: plugin.name().to_string(),
            })
        }
        _ => Ok((plugin, print)),
    }
}

fn open_with(
    home: Option<&Home>,
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
    let _marker = match home {
        Some(home) => Some(LoadingMarker::arm(home, name, path, sha256)?),
        None => None,
    };
    let host = ApiVersion::current();
    let header = lib_header_from_path(path).map_err(|e| library_error(who, e))?;
    let recorded = header.version_strings().version.as_str().to_string();
    let plugin_version = ApiVersion::parse(&recorded).ok_or_else(|| LoadError::BadVersion {
        who: who.clone(),
        found: recorded.clone(),
        major: host.major,
    })?;
    host.accepts(plugin_version)
        .map_err(|incompatibility| LoadError::ApiVersion {
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
    Ok(LoadedPlugin::new(
        path,
        &plugin_version.to_string(),
        info,
        module,
    ))
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
        return Err(LoadError::Layout {
            who: who.clone(),
            major,
        });
    };
    check_layout_compatibility(library_layout, <ProviderModule_Ref as StableAbi>::LAYOUT).map_err(
        |report| {
            log::debug!("{who}: abi_stable layout report:\n{report}");
            LoadError::Layout {
                who: who.clone(),
                major,
            }
        },
    )?;
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
            LoadError::Layout {
                who: who.clone(),
                major,
            }
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

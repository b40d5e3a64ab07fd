//! The plugin registry, `plugins.toml`: one `[[plugin]]` entry per registered library with its
//! pinned SHA-256, the versions it reported, a cheap staleness key (size and mtime, as
//! GStreamer's registry does), the settings it declared (cached so configuration works without
//! loading the library) and, after a crash, a `[plugin.quarantine]` table.
//!
//! The file is meant to be readable and editable by hand. Writes go through [`update`], which
//! holds an exclusive lock on `plugins.toml.lock` across read-modify-write and replaces the file
//! atomically, so concurrent commands never lose an entry. A file that does not parse is
//! reported with its line and is never overwritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::{ProviderInfo, SettingKind, SettingSpec};
use serde::{Deserialize, Serialize};

use crate::config::files::{self, FileError, FileLock};
use crate::config::home::Home;
pub use crate::plugins::isolation::Isolation;

/// The registry format this host reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const HEADER: &str = "# mailhost plugin registry. Manage it with `mailhost plugin add|enable|disable|remove`;\n\
# hand edits are allowed, `mailhost plugin verify` checks the result.\n\n";

/// What is wrong with the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file does not parse, or breaks a rule (duplicate name).
    #[error("{}:{line}: {message}; fix that line by hand (mailhost does not change a file it cannot read)", path.display())]
    Invalid {
        /// The registry file.
        path: PathBuf,
        /// The 1-based line at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A newer mailhost wrote the file.
    #[error("{}: schema_version {found} is not supported (this mailhost reads {SCHEMA_VERSION}); use the mailhost that wrote it", path.display())]
    Schema {
        /// The registry file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// No plugin of that name.
    #[error("no plugin named '{name}' is registered{}", known_names(known))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },
    /// The registry could not be serialised (a bug).
    #[error("cannot write the plugin registry: {0}")]
    Serialize(String),
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "; none are registered yet: run `mailhost plugin add PATH`".into()
    } else {
        format!("; registered plugins: {}", known.join(", "))
    }
}

/// The whole registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The registered plugins, in the order they were added.
    #[serde(default, rename = "plugin", skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginEntry>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            plugins: Vec::new(),
        }
    }
}

/// One registered plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The name the plugin reports (`graph-email`).
    pub name: String,
    /// The name users pick as Email Provider (`Microsoft Graph`).
    #[serde(default)]
    pub display_name: String,
    /// One sentence on what it does.
    #[serde(default)]
    pub description: String,
    /// The library's absolute path.
    pub path: PathBuf,
    /// Whether the host uses it.
    pub enabled: bool,
    /// The plugin's own version.
    pub version: String,
    /// The plugin API version it was built against.
    pub api_version: String,
    /// The pinned SHA-256 of the library file.
    pub sha256: String,
    /// The file's size when pinned (staleness key).
    pub size: u64,
    /// The file's modification time when pinned, seconds since the epoch (staleness key).
    pub mtime: i64,
    /// When it was added (RFC 3339).
    pub added: String,
    /// Named features the plugin declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// System settings the plugin declared.
    #[serde(default, rename = "setting", skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingDecl>,
    /// Staff custom fields the plugin declared.
    #[serde(default, rename = "staff_field", skip_serializing_if = "Vec::is_empty")]
    pub staff_fields: Vec<SettingDecl>,
    /// Sending limits the plugin declared (plugin API 1.2): which of its settings holds each.
    #[serde(default, rename = "limit", skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitDecl>,
    /// Where the provider runs: its own child process (the default) or inside mailhost.
    #[serde(default, skip_serializing_if = "Isolation::is_default")]
    pub isolation: Isolation,
    /// When its provider process last crashed (seconds since the epoch, the last 10 minutes
    /// only): 3 of them quarantine the plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashes: Vec<i64>,
    /// Set when the plugin crashed the host while loading, or its process crashed too often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
}

/// A sending limit as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDecl {
    /// `messages`, `recipients`, `recipients-per-message` or `concurrent-requests`.
    pub kind: String,
    /// The setting that holds the number.
    pub setting: String,
    /// The sliding window in seconds (0 for none).
    #[serde(default)]
    pub window_seconds: u64,
}

impl LimitDecl {
    /// The plugin API form (an unknown kind reads as one the host ignores).
    pub fn to_spec(&self) -> mailhost_plugin_api::LimitSpec {
        let kind = [
            mailhost_plugin_api::LimitKind::MESSAGES,
            mailhost_plugin_api::LimitKind::RECIPIENTS,
            mailhost_plugin_api::LimitKind::RECIPIENTS_PER_MESSAGE,
            mailhost_plugin_api::LimitKind::CONCURRENT_REQUESTS,
        ]
        .into_iter()
        .find(|k| k.name() == self.kind);
        match kind {
            Some(kind) => {
                mailhost_plugin_api::LimitSpec::new(kind, &self.setting, self.window_seconds)
            }
            None => mailhost_plugin_api::LimitSpec {
                kind: mailhost_plugin_api::LimitKind::MESSAGES,
                setting: String::new().into(),
                window_seconds: 0,
            },
        }
    }
}

impl From<&mailhost_plugin_api::LimitSpec> for LimitDecl {
    fn from(spec: &mailhost_plugin_api::LimitSpec) -> Self {
        Self {
            kind: spec.kind.name().to_string(),
            setting: spec.setting.to_string(),
            window_seconds: spec.window_seconds,
        }
    }
}

impl PluginEntry {
    /// Whether the quarantine applies to the pinned file (a re-pinned file clears it).
    pub fn quarantined(&self) -> Option<&Quarantine> {
        self.quarantine.as_ref().filter(|q| q.sha256 == self.sha256)
    }
}

#[cfg(test)]
impl PluginEntry {
    /// An enabled entry for unit tests: `name` at `path`, version 1 on API 1.1.0, with nothing
    /// pinned, declared or quarantined.
    pub(crate) fn for_test(name: &str, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            display_name: String::new(),
            description: String::new(),
            path: path.into(),
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
            isolation: Isolation::Process,
            crashes: Vec::new(),
            limits: Vec::new(),
            quarantine: None,
        }
    }
}

/// A declared setting or staff field, as cached in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDecl {
    /// The key (`ClientID`).
    pub key: String,
    /// The type name: string, bool, integer, url, path or email.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a send fails without it.
    #[serde(default)]
    pub required: bool,
    /// The value used when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether the value goes to the secret store.
    #[serde(default)]
    pub secret: bool,
    /// What it is.
    #[serde(default)]
    pub help: String,
}

impl SettingDecl {
    /// The declared type (unknown names count as string).
    pub fn setting_kind(&self) -> SettingKind {
        [
            SettingKind::STRING,
            SettingKind::BOOL,
            SettingKind::INTEGER,
            SettingKind::URL,
            SettingKind::PATH,
            SettingKind::EMAIL,
        ]
        .into_iter()
        .find(|k| k.name() == self.kind)
        .unwrap_or(SettingKind::STRING)
    }
}

impl From<&SettingSpec> for SettingDecl {
    fn from(spec: &SettingSpec) -> Self {
        Self {
            key: spec.key.to_string(),
            kind: spec.kind.name().to_string(),
            required: spec.required,
            default: spec.default.as_ref().map(|d| d.to_string()).into_option(),
            secret: spec.secret,
            help: spec.help.to_string(),
        }
    }
}

/// Why and since when a plugin is skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quarantine {
    /// What happened.
    pub reason: String,
    /// When (RFC 3339).
    pub since: String,
    /// The hash of the file that crashed; a different file is not quarantined.
    pub sha256: String,
}

impl PluginEntry {
    /// Copies what the plugin says about itself into the entry.
    pub fn set_description(&mut self, info: &ProviderInfo, api_version: &str) {
        self.name = info.name.to_string();
        self.display_name = info.display_name.to_string();
        self.description = info.description.to_string();
        self.version = info.version.to_string();
        self.api_version = api_version.to_string();
        self.capabilities = info.capabilities.iter().map(|c| c.to_string()).collect();
        self.settings = info.settings.iter().map(SettingDecl::from).collect();
        self.staff_fields = info.staff_fields.iter().map(SettingDecl::from).collect();
    }

    /// Copies the sending limits the plugin declares into the entry.
    pub fn set_limits(&mut self, limits: &[mailhost_plugin_api::LimitSpec]) {
        self.limits = limits
            .iter()
            .filter(|l| l.kind.is_known())
            .map(LimitDecl::from)
            .collect();
    }

    /// The declared limits in plugin API form.
    pub fn limit_specs(&self) -> Vec<mailhost_plugin_api::LimitSpec> {
        self.limits
            .iter()
            .map(LimitDecl::to_spec)
            .filter(|s| !s.setting.is_empty())
            .collect()
    }
}

impl Registry {
    /// Reads the registry at `path`; a missing file is an empty registry.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        match files::read_optional(path)? {
            None => Ok(Self::default()),
            Some(text) => Self::parse(&text, path),
        }
    }

    /// Parses registry text; `path` is only used in messages.
    ///
    /// # Errors
    /// Bad TOML, an unknown or missing field, a duplicate name, or another schema version.
    pub fn parse(text: &str, path: &Path) -> Result<Self, RegistryError> {
        let registry: Self = toml::from_str(text).map_err(|e| RegistryError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |span| files::line_of(text, span.start)),
            message: e.message().trim().to_string(),
        })?;
        if registry.schema_version != SCHEMA_VERSION {
            return Err(RegistryError::Schema {
                path: path.to_path_buf(),
                found: registry.schema_version,
            });
        }
        let mut seen = BTreeSet::new();
        for (index, entry) in registry.plugins.iter().enumerate() {
            if !seen.insert(entry.name.as_str()) {
                return Err(RegistryError::Invalid {
                    path: path.to_path_buf(),
                    line: name_line(text, index).unwrap_or(1),
                    message: format!(
                        "plugin '{}' is registered twice; delete one of the two [[plugin]] entries",
                        entry.name
                    ),
                });
            }
        }
        Ok(registry)
    }

    /// The file's text.
    ///
    /// # Errors
    /// Serialisation failed (a bug).
    pub fn to_toml(&self) -> Result<String, RegistryError> {
        let body = toml::to_string(self).map_err(|e| RegistryError::Serialize(e.to_string()))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// The entry named `name`.
    pub fn find(&self, name: &str) -> Option<&PluginEntry> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// The entry named `name`, mutable.
    pub fn find_mut(&mut self, name: &str) -> Option<&mut PluginEntry> {
        self.plugins.iter_mut().find(|p| p.name == name)
    }

    /// The entry named `name`, or an error listing the registered names.
    ///
    /// # Errors
    /// No such plugin.
    pub fn require(&self, name: &str) -> Result<&PluginEntry, RegistryError> {
        self.find(name).ok_or_else(|| self.unknown(name))
    }

    /// The entry named `name`, mutable, or an error listing the registered names.
    ///
    /// # Errors
    /// No such plugin.
    pub fn require_mut(&mut self, name: &str) -> Result<&mut PluginEntry, RegistryError> {
        let error = self.unknown(name);
        self.find_mut(name).ok_or(error)
    }

    /// The entry whose name or display name is `text`, ignoring case.
    pub fn find_provider(&self, text: &str) -> Option<&PluginEntry> {
        let text = text.trim();
        self.plugins
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(text))
            .or_else(|| {
                self.plugins.iter().find(|p| {
                    !p.display_name.is_empty() && p.display_name.eq_ignore_ascii_case(text)
                })
            })
    }

    /// The "unknown plugin" error for `name`.
    pub fn unknown(&self, name: &str) -> RegistryError {
        RegistryError::Unknown {
            name: name.to_string(),
            known: self.plugins.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// The line of the `name` key of the `index`-th `[[plugin]]` entry.
fn name_line(text: &str, index: usize) -> Option<usize> {
    #[derive(Deserialize)]
    struct Names {
        #[serde(default)]
        plugin: Vec<Name>,
    }
    #[derive(Deserialize)]
    struct Name {
        name: toml::Spanned<String>,
    }
    let names: Names = toml::from_str(text).ok()?;
    let span = names.plugin.get(index)?.name.span();
    Some(files::line_of(text, span.start))
}

/// Reads the registry of `home` (no lock: writes are atomic renames).
///
/// # Errors
/// See [`Registry::load`].
pub fn load(home: &Home) -> Result<Registry, RegistryError> {
    Registry::load(&home.registry_path())
}

/// Runs `change` on the registry of `home` under its exclusive lock and saves the result
/// atomically if `change` succeeds. Two concurrent updates are serialised, so neither is lost.
///
/// # Errors
/// The registry cannot be read, parsed or written, or `change` failed (nothing is written).
pub fn update<T, E>(home: &Home, change: impl FnOnce(&mut Registry) -> Result<T, E>) -> Result<T, E>
where
    E: From<RegistryError>,
{
    let path = home.registry_path();
    let _lock = FileLock::acquire(&files::lock_path_for(&path)).map_err(RegistryError::from)?;
    let mut registry = Registry::load(&path)?;
    let before = registry.clone();
    let value = change(&mut registry)?;
    if registry != before {
        let text = registry.to_toml()?;
        files::atomic_write(&path, text.as_bytes(), 0o600).map_err(RegistryError::from)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> PluginEntry {
        PluginEntry {
            name: name.into(),
            display_name: format!("{name} display"),
            description: String::new(),
            path: PathBuf::from(format!("/plugins/lib{name}.so")),
            enabled: true,
            version: "1.0.0".into(),
            api_version: "1.1.0".into(),
            sha256: "ab".repeat(32),
            size: 10,
            mtime: 1_700_000_000,
            added: "2026-01-01T00:00:00Z".into(),
            capabilities: vec!["html".into()],
            settings: vec![SettingDecl {
                key: "Directory".into(),
                kind: "path".into(),
                required: true,
                default: None,
                secret: false,
                help: "where".into(),
            }],
            staff_fields: Vec::new(),
            isolation: Isolation::Process,
            crashes: Vec::new(),
            limits: Vec::new(),
            quarantine: None,
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let registry = Registry {
            schema_version: 1,
            plugins: vec![entry("a"), entry("b")],
        };
        let text = registry.to_toml().expect("serialise");
        assert!(text.contains("[[plugin]]"), "{text}");
        let back = Registry::parse(&text, Path::new("plugins.toml")).expect("parse");
        assert_eq!(back, registry);
    }

    #[test]
    fn unknown_field_names_the_line() {
        let mut text = Registry {
            schema_version: 1,
            plugins: vec![entry("a")],
        }
        .to_toml()
        .expect("serialise");
        text = text.replace("enabled = true", "enabled = true\nbogus = 1");
        let line = text
            .lines()
            .position(|l| l.starts_with("bogus"))
            .expect("line")
            + 1;
        let error = Registry::parse(&text, Path::new("/h/plugins.toml")).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("/h/plugins.toml:{line}:")),
            "{shown}"
        );
        assert!(shown.contains("bogus"), "{shown}");
    }

    #[test]
    fn bad_toml_names_the_line() {
        let text = "schema_version = 1\n\n[[plugin]]\nname = \"a\nenabled = true\n";
        let error = Registry::parse(text, Path::new("plugins.toml")).unwrap_err();
        assert!(error.to_string().starts_with("plugins.toml:4:"), "{error}");
    }

    #[test]
    fn missing_field_is_reported() {
        let text = "schema_version = 1\n[[plugin]]\nname = \"a\"\n";
        let error = Registry::parse(text, Path::new("plugins.toml")).unwrap_err();
        assert!(error.to_string().contains("missing field"), "{error}");
    }

    #[test]
    fn duplicate_names_point_at_the_second() {
        let registry = Registry {
            schema_version: 1,
            plugins: vec![entry("a"), entry("a")],
        };
        let text = registry.to_toml().expect("serialise");
        let second = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("name = "))
            .nth(1)
            .map(|(i, _)| i + 1)
            .expect("two names");
        let error = Registry::parse(&text, Path::new("plugins.toml")).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("plugins.toml:{second}:")),
            "{shown}"
        );
        assert!(shown.contains("registered twice"), "{shown}");
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let error = Registry::parse("schema_version = 2\n", Path::new("p")).unwrap_err();
        assert!(matches!(error, RegistryError::Schema { found: 2, .. }));
    }

    #[test]
    fn unknown_names_list_the_known() {
        let registry = Registry {
            schema_version: 1,
            plugins: vec![entry("a"), entry("b")],
        };
        let error = registry.require("c").unwrap_err().to_string();
        assert!(error.contains("'c'") && error.contains("a, b"), "{error}");
        let empty = Registry::default().require("c").unwrap_err().to_string();
        assert!(empty.contains("mailhost plugin add"), "{empty}");
    }

    #[test]
    fn providers_match_name_or_display_name() {
        let mut graph = entry("graph-email");
        graph.display_name = "Microsoft Graph".into();
        let registry = Registry {
            schema_version: 1,
            plugins: vec![entry("a"), graph],
        };
        assert_eq!(
            registry
                .find_provider("microsoft graph")
                .map(|p| p.name.as_str()),
            Some("graph-email")
        );
        assert_eq!(
            registry
                .find_provider("GRAPH-EMAIL")
                .map(|p| p.name.as_str()),
            Some("graph-email")
        );
        assert!(registry.find_provider("smtp").is_none());
    }

    #[test]
    fn update_never_overwrites_a_broken_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        std::fs::write(home.registry_path(), "schema_version = \n").expect("write");
        let result: Result<(), RegistryError> = update(&home, |r| {
            r.plugins.push(entry("a"));
            Ok(())
        });
        assert!(result.is_err());
        assert_eq!(
            std::fs::read_to_string(home.registry_path()).expect("read"),
            "schema_version = \n"
        );
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let home = home.clone();
                std::thread::spawn(move || {
                    update(&home, |r| -> Result<(), RegistryError> {
                        r.plugins.push(entry(&format!("p{i}")));
                        Ok(())
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("join").expect("update");
        }
        assert_eq!(load(&home).expect("load").plugins.len(), 8);
    }

    #[test]
    fn quarantine_applies_only_to_the_pinned_file() {
        let mut e = entry("a");
        e.quarantine = Some(Quarantine {
            reason: "crashed".into(),
            since: "x".into(),
            sha256: e.sha256.clone(),
        });
        assert!(e.quarantined().is_some());
        e.sha256 = "cd".repeat(32);
        assert!(e.quarantined().is_none());
    }
}

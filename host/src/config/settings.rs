//! System configuration, `settings.toml`: a table per plugin of the settings it declares
//! (`[graph-email]` `ClientID = "..."`). Secret settings live in the secret store instead.
//!
//! Values are validated against the declarations cached in the registry, so configuration works
//! even when the library itself cannot be loaded. The file is read on every command, so a change
//! takes effect on the next send.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::Setting;

use crate::config::files::{self, FileError, FileLock};
use crate::config::home::Home;
use crate::config::secrets::{self, SecretError, SecretStore};
use crate::plugins::registry::{PluginEntry, SettingDecl};

/// Why a setting was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The secret store failed.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// The file does not parse.
    #[error("{}:{line}: {message}; fix that line by hand (mailhost does not change a file it cannot read)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The plugin declares no such key.
    #[error(
        "plugin '{plugin}' has no setting '{key}'; {}",
        valid_keys(plugin, valid)
    )]
    UnknownKey {
        /// The plugin.
        plugin: String,
        /// The key typed.
        key: String,
        /// The declared keys.
        valid: Vec<String>,
    },
    /// The value does not fit the declared type.
    #[error(
        "{what} '{key}' of plugin '{plugin}' takes {} {kind}: {problem}",
        article(kind)
    )]
    BadValue {
        /// "setting" or "staff field".
        what: &'static str,
        /// The plugin.
        plugin: String,
        /// The key.
        key: String,
        /// The declared type.
        kind: String,
        /// What is wrong with the value.
        problem: String,
    },
    /// Required settings are not set.
    #[error("plugin '{plugin}' needs {}: run {}", missing.join(", "), missing.iter().map(|k| format!("`mailhost config set {plugin} {k} VALUE`")).collect::<Vec<_>>().join(" and "))]
    MissingRequired {
        /// The plugin.
        plugin: String,
        /// The required keys with no value.
        missing: Vec<String>,
    },
}

fn valid_keys(plugin: &str, valid: &[String]) -> String {
    if valid.is_empty() {
        format!("it declares no settings (see `mailhost plugin info {plugin}`)")
    } else {
        format!(
            "valid keys: {}; run `mailhost config set {plugin} KEY VALUE`",
            valid.join(", ")
        )
    }
}

/// The reserved table of host-wide settings in settings.toml: `[mailhost]` (no plugin may
/// register under this name).
pub const HOST_TABLE: &str = "mailhost";
/// `RetainDays`: sent emails older than this many days are deleted (0 keeps them forever).
pub const RETAIN_DAYS: &str = "RetainDays";
/// `RetainBodyDays`: bodies and spooled attachments of sent emails older than this many days are
/// dropped, the record kept (0 keeps them until the record goes).
pub const RETAIN_BODY_DAYS: &str = "RetainBodyDays";
/// `SecretBackend`: where secrets live: file, keyring or systemd.
pub const SECRET_BACKEND: &str = "SecretBackend";

/// One host-wide setting of the `[mailhost]` table.
#[derive(Debug, Clone, Copy)]
pub struct HostSettingSpec {
    /// The key.
    pub key: &'static str,
    /// The type, as plugin settings name theirs (`integer`, `string`).
    pub kind: &'static str,
    /// The default value.
    pub default: &'static str,
    /// The values allowed (empty: any of the type).
    pub choices: &'static [&'static str],
    /// The largest number allowed, for integers.
    pub max: u64,
    /// One line of help.
    pub help: &'static str,
}

/// The host-wide settings of the `[mailhost]` table (data protection); the per-plugin host-level
/// settings are [`HOST_SETTINGS`].
pub const HOST_WIDE_SETTINGS: &[HostSettingSpec] = &[
    HostSettingSpec {
        key: RETAIN_DAYS,
        kind: "integer",
        default: "90",
        choices: &[],
        max: 36_500,
        help: "Days a sent email's record is kept before `email purge` (and serve, daily) deletes it; 0 keeps it forever",
    },
    HostSettingSpec {
        key: RETAIN_BODY_DAYS,
        kind: "integer",
        default: "30",
        choices: &[],
        max: 36_500,
        help: "Days a sent email's body and spooled attachments are kept; the record stays until RetainDays; 0 keeps them",
    },
    HostSettingSpec {
        key: SECRET_BACKEND,
        kind: "string",
        default: "file",
        choices: &["file", "keyring", "systemd"],
        max: 0,
        help: "Where secrets live: file (secrets.toml, 0600), keyring (the operating system's), systemd (read-only credentials); move them with `mailhost secrets migrate --to BACKEND`",
    },
];

impl HostSettingSpec {
    /// The declaration, as plugin settings have one.
    pub fn decl(&self) -> SettingDecl {
        SettingDecl {
            key: self.key.to_string(),
            kind: self.kind.to_string(),
            required: false,
            default: Some(self.default.to_string()),
            secret: false,
            help: self.help.to_string(),
        }
    }

    /// Checks `value` and returns it in canonical form.
    ///
    /// # Errors
    /// The value does not fit the type, range or choices.
    pub fn normalize(&self, value: &str) -> Result<String, SettingsError> {
        let decl = self.decl();
        let value = normalize("setting", HOST_TABLE, &decl, value)?;
        let bad = |problem: String| SettingsError::BadValue {
            what: "setting",
            plugin: HOST_TABLE.to_string(),
            key: self.key.to_string(),
            kind: self.kind.to_string(),
            problem,
        };
        if !self.choices.is_empty() {
            return self
                .choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(value.trim()))
                .map(|c| (*c).to_string())
                .ok_or_else(|| {
                    bad(format!(
                        "'{value}' is not one of {}",
                        self.choices.join(", ")
                    ))
                });
        }
        if self.kind == "integer" {
            match value.parse::<u64>() {
                Ok(n) if n <= self.max => {}
                _ => {
                    return Err(bad(format!(
                        "'{value}' must be a whole number from 0 to {}",
                        self.max
                    )));
                }
            }
        }
        Ok(value)
    }
}

/// The spec of host setting `key` (case-insensitive).
///
/// # Errors
/// No such host setting: the error lists them.
pub fn host_spec(key: &str) -> Result<&'static HostSettingSpec, SettingsError> {
    HOST_WIDE_SETTINGS
        .iter()
        .find(|s| s.key.eq_ignore_ascii_case(key))
        .ok_or_else(|| SettingsError::UnknownKey {
            plugin: HOST_TABLE.to_string(),
            key: key.to_string(),
            valid: HOST_WIDE_SETTINGS
                .iter()
                .map(|s| s.key.to_string())
                .collect(),
        })
}

/// The value of host setting `key`: the stored one if it is valid, else the default (a bad
/// hand edit is warned about, never fatal).
pub fn host_value(settings: &Settings, key: &str) -> String {
    let Ok(spec) = host_spec(key) else {
        return String::new();
    };
    match settings.value(HOST_TABLE, spec.key) {
        Some(stored) => spec.normalize(stored).unwrap_or_else(|e| {
            log::warn!(
                "settings.toml: [mailhost] {}: {e}; using the default {}",
                spec.key,
                spec.default
            );
            spec.default.to_string()
        }),
        None => spec.default.to_string(),
    }
}

/// The value of an integer host setting.
pub fn host_number(settings: &Settings, key: &str) -> u64 {
    host_value(settings, key).parse().unwrap_or(0)
}

/// The `config list` rows of the host settings.
pub fn host_rows(settings: &Settings) -> Vec<SettingRow> {
    HOST_WIDE_SETTINGS
        .iter()
        .map(|spec| {
            let (shown, source) = match settings.value(HOST_TABLE, spec.key) {
                Some(v) => (Some(v.to_string()), Source::Set),
                None => (Some(spec.default.to_string()), Source::Default),
            };
            SettingRow {
                decl: spec.decl(),
                shown,
                source,
            }
        })
        .collect()
}

/// The contents of `settings.toml`: plugin name → key → value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The tables.
    pub plugins: BTreeMap<String, BTreeMap<String, String>>,
}

impl Settings {
    /// Reads `path`; a missing file has no settings.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let Some(text) = files::read_optional(path)? else {
            return Ok(Self::default());
        };
        let invalid = |line, message: String| SettingsError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let raw: BTreeMap<String, toml::Value> = toml::from_str(&text).map_err(|e| {
            invalid(
                e.span().map_or(1, |s| files::line_of(&text, s.start)),
                e.message().trim().to_string(),
            )
        })?;
        let mut plugins = BTreeMap::new();
        for (plugin, table) in raw {
            let toml::Value::Table(table) = table else {
                return Err(invalid(
                    1,
                    format!("'{plugin}' must be a table: [{plugin}]"),
                ));
            };
            let mut values = BTreeMap::new();
            for (key, value) in table {
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(invalid(
                            1,
                            format!("[{plugin}] {key} must be a string, number or boolean"),
                        ));
                    }
                };
                values.insert(key, text);
            }
            plugins.insert(plugin, values);
        }
        Ok(Self { plugins })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# mailhost system configuration: `mailhost config set PLUGIN KEY VALUE`.\n",
        );
        for (plugin, values) in &self.plugins {
            if values.is_empty() {
                continue;
            }
            let table: toml::Table = values
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                .collect();
            let mut doc = toml::Table::new();
            doc.insert(plugin.clone(), toml::Value::Table(table));
            out.push('\n');
            out.push_str(&toml::to_string(&doc).unwrap_or_default());
        }
        out
    }

    /// The stored value of `plugin`'s `key`.
    pub fn value(&self, plugin: &str, key: &str) -> Option<&str> {
        self.plugins.get(plugin)?.get(key).map(String::as_str)
    }
}

/// `a` or `an` before a type name (`an integer`, `an email`, `a url`).
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Reads `settings.toml` of `home`.
///
/// # Errors
/// See [`Settings::load`].
pub fn load(home: &Home) -> Result<Settings, SettingsError> {
    Settings::load(&home.settings_path())
}

/// Changes `settings.toml` under its lock and replaces it atomically.
///
/// # Errors
/// The file cannot be read, parsed or written.
pub fn update(home: &Home, change: impl FnOnce(&mut Settings)) -> Result<(), SettingsError> {
    let path = home.settings_path();
    let _lock = FileLock::acquire(&files::lock_path_for(&path))?;
    let mut settings = Settings::load(&path)?;
    change(&mut settings);
    files::atomic_write(&path, settings.to_toml().as_bytes(), 0o600)?;
    Ok(())
}

/// The host-level settings every plugin has beside the ones it declares: how long one send may
/// take before the host gives up on it, and how long the delivery engine keeps retrying.
pub const HOST_SETTINGS: [(&str, &str, &str); 3] = [
    (
        SEND_TIMEOUT_SECONDS,
        "300",
        "Seconds one send may take; past it the send is abandoned and the email becomes unknown (host setting)",
    ),
    (
        MAX_ATTEMPTS,
        "10",
        "Attempts after which a throttled or transiently failing email ends failed (host setting)",
    ),
    (
        MAX_AGE_HOURS,
        "72",
        "Hours after which an email still not sent ends failed with its last error (host setting)",
    ),
];

/// Host setting: seconds one send may take.
pub const SEND_TIMEOUT_SECONDS: &str = "SendTimeoutSeconds";
/// Host setting: attempts before an email ends failed.
pub const MAX_ATTEMPTS: &str = "MaxAttempts";
/// Host setting: hours before an email ends failed.
pub const MAX_AGE_HOURS: &str = "MaxAgeHours";

/// Every setting of `entry`: the ones its plugin declares, then the host-level ones it does not
/// declare itself.
pub fn declarations(entry: &PluginEntry) -> Vec<SettingDecl> {
    let mut decls = entry.settings.clone();
    for (key, default, help) in HOST_SETTINGS {
        if !decls.iter().any(|d| d.key.eq_ignore_ascii_case(key)) {
            decls.push(SettingDecl {
                key: key.to_string(),
                kind: "integer".to_string(),
                required: false,
                default: Some(default.to_string()),
                secret: false,
                help: help.to_string(),
            });
        }
    }
    decls
}

/// A whole-number setting among resolved `settings`, or `default` when absent or not a number.
pub fn number(settings: &[Setting], key: &str, default: u64) -> u64 {
    mailhost_plugin_api::find_setting(settings, key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Finds the declaration of `key` (case-insensitive) among `decls`.
///
/// # Errors
/// No such key: the error lists the valid ones.
pub fn find_decl<'a>(
    plugin: &str,
    decls: &'a [SettingDecl],
    key: &str,
) -> Result<&'a SettingDecl, SettingsError> {
    decls
        .iter()
        .find(|d| d.key == key)
        .or_else(|| decls.iter().find(|d| d.key.eq_ignore_ascii_case(key)))
        .ok_or_else(|| SettingsError::UnknownKey {
            plugin: plugin.to_string(),
            key: key.to_string(),
            valid: decls.iter().map(|d| d.key.clone()).collect(),
        })
}

/// Checks `value` against `decl`'s type and returns it in canonical form.
///
/// # Errors
/// The value does not fit: the error names the key, type and value.
pub fn normalize(
    what: &'static str,
    plugin: &str,
    decl: &SettingDecl,
    value: &str,
) -> Result<String, SettingsError> {
    if value.contains(['\r', '\n']) {
        return Err(SettingsError::BadValue {
            what,
            plugin: plugin.to_string(),
            key: decl.key.clone(),
            kind: decl.kind.clone(),
            problem: "line breaks are not allowed".into(),
        });
    }
    decl.setting_kind()
        .normalize(value)
        .map_err(|problem| SettingsError::BadValue {
            what,
            plugin: plugin.to_string(),
            key: decl.key.clone(),
            kind: decl.kind.clone(),
            problem,
        })
}

/// Where a listed value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set by the user.
    Set,
    /// The declared default.
    Default,
    /// Neither set nor defaulted.
    Unset,
}

impl Source {
    /// The lower-case name used in listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Set => "set",
            Self::Default => "default",
            Self::Unset => "unset",
        }
    }
}

/// One row of `config list`.
#[derive(Debug, Clone)]
pub struct SettingRow {
    /// The declaration.
    pub decl: SettingDecl,
    /// The value to show: `***` for a stored secret.
    pub shown: Option<String>,
    /// Where the value comes from.
    pub source: Source,
}

impl SettingRow {
    /// Whether a required value is missing.
    pub fn missing(&self) -> bool {
        self.decl.required && self.source == Source::Unset
    }
}

/// The declared settings of `entry` with their current values, secrets masked.
///
/// # Errors
/// The secret store cannot be read.
pub fn rows(
    entry: &PluginEntry,
    settings: &Settings,
    secrets: &SecretStore,
) -> Result<Vec<SettingRow>, SettingsError> {
    declarations(entry)
        .into_iter()
        .map(|decl| {
            let (shown, source) = if decl.secret {
                if secrets.contains(&secrets::setting_key(&entry.name, &decl.key))? {
                    (Some("***".to_string()), Source::Set)
                } else {
                    default_or_unset(&decl, true)
                }
            } else {
                match settings.value(&entry.name, &decl.key) {
                    Some(v) => (Some(v.to_string()), Source::Set),
                    None => default_or_unset(&decl, false),
                }
            };
            Ok(SettingRow {
                decl,
                shown,
                source,
            })
        })
        .collect()
}

fn default_or_unset(decl: &SettingDecl, secret: bool) -> (Option<String>, Source) {
    match &decl.default {
        Some(d) if secret => (
            Some("***".into()).filter(|_| !d.is_empty()),
            Source::Default,
        ),
        Some(d) => (Some(d.clone()), Source::Default),
        None => (None, Source::Unset),
    }
}

/// The settings to hand `entry`'s plugin on a call: every declared key with its value or
/// default, secrets read from the store and marked secret.
///
/// # Errors
/// A required setting has no value (the error gives the `config set` fix), or the secret
/// store cannot be read.
pub fn resolve(
    entry: &PluginEntry,
    settings: &Settings,
    secrets: &SecretStore,
) -> Result<Vec<Setting>, SettingsError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let decls = declarations(entry);
    for decl in &decls {
        let value = if decl.secret {
            secrets
                .get(&secrets::setting_key(&entry.name, &decl.key))?
                .map(|s| s.expose().to_string())
        } else {
            settings.value(&entry.name, &decl.key).map(str::to_string)
        }
        .or_else(|| decl.default.clone());
        match value {
            Some(value) => out.push(Setting {
                key: decl.key.as_str().into(),
                value: value.into(),
                secret: decl.secret,
            }),
            None if decl.required => missing.push(decl.key.clone()),
            None => {}
        }
    }
    if let Some(values) = settings.plugins.get(&entry.name) {
        for key in values
            .keys()
            .filter(|k| !decls.iter().any(|d| &d.key == *k))
        {
            log::warn!(
                "settings.toml: [{}] {key} is not a setting of the plugin; ignored (run `mailhost config unset {} {key}`)",
                entry.name,
                entry.name
            );
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(SettingsError::MissingRequired {
            plugin: entry.name.clone(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(key: &str, kind: &str) -> SettingDecl {
        SettingDecl {
            key: key.into(),
            kind: kind.into(),
            required: false,
            default: None,
            secret: false,
            help: String::new(),
        }
    }

    fn entry() -> PluginEntry {
        let mut required = decl("ClientID", "string");
        required.required = true;
        let mut endpoint = decl("GraphEndpoint", "url");
        endpoint.default = Some("https://graph.microsoft.com".into());
        let mut secret = decl("ClientSecret", "string");
        secret.secret = true;
        PluginEntry {
            display_name: "Microsoft Graph".into(),
            settings: vec![required, endpoint, secret, decl("Verbose", "bool")],
            ..PluginEntry::for_test("graph-email", "/p")
        }
    }

    #[test]
    fn unknown_keys_list_valid_ones() {
        let e = entry();
        let error = find_decl(&e.name, &e.settings, "Nope")
            .unwrap_err()
            .to_string();
        assert!(error.contains("'Nope'"), "{error}");
        assert!(error.contains("ClientID, GraphEndpoint"), "{error}");
        assert!(
            error.contains("mailhost config set graph-email KEY VALUE"),
            "{error}"
        );
        assert_eq!(
            find_decl(&e.name, &e.settings, "clientid")
                .expect("found")
                .key,
            "ClientID"
        );
    }

    #[test]
    fn wrong_types_name_key_type_and_value() {
        let e = entry();
        let d = find_decl(&e.name, &e.settings, "GraphEndpoint").expect("decl");
        let error = normalize("setting", &e.name, d, "graph")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("GraphEndpoint") && error.contains("url") && error.contains("'graph'"),
            "{error}"
        );
        let b = find_decl(&e.name, &e.settings, "Verbose").expect("decl");
        assert_eq!(
            normalize("setting", &e.name, b, "YES").expect("bool"),
            "true"
        );
        assert!(normalize("setting", &e.name, b, "a\nb").is_err());
    }

    #[test]
    fn resolve_applies_defaults_and_reports_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = SecretStore::at(&dir.path().join("s.toml")).expect("secrets");
        let e = entry();
        let mut settings = Settings::default();
        let error = resolve(&e, &settings, &secrets).unwrap_err().to_string();
        assert!(
            error.contains("mailhost config set graph-email ClientID VALUE"),
            "{error}"
        );
        settings
            .plugins
            .entry("graph-email".into())
            .or_default()
            .insert("ClientID".into(), "abc".into());
        secrets
            .put(
                &secrets::setting_key("graph-email", "ClientSecret"),
                "s3cret",
            )
            .expect("put");
        let resolved = resolve(&e, &settings, &secrets).expect("resolve");
        let find = |k: &str| resolved.iter().find(|s| s.key.as_str() == k).cloned();
        assert_eq!(
            find("ClientID").map(|s| s.value.to_string()),
            Some("abc".into())
        );
        assert_eq!(
            find("GraphEndpoint").map(|s| s.value.to_string()),
            Some("https://graph.microsoft.com".into())
        );
        let secret = find("ClientSecret").expect("secret");
        assert!(secret.secret && secret.value.as_str() == "s3cret");
        assert!(find("Verbose").is_none());

        let rows = rows(&e, &settings, &secrets).expect("rows");
        let shown: Vec<_> = rows
            .iter()
            .map(|r| (r.decl.key.as_str(), r.shown.clone(), r.source))
            .collect();
        assert!(shown.contains(&("ClientSecret", Some("***".into()), Source::Set)));
        assert!(shown.contains(&(
            "GraphEndpoint",
            Some("https://graph.microsoft.com".into()),
            Source::Default
        )));
        assert!(shown.contains(&("Verbose", None, Source::Unset)));
    }

    #[test]
    fn host_settings_validate_and_default() {
        let mut settings = Settings::default();
        assert_eq!(host_number(&settings, RETAIN_DAYS), 90);
        assert_eq!(host_number(&settings, RETAIN_BODY_DAYS), 30);
        assert_eq!(host_value(&settings, SECRET_BACKEND), "file");
        let spec = host_spec("retaindays").unwrap();
        assert_eq!(spec.normalize("0").unwrap(), "0");
        assert!(spec.normalize("-1").is_err());
        assert!(spec.normalize("99999999").is_err());
        let backend = host_spec(SECRET_BACKEND).unwrap();
        assert_eq!(backend.normalize("Keyring").unwrap(), "keyring");
        let error = backend.normalize("vault").unwrap_err().to_string();
        assert!(error.contains("file, keyring, systemd"), "{error}");
        assert!(
            host_spec("Nope")
                .unwrap_err()
                .to_string()
                .contains("RetainDays")
        );
        settings
            .plugins
            .entry(HOST_TABLE.into())
            .or_default()
            .insert(RETAIN_DAYS.into(), "oops".into());
        assert_eq!(host_number(&settings, RETAIN_DAYS), 90);
        let rows = host_rows(&settings);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].source, Source::Set);
        assert_eq!(rows[1].source, Source::Default);
    }

    #[test]
    fn file_round_trips_and_names_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("settings.toml");
        let mut settings = Settings::default();
        settings
            .plugins
            .entry("graph-email".into())
            .or_default()
            .insert("ClientID".into(), "a\"b".into());
        std::fs::write(&path, settings.to_toml()).expect("write");
        assert_eq!(Settings::load(&path).expect("load"), settings);
        std::fs::write(&path, "[x]\na = 1\nb = \n").expect("write");
        let error = Settings::load(&path).unwrap_err().to_string();
        assert!(error.contains(":3:"), "{error}");
    }
}

//! `mailhost config list|get|set|unset`: System Configuration, a table per plugin, and the
//! host's own settings in the reserved table `mailhost` (`config set mailhost RetainDays 30`).

use serde_json::{Value, json};

use super::{OK, print, print_json, table};
use crate::config::home::Home;
use crate::config::secrets::{self, SecretStore};
use crate::config::settings::{self, HOST_TABLE, SettingRow};
use crate::error::{EXIT_FAILED, Error};
use crate::front::cli::ConfigCommand;
use crate::plugins::registry::{self, PluginEntry};

pub(super) fn run(home: &Home, command: ConfigCommand) -> Result<u8, Error> {
    match command {
        ConfigCommand::List { plugin, json } => list(home, plugin.as_deref(), json),
        ConfigCommand::Get { plugin, key } => get(home, &plugin, &key),
        ConfigCommand::Set {
            plugin,
            key,
            value,
            value_stdin,
        } => {
            let value = match value {
                Some(value) if !value_stdin => value,
                _ => super::secret_input::read_secret(
                    "--value-stdin",
                    &format!("value of {plugin} {key}"),
                )?,
            };
            set(home, &plugin, &key, &value)
        }
        ConfigCommand::Unset { plugin, key } => unset(home, &plugin, &key),
    }
}

fn list(home: &Home, plugin: Option<&str>, json: bool) -> Result<u8, Error> {
    let registry = registry::load(home)?;
    let host_only = plugin == Some(HOST_TABLE);
    let entries: Vec<&PluginEntry> = match plugin {
        Some(_) if host_only => Vec::new(),
        Some(name) => vec![registry.require(name)?],
        None => registry.plugins.iter().collect(),
    };
    let stored = settings::load(home)?;
    let secrets = SecretStore::open(home)?;
    let mut all: Vec<(String, Vec<SettingRow>)> = Vec::new();
    if plugin.is_none() || host_only {
        all.push((HOST_TABLE.to_string(), settings::host_rows(&stored)));
    }
    for entry in entries {
        all.push((
            entry.name.clone(),
            settings::rows(entry, &stored, &secrets)?,
        ));
    }
    if json {
        let items: Vec<Value> = all
            .iter()
            .map(|(name, rows)| {
                json!({
                    "plugin": name,
                    "settings": rows.iter().map(row_json).collect::<Vec<_>>(),
                    "missing": rows.iter().filter(|r| r.missing()).map(|r| r.decl.key.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&Value::Array(items))?;
        return OK;
    }
    if registry.plugins.is_empty() && plugin.is_none() {
        print("no plugins registered: add one with `mailhost plugin add PATH`")?;
    }
    for (name, rows) in &all {
        print(&format!("[{name}]"))?;
        if rows.is_empty() {
            print("  (no settings)")?;
            continue;
        }
        let lines: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let note = match (r.missing(), r.source) {
                    (true, _) => format!(
                        "required, missing: run `mailhost config set {name} {} VALUE`",
                        r.decl.key
                    ),
                    (false, settings::Source::Default) => "(default)".into(),
                    (false, settings::Source::Unset) => "(unset)".into(),
                    (false, settings::Source::Set) => String::new(),
                };
                vec![
                    format!("  {}", r.decl.key),
                    r.shown.clone().unwrap_or_else(|| "-".into()),
                    note,
                ]
            })
            .collect();
        print(&table(&lines))?;
    }
    OK
}

fn row_json(row: &SettingRow) -> Value {
    json!({
        "key": row.decl.key,
        "value": row.shown,
        "source": row.source.name(),
        "type": row.decl.kind,
        "required": row.decl.required,
        "secret": row.decl.secret,
        "missing": row.missing(),
    })
}

fn get(home: &Home, plugin: &str, key: &str) -> Result<u8, Error> {
    if plugin == HOST_TABLE {
        let spec = settings::host_spec(key)?;
        print(&settings::host_value(&settings::load(home)?, spec.key))?;
        return OK;
    }
    let registry = registry::load(home)?;
    let entry = registry.require(plugin)?;
    let decl = settings::find_decl(&entry.name, &settings::declarations(entry), key)?.clone();
    let stored = settings::load(home)?;
    let secrets = SecretStore::open(home)?;
    let rows = settings::rows(entry, &stored, &secrets)?;
    let row = rows.iter().find(|r| r.decl.key == decl.key);
    match row.and_then(|r| r.shown.clone()) {
        Some(value) => {
            print(&value)?;
            OK
        }
        None => {
            super::warn(&format!(
                "setting '{}' of plugin '{}' is not set: run `mailhost config set {} {} VALUE`",
                decl.key, entry.name, entry.name, decl.key
            ));
            Ok(EXIT_FAILED)
        }
    }
}

fn set_host(home: &Home, key: &str, value: &str) -> Result<u8, Error> {
    let spec = settings::host_spec(key)?;
    let value = spec.normalize(value)?;
    let (name, stored) = (spec.key.to_string(), value.clone());
    settings::update(home, move |s| {
        s.plugins
            .entry(HOST_TABLE.to_string())
            .or_default()
            .insert(name, stored);
    })?;
    super::audit::note(
        home,
        "config set",
        json!({"plugin": HOST_TABLE, "key": spec.key, "value": value}),
    );
    print(&format!("set {HOST_TABLE} {} = {value}", spec.key))?;
    if spec.key == settings::SECRET_BACKEND {
        print(&format!(
            "new secrets go to {value}; run `mailhost secrets migrate --to {value}` to move the existing ones (until then, those in secrets.toml are still found)"
        ))?;
    }
    OK
}

fn set(home: &Home, plugin: &str, key: &str, value: &str) -> Result<u8, Error> {
    if plugin == HOST_TABLE {
        return set_host(home, key, value);
    }
    let registry = registry::load(home)?;
    let entry = registry.require(plugin)?;
    let decl = settings::find_decl(&entry.name, &settings::declarations(entry), key)?.clone();
    let value = settings::normalize("setting", &entry.name, &decl, value)?;
    if decl.secret {
        SecretStore::open(home)?.put(&secrets::setting_key(&entry.name, &decl.key), &value)?;
        remove_plain(home, &entry.name, &decl.key)?;
        super::audit::note(
            home,
            "config set",
            json!({"plugin": entry.name, "key": decl.key, "value": crate::config::audit::CHANGED, "secret": true}),
        );
        print(&format!(
            "set {} {} (secret, stored in the secret store)",
            entry.name, decl.key
        ))?;
    } else {
        let (name, key) = (entry.name.clone(), decl.key.clone());
        let stored = value.clone();
        settings::update(home, move |s| {
            s.plugins.entry(name).or_default().insert(key, stored);
        })?;
        super::audit::note(
            home,
            "config set",
            json!({"plugin": entry.name, "key": decl.key, "value": value}),
        );
        print(&format!("set {} {} = {value}", entry.name, decl.key))?;
    }
    OK
}

fn remove_plain(home: &Home, plugin: &str, key: &str) -> Result<(), Error> {
    if settings::load(home)?.value(plugin, key).is_some() {
        settings::update(home, |s| {
            if let Some(table) = s.plugins.get_mut(plugin) {
                table.remove(key);
            }
        })?;
    }
    Ok(())
}

fn unset(home: &Home, plugin: &str, key: &str) -> Result<u8, Error> {
    if plugin == HOST_TABLE {
        let spec = settings::host_spec(key)?;
        remove_plain(home, HOST_TABLE, spec.key)?;
        super::audit::note(
            home,
            "config unset",
            json!({"plugin": HOST_TABLE, "key": spec.key}),
        );
        print(&format!(
            "unset {HOST_TABLE} {} (default {} applies)",
            spec.key, spec.default
        ))?;
        return OK;
    }
    let registry = registry::load(home)?;
    let entry = registry.require(plugin)?;
    // An undeclared key may still be in the file (a hand edit, or an older plugin version).
    let key = match settings::find_decl(&entry.name, &settings::declarations(entry), key) {
        Ok(decl) => decl.key.clone(),
        Err(e) if settings::load(home)?.value(&entry.name, key).is_none() => return Err(e.into()),
        Err(_) => key.to_string(),
    };
    remove_plain(home, &entry.name, &key)?;
    SecretStore::open(home)?.delete(&secrets::setting_key(&entry.name, &key))?;
    super::audit::note(
        home,
        "config unset",
        json!({"plugin": entry.name, "key": key}),
    );
    print(&format!("unset {} {}", entry.name, key))?;
    OK
}

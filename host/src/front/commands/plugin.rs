//! `mailhost plugin add|list|info|enable|disable|remove|verify`.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{OK, print, print_json, table, warn};
use crate::config::home::Home;
use crate::config::secrets::SecretStore;
use crate::error::{EXIT_FAILED, Error};
use crate::front::cli::PluginCommand;
use crate::front::terminal;
use crate::plugins::Provider;
use crate::plugins::check::metadata;
use crate::plugins::loader::{self, LoadError, Loader, Who};
use crate::plugins::registry::{self, Isolation, PluginEntry, RegistryError, SettingDecl};

pub(super) fn run(home: &Home, command: PluginCommand) -> Result<u8, Error> {
    match command {
        PluginCommand::Add { path, enable } => add(home, &path, enable),
        PluginCommand::List { json } => list(home, json),
        PluginCommand::Info { name, json } => info(home, &name, json),
        PluginCommand::Enable { name } => set_enabled(home, &name, true),
        PluginCommand::Disable { name } => set_enabled(home, &name, false),
        PluginCommand::Remove { name } => remove(home, &name),
        PluginCommand::Verify { name, json } => verify(home, name.as_deref(), json),
        PluginCommand::Isolate { name, mode } => isolate(home, &name, &mode),
        PluginCommand::Check(args) => super::check::run(&args),
    }
}

fn loader(home: &Home) -> Result<Loader, Error> {
    Ok(Loader::new(home, Arc::new(SecretStore::open(home)?)))
}

fn add(home: &Home, path: &Path, enable: bool) -> Result<u8, Error> {
    let path = std::fs::canonicalize(path).map_err(|_| LoadError::Missing {
        who: Who::Library(path.to_path_buf()),
        path: path.to_path_buf(),
    })?;
    let loader = loader(home)?;
    let (plugin, print_) = loader.inspect(&path)?;
    if let Some(problem) = metadata::registration_problem(plugin.info()) {
        return Err(Error::Usage(problem));
    }
    let name = plugin.name().to_string();
    let now = crate::config::time::now_rfc3339();
    let (entry, replaced) = registry::update(home, |registry| -> Result<_, Error> {
        if let Some(other) = registry
            .plugins
            .iter()
            .find(|p| p.path == path && p.name != name)
        {
            return Err(Error::Usage(format!(
                "{} is already registered as plugin '{}' but now reports the name '{name}': run `mailhost plugin remove {}` first",
                path.display(),
                other.name,
                other.name
            )));
        }
        let replaced = match registry.find_mut(&name) {
            Some(existing) if existing.path != path => {
                return Err(Error::Usage(format!(
                    "a plugin named '{name}' is already registered from {}: run `mailhost plugin remove {name}` first, or `mailhost plugin add {}` to re-pin that file",
                    existing.path.display(),
                    existing.path.display()
                )));
            }
            Some(existing) => {
                // The same file again: re-pin it (the fix for a changed or quarantined file).
                pin(existing, &plugin, &print_);
                existing.enabled |= enable;
                existing.quarantine = None;
                existing.crashes.clear();
                true
            }
            None => {
                let mut entry = PluginEntry {
                    name: name.clone(),
                    display_name: String::new(),
                    description: String::new(),
                    path: path.clone(),
                    enabled: enable,
                    version: String::new(),
                    api_version: String::new(),
                    sha256: String::new(),
                    size: 0,
                    mtime: 0,
                    added: now.clone(),
                    capabilities: Vec::new(),
                    settings: Vec::new(),
                    staff_fields: Vec::new(),
                    isolation: Isolation::Process,
                    crashes: Vec::new(),
                    limits: Vec::new(),
                    quarantine: None,
                };
                pin(&mut entry, &plugin, &print_);
                registry.plugins.push(entry);
                false
            }
        };
        let entry = registry.require(&name)?.clone();
        Ok((entry, replaced))
    })?;
    let verb = if replaced { "re-pinned" } else { "added" };
    super::audit::note(
        home,
        "plugin add",
        json!({
            "plugin": entry.name,
            "path": entry.path.display().to_string(),
            "version": entry.version,
            "sha256": entry.sha256,
            "enabled": entry.enabled,
            "replaced": replaced,
        }),
    );
    print(&format!(
        "{verb} plugin '{}' {} ({}, plugin API {}) from {}",
        entry.name,
        entry.version,
        if entry.display_name.is_empty() {
            &entry.name
        } else {
            &entry.display_name
        },
        entry.api_version,
        entry.path.display()
    ))?;
    if entry.enabled {
        print(&format!("plugin '{}' is enabled", entry.name))?;
    } else {
        print(&format!(
            "plugin '{}' is disabled: run `mailhost plugin enable {}` to use it",
            entry.name, entry.name
        ))?;
    }
    let required: Vec<&str> = entry
        .settings
        .iter()
        .filter(|s| s.required)
        .map(|s| s.key.as_str())
        .collect();
    if !required.is_empty() {
        print(&format!(
            "required settings: {} (see `mailhost config list {}`)",
            required.join(", "),
            entry.name
        ))?;
    }
    OK
}

/// Copies the loaded plugin's description and the file's fingerprint into `entry`.
fn pin(entry: &mut PluginEntry, plugin: &Provider, print_: &loader::Fingerprint) {
    entry.set_description(plugin.info(), plugin.api_version());
    match plugin.limits() {
        Ok(limits) => entry.set_limits(&limits),
        Err(e) => log::warn!(
            "plugin '{}' could not state its sending limits ({e}); none are enforced for it",
            entry.name
        ),
    }
    entry.sha256 = print_.sha256.clone();
    entry.size = print_.size;
    entry.mtime = print_.mtime;
}

fn state_of<T>(result: &Result<T, LoadError>, ok: &str) -> (String, Option<String>) {
    match result {
        Ok(_) => (ok.to_string(), None),
        Err(e) => (e.state().to_string(), Some(e.to_string())),
    }
}

fn list(home: &Home, json: bool) -> Result<u8, Error> {
    let registry = registry::load(home)?;
    let checks: Vec<_> = registry.plugins.iter().map(loader::quick_check).collect();
    refresh_staleness_keys(home, &registry.plugins, &checks);
    let states: Vec<_> = checks
        .iter()
        .map(|check| state_of(check, "loaded"))
        .collect();
    if json {
        let items: Vec<Value> = registry
            .plugins
            .iter()
            .zip(&states)
            .map(|(p, (state, reason))| {
                json!({
                    "name": p.name,
                    "display_name": p.display_name,
                    "version": p.version,
                    "api_version": p.api_version,
                    "enabled": p.enabled,
                    "path": p.path,
                    "state": state,
                    "reason": reason,
                    "settings": p.settings.len(),
                    "staff_fields": p.staff_fields.len(),
                    "isolation": p.isolation.name(),
                    "quarantine": p.quarantined().map(|q| json!({"reason": q.reason, "since": q.since})),
                })
            })
            .collect();
        print_json(&Value::Array(items))?;
        return OK;
    }
    if registry.plugins.is_empty() {
        print("no plugins registered: add one with `mailhost plugin add PATH`")?;
        return OK;
    }
    let mut rows = vec![
        [
            "NAME", "VERSION", "API", "ENABLED", "SETTINGS", "STATE", "PATH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (p, (state, _)) in registry.plugins.iter().zip(&states) {
        rows.push(vec![
            p.name.clone(),
            p.version.clone(),
            p.api_version.clone(),
            yes_no(p.enabled).into(),
            p.settings.len().to_string(),
            state.clone(),
            p.path.display().to_string(),
        ]);
    }
    print(&table(&rows))?;
    for (p, (_, reason)) in registry.plugins.iter().zip(&states) {
        if let Some(reason) = reason
            && p.enabled
        {
            print(&terminal::escape(&format!("  {}: {reason}", p.name)))?;
        }
    }
    OK
}

/// Records new size/mtime keys of files that were re-hashed and found unchanged, so the next
/// listing does not hash them again (GStreamer's registry does the same). Best effort.
fn refresh_staleness_keys(
    home: &Home,
    plugins: &[PluginEntry],
    checks: &[Result<Option<loader::StalenessKey>, LoadError>],
) {
    let fresh: Vec<(&PluginEntry, loader::StalenessKey)> = plugins
        .iter()
        .zip(checks)
        .filter_map(|(p, c)| match c {
            Ok(Some(key)) => Some((p, *key)),
            _ => None,
        })
        .collect();
    if fresh.is_empty() {
        return;
    }
    let result = registry::update(home, |registry| -> Result<(), RegistryError> {
        for (old, key) in &fresh {
            if let Some(entry) = registry.find_mut(&old.name)
                && entry.sha256 == old.sha256
                && entry.path == old.path
            {
                entry.size = key.size;
                entry.mtime = key.mtime;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        log::debug!("cannot record new staleness keys: {e}");
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn decl_json(d: &SettingDecl) -> Value {
    json!({
        "key": d.key,
        "type": d.kind,
        "required": d.required,
        "default": if d.secret { d.default.as_ref().map(|_| "***".to_string()) } else { d.default.clone() },
        "secret": d.secret,
        "help": d.help,
    })
}

fn info(home: &Home, name: &str, json: bool) -> Result<u8, Error> {
    let registry = registry::load(home)?;
    let entry = registry.require(name)?;
    // Loading runs the plugin's code: only for enabled plugins, as everywhere else.
    let loaded = if entry.enabled && entry.quarantined().is_none() {
        loader(home)?.provider(entry).map(|_| ())
    } else {
        loader::quick_check(entry).map(|_| ())
    };
    let (state, reason) = state_of(&loaded, "loaded");
    if json {
        print_json(&json!({
            "name": entry.name,
            "display_name": entry.display_name,
            "description": entry.description,
            "version": entry.version,
            "api_version": entry.api_version,
            "enabled": entry.enabled,
            "path": entry.path,
            "sha256": entry.sha256,
            "size": entry.size,
            "mtime": entry.mtime,
            "added": entry.added,
            "state": state,
            "reason": reason,
            "capabilities": entry.capabilities,
            "isolation": entry.isolation.name(),
            "settings": entry.settings.iter().map(decl_json).collect::<Vec<_>>(),
            "staff_fields": entry.staff_fields.iter().map(decl_json).collect::<Vec<_>>(),
            "quarantine": entry.quarantined().map(|q| json!({"reason": q.reason, "since": q.since, "sha256": q.sha256})),
        }))?;
        return OK;
    }
    let mut rows: Vec<Vec<String>> = vec![
        vec!["name:".into(), entry.name.clone()],
        vec!["display name:".into(), entry.display_name.clone()],
        vec!["description:".into(), entry.description.clone()],
        vec!["version:".into(), entry.version.clone()],
        vec!["plugin API:".into(), entry.api_version.clone()],
        vec!["path:".into(), entry.path.display().to_string()],
        vec!["sha256:".into(), entry.sha256.clone()],
        vec!["added:".into(), entry.added.clone()],
        vec!["enabled:".into(), yes_no(entry.enabled).into()],
        vec!["isolation:".into(), entry.isolation.name().into()],
        vec!["state:".into(), state],
    ];
    if let Some(reason) = reason {
        rows.push(vec!["reason:".into(), reason]);
    }
    if let Some(q) = entry.quarantined() {
        rows.push(vec![
            "quarantine:".into(),
            format!("{} (since {})", q.reason, q.since),
        ]);
    }
    rows.push(vec!["capabilities:".into(), entry.capabilities.join(", ")]);
    print(&table(&rows))?;
    print_decls("settings", &entry.settings)?;
    print_decls("staff fields", &entry.staff_fields)?;
    OK
}

fn print_decls(title: &str, decls: &[SettingDecl]) -> Result<(), Error> {
    if decls.is_empty() {
        return print(&format!("{title}: none"));
    }
    print(&format!("{title}:"))?;
    let rows: Vec<Vec<String>> = decls
        .iter()
        .map(|d| {
            let mut flags = Vec::new();
            if d.required {
                flags.push("required".to_string());
            }
            if d.secret {
                flags.push("secret".to_string());
            }
            if let Some(default) = &d.default
                && !d.secret
            {
                flags.push(format!("default {default}"));
            }
            vec![
                format!("  {}", d.key),
                d.kind.clone(),
                if flags.is_empty() {
                    "-".into()
                } else {
                    flags.join(", ")
                },
                d.help.clone(),
            ]
        })
        .collect();
    print(&table(&rows))
}

fn set_enabled(home: &Home, name: &str, enabled: bool) -> Result<u8, Error> {
    let lifted = registry::update(home, |registry| -> Result<bool, RegistryError> {
        let entry = registry.require_mut(name)?;
        entry.enabled = enabled;
        if enabled {
            entry.crashes.clear();
        }
        Ok(enabled && entry.quarantine.take().is_some())
    })?;
    let verb = if enabled { "enabled" } else { "disabled" };
    super::audit::note(
        home,
        if enabled {
            "plugin enable"
        } else {
            "plugin disable"
        },
        json!({"plugin": name, "quarantine_lifted": lifted}),
    );
    if lifted {
        print(&format!(
            "{verb} plugin '{name}' (quarantine lifted: it will be loaded again on next use)"
        ))?;
    } else {
        print(&format!("{verb} plugin '{name}'"))?;
    }
    OK
}

fn isolate(home: &Home, name: &str, mode: &str) -> Result<u8, Error> {
    let mode: Isolation = mode.parse().map_err(Error::Usage)?;
    registry::update(home, |registry| -> Result<(), RegistryError> {
        registry.require_mut(name)?.isolation = mode;
        Ok(())
    })?;
    print(&match mode {
        Isolation::Process => format!(
            "plugin '{name}' runs in a provider process of its own: a crash or hang of it cannot take mailhost down"
        ),
        Isolation::InProcess => format!(
            "plugin '{name}' runs inside mailhost: a crash of it is a crash of mailhost (`mailhost plugin isolate {name} process` to undo)"
        ),
    })?;
    OK
}

fn remove(home: &Home, name: &str) -> Result<u8, Error> {
    registry::update(home, |registry| -> Result<(), RegistryError> {
        registry.require(name)?;
        registry.plugins.retain(|p| p.name != name);
        Ok(())
    })?;
    super::audit::note(home, "plugin remove", json!({"plugin": name}));
    print(&format!("removed plugin '{name}' (its settings are kept)"))?;
    if let Ok(staff) = crate::config::staff::load(home) {
        let users: Vec<&str> = staff
            .staff
            .iter()
            .filter(|(_, s)| s.provider == name)
            .map(|(id, _)| id.as_str())
            .collect();
        if !users.is_empty() {
            warn(&format!(
                "staff members {} send through '{name}' and cannot send until it is added again or they get another provider",
                users.join(", ")
            ));
        }
    }
    OK
}

fn verify(home: &Home, name: Option<&str>, json: bool) -> Result<u8, Error> {
    let registry = registry::load(home)?;
    let entries: Vec<&PluginEntry> = match name {
        Some(name) => vec![registry.require(name)?],
        None => registry.plugins.iter().collect(),
    };
    let loader = loader(home)?;
    let mut results = Vec::new();
    let mut refreshed = Vec::new();
    for entry in &entries {
        let outcome = verify_one(&loader, entry);
        if let Ok(Some((plugin, print_))) = &outcome {
            refreshed.push((entry.name.clone(), plugin.clone(), print_.clone()));
        }
        results.push((entry, outcome.map(|loaded| loaded.is_some())));
    }
    if !refreshed.is_empty() {
        // Refresh the staleness key and cached declarations of plugins that checked out.
        registry::update(home, |registry| -> Result<(), RegistryError> {
            for (name, plugin, print_) in &refreshed {
                if let Some(entry) = registry.find_mut(name)
                    && entry.sha256 == print_.sha256
                {
                    pin(entry, plugin, print_);
                }
            }
            Ok(())
        })?;
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let items: Vec<Value> = results
            .iter()
            .map(|(entry, result)| match result {
                Ok(loaded) => json!({"name": entry.name, "ok": true, "state": if *loaded { "loaded" } else { "disabled" }, "error": null}),
                Err(e) => json!({"name": entry.name, "ok": false, "state": e.state(), "error": e.to_string()}),
            })
            .collect();
        print_json(&Value::Array(items))?;
    } else {
        if results.is_empty() {
            print("no plugins registered: add one with `mailhost plugin add PATH`")?;
        }
        for (entry, result) in &results {
            match result {
                Ok(true) => print(&format!(
                    "ok      {} {} (plugin API {}): hash, ABI and version checked",
                    entry.name, entry.version, entry.api_version
                ))?,
                Ok(false) => print(&format!(
                    "ok      {}: hash checked; disabled, so not loaded",
                    entry.name
                ))?,
                // One line per failed plugin, each naming the plugin and the fix.
                Err(e) => eprintln!("mailhost: {}", terminal::escape(&e.to_string())),
            }
        }
    }
    if failed > 0 {
        return Ok(EXIT_FAILED);
    }
    OK
}

/// Re-hashes the file and, for enabled plugins, loads it. `Ok(None)`: disabled, hash fine.
fn verify_one(
    loader: &Loader,
    entry: &PluginEntry,
) -> Result<Option<(Arc<Provider>, loader::Fingerprint)>, LoadError> {
    if let Some(q) = entry.quarantined() {
        return Err(LoadError::Quarantined {
            name: entry.name.clone(),
            reason: q.reason.clone(),
            since: q.since.clone(),
        });
    }
    let who = Who::Plugin(entry.name.clone());
    let print_ = loader::fingerprint(&who, &entry.path)?;
    if print_.sha256 != entry.sha256 {
        return Err(LoadError::Changed {
            who,
            path: entry.path.clone(),
        });
    }
    if !entry.enabled {
        return Ok(None);
    }
    // Always in a provider process of its own, whatever the plugin's isolation mode: a
    // library that crashes while loading is reported, not fatal.
    let plugin = loader.inspect_registered(entry)?;
    Ok(Some((plugin, print_)))
}

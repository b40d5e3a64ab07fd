//! `mailhost staff add|set|show|list|remove`: Staff Maintenance.

use serde_json::{Value, json};

use super::{OK, print, print_json, table};
use crate::config::home::Home;
use crate::config::secrets::{self, SecretStore};
use crate::config::staff::{self, StaffError, StaffRecord};
use crate::error::Error;
use crate::front::cli::{RelayOptions, StaffCommand, StaffOptions};
use crate::front::smtp::credentials;
use crate::plugins::registry::{self, PluginEntry, Registry};

pub(super) fn run(home: &Home, command: StaffCommand) -> Result<u8, Error> {
    match command {
        StaffCommand::Add { id, options } => add(home, &id, options),
        StaffCommand::Set {
            id,
            options,
            clear_password,
            relay,
        } => set(home, &id, options, clear_password, relay),
        StaffCommand::Show { id, json } => show(home, &id, json),
        StaffCommand::List { json } => list(home, json),
        StaffCommand::Remove { id } => remove(home, &id),
    }
}

fn provider<'a>(registry: &'a Registry, text: &str) -> Result<&'a PluginEntry, Error> {
    registry.find_provider(text).ok_or_else(|| {
        let known: Vec<String> = registry
            .plugins
            .iter()
            .map(|p| {
                if p.display_name.is_empty() {
                    p.name.clone()
                } else {
                    format!("{} ({})", p.name, p.display_name)
                }
            })
            .collect();
        Error::Usage(if known.is_empty() {
            format!("no provider '{text}': no plugins are registered yet; run `mailhost plugin add PATH`")
        } else {
            format!("no provider '{text}'; registered providers: {}", known.join(", "))
        })
    })
}

fn read_password(id: &str) -> Result<String, Error> {
    super::secret_input::read_secret(
        "--password-stdin",
        &format!("password for staff member '{id}'"),
    )
}

/// What `options` change, for the audit trail (the password only as "changed").
fn changes(options: &StaffOptions) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in [
        ("provider", &options.provider),
        ("email", &options.email),
        ("name", &options.name),
        ("username", &options.username),
    ] {
        if let Some(value) = value {
            out.insert(key.into(), Value::String(value.clone()));
        }
    }
    if !options.fields.is_empty() {
        out.insert("fields".into(), json!(options.fields));
    }
    if options.password_stdin {
        out.insert("password".into(), json!(crate::config::audit::CHANGED));
    }
    Value::Object(out)
}

/// Applies `options` to `record`, validating everything against `entry` (the provider).
fn apply(
    record: &mut StaffRecord,
    options: &StaffOptions,
    entry: &PluginEntry,
) -> Result<(), Error> {
    if let Some(email) = &options.email {
        record.email = staff::validate_email(email)?;
    }
    if let Some(name) = &options.name {
        record.name = staff::validate_text("display name", name)?;
    }
    if let Some(username) = &options.username {
        record.username = staff::validate_text("username", username)?;
    }
    for field in &options.fields {
        match staff::parse_field(entry, field)? {
            (key, Some(value)) => {
                record.fields.insert(key, value);
            }
            (key, None) => {
                record.fields.remove(&key);
            }
        }
    }
    Ok(())
}

fn add(home: &Home, id: &str, options: StaffOptions) -> Result<u8, Error> {
    staff::validate_id(id)?;
    let registry = registry::load(home)?;
    let Some(provider_text) = &options.provider else {
        return Err(Error::Usage(format!(
            "staff add {id}: --provider PLUGIN is required"
        )));
    };
    let entry = provider(&registry, provider_text)?;
    if options.email.is_none() {
        return Err(Error::Usage(format!(
            "staff add {id}: --email ADDR is required"
        )));
    }
    let mut record = StaffRecord {
        provider: entry.name.clone(),
        email: String::new(),
        name: String::new(),
        username: String::new(),
        fields: Default::default(),
        relay_from: Vec::new(),
    };
    apply(&mut record, &options, entry)?;
    let password = if options.password_stdin {
        Some(read_password(id)?)
    } else {
        None
    };
    let secrets = SecretStore::open(home)?;
    staff::update(home, |file| -> Result<(), Error> {
        if file.staff.contains_key(id) {
            return Err(StaffError::Exists(id.to_string()).into());
        }
        file.staff.insert(id.to_string(), record.clone());
        Ok(())
    })?;
    if let Some(password) = password {
        secrets.put(&secrets::staff_password_key(id), &password)?;
    }
    let mut details = changes(&options);
    details["staff"] = json!(id);
    super::audit::note(home, "staff add", details);
    print(&format!(
        "added staff member '{id}' <{}> sending through {}",
        record.email, entry.name
    ))?;
    OK
}

fn set(
    home: &Home,
    id: &str,
    options: StaffOptions,
    clear_password: bool,
    relay: RelayOptions,
) -> Result<u8, Error> {
    let registry = registry::load(home)?;
    let relay_from = relay
        .relay_from
        .iter()
        .map(|a| staff::validate_email(a))
        .collect::<Result<Vec<_>, _>>()?;
    let relay_hash = if relay.relay_password_stdin {
        let password = super::secret_input::read_secret(
            "--relay-password-stdin",
            &format!("relay password for staff member '{id}'"),
        )?;
        Some(credentials::hash_password(&password).map_err(|e| Error::Usage(e.to_string()))?)
    } else {
        None
    };
    let new_provider = options
        .provider
        .as_deref()
        .map(|p| provider(&registry, p))
        .transpose()?;
    let password = if options.password_stdin {
        Some(read_password(id)?)
    } else {
        None
    };
    let secrets = SecretStore::open(home)?;
    let dropped = staff::update(home, |file| -> Result<Vec<String>, Error> {
        let known = file.unknown(id);
        let record = file.staff.get_mut(id).ok_or(known)?;
        let mut dropped = Vec::new();
        if let Some(entry) = new_provider {
            record.provider = entry.name.clone();
            record.fields.retain(|key, _| {
                let keep = entry.staff_fields.iter().any(|d| &d.key == key);
                if !keep {
                    dropped.push(key.clone());
                }
                keep
            });
        }
        let entry = match new_provider {
            Some(entry) => entry,
            None => registry.find(&record.provider).ok_or_else(|| {
                Error::Usage(format!(
                    "staff member '{id}' uses provider '{}', which is not registered: give --provider PLUGIN",
                    record.provider
                ))
            })?,
        };
        apply(record, &options, entry)?;
        if relay.clear_relay_from {
            record.relay_from.clear();
        }
        for address in &relay_from {
            if !record
                .relay_from
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
            {
                record.relay_from.push(address.clone());
            }
        }
        Ok(dropped)
    })?;
    if let Some(password) = password {
        secrets.put(&secrets::staff_password_key(id), &password)?;
    } else if clear_password {
        secrets.delete(&secrets::staff_password_key(id))?;
    }
    if let Some(hash) = relay_hash {
        secrets.put(&credentials::relay_password_key(id), &hash)?;
    } else if relay.clear_relay_password {
        secrets.delete(&credentials::relay_password_key(id))?;
    }
    if !dropped.is_empty() {
        super::warn(&format!(
            "dropped fields the new provider does not take: {}",
            dropped.join(", ")
        ));
    }
    let mut details = changes(&options);
    details["staff"] = json!(id);
    if clear_password {
        details["password"] = json!("removed");
    }
    super::audit::note(home, "staff set", details);
    print(&format!("updated staff member '{id}'"))?;
    OK
}

fn staff_json(
    id: &str,
    record: &StaffRecord,
    registry: &Registry,
    has_password: bool,
    has_relay_password: bool,
) -> Value {
    let display = registry
        .find(&record.provider)
        .map(|p| p.display_name.clone())
        .unwrap_or_default();
    json!({
        "id": id,
        "provider": record.provider,
        "provider_display_name": display,
        "email": record.email,
        "name": record.name,
        "username": record.username,
        "password": if has_password { "set" } else { "not set" },
        "relay_password": if has_relay_password { "set" } else { "not set" },
        "relay_from": record.relay_from,
        "fields": record.fields,
    })
}

fn show(home: &Home, id: &str, json: bool) -> Result<u8, Error> {
    let file = staff::load(home)?;
    let record = file.require(id)?;
    let registry = registry::load(home)?;
    let store = SecretStore::open(home)?;
    let has_password = store.contains(&secrets::staff_password_key(id))?;
    let has_relay = store.contains(&credentials::relay_password_key(id))?;
    if json {
        print_json(&staff_json(id, record, &registry, has_password, has_relay))?;
        return OK;
    }
    let mut rows = vec![
        vec!["id:".to_string(), id.to_string()],
        vec!["provider:".into(), record.provider.clone()],
        vec!["email:".into(), record.email.clone()],
        vec!["name:".into(), record.name.clone()],
        vec!["username:".into(), record.username.clone()],
        vec![
            "password:".into(),
            (if has_password { "set" } else { "not set" }).into(),
        ],
        vec![
            "relay password:".into(),
            (if has_relay { "set" } else { "not set" }).into(),
        ],
        vec!["relay from:".into(), record.relay_from.join(", ")],
    ];
    // Declared fields with defaults, then any stored field the provider no longer declares.
    if let Some(entry) = registry.find(&record.provider) {
        for decl in &entry.staff_fields {
            let value = match record.fields.get(&decl.key) {
                Some(v) => v.clone(),
                None => decl
                    .default
                    .as_ref()
                    .map_or("-".into(), |d| format!("{d} (default)")),
            };
            rows.push(vec![format!("{}:", decl.key), value]);
        }
    }
    for (key, value) in &record.fields {
        if !rows.iter().any(|r| r[0] == format!("{key}:")) {
            rows.push(vec![format!("{key}:"), value.clone()]);
        }
    }
    print(&table(&rows))?;
    OK
}

fn list(home: &Home, json: bool) -> Result<u8, Error> {
    let file = staff::load(home)?;
    let registry = registry::load(home)?;
    let secrets = SecretStore::open(home)?;
    let mut items = Vec::new();
    for (id, record) in &file.staff {
        let has_password = secrets.contains(&secrets::staff_password_key(id))?;
        let has_relay = secrets.contains(&credentials::relay_password_key(id))?;
        items.push((id, record, has_password, has_relay));
    }
    if json {
        let values: Vec<Value> = items
            .iter()
            .map(|(id, record, has, relay)| staff_json(id, record, &registry, *has, *relay))
            .collect();
        print_json(&Value::Array(values))?;
        return OK;
    }
    if items.is_empty() {
        print(
            "no staff members: add one with `mailhost staff add ID --provider PLUGIN --email ADDR`",
        )?;
        return OK;
    }
    let mut rows = vec![
        ["ID", "PROVIDER", "EMAIL", "NAME", "PASSWORD"]
            .map(String::from)
            .to_vec(),
    ];
    for (id, record, has, _) in items {
        rows.push(vec![
            id.clone(),
            record.provider.clone(),
            record.email.clone(),
            record.name.clone(),
            (if has { "set" } else { "not set" }).into(),
        ]);
    }
    print(&table(&rows))?;
    OK
}

fn remove(home: &Home, id: &str) -> Result<u8, Error> {
    staff::update(home, |file| -> Result<(), Error> {
        file.require(id)?;
        file.staff.remove(id);
        Ok(())
    })?;
    SecretStore::open(home)?.delete_prefix(&format!("staff.{id}."))?;
    super::audit::note(home, "staff remove", json!({"staff": id}));
    print(&format!("removed staff member '{id}'"))?;
    OK
}

//! `mailhost secrets list|migrate`: the names of the stored secrets and where each lives
//! (never values), and moving them between backends.

use serde_json::json;

use super::{OK, print, print_json, table};
use crate::config::home::Home;
use crate::config::secrets::{Backend, SecretStore};
use crate::config::settings::{self, HOST_TABLE, SECRET_BACKEND};
use crate::error::Error;
use crate::front::cli::SecretsCommand;

pub(super) fn run(home: &Home, command: SecretsCommand) -> Result<u8, Error> {
    match command {
        SecretsCommand::List { json } => list(home, json),
        SecretsCommand::Migrate { to } => migrate(home, &to),
    }
}

fn list(home: &Home, json: bool) -> Result<u8, Error> {
    let store = SecretStore::open(home)?;
    let listed = store.list()?;
    let stranded = store.stranded_in_keyring(home)?;
    if !stranded.is_empty() {
        super::warn(&format!(
            "{} secret(s) are still in the operating system's keyring ({}), which SecretBackend {} does not read: run `mailhost secrets migrate --to {}`",
            stranded.len(),
            stranded.join(", "),
            store.backend(),
            store.backend()
        ));
    }
    if json {
        print_json(&json!({
            "backend": store.backend().name(),
            "credentials_directory": store.credentials_dir().map(|d| d.display().to_string()),
            "secrets": listed.iter().map(|l| json!({"name": l.name, "location": l.location.name()})).collect::<Vec<_>>(),
        }))?;
        return OK;
    }
    print(&format!("backend: {}", store.backend()))?;
    if store.backend() == Backend::Systemd && store.credentials_dir().is_none() {
        super::warn(
            "SecretBackend is systemd but $CREDENTIALS_DIRECTORY is not set (mailhost was not started by systemd with LoadCredential=): only the file's secrets are used",
        );
    }
    if listed.is_empty() {
        print("no secrets stored")?;
        return OK;
    }
    let mut rows = vec![vec!["NAME".to_string(), "WHERE".to_string()]];
    rows.extend(
        listed
            .iter()
            .map(|l| vec![l.name.clone(), l.location.name().to_string()]),
    );
    print(&table(&rows))?;
    OK
}

fn migrate(home: &Home, to: &str) -> Result<u8, Error> {
    let target: Backend = to.parse()?;
    let store = SecretStore::open(home)?;
    let moved = store.migrate(home, target)?;
    settings::update(home, |s| {
        s.plugins
            .entry(HOST_TABLE.to_string())
            .or_default()
            .insert(SECRET_BACKEND.to_string(), target.name().to_string());
    })?;
    super::audit::note(
        home,
        "secrets migrate",
        json!({"from": store.backend().name(), "to": target.name(), "moved": moved}),
    );
    print(&format!(
        "moved {} secret{} to {target}; SecretBackend is now {target}",
        moved.len(),
        if moved.len() == 1 { "" } else { "s" }
    ))?;
    OK
}

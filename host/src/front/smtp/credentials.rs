//! Relay credentials: a staff member's SMTP relay password is kept only as an Argon2id hash
//! (PHC string) in the secret store under `staff.<id>.relay_password`, and the staff
//! directory the relay signs clients in against ([`StaffDirectory`]): user name = staff ID or
//! the staff member's address, From addresses = their address and their `relay_from` list.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use mailhost_plugin_api::Secret;

use super::config::TrustedNetwork;
use super::envelope::Identity;
use super::network;
use crate::config::home::Home;
use crate::config::secrets::SecretStore;
use crate::config::staff::{self, StaffFile, StaffRecord};

/// The secret-store key of a staff member's relay password hash.
pub fn relay_password_key(staff_id: &str) -> String {
    format!("staff.{staff_id}.relay_password")
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the relay password: {0}")]
pub struct HashError(String);

/// The Argon2id hash (PHC string, random salt, the crate's OWASP-recommended parameters).
///
/// # Errors
/// The hasher failed (it does not for valid input).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `hash`; a hash that does not parse matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, checked for unknown users so that they take as long as known
/// ones (no user enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

/// The staff member `user` names: a staff ID, else an address (case-insensitive).
pub fn find_staff<'a>(file: &'a StaffFile, user: &str) -> Option<(&'a str, &'a StaffRecord)> {
    let user = user.trim();
    if let Some((id, record)) = file.staff.get_key_value(user) {
        return Some((id.as_str(), record));
    }
    let mut matches = file
        .staff
        .iter()
        .filter(|(_, r)| r.email.eq_ignore_ascii_case(user));
    let first = matches.next()?;
    // An address two staff members share names neither: they must use their IDs.
    matches
        .next()
        .is_none()
        .then_some((first.0.as_str(), first.1))
}

/// The identity of staff member `id`.
pub fn identity(id: &str, record: &StaffRecord, max_recipients: usize) -> Identity {
    let mut addresses = vec![record.email.clone()];
    addresses.extend(record.relay_from.iter().cloned());
    Identity {
        staff: id.to_string(),
        addresses,
        max_recipients,
    }
}

/// Signs relay clients in against a home's staff file and secret store (read on every
/// attempt, so `staff set` takes effect without a restart).
#[derive(Debug)]
pub struct StaffDirectory {
    home: Home,
    trusted: Vec<TrustedNetwork>,
    max_recipients: usize,
}

impl StaffDirectory {
    /// The directory of `home`, with the `[[smtp.trusted]]` networks and the relay's
    /// recipient limit.
    pub fn new(home: Home, trusted: Vec<TrustedNetwork>, max_recipients: usize) -> Self {
        Self {
            home,
            trusted,
            max_recipients,
        }
    }

    /// The staff member whose relay credential this is. Unknown users, staff members without
    /// a relay password and wrong passwords all take one hash check and give `None`.
    pub fn authenticate(&self, user: &str, password: &Secret) -> Option<Identity> {
        let file = match staff::load(&self.home) {
            Ok(file) => file,
            Err(e) => {
                log::error!("smtp: cannot read the staff file to check a sign-in: {e}");
                return None;
            }
        };
        let found = find_staff(&file, user);
        let hash = found.and_then(|(id, _)| {
            let store = SecretStore::open(&self.home)
                .map_err(|e| log::error!("smtp: cannot open the secret store: {e}"))
                .ok()?;
            store
                .get(&relay_password_key(id))
                .map_err(|e| log::error!("smtp: cannot read the secret store: {e}"))
                .ok()
                .flatten()
        });
        match (found, hash) {
            (Some((id, record)), Some(hash)) => verify_password(hash.expose(), password.expose())
                .then(|| identity(id, record, self.max_recipients)),
            _ => {
                let _ = verify_password(decoy_hash(), password.expose());
                None
            }
        }
    }

    /// The staff member whose trusted network holds `peer`, if any (the first that matches).
    pub fn trusted(&self, peer: IpAddr) -> Option<Identity> {
        let entry = self
            .trusted
            .iter()
            .find(|t| network::contains(std::slice::from_ref(&t.network), peer))?;
        let file = staff::load(&self.home)
            .map_err(|e| log::error!("smtp: cannot read the staff file: {e}"))
            .ok()?;
        match file.staff.get(&entry.staff) {
            Some(record) => Some(identity(&entry.staff, record, self.max_recipients)),
            None => {
                log::warn!(
                    "smtp: [[smtp.trusted]] names staff member '{}', who does not exist; {peer} must authenticate",
                    entry.staff
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn record(email: &str) -> StaffRecord {
        StaffRecord {
            provider: "graph-email".into(),
            email: email.into(),
            name: String::new(),
            username: String::new(),
            fields: BTreeMap::new(),
            relay_from: vec!["sales@contoso.com".into()],
        }
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_password("hunter2").unwrap();
        let b = hash_password("hunter2").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b);
        assert!(verify_password(&a, "hunter2"));
        assert!(!verify_password(&a, "hunter3"));
        assert!(!verify_password("not a hash", "hunter2"));
    }

    #[test]
    fn directory_signs_in_by_id_or_address() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        staff::update(&home, |f| -> Result<(), staff::StaffError> {
            f.staff.insert("adele".into(), record("Adele@contoso.com"));
            f.staff.insert("bob".into(), record("bob@contoso.com"));
            Ok(())
        })
        .unwrap();
        let store = SecretStore::open(&home).unwrap();
        store
            .put(
                &relay_password_key("adele"),
                &hash_password("right").unwrap(),
            )
            .unwrap();
        let trusted = vec![TrustedNetwork {
            network: network::parse("10.1.2.0/24").unwrap(),
            staff: "bob".into(),
        }];
        let d = StaffDirectory::new(home, trusted, 50);
        let id = d.authenticate("adele", &Secret::new("right")).unwrap();
        assert_eq!(id.staff, "adele");
        assert!(id.may_send_as("sales@contoso.com") && id.may_send_as("adele@contoso.com"));
        assert_eq!(id.max_recipients, 50);
        assert!(
            d.authenticate("adele@CONTOSO.com", &Secret::new("right"))
                .is_some()
        );
        assert!(d.authenticate("adele", &Secret::new("wrong")).is_none());
        assert!(
            d.authenticate("bob", &Secret::new("right")).is_none(),
            "no relay password"
        );
        assert!(d.authenticate("nobody", &Secret::new("right")).is_none());
        assert_eq!(d.trusted("10.1.2.7".parse().unwrap()).unwrap().staff, "bob");
        assert!(d.trusted("10.1.3.7".parse().unwrap()).is_none());
        let text = std::fs::read_to_string(dir.path().join("secrets.toml")).unwrap();
        assert!(!text.contains("right"));
    }
}

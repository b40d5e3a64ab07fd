//! Staff Maintenance, `staff.toml`: one `[staff.<id>]` table per staff member with the provider
//! they send through, their address, display name, username and the provider's custom fields.
//! Passwords are never here: they live in the secret store under `staff.<id>.password`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailhost_plugin_api::is_plausible_address;
use serde::{Deserialize, Serialize};

use crate::config::files::{self, FileError, FileLock};
use crate::config::home::Home;
use crate::config::settings::{self, SettingsError};
use crate::plugins::registry::PluginEntry;

/// Why a staff record was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
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
    /// No staff member with that ID.
    #[error("no staff member '{id}'{}", known_ids(known))]
    Unknown {
        /// The ID asked for.
        id: String,
        /// The known IDs.
        known: Vec<String>,
    },
    /// The ID is taken.
    #[error(
        "staff member '{0}' already exists: change it with `mailhost staff set {0} ...` or remove it first"
    )]
    Exists(String),
    /// The ID has characters that are not allowed.
    #[error("staff ID '{0}' is not valid: use letters, digits, '.', '_', '-' and '@' (at most 64)")]
    BadId(String),
    /// A value is not acceptable.
    #[error("{0}")]
    BadValue(String),
    /// A custom field failed validation.
    #[error(transparent)]
    Field(#[from] SettingsError),
}

fn known_ids(known: &[String]) -> String {
    if known.is_empty() {
        "; none exist yet: add one with `mailhost staff add ID --provider PLUGIN --email ADDR`"
            .into()
    } else {
        format!("; staff members: {}", known.join(", "))
    }
}

/// One staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRecord {
    /// The registry name of the provider plugin they send through.
    pub provider: String,
    /// Their address: the default From.
    pub email: String,
    /// Their display name; may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Their sign-in name; may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The provider's custom fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Further From addresses the SMTP relay lets them send as (besides `email`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_from: Vec<String>,
}

/// The contents of `staff.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffFile {
    /// Staff members by ID.
    #[serde(default)]
    pub staff: BTreeMap<String, StaffRecord>,
}

impl StaffFile {
    /// Reads `path`; a missing file has no staff.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, StaffError> {
        let Some(text) = files::read_optional(path)? else {
            return Ok(Self::default());
        };
        toml::from_str(&text).map_err(|e| StaffError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| files::line_of(&text, s.start)),
            message: e.message().trim().to_string(),
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# mailhost staff: `mailhost staff add|set|remove`. Passwords are kept in secrets.toml.\n\n{body}"
        )
    }

    /// The staff member `id`, or an error listing the known IDs.
    ///
    /// # Errors
    /// No such staff member.
    pub fn require(&self, id: &str) -> Result<&StaffRecord, StaffError> {
        self.staff.get(id).ok_or_else(|| self.unknown(id))
    }

    /// The "unknown staff member" error for `id`.
    pub fn unknown(&self, id: &str) -> StaffError {
        StaffError::Unknown {
            id: id.to_string(),
            known: self.staff.keys().cloned().collect(),
        }
    }
}

/// Reads `staff.toml` of `home`.
///
/// # Errors
/// See [`StaffFile::load`].
pub fn load(home: &Home) -> Result<StaffFile, StaffError> {
    StaffFile::load(&home.staff_path())
}

/// Changes `staff.toml` under its lock and replaces it atomically if `change` succeeds.
///
/// # Errors
/// The file cannot be read, parsed or written, or `change` failed.
pub fn update<T, E>(
    home: &Home,
    change: impl FnOnce(&mut StaffFile) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StaffError>,
{
    let path = home.staff_path();
    let _lock = FileLock::acquire(&files::lock_path_for(&path)).map_err(StaffError::from)?;
    let mut file = StaffFile::load(&path)?;
    let value = change(&mut file)?;
    files::atomic_write(&path, file.to_toml().as_bytes(), 0o600).map_err(StaffError::from)?;
    Ok(value)
}

/// Checks a staff ID: letters, digits, `.`, `_`, `-`, `@`; 1 to 64 characters.
///
/// # Errors
/// The ID is not valid.
pub fn validate_id(id: &str) -> Result<(), StaffError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StaffError::BadId(id.to_string()))
    }
}

/// Checks an email address.
///
/// # Errors
/// It does not look like `user@example.com`.
pub fn validate_email(email: &str) -> Result<String, StaffError> {
    let email = email.trim();
    if is_plausible_address(email) {
        Ok(email.to_string())
    } else {
        Err(StaffError::BadValue(format!(
            "'{email}' is not an email address (expected user@example.com)"
        )))
    }
}

/// Checks a display name or username: no line breaks or other control characters.
///
/// # Errors
/// The text contains a control character.
pub fn validate_text(what: &str, text: &str) -> Result<String, StaffError> {
    if text.chars().any(char::is_control) {
        Err(StaffError::BadValue(format!(
            "the {what} must be one line without control characters (CR/LF are refused)"
        )))
    } else {
        Ok(text.trim().to_string())
    }
}

/// Parses `KEY=VALUE` and checks it against the provider's declared staff fields; returns the
/// declared key and the normalised value (booleans become true/false). An empty value means
/// "remove the field".
///
/// # Errors
/// No `=`, an unknown key (the error lists the valid ones), or a value of the wrong type.
pub fn parse_field(
    provider: &PluginEntry,
    text: &str,
) -> Result<(String, Option<String>), StaffError> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(StaffError::BadValue(format!(
            "--field '{text}' must be KEY=VALUE"
        )));
    };
    let key = key.trim();
    let decl = settings::find_decl(&provider.name, &provider.staff_fields, key).map_err(|e| match e {
        SettingsError::UnknownKey { plugin, key, valid } => StaffError::BadValue(if valid.is_empty() {
            format!("provider '{plugin}' takes no staff fields, so --field {key}=... is not accepted")
        } else {
            format!(
                "provider '{plugin}' has no staff field '{key}'; valid fields: {}",
                valid.join(", ")
            )
        }),
        other => StaffError::Field(other),
    })?;
    if value.trim().is_empty() {
        return Ok((decl.key.clone(), None));
    }
    let value = settings::normalize("staff field", &provider.name, decl, value)?;
    Ok((decl.key.clone(), Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::registry::SettingDecl;

    fn provider() -> PluginEntry {
        PluginEntry {
            display_name: "Microsoft Graph".into(),
            staff_fields: vec![SettingDecl {
                key: "NonInteractive".into(),
                kind: "bool".into(),
                required: false,
                default: Some("false".into()),
                secret: false,
                help: String::new(),
            }],
            ..PluginEntry::for_test("graph-email", "/p")
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("adele.v@contoso").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a b").is_err());
        assert!(validate_id("a]b").is_err());
    }

    #[test]
    fn addresses_and_names_are_checked() {
        assert_eq!(validate_email(" a@x.com ").expect("ok"), "a@x.com");
        assert!(validate_email("a@x").is_err());
        assert!(validate_text("display name", "Adele\r\nBcc: x@y.com").is_err());
        assert_eq!(
            validate_text("display name", "Adele V").expect("ok"),
            "Adele V"
        );
    }

    #[test]
    fn fields_are_validated_and_normalised() {
        let p = provider();
        assert_eq!(
            parse_field(&p, "noninteractive=Yes").expect("field"),
            ("NonInteractive".into(), Some("true".into()))
        );
        assert_eq!(
            parse_field(&p, "NonInteractive=").expect("clear"),
            ("NonInteractive".into(), None)
        );
        let unknown = parse_field(&p, "Color=red").unwrap_err().to_string();
        assert!(
            unknown.contains("'Color'") && unknown.contains("NonInteractive"),
            "{unknown}"
        );
        let bad = parse_field(&p, "NonInteractive=maybe")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("NonInteractive") && bad.contains("bool") && bad.contains("maybe"),
            "{bad}"
        );
        assert!(parse_field(&p, "novalue").is_err());
    }

    #[test]
    fn file_round_trips_and_unknown_ids_list_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        update(&home, |f| -> Result<(), StaffError> {
            f.staff.insert(
                "adele".into(),
                StaffRecord {
                    provider: "graph-email".into(),
                    email: "adele@contoso.com".into(),
                    name: "Adele".into(),
                    username: String::new(),
                    fields: BTreeMap::from([("NonInteractive".into(), "true".into())]),
                    relay_from: vec!["sales@contoso.com".into()],
                },
            );
            Ok(())
        })
        .expect("update");
        let file = load(&home).expect("load");
        assert_eq!(file.require("adele").expect("adele").name, "Adele");
        assert_eq!(
            file.require("adele").expect("adele").relay_from,
            ["sales@contoso.com"]
        );
        let error = file.require("bob").unwrap_err().to_string();
        assert!(
            error.contains("'bob'") && error.contains("adele"),
            "{error}"
        );
        let text = std::fs::read_to_string(home.staff_path()).expect("read");
        assert!(!text.contains("password ="), "{text}");
    }
}

//! The settings and staff member a check run hands the library: what the author supplied
//! with `--setting KEY=VALUE`, else defaults, else an automatic value for required ones where
//! the type allows. URL settings the author did not supply point at `https://127.0.0.1:9`
//! (nothing listens there), so a check never reaches a real service. Every secret (the staff
//! password, secret settings and fields) gets a random canary value that the leak check looks
//! for in what the library logs and shows.

use std::path::Path;

use mailhost_plugin_api::{ProviderInfo, Setting, SettingKind, SettingSpec, StaffMember};

/// Where URL settings point during a check: loopback, a port where nothing listens.
pub const UNREACHABLE_URL: &str = "https://127.0.0.1:9";

/// Why the author's `--setting` values cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// No such setting or staff field.
    #[error(
        "--setting {key}: plugin '{plugin}' declares no setting or staff field '{key}'; valid keys: {valid}"
    )]
    UnknownKey {
        /// The plugin.
        plugin: String,
        /// The key given.
        key: String,
        /// The declared keys.
        valid: String,
    },
    /// The value does not fit the declared type.
    #[error("--setting {key}: {problem}; give a value of type {kind}")]
    BadValue {
        /// The key.
        key: String,
        /// The declared type.
        kind: SettingKind,
        /// What is wrong.
        problem: String,
    },
}

/// A secret handed to the library, which must never appear in its logs or user messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// What it is, such as "the staff password" or "secret setting 'ApiKey'".
    pub what: String,
    /// The value.
    pub value: String,
}

/// The settings and staff member of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The system settings, as the host would hand them over.
    pub settings: Vec<Setting>,
    /// The test staff member.
    pub staff: StaffMember,
    /// The secrets to look for in logs.
    pub canaries: Vec<Canary>,
    /// `KEY=VALUE (source)` for each value the check chose, for the report (secrets masked).
    pub notes: Vec<String>,
}

/// Where a value came from.
enum Source {
    Given,
    Default,
    Auto,
    Canary,
}

/// Builds the plan for `info`, with `user` values and automatic paths under `work`.
///
/// # Errors
/// A `--setting` key is not declared, or its value does not fit the type.
pub fn build(
    info: &ProviderInfo,
    user: &[(String, String)],
    work: &Path,
) -> Result<Plan, PlanError> {
    for (key, _) in user {
        let declared = info
            .settings
            .iter()
            .chain(info.staff_fields.iter())
            .any(|s| s.key.eq_ignore_ascii_case(key));
        if !declared {
            let valid: Vec<&str> = info
                .settings
                .iter()
                .chain(info.staff_fields.iter())
                .map(|s| s.key.as_str())
                .collect();
            return Err(PlanError::UnknownKey {
                plugin: info.name.to_string(),
                key: key.clone(),
                valid: if valid.is_empty() {
                    "none".into()
                } else {
                    valid.join(", ")
                },
            });
        }
    }
    let mut plan = Plan {
        settings: Vec::new(),
        staff: StaffMember {
            id: "check-staff".into(),
            email: "adele.vance@example.com".into(),
            display_name: "Adèle Vance ✓".into(),
            username: "adele.vance@example.com".into(),
            password: None.into(),
            fields: Default::default(),
        },
        canaries: Vec::new(),
        notes: Vec::new(),
    };
    let password = canary_value("pw");
    plan.staff.password = Some(password.as_str().into()).into();
    plan.canaries.push(Canary {
        what: "the staff password".into(),
        value: password,
    });
    for spec in info.settings.iter() {
        if let Some(setting) = value_for(spec, "secret setting", user, work, &mut plan)? {
            plan.settings.push(setting);
        }
    }
    let mut fields = Vec::new();
    for spec in info.staff_fields.iter() {
        if let Some(setting) = value_for(spec, "secret staff field", user, work, &mut plan)? {
            fields.push(setting);
        }
    }
    plan.staff.fields = fields.into();
    Ok(plan)
}

fn canary_value(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn value_for(
    spec: &SettingSpec,
    secret_what: &str,
    user: &[(String, String)],
    work: &Path,
    plan: &mut Plan,
) -> Result<Option<Setting>, PlanError> {
    let key = spec.key.as_str();
    let given = user
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v);
    let (value, source) = if let Some(value) = given {
        let value = spec
            .kind
            .normalize(value)
            .map_err(|problem| PlanError::BadValue {
                key: key.to_string(),
                kind: spec.kind,
                problem,
            })?;
        (value, Source::Given)
    } else if spec.secret && (spec.kind == SettingKind::STRING || !spec.kind.is_known()) {
        (canary_value("secret"), Source::Canary)
    } else if spec.kind == SettingKind::URL {
        (UNREACHABLE_URL.to_string(), Source::Auto)
    } else if let Some(default) = spec.default.as_ref().into_option() {
        (
            spec.kind
                .normalize(default)
                .unwrap_or_else(|_| default.to_string()),
            Source::Default,
        )
    } else if spec.required {
        (auto_value(spec, work), Source::Auto)
    } else {
        return Ok(None);
    };
    if spec.secret && value.chars().count() >= 4 {
        plan.canaries.push(Canary {
            what: format!("{secret_what} '{key}'"),
            value: value.clone(),
        });
    }
    let shown = if spec.secret { "***" } else { value.as_str() };
    match source {
        Source::Given => plan.notes.push(format!("{key}={shown} (given)")),
        Source::Auto => plan.notes.push(format!("{key}={shown} (automatic)")),
        Source::Canary => plan.notes.push(format!("{key}=*** (random secret)")),
        Source::Default => {}
    }
    Ok(Some(Setting {
        key: key.into(),
        value: value.into(),
        secret: spec.secret,
    }))
}

/// A plausible value for a required setting of `spec`'s type that no one supplied.
fn auto_value(spec: &SettingSpec, work: &Path) -> String {
    let words = format!("{} {}", spec.key, spec.help).to_ascii_lowercase();
    match spec.kind {
        SettingKind::PATH => {
            let out = work.join("out");
            if words.contains("file") && !words.contains("folder") && !words.contains("director") {
                out.join(format!("{}.out", spec.key.to_ascii_lowercase()))
                    .display()
                    .to_string()
            } else {
                out.display().to_string()
            }
        }
        SettingKind::URL => UNREACHABLE_URL.into(),
        SettingKind::EMAIL => "check-sender@example.com".into(),
        SettingKind::INTEGER => "1".into(),
        SettingKind::BOOL => "false".into(),
        _ if words.contains("host") || words.contains("server") => "127.0.0.1".into(),
        _ => "mailhost-check".into(),
    }
}

#[cfg(test)]
mod tests {
    use mailhost_plugin_api::SettingSpec;

    use super::*;

    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "acme".into(),
            display_name: "Acme".into(),
            version: "1.0.0".into(),
            description: "d".into(),
            settings: vec![
                SettingSpec::new("Directory", SettingKind::PATH, "The folder").required(),
                SettingSpec::new("File", SettingKind::PATH, "The file written").required(),
                SettingSpec::new("Endpoint", SettingKind::URL, "API")
                    .default_value("https://api.acme.example"),
                SettingSpec::new("ApiKey", SettingKind::STRING, "key")
                    .required()
                    .secret(),
                SettingSpec::new("Retries", SettingKind::INTEGER, "n").default_value("3"),
                SettingSpec::new("Optional", SettingKind::STRING, "o"),
            ]
            .into(),
            staff_fields: vec![SettingSpec::new("Flag", SettingKind::BOOL, "f")].into(),
            capabilities: Default::default(),
        }
    }

    fn value<'a>(plan: &'a Plan, key: &str) -> Option<&'a str> {
        plan.settings
            .iter()
            .find(|s| s.key.as_str() == key)
            .map(|s| s.value.as_str())
    }

    #[test]
    fn values_come_from_the_author_defaults_or_automatic_choices() {
        let work = Path::new("/w");
        let user = vec![("flag".to_string(), "yes".to_string())];
        let plan = build(&info(), &user, work).unwrap();
        assert_eq!(value(&plan, "Directory"), Some("/w/out"));
        assert_eq!(value(&plan, "File"), Some("/w/out/file.out"));
        assert_eq!(
            value(&plan, "Endpoint"),
            Some(UNREACHABLE_URL),
            "no real service is reached"
        );
        assert_eq!(value(&plan, "Retries"), Some("3"));
        assert_eq!(value(&plan, "Optional"), None);
        assert!(value(&plan, "ApiKey").unwrap().starts_with("secret-"));
        assert!(plan.staff.flag("Flag"));
        let whats: Vec<&str> = plan.canaries.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(whats, ["the staff password", "secret setting 'ApiKey'"]);
        assert!(
            plan.notes.iter().all(|n| !n.contains("secret-")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let work = Path::new("/w");
        let error = build(&info(), &[("Nope".into(), "1".into())], work).unwrap_err();
        assert!(
            error.to_string().contains("valid keys: Directory, File"),
            "{error}"
        );
        let error = build(&info(), &[("Retries".into(), "many".into())], work).unwrap_err();
        assert!(error.to_string().contains("not a whole number"), "{error}");
    }
}

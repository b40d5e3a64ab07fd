//! Checks of the provider's self-description: its name, display name, version, description,
//! declared settings and staff fields, and capabilities. Pure functions of [`ProviderInfo`].

use std::collections::HashMap;

use mailhost_plugin_api::{ProviderInfo, SettingSpec, capability};

use super::CheckResult;

/// The capability names this API version defines.
pub const KNOWN_CAPABILITIES: [&str; 7] = [
    capability::SIGN_IN,
    capability::HTML,
    capability::ATTACHMENTS,
    capability::ALTERNATE_FROM,
    capability::CUSTOM_HEADERS,
    capability::MIME,
    capability::RECONCILE,
];

/// Every metadata check, in report order.
pub fn check(info: &ProviderInfo) -> Vec<CheckResult> {
    vec![
        name(&info.name),
        non_empty("display-name", "display name", &info.display_name),
        version(&info.version),
        non_empty("description", "description", &info.description),
        setting_keys(info),
        setting_types(info),
        setting_defaults(info),
        setting_help(info),
        capabilities(info),
    ]
}

fn name(name: &str) -> CheckResult {
    if name == crate::config::settings::HOST_TABLE {
        CheckResult::fail(
            "name",
            format!(
                "'{name}' is reserved for the host's own settings: pick another name (such as 'acme-mail')"
            ),
        )
    } else if mailhost_plugin_api::is_valid_plugin_name(name) {
        CheckResult::pass("name", format!("'{name}'"))
    } else {
        CheckResult::fail(
            "name",
            format!(
                "'{name}' is not a valid plugin name: use 1 to 64 lower-case letters, digits and '-', starting with a letter (such as 'acme-mail')"
            ),
        )
    }
}

fn non_empty(check: &str, what: &str, value: &str) -> CheckResult {
    if value.trim().is_empty() {
        CheckResult::fail(
            check,
            format!(
                "the {what} is empty: set ProviderInfo::{} in describe()",
                check.replace('-', "_")
            ),
        )
    } else {
        CheckResult::pass(check, format!("'{}'", super::one_line(value, 80)))
    }
}

/// Whether `text` is a semantic version: `MAJOR.MINOR.PATCH` without leading zeros, with an
/// optional `-pre.release` and `+build` suffix.
pub fn is_semver(text: &str) -> bool {
    let (rest, build) = match text.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|pre| {
            pre.split('.')
                .all(|p| ident(p) && (!p.chars().all(|c| c.is_ascii_digit()) || numeric(p)))
        })
        && build.is_none_or(|build| build.split('.').all(ident))
}

fn version(version: &str) -> CheckResult {
    if is_semver(version) {
        CheckResult::pass("version", format!("'{version}'"))
    } else {
        CheckResult::fail(
            "version",
            format!(
                "'{version}' is not a semantic version (MAJOR.MINOR.PATCH, such as 1.2.0): use env!(\"CARGO_PKG_VERSION\")"
            ),
        )
    }
}

/// Each declared setting with what it is: "setting 'X'" or "staff field 'Y'".
fn declarations(info: &ProviderInfo) -> Vec<(String, &SettingSpec)> {
    let settings = info
        .settings
        .iter()
        .map(|s| (format!("setting '{}'", s.key), s));
    let fields = info
        .staff_fields
        .iter()
        .map(|s| (format!("staff field '{}'", s.key), s));
    settings.chain(fields).collect()
}

/// Whether `key` is a well-formed setting key: starts with an ASCII letter, then letters,
/// digits, `_` and `-` (a bare TOML key that `--field KEY=VALUE` can carry), at most 64.
pub fn valid_key(key: &str) -> bool {
    key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The first problem with `info`'s declared keys or defaults that makes it unusable for the
/// host (`plugin add` refuses such a library with this line), or `None`.
pub fn registration_problem(info: &ProviderInfo) -> Option<String> {
    key_problems(info)
        .into_iter()
        .chain(default_problems(info).0)
        .next()
        .map(|problem| {
            format!(
                "plugin '{}' declares a {problem}; it was not added: ask its author to fix it (`mailhost plugin check PATH` lists every problem)",
                info.name
            )
        })
}

fn key_problems(info: &ProviderInfo) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, list) in [
        ("setting", &info.settings),
        ("staff field", &info.staff_fields),
    ] {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for spec in list.iter() {
            let key = spec.key.as_str();
            if !valid_key(key) {
                problems.push(format!(
                    "{what} key '{key}' is not well-formed: use 1 to 64 ASCII letters, digits, '_' and '-', starting with a letter"
                ));
            }
            if let Some(first) = seen.insert(key.to_ascii_lowercase(), key) {
                problems.push(format!(
                    "{what} key '{key}' is declared twice (as '{first}' and '{key}'; keys are case-insensitive): remove one"
                ));
            }
        }
    }
    problems
}

fn setting_keys(info: &ProviderInfo) -> CheckResult {
    let problems = key_problems(info);
    let total = info.settings.len() + info.staff_fields.len();
    CheckResult::from_findings(
        "setting-keys",
        &problems,
        &[],
        &format!(
            "{total} key{}, unique and well-formed",
            if total == 1 { "" } else { "s" }
        ),
    )
}

fn setting_types(info: &ProviderInfo) -> CheckResult {
    let problems: Vec<String> = declarations(info)
        .into_iter()
        .filter(|(_, spec)| !spec.kind.is_known())
        .map(|(what, _)| {
            format!(
                "{what} has a type unknown to plugin API {} (hosts treat it as string): use a SettingKind constant",
                mailhost_plugin_api::API_VERSION
            )
        })
        .collect();
    CheckResult::from_findings("setting-types", &problems, &[], "every type is known")
}

fn default_problems(info: &ProviderInfo) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for (what, spec) in declarations(info) {
        let Some(default) = spec.default.as_ref().into_option() else {
            continue;
        };
        if spec.secret {
            problems.push(format!(
                "{what} is secret but has a default: a secret in the library is no secret; remove the default"
            ));
            continue;
        }
        if let Err(problem) = spec.kind.normalize(default) {
            problems.push(format!(
                "{what} has an invalid default for its type {}: {problem}",
                spec.kind
            ));
        }
        if spec.required {
            warnings.push(format!(
                "{what} is required but has a default, so it is never missing: drop .required() or the default"
            ));
        }
    }
    (problems, warnings)
}

fn setting_defaults(info: &ProviderInfo) -> CheckResult {
    let (problems, warnings) = default_problems(info);
    CheckResult::from_findings(
        "setting-defaults",
        &problems,
        &warnings,
        "every default is valid for its type",
    )
}

fn setting_help(info: &ProviderInfo) -> CheckResult {
    let problems: Vec<String> = declarations(info)
        .into_iter()
        .filter(|(_, spec)| spec.help.trim().is_empty())
        .map(|(what, _)| {
            format!(
                "{what} has no help text: say in one line what it is and where to find its value"
            )
        })
        .collect();
    CheckResult::from_findings(
        "setting-help",
        &problems,
        &[],
        "every setting has help text",
    )
}

fn capabilities(info: &ProviderInfo) -> CheckResult {
    let mut warnings = Vec::new();
    let mut seen = Vec::new();
    for cap in info.capabilities.iter() {
        let cap = cap.as_str();
        if !KNOWN_CAPABILITIES.contains(&cap) {
            warnings.push(format!(
                "capability '{cap}' is unknown to plugin API {} (known: {}); hosts ignore it",
                mailhost_plugin_api::API_VERSION,
                KNOWN_CAPABILITIES.join(", ")
            ));
        }
        if seen.contains(&cap) {
            warnings.push(format!("capability '{cap}' is declared twice"));
        }
        seen.push(cap);
    }
    let ok = if seen.is_empty() {
        "none declared".to_string()
    } else {
        seen.join(", ")
    };
    CheckResult::from_findings("capabilities", &[], &warnings, &ok)
}

#[cfg(test)]
mod tests {
    use mailhost_plugin_api::{SettingKind, SettingSpec};

    use super::*;
    use crate::plugins::check::Status;

    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "acme-mail".into(),
            display_name: "Acme".into(),
            version: "1.2.3".into(),
            description: "Sends through Acme".into(),
            settings: vec![
                SettingSpec::new("ApiKey", SettingKind::STRING, "The key")
                    .required()
                    .secret(),
            ]
            .into(),
            staff_fields: vec![
                SettingSpec::new("NonInteractive", SettingKind::BOOL, "A flag")
                    .default_value("false"),
            ]
            .into(),
            capabilities: vec!["html".into()].into(),
        }
    }

    fn status(checks: &[CheckResult], name: &str) -> Status {
        checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap()
    }

    #[test]
    fn the_host_settings_table_name_is_reserved() {
        let mut reserved = info();
        reserved.name = "mailhost".into();
        let checks = check(&reserved);
        assert_eq!(status(&checks, "name"), Status::Fail);
    }

    #[test]
    fn a_good_description_passes() {
        let checks = check(&info());
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:#?}"
        );
    }

    #[test]
    fn names_versions_and_empty_fields_fail() {
        let mut i = info();
        i.name = "Bad_Name".into();
        i.version = "1.0".into();
        i.display_name = " ".into();
        let checks = check(&i);
        assert_eq!(status(&checks, "name"), Status::Fail);
        assert_eq!(status(&checks, "version"), Status::Fail);
        assert_eq!(status(&checks, "display-name"), Status::Fail);
    }

    #[test]
    fn semver_follows_the_spec() {
        for ok in ["0.1.0", "1.2.3-beta.1", "1.0.0+build.5", "1.0.0-rc-1+x"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0.0", "",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn duplicate_and_malformed_keys_fail() {
        let mut i = info();
        i.settings = vec![
            SettingSpec::new("Host", SettingKind::STRING, "h"),
            SettingSpec::new("host", SettingKind::STRING, "h"),
            SettingSpec::new("has space", SettingKind::STRING, "h"),
        ]
        .into();
        let c = setting_keys(&i);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.contains("declared twice") && c.detail.contains("'has space'"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn defaults_are_checked_against_their_type() {
        let mut i = info();
        i.settings = vec![
            SettingSpec::new("Flag", SettingKind::BOOL, "f").default_value("maybe"),
            SettingSpec::new("Key", SettingKind::STRING, "k")
                .secret()
                .default_value("s3cret"),
        ]
        .into();
        let c = setting_defaults(&i);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.contains("'Flag'") && c.detail.contains("not a boolean"),
            "{}",
            c.detail
        );
        assert!(c.detail.contains("'Key' is secret"), "{}", c.detail);
        i.settings = vec![
            SettingSpec::new("Port", SettingKind::INTEGER, "p")
                .required()
                .default_value("25"),
        ]
        .into();
        assert_eq!(setting_defaults(&i).status, Status::Warn);
    }

    #[test]
    fn unknown_capabilities_warn_and_missing_help_fails() {
        let mut i = info();
        i.capabilities = vec!["html".into(), "telepathy".into()].into();
        assert_eq!(capabilities(&i).status, Status::Warn);
        i.settings = vec![SettingSpec::new("Host", SettingKind::STRING, "")].into();
        assert_eq!(setting_help(&i).status, Status::Fail);
    }
}

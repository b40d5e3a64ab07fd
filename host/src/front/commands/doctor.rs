//! `mailhost doctor [STAFF_ID] [--send-test ADDR] [--json]`: every check that runs without
//! sending. The host checks what it owns (plugins registered, loading, enabled for the staff
//! who use them, settings resolvable) and asks each provider's `diagnose` (plugin API 1.2) for
//! the rest, with the provider's settings and the staff members who send through it. One line
//! per finding, `ok|warn|fail  ID  message`, and `fix: …` under each non-ok one. With a
//! `serve.toml`, the service's own files too: the file reads, and the relay's and the HTTP
//! API's certificate and key load as `mailhost serve` would load them. Exit 0 when nothing
//! failed, 1 otherwise.

use std::collections::BTreeSet;

use mailhost_plugin_api::{DiagnoseRequest, Finding, FindingLevel, StaffMember};
use serde_json::json;

use super::{print, print_json};
use crate::config::home::Home;
use crate::config::{settings, staff};
use crate::delivery::dispatch::Dispatcher;
use crate::error::{EXIT_FAILED, EXIT_OK, Error};
use crate::plugins::registry;

/// One finding and the plugin it came from ("" for the host's own).
#[derive(Debug)]
struct Found {
    plugin: String,
    finding: Finding,
}

fn host(id: &str, level: FindingLevel, staff: &str, message: &str, fix: &str) -> Found {
    Found {
        plugin: String::new(),
        finding: Finding::new(id, level, message, fix).for_staff(staff),
    }
}

pub(super) fn run(
    home: &Home,
    staff_id: Option<&str>,
    send_test: Option<&str>,
    json: bool,
) -> Result<u8, Error> {
    let findings = check(home, staff_id, send_test)?;
    let failed = findings
        .iter()
        .any(|f| f.finding.level == FindingLevel::FAIL);
    if json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                json!({
                    "id": f.finding.id.as_str(),
                    "level": f.finding.level.name(),
                    "plugin": f.plugin,
                    "staff": f.finding.staff.as_str(),
                    "message": f.finding.message.as_str(),
                    "fix": f.finding.fix.as_str(),
                })
            })
            .collect();
        print_json(&json!({"ok": !failed, "findings": list}))?;
    } else {
        let mut lines = Vec::new();
        for f in &findings {
            lines.push(format!(
                "{:<4}  {}  {}",
                f.finding.level.name(),
                f.finding.id,
                f.finding.message
            ));
            if f.finding.level != FindingLevel::OK && !f.finding.fix.is_empty() {
                lines.push(format!("      fix: {}", f.finding.fix));
            }
        }
        let (warned, total) = (
            findings
                .iter()
                .filter(|f| f.finding.level == FindingLevel::WARN)
                .count(),
            findings.len(),
        );
        let failures = findings
            .iter()
            .filter(|f| f.finding.level == FindingLevel::FAIL)
            .count();
        lines.push(format!(
            "{total} checks: {} ok, {warned} warnings, {failures} failed",
            total - warned - failures
        ));
        print(&lines.join("\n"))?;
    }
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}

fn check(
    home: &Home,
    staff_id: Option<&str>,
    send_test: Option<&str>,
) -> Result<Vec<Found>, Error> {
    let dispatcher = Dispatcher::new(home)?;
    let registry = registry::load(home)?;
    let staff_file = staff::load(home)?;
    let mut out = Vec::new();
    let chosen: Vec<(String, staff::StaffRecord)> = match staff_id {
        Some(id) => vec![(id.to_string(), staff_file.require(id)?.clone())],
        None => staff_file
            .staff
            .iter()
            .map(|(id, record)| (id.clone(), record.clone()))
            .collect(),
    };
    if registry.plugins.is_empty() {
        out.push(host(
            "host.plugins",
            FindingLevel::FAIL,
            "",
            "no provider plugin is registered",
            "mailhost plugin add PATH --enable",
        ));
    }
    // The providers to ask: the chosen staff's, and (for the whole set-up) every enabled one.
    let mut plugins: BTreeSet<String> = chosen.iter().map(|(_, r)| r.provider.clone()).collect();
    if staff_id.is_none() {
        plugins.extend(
            registry
                .plugins
                .iter()
                .filter(|p| p.enabled)
                .map(|p| p.name.clone()),
        );
    }
    for (id, record) in &chosen {
        match registry.find(&record.provider) {
            None => out.push(host(
                "host.staff.provider",
                FindingLevel::FAIL,
                id,
                &format!(
                    "staff member '{id}' sends through provider '{}', which is not registered",
                    record.provider
                ),
                &format!(
                    "mailhost plugin add PATH --enable, or mailhost staff set {id} --provider PLUGIN"
                ),
            )),
            Some(entry) if !entry.enabled => out.push(host(
                "host.staff.provider",
                FindingLevel::FAIL,
                id,
                &format!(
                    "staff member '{id}' sends through provider '{}', which is disabled",
                    entry.name
                ),
                &format!("mailhost plugin enable {}", entry.name),
            )),
            Some(entry) => out.push(host(
                "host.staff.provider",
                FindingLevel::OK,
                id,
                &format!(
                    "staff member '{id}' sends through '{}' ({})",
                    entry.name, entry.display_name
                ),
                "",
            )),
        }
    }
    serve_checks(home, &mut out);
    let settings_file = settings::load(home)?;
    for name in plugins {
        let Some(entry) = registry.find(&name) else {
            continue;
        };
        if !entry.enabled {
            continue;
        }
        let plugin = match dispatcher.loader().load(entry) {
            Ok(plugin) => {
                out.push(host(
                    "host.plugin.load",
                    FindingLevel::OK,
                    "",
                    &format!(
                        "plugin '{name}' {} loads (plugin API {})",
                        entry.version, entry.api_version
                    ),
                    "",
                ));
                plugin
            }
            Err(error) => {
                out.push(host(
                    "host.plugin.load",
                    FindingLevel::FAIL,
                    "",
                    &format!("plugin '{name}' does not load: {error}"),
                    &format!(
                        "mailhost plugin verify {name}; rebuild or re-add it with `mailhost plugin add PATH`"
                    ),
                ));
                continue;
            }
        };
        let resolved = match settings::resolve(entry, &settings_file, dispatcher.secrets()) {
            Ok(resolved) => resolved,
            Err(error) => {
                out.push(host(
                    "host.settings",
                    FindingLevel::FAIL,
                    "",
                    &format!("the settings of '{name}' are incomplete: {error}"),
                    &format!("mailhost config list {name}; mailhost config set {name} KEY VALUE"),
                ));
                continue;
            }
        };
        let mut members: Vec<StaffMember> = Vec::new();
        for (id, record) in chosen.iter().filter(|(_, r)| r.provider == name) {
            match dispatcher.prepare(id) {
                Ok(route) => members.push(route.staff().clone()),
                Err(error) => out.push(host(
                    "host.staff",
                    FindingLevel::FAIL,
                    id,
                    &format!(
                        "staff member '{id}' ({}) cannot be prepared: {error}",
                        record.email
                    ),
                    &format!("mailhost staff show {id}"),
                )),
            }
        }
        let request = DiagnoseRequest {
            settings: resolved.into(),
            staff: members.into(),
            send_test_to: send_test.map(Into::into).into(),
        };
        match plugin.diagnose(&request) {
            Ok(findings) if findings.is_empty() => out.push(host(
                "host.diagnose",
                FindingLevel::OK,
                "",
                &format!("plugin '{name}' has no checks of its own (built before plugin API 1.2)"),
                "",
            )),
            Ok(findings) => out.extend(findings.into_iter().map(|finding| Found {
                plugin: name.clone(),
                finding,
            })),
            Err(error) => out.push(host(
                "host.diagnose",
                FindingLevel::FAIL,
                "",
                &format!("plugin '{name}' could not run its checks: {error}"),
                "run again with RUST_LOG=debug and see the plugin's log",
            )),
        }
    }
    Ok(out)
}

/// The files `mailhost serve` reads besides the home's: `serve.toml` itself, and each TLS
/// certificate and key it names, loaded the way the listeners load them (so a certificate
/// that does not match its key, or a key others can read, is found before the service starts).
/// Nothing is checked without a `serve.toml`.
fn serve_checks(home: &Home, out: &mut Vec<Found>) {
    use crate::front::serve::config::ServeConfig;
    use crate::front::{http, smtp};
    let path = home.path().join("serve.toml");
    if !path.exists() {
        return;
    }
    let fail =
        |id: &str, message: String, fix: &str| host(id, FindingLevel::FAIL, "", &message, fix);
    if let Err(error) = ServeConfig::load(home) {
        out.push(fail(
            "host.serve.config",
            error.to_string(),
            "correct the line named, then run `mailhost doctor` again",
        ));
        return;
    }
    out.push(host(
        "host.serve.config",
        FindingLevel::OK,
        "",
        &format!("{} reads", path.display()),
        "",
    ));
    match smtp::config::SmtpConfig::load(&path) {
        Ok(Some(config)) => match &config.tls {
            Some(files) => out.push(tls_finding(
                "host.smtp.tls",
                "the relay's",
                "[smtp]",
                (&files.cert, &files.key),
                smtp::tls::load(files).map(drop).map_err(|e| e.to_string()),
            )),
            None => out.push(host(
                "host.smtp.tls",
                FindingLevel::WARN,
                "",
                "the relay has no certificate: clients cannot use STARTTLS, and AUTH is offered on loopback only",
                "set [smtp] tls_cert and tls_key in serve.toml",
            )),
        },
        Ok(None) => {}
        Err(error) => out.push(fail(
            "host.smtp.config",
            error.to_string(),
            "correct the line named in serve.toml's [smtp] table",
        )),
    }
    match http::config::load(home, None) {
        Ok(settings) => {
            if let Some(files) = &settings.tls {
                out.push(tls_finding(
                    "host.http.tls",
                    "the HTTP API's",
                    "[http]",
                    (&files.cert, &files.key),
                    http::tls::TlsConfig::load(files)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                ));
            }
        }
        Err(error) => out.push(fail(
            "host.http.config",
            error.to_string(),
            "correct the line named in serve.toml's [http] table",
        )),
    }
}

/// `ok` with `message` when the private key at `key` is readable by its owner (and group) only;
/// a warning naming the fix otherwise.
/// The finding `id` for `whose` certificate and key (`files`, named in serve.toml's `table`),
/// loaded as serve loads them (`loaded`).
fn tls_finding(
    id: &str,
    whose: &str,
    table: &str,
    files: (&std::path::Path, &std::path::Path),
    loaded: Result<(), String>,
) -> Found {
    let (cert, key) = files;
    match loaded {
        Ok(()) => key_privacy(
            id,
            key,
            &format!(
                "{whose} certificate {} and key {} load",
                cert.display(),
                key.display()
            ),
        ),
        Err(error) => host(
            id,
            FindingLevel::FAIL,
            "",
            &error,
            &format!(
                "point {table} tls_cert and tls_key at a PEM certificate chain and its PEM private key"
            ),
        ),
    }
}

fn key_privacy(id: &str, key: &std::path::Path, message: &str) -> Found {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(key).map_or(0, |m| m.permissions().mode());
    if mode & 0o007 != 0 {
        return host(
            id,
            FindingLevel::WARN,
            "",
            &format!("{message}, but the key is readable by other users"),
            &format!("chmod 600 {}", key.display()),
        );
    }
    host(id, FindingLevel::OK, "", message, "")
}

//! Printing a [`Report`]: one line per check (`PASS`/`WARN`/`FAIL`, name, detail) and a
//! summary line, or one JSON object.

use serde_json::{Value, json};

use super::{Report, Status};

/// The report as text lines, ending with the summary.
pub fn text(report: &Report) -> String {
    let mut lines = vec![format!("plugin check: {}", report.path)];
    if let Some(plugin) = &report.plugin {
        lines.push(format!(
            "plugin '{}' {}, built against plugin API {}",
            plugin.name, plugin.version, plugin.api_version
        ));
    }
    let width = report
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        lines.push(format!(
            "{}  {:<width$}  {}",
            check.status.label(),
            check.name,
            check.detail
        ));
    }
    lines.push(summary(report));
    lines.join("\n")
}

/// The last line: counts, and what failed.
pub fn summary(report: &Report) -> String {
    let (pass, warn, fail) = (
        report.count(Status::Pass),
        report.count(Status::Warn),
        report.count(Status::Fail),
    );
    let counts = format!(
        "{} checks: {pass} passed, {warn} warning{}, {fail} failed",
        report.checks.len(),
        if warn == 1 { "" } else { "s" }
    );
    if report.passed {
        let who = report
            .plugin
            .as_ref()
            .map_or("the library".to_string(), |p| {
                format!("plugin '{}'", p.name)
            });
        format!(
            "{counts}: {who} conforms to plugin API {}",
            mailhost_plugin_api::API_VERSION
        )
    } else {
        format!("{counts} ({}): FAILED", failed_names(report).join(", "))
    }
}

/// The names of the failed checks.
pub fn failed_names(report: &Report) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name.as_str())
        .collect()
}

/// The report as JSON: `{"path", "plugin": {name, version, api_version} | null, "checks":
/// [{name, status, detail}], "passed"}`, statuses `pass`, `warn` or `fail`.
pub fn json(report: &Report) -> Value {
    json!({
        "path": report.path,
        "plugin": report.plugin,
        "checks": report.checks,
        "passed": report.passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::check::{CheckResult, PluginSummary};

    fn report() -> Report {
        Report::new(
            "/lib/libx.so".into(),
            Some(PluginSummary {
                name: "x".into(),
                version: "1.0.0".into(),
                api_version: "1.1.0".into(),
            }),
            vec![
                CheckResult::pass("name", "'x'"),
                CheckResult::fail("send:html", "crashed"),
            ],
        )
    }

    #[test]
    fn text_has_one_line_per_check_and_a_summary() {
        let text = text(&report());
        assert!(text.contains("PASS  name       'x'"), "{text}");
        assert!(text.contains("FAIL  send:html  crashed"), "{text}");
        assert!(
            text.ends_with("2 checks: 1 passed, 0 warnings, 1 failed (send:html): FAILED"),
            "{text}"
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let value = json(&report());
        assert_eq!(value["plugin"]["api_version"], "1.1.0");
        assert_eq!(value["checks"][1]["status"], "fail");
        assert_eq!(value["passed"], false);
    }
}

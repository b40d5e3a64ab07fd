//! `mailhost plugin check PATH`: the conformance run a provider author uses before publishing.
//!
//! The checks run in a child process (`mailhost` re-invoking itself with a hidden option), so
//! a library that aborts, segfaults or hangs is reported as a failed check instead of killing
//! the checker. The child ([`child`]) loads the library with the loader's own safety checks
//! but without registering it, lends it a capture sink instead of the host's services
//! ([`sink`]), checks its self-description ([`metadata`]), sends edge-case messages
//! ([`messages`]) with settings it derives from the declarations ([`plan`]), and streams one
//! event per step on standard output ([`protocol`]). The parent ([`supervise`]) reads the
//! events, kills the child when a step takes longer than the timeout, turns a death by signal
//! into a failed check naming the step, and builds the [`Report`] ([`report`] prints it).

pub mod child;
pub mod messages;
pub mod metadata;
pub mod plan;
pub mod protocol;
pub mod report;
pub mod sink;
pub mod supervise;

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The library does what the API asks.
    Pass,
    /// Allowed, but probably not what the author meant.
    Warn,
    /// The library breaks a rule of the API; `plugin check` exits 1.
    Fail,
}

impl Status {
    /// `PASS`, `WARN` or `FAIL`, as the text report shows it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the report: a named check, its status and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's stable name, such as `name` or `send:unicode`.
    pub name: String,
    /// Its outcome.
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
}

impl CheckResult {
    /// A check with `status`.
    pub fn new(name: &str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            status,
            detail: detail.into(),
        }
    }

    /// A passed check.
    pub fn pass(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail)
    }

    /// A warning.
    pub fn warn(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail)
    }

    /// A failed check.
    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail)
    }

    /// A check that fails on any problem, warns on any warning, and passes with `ok` otherwise.
    pub fn from_findings(name: &str, problems: &[String], warnings: &[String], ok: &str) -> Self {
        if !problems.is_empty() {
            let mut all = problems.to_vec();
            all.extend(warnings.iter().map(|w| format!("warning: {w}")));
            Self::fail(name, all.join("; "))
        } else if !warnings.is_empty() {
            Self::warn(name, warnings.join("; "))
        } else {
            Self::pass(name, ok)
        }
    }
}

/// What the library says it is, once it loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSummary {
    /// The registry name it reports.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The plugin API version it was built against.
    pub api_version: String,
}

/// The whole run: the library, the plugin (if it loaded) and every check in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The library checked.
    pub path: String,
    /// What it reported about itself, when it loaded.
    pub plugin: Option<PluginSummary>,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// Whether no check failed (warnings allowed).
    pub passed: bool,
}

impl Report {
    /// Builds a report and works out `passed`.
    pub fn new(path: String, plugin: Option<PluginSummary>, checks: Vec<CheckResult>) -> Self {
        let passed = !checks.iter().any(|c| c.status == Status::Fail);
        Self {
            path,
            plugin,
            checks,
            passed,
        }
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// Options of one run, shared by the parent and the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `KEY=VALUE` settings the author supplied (`--setting`), for system settings or staff
    /// fields.
    pub settings: Vec<(String, String)>,
    /// How long one step may take, in seconds.
    pub timeout_secs: u64,
}

/// Shortens `text` to at most `max` characters, marking the cut with `…`, on one line.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_fail_before_they_warn() {
        let c = CheckResult::from_findings("x", &["bad".into()], &["meh".into()], "ok");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.detail, "bad; warning: meh");
        let c = CheckResult::from_findings("x", &[], &["meh".into()], "ok");
        assert_eq!(c.status, Status::Warn);
        assert_eq!(CheckResult::from_findings("x", &[], &[], "ok").detail, "ok");
    }

    #[test]
    fn reports_pass_only_without_failures() {
        let report = Report::new("p".into(), None, vec![CheckResult::warn("a", "w")]);
        assert!(report.passed);
        let report = Report::new("p".into(), None, vec![CheckResult::fail("a", "f")]);
        assert!(!report.passed);
    }

    #[test]
    fn long_text_is_cut_on_one_line() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}

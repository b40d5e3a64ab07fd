//! `mailhost plugin check PATH`: the conformance run for provider authors, driven through the
//! real binary. Good providers (pickup-dir, the guide's template) pass; fixtures that each break
//! one rule (`tests/fixtures/check-*`) fail that one named check; a provider that aborts or
//! hangs is reported as a failed check while the checker itself exits 1 normally; a path that
//! is no library at all exits 2.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use mailhost_tests::fixtures::{fixture_path, set_mode};
use mailhost_tests::{Home, assert_exit, build_library, one_line, plugin_path};
use serde_json::Value;

/// Every check a library that loads gets, in report order (the send cases included).
const CHECKS: &[&str] = &[
    "file",
    "load",
    "name",
    "display-name",
    "version",
    "description",
    "setting-keys",
    "setting-types",
    "setting-defaults",
    "setting-help",
    "capabilities",
    "optional-functions",
    "send-setup",
    "send:unicode",
    "send:empty-body",
    "send:html",
    "send:many-recipients",
    "send:attachment",
    "send:custom-header",
    "panic-containment",
    "concurrency",
    "no-secrets-in-logs",
    "quiet-stdout",
    "no-secrets-in-output",
];

fn check(home: &Home, library: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["plugin", "check", library.to_str().unwrap()];
    args.extend_from_slice(extra);
    home.run(&args)
}

/// Runs `plugin check --json`, asserts the exit status and returns the report.
fn check_json(home: &Home, library: &Path, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["plugin", "check", library.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let output = home.run(&args);
    assert_exit(&output, code, &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{stdout}"))
}

fn checks(report: &Value) -> &Vec<Value> {
    report["checks"].as_array().expect("checks is an array")
}

fn named<'a>(report: &'a Value, name: &str) -> &'a Value {
    checks(report)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check '{name}' in {report:#}"))
}

fn failed(report: &Value) -> Vec<&str> {
    checks(report)
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// The fixture fails exactly `name`; returns that check's detail.
fn fails_only(fixture: &str, name: &str) -> String {
    let home = Home::new();
    let report = check_json(&home, &fixture_path(fixture), &["--timeout", "5"], 1);
    assert_eq!(report["passed"], false, "{report:#}");
    assert_eq!(failed(&report), [name], "{report:#}");
    named(&report, name)["detail"].as_str().unwrap().to_string()
}

#[test]
fn pickup_dir_passes_every_check_without_being_registered() {
    let home = Home::new();
    let output = check(&home, &plugin_path("pickup_dir"), &[]);
    assert_exit(&output, 0, &["plugin", "check", "pickup_dir"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    for name in CHECKS {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("PASS") && l.split_whitespace().nth(1) == Some(name)),
            "no PASS line for {name}:\n{stdout}"
        );
    }
    assert!(lines.iter().all(|l| !l.starts_with("FAIL")), "{stdout}");
    let summary = lines.last().unwrap();
    assert!(
        summary.contains("0 failed") && summary.contains("conforms"),
        "{summary}"
    );
    assert!(
        stdout.contains("PASS  send:many-recipients  sent"),
        "pickup-dir writes, so sends succeed:\n{stdout}"
    );
    assert!(
        home.plugin_list().is_empty(),
        "plugin check must not register the library"
    );
}

#[test]
fn the_json_report_has_the_documented_shape() {
    let home = Home::new();
    let report = check_json(&home, &plugin_path("pickup_dir"), &[], 0);
    assert_eq!(report["passed"], true);
    assert!(
        report["path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("pickup_dir{}", std::env::consts::DLL_SUFFIX))
    );
    assert_eq!(report["plugin"]["name"], "pickup-dir");
    assert!(report["plugin"]["version"].is_string());
    assert_eq!(report["plugin"]["api_version"], "1.2.0");
    let names: Vec<&str> = checks(&report)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for c in checks(&report) {
        assert!(
            ["pass", "warn"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
    }
}

#[test]
fn settings_given_by_the_author_are_used() {
    let home = Home::new();
    let out = home.path().join("pickup");
    std::fs::create_dir_all(&out).unwrap();
    let setting = format!("Directory={}", out.display());
    check_json(
        &home,
        &plugin_path("pickup_dir"),
        &["--setting", &setting],
        0,
    );
    let written = std::fs::read_dir(&out).unwrap().count();
    // Six edge cases and eight concurrent sends; the probe is refused.
    assert_eq!(
        written,
        14,
        "expected one .eml per successful send in {}",
        out.display()
    );
    let output = check(&home, &plugin_path("pickup_dir"), &["--setting", "Nope=1"]);
    assert_exit(&output, 2, &["plugin", "check", "--setting", "Nope=1"]);
    let line = one_line(std::str::from_utf8(&output.stderr).unwrap()).to_string();
    assert!(
        line.contains("'Nope'") && line.contains("valid keys: Directory"),
        "{line}"
    );
}

#[test]
fn the_guides_template_provider_passes() {
    let home = Home::new();
    let report = check_json(
        &home,
        &build_library("mailhost-provider-template", "mailhost_provider_template"),
        &[],
        0,
    );
    assert_eq!(report["plugin"]["name"], "jsonl-file");
    assert!(failed(&report).is_empty(), "{report:#}");
    assert!(
        named(&report, "send:attachment")["detail"]
            .as_str()
            .unwrap()
            .starts_with("sent"),
        "{report:#}"
    );
}

#[test]
fn a_bad_name_fails_the_name_check() {
    let detail = fails_only("check-bad-name", "name");
    assert!(
        detail.contains("'Bad_Name' is not a valid plugin name"),
        "{detail}"
    );
}

#[test]
fn a_version_that_is_not_semver_fails_the_version_check() {
    let detail = fails_only("check-bad-version", "version");
    assert!(
        detail.contains("'1.0' is not a semantic version"),
        "{detail}"
    );
}

#[test]
fn duplicate_setting_keys_fail_the_keys_check() {
    let detail = fails_only("check-duplicate-keys", "setting-keys");
    assert!(detail.contains("declared twice"), "{detail}");
}

#[test]
fn an_invalid_bool_default_fails_the_defaults_check() {
    let detail = fails_only("check-bad-default", "setting-defaults");
    assert!(
        detail.contains("'UseTls'") && detail.contains("'maybe' is not a boolean"),
        "{detail}"
    );
}

#[test]
fn logging_the_staff_password_fails_the_leak_check() {
    let detail = fails_only("check-logs-password", "no-secrets-in-logs");
    assert!(detail.contains("contains the staff password"), "{detail}");
    assert!(
        !detail.contains("pw-"),
        "the report must not show the password: {detail}"
    );
}

#[test]
fn a_provider_that_aborts_is_reported_and_the_checker_exits_1() {
    let home = Home::new();
    let output = check(&home, &fixture_path("check-aborts"), &[]);
    assert_exit(&output, 1, &["plugin", "check", "check-aborts"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(
        line.contains("send:unicode") && line.contains("crashed the process during send"),
        "{line}"
    );
    if cfg!(unix) {
        assert!(line.contains("signal 6"), "{line}");
    }
    assert!(
        stdout.lines().last().unwrap().contains("FAILED"),
        "{stdout}"
    );
    let stderr = one_line(std::str::from_utf8(&output.stderr).unwrap()).to_string();
    assert!(stderr.contains("send:unicode"), "{stderr}");
}

#[test]
fn a_provider_that_hangs_fails_on_the_timeout() {
    let home = Home::new();
    let started = Instant::now();
    let report = check_json(&home, &fixture_path("check-hangs"), &["--timeout", "2"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the timeout was not honoured"
    );
    assert_eq!(failed(&report), ["send:unicode"], "{report:#}");
    let detail = named(&report, "send:unicode")["detail"].as_str().unwrap();
    assert!(detail.contains("no answer within 2 s"), "{detail}");
}

#[test]
fn a_library_that_is_not_a_plugin_fails_the_load_check() {
    let home = Home::new();
    let report = check_json(&home, &fixture_path("not-a-plugin"), &[], 1);
    assert_eq!(report["plugin"], Value::Null);
    assert_eq!(failed(&report), ["load"], "{report:#}");
    let detail = named(&report, "load")["detail"].as_str().unwrap();
    assert!(detail.contains("is not a mailhost plugin"), "{detail}");
}

#[test]
fn a_library_writable_by_others_fails_the_file_check() {
    let home = Home::new();
    let path = home.install(&plugin_path("pickup_dir"));
    set_mode(&path, 0o777);
    let report = check_json(&home, &path, &[], 1);
    assert_eq!(failed(&report), ["file"], "{report:#}");
    assert!(
        named(&report, "file")["detail"]
            .as_str()
            .unwrap()
            .contains("chmod go-w"),
        "{report:#}"
    );
}

#[test]
fn a_missing_path_is_unusable() {
    let home = Home::new();
    let missing = home.path().join("libnowhere.so");
    let output = check(&home, &missing, &[]);
    assert_exit(&output, 2, &["plugin", "check", "libnowhere.so"]);
    let line = one_line(std::str::from_utf8(&output.stderr).unwrap()).to_string();
    assert!(
        line.contains("libnowhere.so") && line.contains("missing"),
        "{line}"
    );
}

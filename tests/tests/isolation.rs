//! Provider isolation, driven through the real binary: one fixture per fault (segfault,
//! abort, stack overflow, `exit(0)`, a hang, stdout noise, a crashing static initialiser, the
//! same built for API 2.0, a 100,000-character version, bad setting keys, a panicking provider
//! thread, an orphaned `sleep 60`), each with its exit status, its one line, the record's state
//! and the quarantine after 3 crashes in 10 minutes; two plugins side by side; API 1.0 and 1.1
//! plugins isolated; secrets redacted from plugin logs; `config set --value-stdin`.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::process::Output;

use mailhost_tests::fixtures::{ApiFixture, api_fixture, fixture_path};
use mailhost_tests::plugins::state_text;
use mailhost_tests::{Home, one_line};
use serde_json::Value;

fn send_args(staff: &str) -> Vec<&str> {
    vec![
        "email",
        "send",
        "--staff",
        staff,
        "--to",
        "megan@contoso.com",
        "--subject",
        "Hi",
        "--body",
        "Hello",
        "--json",
    ]
}

/// A home with the fault fixture `name` registered, enabled, and staff member adele on it.
fn fault_home(name: &str) -> Home {
    let home = Home::new();
    home.add_enabled(&fixture_path(name));
    home.add_adele(name, &[]);
    home
}

/// Sends as adele; returns the output, its `--json` object and its one stderr line.
fn send(home: &Home) -> (Output, Value, String) {
    let output = home.run(&send_args("adele"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--json output is not one JSON object ({e}):\n{stdout}"));
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let line = one_line(&stderr).to_string();
    (output, json, line)
}

/// A send through `fixture` must exit 1 with one line naming the plugin and `what`, the
/// `--json` object must say `unknown`, and the store must keep it `unknown`.
fn crash_is_unknown(fixture: &str, what: &str) {
    let home = fault_home(fixture);
    let (output, json, line) = send(&home);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(json["status"], "unknown", "{json:#}");
    assert_eq!(json["error"]["kind"], "unknown-outcome", "{json:#}");
    assert!(line.contains(fixture) && line.contains(what), "{line}");
    assert!(line.contains("--force"), "says what to do: {line}");
    let listed = home.json(&["email", "list", "--json"]);
    assert_eq!(listed[0]["status"], "unknown", "{listed:#}");
    // The host is unharmed: listings still work.
    home.ok(&["plugin", "list"]);
}

#[test]
fn a_segfault_in_send_is_an_unknown_email_not_a_dead_host() {
    crash_is_unknown("fault-segfault", "SIGSEGV");
}

#[test]
fn an_abort_in_send_is_an_unknown_email() {
    crash_is_unknown("fault-abort", "SIGABRT");
}

#[test]
fn a_stack_overflow_in_send_is_an_unknown_email() {
    crash_is_unknown("fault-stack-overflow", "SIGABRT");
}

#[test]
fn exit_0_in_send_is_not_taken_for_success() {
    crash_is_unknown("fault-exit", "exited with status 0");
}

#[test]
fn an_orphaned_child_process_does_not_hold_the_host() {
    // The provider starts `sleep 60` and aborts: the crash is reported at once, not after the
    // sleep (which would first hit the 300 s send timeout and say "did not answer").
    crash_is_unknown("fault-orphan", "SIGABRT");
}

#[test]
fn a_hang_past_send_timeout_seconds_is_stopped() {
    let home = fault_home("fault-hang");
    home.ok(&["config", "set", "fault-hang", "SendTimeoutSeconds", "2"]);
    let (output, json, line) = send(&home);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(json["status"], "unknown", "{json:#}");
    assert!(
        line.contains("did not answer within 2 s") && line.contains("SendTimeoutSeconds"),
        "{line}"
    );
    assert_eq!(json["error"]["code"], "PROVIDER_TIMEOUT", "{json:#}");
    // The `sleep 3599` the provider started was stopped with it.
    let started = std::time::Instant::now();
    while sleeps_3599() > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the provider's own process outlived the stopped provider"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How many `sleep 3599` processes run on the machine (only the fault-hang fixture starts one).
fn sleeps_3599() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.as_slice() == b"sleep\x003599\x00")
        .count()
}

#[test]
fn three_crashes_in_ten_minutes_quarantine_until_enabled() {
    let home = fault_home("fault-segfault");
    for attempt in 1..=3 {
        let (_, json, line) = send(&home);
        assert_eq!(json["status"], "unknown", "attempt {attempt}: {json:#}");
        assert_eq!(
            line.contains("now quarantined"),
            attempt == 3,
            "attempt {attempt}: {line}"
        );
    }
    let entry = home.plugin_entry("fault-segfault");
    assert!(state_text(&entry).contains("quarantined"), "{entry:#}");
    assert!(
        entry["quarantine"]["reason"]
            .as_str()
            .unwrap()
            .contains("crashed 3 times in 10 minutes (last: was killed by SIGSEGV"),
        "{entry:#}"
    );
    assert!(home.ok(&["plugin", "list"]).contains("quarantined"));
    assert!(
        home.ok(&["plugin", "info", "fault-segfault"])
            .contains("3 times in 10 minutes")
    );

    // Quarantined, it is not started: the email is failed (it surely did not go), not unknown.
    let (output, json, line) = send(&home);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["status"], "failed", "{json:#}");
    assert!(line.contains("quarantined"), "{line}");

    // Enabling lifts it; the next crash counts from zero again.
    home.ok(&["plugin", "enable", "fault-segfault"]);
    assert!(!state_text(&home.plugin_entry("fault-segfault")).contains("quarantin"));
    let (_, json, line) = send(&home);
    assert_eq!(json["status"], "unknown", "{json:#}");
    assert!(!line.contains("quarantined"), "{line}");
}

#[test]
fn provider_stdout_never_reaches_the_hosts_output() {
    let home = fault_home("fault-stdout");
    let output = home.run(&send_args("adele"));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["status"], "sent");
    assert!(!stdout.contains("forged"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("forged"), "{stderr}");
}

#[test]
fn a_panic_in_a_provider_thread_is_contained() {
    let home = fault_home("fault-thread-panic");
    let output = home.run(&send_args("adele"));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["status"], "sent", "{json:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_crashing_static_initialiser_is_refused_by_plugin_add_in_one_line() {
    let home = Home::new();
    let path = home.install(&fixture_path("fault-static-init"));
    let output = home.run(&["plugin", "add", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = one_line(&stderr);
    assert!(
        line.contains("crashed its provider process while loading") && line.contains("SIGABRT"),
        "{line}"
    );
    assert!(home.plugin_list().is_empty());
}

#[test]
fn a_crashing_initialiser_built_for_api_2_is_refused_in_one_line() {
    let home = Home::new();
    let path = home.install(&api_fixture(ApiFixture::Major2CrashingInit));
    let output = home.run(&["plugin", "add", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(one_line(&stderr).contains("SIGABRT"), "{stderr}");
    assert!(home.plugin_list().is_empty());
}

#[test]
fn a_100000_character_version_lists_without_a_panic() {
    let home = Home::new();
    home.add_enabled(&fixture_path("fault-long-version"));
    for args in [
        &["plugin", "list"][..],
        &["plugin", "info", "fault-long-version"],
        &["plugin", "verify"],
        &["config", "list"],
    ] {
        let output = home.run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    }
    let entry = home.plugin_entry("fault-long-version");
    assert_eq!(entry["version"].as_str().unwrap().len(), 100_000);
}

#[test]
fn malformed_setting_keys_are_refused_by_plugin_add() {
    for (bad, named) in [
        ("empty", "''"),
        ("newline", "Bad\\nKey"),
        ("equals", "Bad=Key"),
        ("space", "Bad Key"),
        ("duplicate", "declared twice"),
        ("default", "Retries"),
    ] {
        let home = Home::new();
        let path = home.install(&fixture_path("fault-bad-keys"));
        let output = home.run_env(
            &["plugin", "add", path.to_str().unwrap()],
            &[("MAILHOST_FIXTURE_BAD_KEY", bad)],
        );
        assert_eq!(output.status.code(), Some(2), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = one_line(&stderr);
        assert!(line.contains(named), "{bad}: {line}");
        assert!(line.contains("fault-bad-keys"), "{bad}: {line}");
        assert!(home.plugin_list().is_empty(), "{bad} was registered");
    }
    // Well-formed, the same library is added.
    let home = Home::new();
    home.add_enabled(&fixture_path("fault-bad-keys"));
}

/// Two plugins in one host process (`email retry --failed` sends both): the crashing one
/// does not disturb the other's send, whether that one runs isolated or in process.
fn side_by_side(other_in_process: bool) {
    let home = Home::new();
    home.add_enabled(&fixture_path("fault-segfault"));
    let pickup = home.add_pickup_dir("pickup");
    if other_in_process {
        home.ok(&["plugin", "isolate", "pickup-dir", "in-process"]);
    }
    home.add_adele("fault-segfault", &[]);
    home.ok(&[
        "staff",
        "add",
        "bob",
        "--provider",
        "pickup-dir",
        "--email",
        "bob@contoso.com",
    ]);
    // Both fail to send while disabled (kept `failed`), the crashing one's first.
    home.ok(&["plugin", "disable", "fault-segfault"]);
    home.ok(&["plugin", "disable", "pickup-dir"]);
    for staff in ["adele", "bob"] {
        assert_eq!(home.run(&send_args(staff)).status.code(), Some(1));
    }
    home.ok(&["plugin", "enable", "fault-segfault"]);
    home.ok(&["plugin", "enable", "pickup-dir"]);
    let output = home.run(&["email", "retry", "--failed", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let statuses: Vec<(String, String)> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["provider"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("fault-segfault".to_string(), "unknown".to_string()),
            ("pickup-dir".to_string(), "sent".to_string())
        ],
        "{json:#}"
    );
    assert_eq!(std::fs::read_dir(&pickup).unwrap().count(), 1);
}

#[test]
fn a_crashing_plugin_does_not_disturb_an_isolated_neighbour() {
    side_by_side(false);
}

#[test]
fn a_crashing_plugin_does_not_disturb_an_in_process_neighbour() {
    side_by_side(true);
}

#[test]
fn api_1_0_and_1_1_plugins_load_and_send_isolated() {
    for which in [ApiFixture::V1_0, ApiFixture::V1_1] {
        let home = Home::new();
        home.add_enabled(&api_fixture(which));
        let entry = home.plugin_entry(which.plugin_name());
        assert_eq!(entry["isolation"], "process", "{entry:#}");
        home.add_adele(which.plugin_name(), &[]);
        let output = home.run(&send_args("adele"));
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(0), "{which:?}: {output:?}");
        assert_eq!(json["status"], "sent", "{which:?}: {json:#}");
    }
}

#[test]
fn plugin_isolate_switches_where_the_provider_runs() {
    let home = Home::new();
    home.add_pickup_dir("pickup");
    home.add_adele("pickup-dir", &[]);
    let said = home.ok(&["plugin", "isolate", "pickup-dir", "in-process"]);
    assert!(said.contains("inside mailhost"), "{said}");
    assert!(
        home.read("plugins.toml")
            .contains("isolation = \"in-process\"")
    );
    assert!(
        home.ok(&["plugin", "info", "pickup-dir"])
            .contains("in-process")
    );
    assert_eq!(home.json(&send_args("adele"))["status"], "sent");
    home.ok(&["plugin", "isolate", "pickup-dir", "process"]);
    assert!(!home.read("plugins.toml").contains("isolation"));
    assert_eq!(home.json(&send_args("adele"))["status"], "sent");
    // A mode that does not exist is bad usage.
    assert_eq!(
        home.run(&["plugin", "isolate", "pickup-dir", "thread"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn secrets_are_redacted_from_plugin_logs_in_every_form() {
    let home = Home::new();
    home.add_enabled(&fixture_path("fault-leaky-log"));
    let token = format!("tok-{}-{}", "Zq9/x+Y", std::process::id()) + &"k3".repeat(20);
    let set = home.run_with_stdin(
        &["config", "set", "fault-leaky-log", "Token", "--value-stdin"],
        &format!("{token}\n"),
    );
    assert_eq!(set.status.code(), Some(0), "{set:?}");
    let settings = std::fs::read_to_string(home.path().join("settings.toml")).unwrap_or_default();
    assert!(!settings.contains(&token), "{settings}");
    home.add_adele("fault-leaky-log", &[]);
    let output = home.run_env(&send_args("adele"), &[("RUST_LOG", "trace")]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Bearer"),
        "the fixture logged nothing: {stderr}"
    );
    assert!(stderr.contains("[REDACTED]"), "{stderr}");
    let hex = token
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    for leak in [token.as_str(), &token[8..24], "Zq9%2Fx%2BY", &hex[..23]] {
        assert!(!stderr.contains(leak), "{leak} leaked:\n{stderr}");
    }
    // Nor does the dump's text column show it, split over rows.
    let column: String = stderr.lines().filter_map(|l| l.split('|').nth(1)).collect();
    assert!(!column.contains(&token[..12]), "{column}");
}

#[test]
fn plugin_check_catches_a_secret_split_across_hex_dump_rows() {
    let home = Home::new();
    let path = home.install(&fixture_path("fault-leaky-log"));
    let output = home.run_env(
        &["plugin", "check", path.to_str().unwrap(), "--json"],
        &[("MAILHOST_FIXTURE_ONLY_HEX_DUMP", "1")],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let leak = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "no-secrets-in-logs")
        .cloned()
        .unwrap();
    assert_eq!(leak["status"], "fail", "{report:#}");
    assert!(
        leak["detail"]
            .as_str()
            .unwrap()
            .contains("secret setting 'Token'"),
        "{leak:#}"
    );
}

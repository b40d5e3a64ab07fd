//! Loading plugins: one broken fixture per load failure, each refused with one clear line
//! (missing file, not a library, not a plugin, API 2.0, API 1.9, hash changed, writable by
//! others), a crash while loading (quarantined on the next start), a panicking provider (an
//! error, not a dead host), an API 1.0 plugin (loads, sends, has no sign-in), and a refused
//! plugin that does not stop another from sending.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::io::Write;

use mailhost_tests::fixtures::{ApiFixture, api_fixture, fixture_path, set_mode};
use mailhost_tests::homes::adele_send_args;
use mailhost_tests::plugins::state_text;
use mailhost_tests::{Home, assert_failed, one_line};

/// `plugin add PATH` must fail with one line on stderr; returns that line.
fn add_refused(home: &Home, path: &std::path::Path) -> String {
    let stderr = home.refused(&["plugin", "add", path.to_str().unwrap()]);
    let line = one_line(&stderr).to_string();
    assert!(
        !line.contains("AbiInstability") && !line.contains("expected:") && line.len() < 400,
        "abi_stable's layout report leaked to the user: {line}"
    );
    assert!(
        home.plugin_list().is_empty(),
        "a refused plugin was registered"
    );
    line
}

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

#[test]
fn a_missing_file_is_refused() {
    let home = Home::new();
    let missing = home.libs().join("libnowhere.so");
    let line = add_refused(&home, &missing);
    assert!(line.contains("libnowhere.so"), "{line}");
}

#[test]
fn a_registered_file_that_disappears_is_reported_not_fatal() {
    let home = Home::new();
    let path = home.add_enabled(&fixture_path("null"));
    std::fs::remove_file(&path).unwrap();
    // Listing still works and says what is wrong with the entry.
    let entry = home.plugin_entry("null");
    let state = state_text(&entry);
    assert!(
        !state.contains("\"loaded\"") && state != "loaded",
        "{entry:#}"
    );
    assert!(
        state.contains("missing") || state.contains("not found") || state.contains("no such"),
        "{entry:#}"
    );
    let stderr = home.refused(&["plugin", "verify", "null"]);
    assert!(stderr.contains("null"), "{stderr}");
}

#[test]
fn a_text_file_named_like_a_library_is_refused() {
    let home = Home::new();
    std::fs::create_dir_all(home.libs()).unwrap();
    let fake = home.libs().join("libfake.so");
    std::fs::write(&fake, "this is a text file, not a shared library\n").unwrap();
    set_mode(&fake, 0o755);
    let line = add_refused(&home, &fake);
    assert!(line.contains("libfake.so"), "{line}");
    assert!(
        line.contains("librar"),
        "should say it is not a library: {line}"
    );
}

#[test]
fn a_library_without_a_root_module_is_refused() {
    let home = Home::new();
    let path = home.install(&fixture_path("not-a-plugin"));
    let line = add_refused(&home, &path);
    assert!(line.contains("fixture_not_a_plugin"), "{line}");
    assert!(
        line.contains("not a mailhost plugin") || line.contains("plugin"),
        "{line}"
    );
}

#[test]
fn a_plugin_of_api_2_is_refused_with_the_rebuild_hint() {
    let home = Home::new();
    let path = home.install(&api_fixture(ApiFixture::Major2));
    let line = add_refused(&home, &path);
    // Not loaded yet, so the host knows it by its file, not its name.
    assert!(line.contains("fixture_api_2_0"), "{line}");
    assert!(
        line.contains(
            "was built for plugin API 2.0; this host provides 1.2: rebuild it against mailhost-plugin-api 1.x"
        ),
        "{line}"
    );
}

#[test]
fn a_plugin_of_a_newer_minor_is_refused_with_the_upgrade_hint() {
    let home = Home::new();
    let path = home.install(&api_fixture(ApiFixture::Minor9));
    let line = add_refused(&home, &path);
    assert!(line.contains("fixture_api_1_9"), "{line}");
    assert!(line.contains("built for plugin API 1.9"), "{line}");
    assert!(line.contains("upgrade mailhost"), "{line}");
}

#[test]
fn a_plugin_of_api_1_0_loads_sends_and_has_no_sign_in() {
    let home = Home::new();
    let path = home.install(&api_fixture(ApiFixture::V1_0));
    home.register_enabled(&path);
    let entry = home.plugin_entry("api-1-0");
    assert!(
        entry["api_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1.0"),
        "{entry:#}"
    );
    assert!(state_text(&entry).contains("loaded"), "{entry:#}");

    home.add_adele("api-1-0", &[]);
    let sent = home.json(&send_args("adele"));
    assert_eq!(sent["status"], "sent", "{sent:#}");

    // The prefix type has no sign_in field: the host sees None and says so.
    let output = home.run(&["login", "adele"]);
    assert_failed(&output, &["login", "adele"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no interactive sign-in"), "{stderr}");
}

#[test]
fn a_plugin_of_api_1_1_loads_and_sends_without_the_1_2_functions() {
    let home = Home::new();
    let path = home.install(&api_fixture(ApiFixture::V1_1));
    home.register_enabled(&path);
    let entry = home.plugin_entry("api-1-1");
    assert!(
        entry["api_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1.1"),
        "{entry:#}"
    );
    assert!(state_text(&entry).contains("loaded"), "{entry:#}");
    home.add_adele("api-1-1", &[]);
    let sent = home.json(&send_args("adele"));
    assert_eq!(sent["status"], "sent", "{sent:#}");
}

#[test]
fn a_changed_file_is_refused_after_registration() {
    let home = Home::new();
    let path = home.add_enabled(&fixture_path("null"));
    home.add_adele("null", &[]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    let entry = home.plugin_entry("null");
    let state = state_text(&entry);
    assert!(
        state.contains("changed") || state.contains("hash") || state.contains("sha"),
        "{entry:#}"
    );

    let stderr = home.refused(&["plugin", "verify", "null"]);
    let line = one_line(&stderr);
    assert!(line.contains("null"), "{line}");
    assert!(
        line.contains("changed") || line.contains("SHA") || line.contains("hash"),
        "{line}"
    );

    let output = home.run(&send_args("adele"));
    assert_failed(&output, &send_args("adele"));
    let all = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        all.contains("changed") || all.contains("SHA") || all.contains("hash"),
        "{all}"
    );
}

#[cfg(unix)]
#[test]
fn a_library_writable_by_others_is_refused() {
    let home = Home::new();
    let path = home.install(&fixture_path("null"));
    for mode in [0o775, 0o757, 0o666] {
        set_mode(&path, mode);
        let line = add_refused(&home, &path);
        assert!(line.contains("writable"), "mode {mode:o}: {line}");
    }
    set_mode(&path, 0o755);
    // The folder too.
    set_mode(&home.libs(), 0o777);
    let line = add_refused(&home, &path);
    assert!(line.contains("writable"), "folder 0777: {line}");
    set_mode(&home.libs(), 0o755);

    // And after registration: listed with the reason, refused by verify.
    home.register_enabled(&path);
    set_mode(&path, 0o766);
    let entry = home.plugin_entry("null");
    let state = state_text(&entry);
    assert!(
        state.contains("writable") || state.contains("permission"),
        "{entry:#}"
    );
    let stderr = home.refused(&["plugin", "verify", "null"]);
    assert!(one_line(&stderr).contains("writable"), "{stderr}");
}

#[test]
fn a_refused_plugin_does_not_stop_another_from_sending() {
    let home = Home::new();
    let null = home.add_enabled(&fixture_path("null"));
    let outbox = home.add_pickup_dir("outbox");
    home.add_adele("pickup-dir", &[]);
    // Break the other plugin.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&null)
        .unwrap()
        .write_all(b"x")
        .unwrap();

    let sent = home.json(&send_args("adele"));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
    // The listing still shows both, one refused.
    assert_eq!(home.plugin_list().len(), 2);
}

#[test]
fn a_panicking_send_is_an_error_and_the_host_exits_cleanly() {
    let home = Home::new();
    home.add_enabled(&fixture_path("panics"));
    home.add_adele("panics", &[]);

    let args = adele_send_args(&["--subject", "Hi"]);
    let output = home.run(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1 (not a signal): {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("panic"), "{stderr}");

    let sent = home.run(&send_args("adele"));
    assert_eq!(sent.status.code(), Some(1), "{sent:?}");
    let json: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output: {e}: {}",
            String::from_utf8_lossy(&sent.stdout)
        )
    });
    assert_eq!(json["status"], "failed", "{json:#}");
    assert!(json["error"].to_string().contains("panic"), "{json:#}");
}

#[test]
fn a_panicking_describe_refuses_the_add_cleanly() {
    let home = Home::new();
    let path = home.install(&fixture_path("panics"));
    let output = home.run_env(
        &["plugin", "add", path.to_str().unwrap()],
        &[("MAILHOST_FIXTURE_PANIC_DESCRIBE", "1")],
    );
    assert_failed(&output, &["plugin", "add", "(panics in describe)"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(one_line(&stderr).contains("panic"), "{stderr}");
    assert!(home.plugin_list().is_empty());
}

/// In process (`plugin isolate NAME in-process`), a library that crashes while loading takes
/// mailhost down with it; the crash marker quarantines it on the next start. (Isolated, the
/// default, the crash is the child's: see tests/tests/isolation.rs.)
#[test]
fn a_crash_while_loading_in_process_quarantines_the_plugin() {
    const CRASH: (&str, &str) = ("MAILHOST_FIXTURE_CRASH", "1");
    let home = Home::new();
    home.add_enabled(&fixture_path("crash-on-load"));
    home.ok(&["plugin", "isolate", "crash-on-load", "in-process"]);
    home.add_adele("crash-on-load", &[]);

    // Loading it kills the process (abort): nothing the host can catch.
    let crashed = home.run_env(&send_args("adele"), &[CRASH]);
    assert!(
        !crashed.status.success(),
        "the fixture did not crash: {crashed:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            crashed.status.signal(),
            Some(6),
            "expected SIGABRT: {crashed:?}"
        );
    }

    // The next start notices and quarantines it, and says so in the listing.
    let entry = home.plugin_entry("crash-on-load");
    assert!(state_text(&entry).contains("quarantin"), "{entry:#}");
    let text = home.ok(&["plugin", "list"]);
    assert!(text.contains("quarantin"), "{text}");

    // While quarantined it is not loaded again, so the crash cannot repeat.
    let output = home.run_env(&send_args("adele"), &[CRASH]);
    assert!(
        output.status.code().is_some(),
        "quarantined plugin was loaded again: {output:?}"
    );
    assert_failed(&output, &send_args("adele"));
    let all = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(all.contains("quarantin"), "{all}");

    // Re-enabling clears it; without the crash trigger it then loads and sends.
    home.ok(&["plugin", "enable", "crash-on-load"]);
    let entry = home.plugin_entry("crash-on-load");
    assert!(!state_text(&entry).contains("quarantin"), "{entry:#}");
    let sent = home.json(&send_args("adele"));
    assert_eq!(sent["status"], "sent", "{sent:#}");

    // Crash again: quarantined again. A changed file, re-pinned with `plugin add`, clears it.
    let crashed = home.run_env(&send_args("adele"), &[CRASH]);
    assert!(
        !crashed.status.success(),
        "the fixture did not crash: {crashed:?}"
    );
    assert!(state_text(&home.plugin_entry("crash-on-load")).contains("quarantin"));
    let path = home.libs().join("libfixture_crash_on_load.so");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    home.ok(&["plugin", "add", path.to_str().unwrap()]);
    let entry = home.plugin_entry("crash-on-load");
    assert!(!state_text(&entry).contains("quarantin"), "{entry:#}");
    assert_eq!(home.json(&send_args("adele"))["status"], "sent");
}

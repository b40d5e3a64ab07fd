//! System configuration through the command line, validated against the settings a plugin
//! declares (the echo fixture declares one of each type and a secret): round trips, unknown
//! keys and plugins, wrong types, secret masking, and a required setting missing at send time.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use mailhost_tests::fixtures::fixture_path;
use mailhost_tests::homes::adele_send_args;
use mailhost_tests::{Home, assert_failed};

const PLUGIN: &str = "echo-00";

fn echo_home() -> Home {
    let home = Home::new();
    home.add_enabled(&fixture_path("echo"));
    home
}

fn out_file(home: &Home) -> String {
    home.path().join("echo.out").to_str().unwrap().to_string()
}

#[test]
fn set_get_list_unset_round_trip() {
    let home = echo_home();
    home.ok(&["config", "set", PLUGIN, "Retries", "5"]);
    assert_eq!(home.ok(&["config", "get", PLUGIN, "Retries"]).trim(), "5");
    let list = home.ok(&["config", "list", PLUGIN]);
    assert!(list.contains("Retries") && list.contains('5'), "{list}");
    assert!(
        list.contains("OutFile"),
        "declared but unset settings are listed too: {list}"
    );
    let json = home.json(&["config", "list", PLUGIN, "--json"]).to_string();
    assert!(json.contains("Retries") && json.contains('5'), "{json}");

    // Booleans are stored in canonical form.
    home.ok(&["config", "set", PLUGIN, "Verbose", "yes"]);
    assert_eq!(
        home.ok(&["config", "get", PLUGIN, "Verbose"]).trim(),
        "true"
    );

    home.ok(&["config", "unset", PLUGIN, "Retries"]);
    let after = home.ok(&["config", "get", PLUGIN, "Retries"]);
    assert!(!after.contains('5'), "{after}");
    assert!(home.read("settings.toml").contains("Verbose"));
}

#[test]
fn unknown_keys_and_plugins_are_refused() {
    let home = echo_home();
    let stderr = home.fails(&["config", "set", PLUGIN, "Colour", "blue"], 2);
    assert!(stderr.contains("Colour"), "{stderr}");
    assert!(
        stderr.contains("OutFile"),
        "should list the declared keys: {stderr}"
    );
    let stderr = home.fails(&["config", "set", "no-such-plugin", "Key", "v"], 2);
    assert!(stderr.contains("no-such-plugin"), "{stderr}");
    assert!(
        !home.path().join("settings.toml").exists()
            || !home.read("settings.toml").contains("Colour")
    );
}

#[test]
fn wrong_types_are_refused_naming_the_key() {
    let home = echo_home();
    for (key, value) in [
        ("Retries", "many"),
        ("Verbose", "maybe"),
        ("Endpoint", "example.com/api"),
        ("ReplyAddress", "not-an-address"),
    ] {
        let stderr = home.fails(&["config", "set", PLUGIN, key, value], 2);
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(stderr.contains(value), "{key}: {stderr}");
    }
    home.ok(&[
        "config",
        "set",
        PLUGIN,
        "Endpoint",
        "https://example.com/api",
    ]);
    home.ok(&[
        "config",
        "set",
        PLUGIN,
        "ReplyAddress",
        "replies@contoso.com",
    ]);
}

#[test]
fn secrets_are_masked_everywhere_but_reach_the_plugin() {
    const SECRET: &str = "sk-live-7f3a9c-very-secret";
    let home = echo_home();
    home.ok(&["config", "set", PLUGIN, "ApiKey", SECRET]);
    home.ok(&["config", "set", PLUGIN, "OutFile", &out_file(&home)]);
    for args in [
        &["config", "list"][..],
        &["config", "list", PLUGIN][..],
        &["config", "list", PLUGIN, "--json"][..],
        &["config", "get", PLUGIN, "ApiKey"][..],
        &["plugin", "info", PLUGIN][..],
    ] {
        let output = home.run(args);
        let all = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(!all.contains(SECRET), "{args:?} printed the secret: {all}");
    }
    let list = home.ok(&["config", "list", PLUGIN]);
    assert!(list.contains("ApiKey"), "{list}");
    for file in ["settings.toml", "plugins.toml"] {
        if home.path().join(file).exists() {
            assert!(!home.read(file).contains(SECRET), "{file} holds the secret");
        }
    }

    home.add_adele(PLUGIN, &[]);
    let sent = home.json(&adele_send_args(&["--json"]));
    assert_eq!(sent["status"], "sent", "{sent:#}");
    let recorded = std::fs::read_to_string(out_file(&home)).unwrap();
    assert!(
        recorded.contains(&format!("setting.ApiKey={SECRET}")),
        "{recorded}"
    );
    // Defaults are applied for unset settings.
    assert!(recorded.contains("setting.Retries=3"), "{recorded}");
}

#[test]
fn a_missing_required_setting_fails_the_send_naming_it() {
    let home = echo_home();
    home.add_adele(PLUGIN, &[]);
    let args = adele_send_args(&[]);
    let output = home.run(&args);
    assert_failed(&output, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OutFile"), "{stderr}");
}

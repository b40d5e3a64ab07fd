//! The plugin registry through the command line: `plugin add|list|info|enable|disable|remove`
//! round trips (text and `--json`), duplicate refusal, hand edits that break `plugins.toml`
//! (reported with file and line, file left untouched) and concurrent writers.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::process::{Command, Stdio};

use mailhost_tests::fixtures::{fixture_path, renamed_echo};
use mailhost_tests::plugins::state_text;
use mailhost_tests::{Home, assert_exit, mailhost_bin, one_line, plugin_path};

#[test]
fn add_list_info_enable_disable_remove_round_trip() {
    let home = Home::new();
    let path = home.install(&plugin_path("pickup_dir"));
    let path_text = path.to_str().unwrap();

    // Added without --enable: registered, disabled.
    home.ok(&["plugin", "add", path_text]);
    let entry = home.plugin_entry("pickup-dir");
    assert_eq!(entry["enabled"], false, "{entry:#}");
    assert_eq!(entry["version"], "1.0.0", "{entry:#}");
    assert!(
        entry["api_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1.2"),
        "{entry:#}"
    );
    assert_eq!(entry["path"], path_text, "{entry:#}");
    assert!(home.read("plugins.toml").contains("pickup-dir"));

    // The text listing names it too.
    let text = home.ok(&["plugin", "list"]);
    assert!(text.contains("pickup-dir"), "{text}");

    home.ok(&["plugin", "enable", "pickup-dir"]);
    let entry = home.plugin_entry("pickup-dir");
    assert_eq!(entry["enabled"], true, "{entry:#}");
    assert!(state_text(&entry).contains("loaded"), "{entry:#}");

    // info: text and JSON, with the declared settings.
    let info = home.ok(&["plugin", "info", "pickup-dir"]);
    assert!(info.contains("Pickup Directory"), "{info}");
    assert!(info.contains("Directory"), "{info}");
    assert!(info.contains("MaxMessageBytes"), "{info}");
    let info_json = home.json(&["plugin", "info", "pickup-dir", "--json"]);
    assert_eq!(info_json["name"], "pickup-dir", "{info_json:#}");
    let shown = info_json.to_string();
    assert!(
        shown.contains("Directory") && shown.contains("MaxMessageBytes"),
        "{shown}"
    );

    home.ok(&["plugin", "disable", "pickup-dir"]);
    assert_eq!(home.plugin_entry("pickup-dir")["enabled"], false);

    home.ok(&["plugin", "remove", "pickup-dir"]);
    assert!(home.plugin_list().is_empty());
    let stderr = home.refused(&["plugin", "info", "pickup-dir"]);
    assert!(stderr.contains("pickup-dir"), "{stderr}");
}

#[test]
fn add_with_enable_registers_enabled_and_pins_the_hash() {
    let home = Home::new();
    home.add_enabled(&fixture_path("null"));
    let entry = home.plugin_entry("null");
    assert_eq!(entry["enabled"], true);
    let registry = home.read("plugins.toml");
    let parsed: toml::Table = registry.parse().expect("plugins.toml is TOML");
    let text = parsed.to_string();
    assert!(text.contains("null"), "{registry}");
    // A SHA-256 in hex is pinned somewhere in the entry.
    assert!(
        registry
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|word| word.len() == 64),
        "no SHA-256 in plugins.toml:\n{registry}"
    );
}

#[test]
fn add_refuses_a_duplicate() {
    let home = Home::new();
    let path = home.add_enabled(&fixture_path("null"));
    let before = home.read("plugins.toml");
    // A second file that reports the same plugin name is refused, naming both.
    let copy = mailhost_tests::fixtures::copy_library(&path, &home.libs(), "libnull_copy.so");
    let stderr = home.refused(&["plugin", "add", copy.to_str().unwrap()]);
    let line = one_line(&stderr);
    assert!(line.contains("'null'"), "{line}");
    assert!(line.contains("already registered"), "{line}");
    assert!(
        line.contains("libfixture_null.so"),
        "should name the registered file: {line}"
    );
    assert_eq!(
        home.read("plugins.toml"),
        before,
        "a refused add changed plugins.toml"
    );
    assert_eq!(home.plugin_list().len(), 1);

    // The same file again re-pins it (the documented fix for a changed file): still one entry.
    home.ok(&["plugin", "add", path.to_str().unwrap()]);
    assert_eq!(home.plugin_list().len(), 1);
}

#[test]
fn unknown_names_are_refused_with_the_registered_ones() {
    let home = Home::new();
    home.add_enabled(&fixture_path("null"));
    for verb in ["enable", "disable", "remove", "info"] {
        let stderr = home.refused(&["plugin", verb, "nope"]);
        assert!(stderr.contains("nope"), "{verb}: {stderr}");
        assert!(
            stderr.contains("null"),
            "{verb} should list the registered plugins: {stderr}"
        );
    }
}

/// Registers two plugins and returns the registry text.
fn two_plugins(home: &Home) -> String {
    home.add_enabled(&fixture_path("null"));
    home.add_enabled(&fixture_path("echo"));
    home.read("plugins.toml")
}

/// Writes `text` as plugins.toml, runs `plugin list`, and checks the error names the file and
/// one of `lines`, and that the file is left byte for byte as written.
fn assert_broken_registry(home: &Home, text: &str, lines: &[usize]) {
    std::fs::write(home.path().join("plugins.toml"), text).unwrap();
    for args in [
        &["plugin", "list"][..],
        &["plugin", "enable", "null"][..],
        &["plugin", "disable", "null"][..],
    ] {
        let stderr = home.refused(args);
        assert!(stderr.contains("plugins.toml"), "{args:?}: {stderr}");
        assert!(
            lines.iter().any(|n| stderr.contains(&format!(":{n}"))
                || stderr.contains(&format!("line {n}"))),
            "{args:?}: expected line {lines:?} in: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(home.path().join("plugins.toml")).unwrap(),
            text,
            "{args:?} changed a registry it could not read"
        );
    }
}

#[test]
fn bad_toml_is_reported_with_file_and_line() {
    let home = Home::new();
    let mut text = two_plugins(&home);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let line = text.lines().count() + 1;
    text.push_str("this line is not TOML\n");
    assert_broken_registry(&home, &text, &[line]);
}

#[test]
fn an_unknown_field_is_reported_with_file_and_line() {
    let home = Home::new();
    let text = two_plugins(&home);
    let mut lines: Vec<&str> = text.lines().collect();
    let name_line = lines
        .iter()
        .position(|l| l.trim_start().starts_with("name ="))
        .expect("an entry has a name line");
    lines.insert(name_line + 1, "colour = \"blue\"");
    let edited = lines.join("\n") + "\n";
    assert_broken_registry(&home, &edited, &[name_line + 2]);
}

#[test]
fn a_duplicate_name_is_reported_with_file_and_line() {
    let home = Home::new();
    let text = two_plugins(&home);
    let lines: Vec<&str> = text.lines().collect();
    let echo_name = lines
        .iter()
        .position(|l| l.trim() == "name = \"echo-00\"")
        .expect("echo-00 has a name line");
    let header = lines[..echo_name]
        .iter()
        .rposition(|l| l.trim().starts_with("[["))
        .unwrap_or(echo_name);
    let edited = text.replace("name = \"echo-00\"", "name = \"null\"");
    let stderr_lines = [echo_name + 1, header + 1];
    assert_broken_registry(&home, &edited, &stderr_lines);
    let stderr = home.refused(&["plugin", "list"]);
    assert!(stderr.contains("null"), "{stderr}");
}

#[test]
fn concurrent_writers_lose_no_entry() {
    const WRITERS: u32 = 8;
    let home = Home::new();
    let mut names = Vec::new();
    for i in 1..=WRITERS {
        let path = renamed_echo(&home.libs(), i);
        home.ok(&["plugin", "add", path.to_str().unwrap()]);
        names.push(format!("echo-{i:02}"));
    }
    // Every process flips its own plugin several times, all at once.
    let bin = mailhost_bin();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            let script = format!(
                "for i in 1 2 3 4 5; do \"$0\" --home \"$1\" plugin enable {name} || exit 1; \
                 \"$0\" --home \"$1\" plugin disable {name} || exit 1; done; \
                 \"$0\" --home \"$1\" plugin enable {name}"
            );
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg(&bin)
                .arg(home.path())
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, name) in children.into_iter().zip(&names) {
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, 0, &["(writer)", name]);
    }
    let text = home.read("plugins.toml");
    text.parse::<toml::Table>().unwrap_or_else(|e| {
        panic!("plugins.toml does not parse after concurrent writes: {e}\n{text}")
    });
    let list = home.plugin_list();
    assert_eq!(list.len(), names.len(), "{list:#?}");
    for name in &names {
        let entry = list.iter().find(|e| e["name"] == name.as_str());
        let entry = entry.unwrap_or_else(|| panic!("{name} lost: {list:#?}"));
        assert_eq!(entry["enabled"], true, "{name}: {entry:#}");
    }
}

#[test]
fn concurrent_adds_lose_no_entry() {
    const WRITERS: u32 = 8;
    let home = Home::new();
    let paths: Vec<_> = (11..11 + WRITERS)
        .map(|i| renamed_echo(&home.libs(), i))
        .collect();
    let children: Vec<_> = paths
        .iter()
        .map(|path| {
            home.command(["plugin", "add", path.to_str().unwrap(), "--enable"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, 0, &["plugin", "add", "(concurrent)"]);
    }
    assert_eq!(home.plugin_list().len(), WRITERS as usize);
}

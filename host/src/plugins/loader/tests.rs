//! Unit tests of the loader.

use std::fs;

use super::*;
use crate::config::files;
use mailhost_plugin_api::Incompatibility;

fn entry(path: &Path) -> PluginEntry {
    PluginEntry::for_test("p", path)
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    files::chmod(dir.path(), 0o700).expect("chmod");
    dir
}

#[test]
fn missing_files_say_how_to_fix() {
    let error =
        check_file(&Who::Plugin("x".into()), Path::new("/nonexistent/libx.so")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin 'x': file /nonexistent/libx.so is missing: reinstall it or `mailhost plugin remove x`"
    );
    assert_eq!(error.state(), "missing");
}

#[cfg(unix)]
#[test]
fn writable_files_and_folders_are_refused() {
    let dir = private_dir();
    let lib = dir.path().join("libp.so");
    fs::write(&lib, b"x").expect("write");
    files::chmod(&lib, 0o644).expect("chmod");
    assert!(check_file(&Who::Plugin("p".into()), &lib).is_ok());
    files::chmod(&lib, 0o666).expect("chmod");
    let error = check_file(&Who::Plugin("p".into()), &lib)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("writable by other users") && error.contains("chmod go-w"),
        "{error}"
    );
    files::chmod(&lib, 0o644).expect("chmod");
    files::chmod(dir.path(), 0o777).expect("chmod");
    let error = check_file(&Who::Plugin("p".into()), &lib)
        .unwrap_err()
        .to_string();
    assert!(error.contains("the folder"), "{error}");
    files::chmod(dir.path(), 0o1777).expect("chmod");
    assert!(
        check_file(&Who::Plugin("p".into()), &lib).is_ok(),
        "sticky folders are fine"
    );
    files::chmod(dir.path(), 0o700).expect("chmod");
}

#[test]
fn changed_files_are_caught_even_with_the_same_size() {
    let dir = private_dir();
    let lib = dir.path().join("libp.so");
    fs::write(&lib, b"one").expect("write");
    let print = fingerprint(&Who::Plugin("p".into()), &lib).expect("fingerprint");
    let mut e = entry(&lib);
    e.sha256 = print.sha256;
    e.size = print.size;
    e.mtime = print.mtime;
    assert_eq!(quick_check(&e).expect("unchanged"), None);
    e.mtime -= 5; // touched: re-hashed, same content, new key reported
    assert_eq!(
        quick_check(&e).expect("same content"),
        Some(StalenessKey {
            size: print.size,
            mtime: print.mtime
        })
    );
    e.mtime = print.mtime;
    fs::write(&lib, b"two").expect("write");
    e.mtime -= 10; // as if the rewrite were later
    let error = quick_check(&e).unwrap_err();
    assert_eq!(error.state(), "changed");
    assert!(error.to_string().contains("mailhost plugin add"), "{error}");
}

#[test]
fn disabled_and_quarantined_are_skipped() {
    let mut e = entry(Path::new("/x"));
    e.enabled = false;
    assert_eq!(check_usable(&e).unwrap_err().state(), "disabled");
    e.enabled = true;
    e.quarantine = Some(crate::plugins::registry::Quarantine {
        reason: "it crashed".into(),
        since: "t".into(),
        sha256: e.sha256.clone(),
    });
    let error = check_usable(&e).unwrap_err();
    assert_eq!(error.state(), "quarantined");
    assert!(
        error.to_string().contains("mailhost plugin enable p"),
        "{error}"
    );
}

#[test]
fn version_refusals_are_one_line() {
    let error = LoadError::ApiVersion {
        who: Who::Plugin("x".into()),
        incompatibility: Incompatibility::Major {
            host: ApiVersion {
                major: 1,
                minor: 1,
                patch: 0,
            },
            plugin: ApiVersion {
                major: 2,
                minor: 0,
                patch: 0,
            },
        },
    };
    assert_eq!(
        error.to_string(),
        "plugin 'x' was built for plugin API 2.0; this host provides 1.1: rebuild it against mailhost-plugin-api 1.x"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused_before_running() {
    let dir = private_dir();
    let home = Home::open(&dir.path().join("home")).expect("home");
    let lib = dir.path().join("libnot.so");
    fs::write(&lib, b"not a library").expect("write");
    let secrets = Arc::new(SecretStore::open(&home).expect("secrets"));
    let loader = Loader::new(&home, secrets.clone());
    let services = crate::plugins::services::PluginServices::unnamed(secrets).into_box();
    let error = super::open_in_child(&lib, None, None, services, LogLevel::Off)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.state(), "not-a-plugin", "{error}");
    assert!(
        error.to_string().contains("not a loadable library"),
        "{error}"
    );
    // The marker is gone: no crash is recorded.
    assert!(crate::plugins::quarantine::find_crashes(&home).is_empty());
    let mut e = entry(&lib);
    e.sha256 = "00".repeat(32);
    assert_eq!(loader.load(&e).unwrap_err().state(), "changed");
}

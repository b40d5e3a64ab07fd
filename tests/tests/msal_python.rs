//! Fidelity proof from a client no one here wrote: Microsoft's MSAL for Python (from PyPI)
//! signs in against the emulator over HTTPS with username/password, device code and client
//! credentials, reuses tokens silently, sends mail through Graph with `requests`, and sees the
//! documented failures (AADSTS50126, AADSTS50076 interaction_required, 7000218, 65001,
//! 7000215, authorization_declined). The test approves and declines the device codes through
//! the emulator from this process while the script polls.

#![allow(clippy::unwrap_used)] // a test: a failed set-up step should stop it loudly

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use mailhost_emulator::{Config, Emulator, seed};
use serde_json::Value;

#[test]
fn msal_python_signs_in_and_sends_through_the_emulator() {
    let python = mailhost_tests::python::venv_python(&["msal", "requests"]);
    let tls = tempfile::tempdir().unwrap();
    let emulator = Emulator::start_with(Config {
        tls_dir: Some(tls.path().to_path_buf()),
        device_code_interval_secs: 1,
        ..Config::default()
    })
    .unwrap();
    assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
    let ca = emulator.ca_pem_path().unwrap().to_path_buf();
    let script = mailhost_tests::workspace_root().join("tests/emulator/python/msal_check.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(emulator.base_url())
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut checks: Vec<(String, bool, Value)> = Vec::new();
    let mut done = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        if let Some(code) = value["device_code"].as_str() {
            // The user enters the code in a browser; wait until the emulator has it pending.
            match value["purpose"].as_str() {
                Some("approve") => emulator
                    .approve_device_code(code, seed::MFA_USER_UPN)
                    .unwrap(),
                _ => emulator.decline_device_code(code).unwrap(),
            }
        } else if let Some(name) = value["check"].as_str() {
            checks.push((name.to_string(), value["ok"] == true, value.clone()));
        } else if value["done"] == true {
            done = true;
        }
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && done,
        "msal_check.py failed: {:?}\n{stderr}\nchecks: {checks:#?}",
        output.status
    );
    let failed: Vec<_> = checks.iter().filter(|(_, ok, _)| !ok).collect();
    assert!(failed.is_empty(), "MSAL checks failed: {failed:#?}");
    let names: Vec<&str> = checks.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "ropc",
        "silent_cache",
        "silent_refresh",
        "send_ropc",
        "wrong_password",
        "mfa_required",
        "public_client_disabled",
        "consent_required",
        "device_flow",
        "send_device",
        "device_declined",
        "client_credentials",
        "client_credentials_cache",
        "send_app_only",
        "app_only_on_me_refused",
        "bad_secret",
    ] {
        assert!(
            names.contains(&expected),
            "check {expected} did not run: {names:?}"
        );
    }

    // What arrived: one mail per sign-in method, from the right people.
    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    let from_subject = |subject: &str| {
        inbox
            .iter()
            .find(|m| m.subject == subject)
            .unwrap_or_else(|| panic!("no '{subject}' in {inbox:#?}"))
    };
    assert_eq!(
        from_subject("ropc via msal").from_address().as_deref(),
        Some(seed::USER_UPN)
    );
    assert_eq!(
        from_subject("device code via msal")
            .from_address()
            .as_deref(),
        Some(seed::MFA_USER_UPN)
    );
    let app_only = from_subject("client credentials via msal");
    assert_eq!(app_only.sender_address().as_deref(), Some(seed::USER_UPN));
    assert_eq!(app_only.app_id, seed::DAEMON_CLIENT_ID);
    assert_eq!(inbox.len(), 3, "{inbox:#?}");
    assert_eq!(emulator.sent_items(seed::USER_UPN).len(), 2);

    let counters = emulator.counters();
    assert_eq!(counters.messages_delivered, 3);
    assert!(counters.token_requests.password >= 5, "{counters:?}");
    assert!(counters.token_requests.refresh_token >= 1, "{counters:?}");
    assert!(counters.token_requests.device_code >= 2, "{counters:?}");
    assert_eq!(
        counters.token_requests.client_credentials, 2,
        "the second app-only call came from MSAL's cache"
    );
}

/// The certificate credentials the Graph provider uses, signed by MSAL instead: every
/// `client_credential` form MSAL for Python offers (SHA-1 thumbprint / RS256, SHA-256 with the
/// public certificate / PS256, PKCS#12) gets a token from the emulator, the token sends mail,
/// and a certificate the app does not have is refused with AADSTS700027.
#[test]
fn msal_python_signs_in_with_the_same_certificate() {
    let python = mailhost_tests::python::venv_python(&["msal", "requests"]);
    let tls = tempfile::tempdir().unwrap();
    let emulator = Emulator::start_with(Config {
        tls_dir: Some(tls.path().to_path_buf()),
        ..Config::default()
    })
    .unwrap();
    let ca = emulator.ca_pem_path().unwrap().to_path_buf();
    let script = mailhost_tests::workspace_root().join("tests/emulator/python/msal_certificate.py");
    let cert_dir = seed::certificate_fixture("");
    let output = Command::new(&python)
        .arg(&script)
        .arg(emulator.base_url())
        .arg(&cert_dir)
        .arg(seed::CERTIFICATE_FIXTURE_PASSWORD)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(r#""done": true"#),
        "msal_certificate.py failed: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    let checks: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["check"].is_string())
        .collect();
    for expected in [
        "certificate_thumbprint",
        "certificate_public",
        "certificate_sha256",
        "certificate_pfx",
        "send_certificate",
        "unregistered_refused",
    ] {
        let found = checks
            .iter()
            .find(|c| c["check"] == expected)
            .unwrap_or_else(|| panic!("check {expected} did not run: {checks:#?}"));
        assert_eq!(found["ok"], true, "MSAL check failed: {found:#}");
    }
    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].app_id, seed::CERT_DAEMON_CLIENT_ID);
    assert_eq!(emulator.counters().token_requests.client_credentials, 5);
}

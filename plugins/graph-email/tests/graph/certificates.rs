//! App-only sign-in with a certificate against the emulator's `mailhost-daemon-cert` app: every
//! file format, both assertion algorithms, the certificate winning over a secret, a fresh
//! assertion per token request, and each failure explained (locally, before any request, when
//! the file is at fault).

use graph_email::GraphProvider;
use mailhost_emulator::{Emulator, seed};
use mailhost_plugin_api::{ErrorKind, Setting};

use crate::support::*;

fn cert_settings(emu: &Emulator, file: &str, password: Option<&str>) -> Vec<Setting> {
    let mut settings = with(
        settings(emu, seed::CERT_DAEMON_CLIENT_ID),
        "ClientCertificate",
        seed::certificate_fixture(file).to_str().unwrap(),
    );
    if let Some(password) = password {
        settings = with(settings, "ClientCertificatePassword", password);
    }
    settings
}

fn app_sender() -> mailhost_plugin_api::StaffMember {
    interactive_staff("cert-app", seed::USER_UPN, seed::USER_NAME)
}

#[test]
fn every_certificate_format_sends_app_only() {
    let emu = emulator();
    for (file, password) in [
        ("app.pem", None),
        ("app-pkcs1.pem", None),
        (
            "app-encrypted.pem",
            Some(seed::CERTIFICATE_FIXTURE_PASSWORD),
        ),
        ("app.pfx", Some(seed::CERTIFICATE_FIXTURE_PASSWORD)),
        (
            "app-legacy-encrypted.pem",
            Some(seed::CERTIFICATE_FIXTURE_PASSWORD),
        ),
    ] {
        let provider = GraphProvider::new();
        let settings = cert_settings(&emu, file, password);
        send(&provider, &settings, &app_sender(), message(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 5, "{inbox:#?}");
    assert!(
        inbox
            .iter()
            .all(|m| m.app_id == seed::CERT_DAEMON_CLIENT_ID)
    );
    assert!(
        inbox
            .iter()
            .all(|m| m.from_address().as_deref() == Some(seed::USER_UPN))
    );
    assert_eq!(emu.counters().token_requests.client_credentials, 5);
}

#[test]
fn rs256_with_x5t_is_accepted_when_asked_for() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        cert_settings(&emu, "app.pem", None),
        "ClientAssertionAlgorithm",
        "RS256",
    );
    send(&provider, &settings, &app_sender(), message("rs256")).expect("sent with RS256");
    let bad = with(settings, "ClientAssertionAlgorithm", "HS256");
    let error = send(&provider, &bad, &app_sender(), message("hs256")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert!(
        error.message.contains("ClientAssertionAlgorithm"),
        "{error}"
    );
}

#[test]
fn the_certificate_wins_over_a_secret() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // A secret the cert app does not have: if it were sent, the sign-in would fail (7000215).
    let settings = with(
        cert_settings(&emu, "app.pem", None),
        "ClientSecret",
        "not-this-apps-secret",
    );
    send(&provider, &settings, &app_sender(), message("cert wins")).expect("sent");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1);
}

#[test]
fn each_token_request_gets_a_fresh_assertion() {
    let emu = emulator();
    // Tokens that are never fresh: every send asks for a new one; the emulator refuses a
    // replayed jti, so two successes mean two assertions.
    emu.set_access_token_lifetime(1);
    emu.set_reject_replayed_assertions(true);
    let provider = GraphProvider::new();
    let settings = cert_settings(&emu, "app.pem", None);
    for n in 0..2 {
        if n > 0 {
            // Let the one-second token expire.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        send(
            &provider,
            &settings,
            &app_sender(),
            message(&format!("fresh {n}")),
        )
        .expect("sent");
    }
    assert_eq!(emu.counters().token_requests.client_credentials, 2);
}

#[test]
fn an_unregistered_certificate_names_the_portal_step() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = cert_settings(&emu, "unregistered.pem", None);
    let error = send(&provider, &settings, &app_sender(), message("unregistered")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert_eq!(error.code.as_str(), "AADSTS700027", "{error}");
    assert!(error.message.contains("Upload certificate"), "{error}");
    assert!(error.message.contains("thumbprint"), "{error}");
    assert!(emu.inbox(seed::RECIPIENT_UPN).is_empty());

    // Once uploaded, the same file works.
    let pem = std::fs::read_to_string(seed::certificate_fixture("other-cert.pem")).unwrap();
    emu.add_app_certificate(seed::CERT_DAEMON_CLIENT_ID, &pem)
        .unwrap();
    send(&provider, &settings, &app_sender(), message("uploaded")).expect("sent once uploaded");
}

#[test]
fn a_removed_certificate_is_refused_by_microsoft() {
    let emu = emulator();
    emu.remove_app_certificates(seed::CERT_DAEMON_CLIENT_ID)
        .unwrap();
    let provider = GraphProvider::new();
    let error = send(
        &provider,
        &cert_settings(&emu, "app.pem", None),
        &app_sender(),
        message("removed"),
    )
    .unwrap_err();
    assert_eq!(error.code.as_str(), "AADSTS700027", "{error}");
}

#[test]
fn file_problems_are_found_before_any_request() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("mismatch.pem", None, "does not belong to its certificate"),
        (
            "app-encrypted.pem",
            None,
            "ClientCertificatePassword is not set",
        ),
        ("app-encrypted.pem", Some("wrong"), "does not decrypt"),
        ("app.pfx", Some("wrong"), "does not decrypt"),
        ("no-such-file.pem", None, "cannot be read"),
    ];
    for (file, password, needle) in cases {
        let error = send(
            &provider,
            &cert_settings(&emu, file, password),
            &app_sender(),
            message(file),
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{file}: {error}");
        assert!(error.message.contains(needle), "{file}: {error}");
        assert!(
            error.message.contains("ClientCertificate"),
            "{file}: {error}"
        );
    }
    let counters = emu.counters();
    assert_eq!(counters.total_requests, 0, "{counters:?}");
}

//! The errors a user can act on: each names the setting, command or admin step and carries
//! the service's code.

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::{ErrorKind, ProviderError, Setting};

use crate::support::*;

#[test]
fn wrong_password_names_the_staff_command() {
    let emu = emulator();
    let staff = service_staff("pw-1", seed::USER_UPN, "wrong-password");
    let error = send(
        &GraphProvider::new(),
        &settings(&emu, seed::MAILHOST_CLIENT_ID),
        &staff,
        message("x"),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert_eq!(error.code.as_str(), "AADSTS50126");
    assert!(
        error
            .message
            .contains("mailhost staff set pw-1 --password-stdin"),
        "{error}"
    );
}

#[test]
fn mfa_on_the_non_interactive_path_offers_the_ways_out() {
    let emu = emulator();
    let staff = service_staff("mfa-1", seed::MFA_USER_UPN, seed::MFA_USER_PASSWORD);
    let error = send(
        &GraphProvider::new(),
        &settings(&emu, seed::MAILHOST_CLIENT_ID),
        &staff,
        message("x"),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert_eq!(error.code.as_str(), "AADSTS50076");
    assert!(error.message.contains("mailhost login mfa-1"), "{error}");
    assert!(error.message.contains("ClientSecret"), "{error}");
    assert!(error.message.contains("Conditional Access"), "{error}");
}

#[test]
fn public_client_flows_off_names_the_authentication_blade() {
    let emu = emulator();
    let error = alex_send_error(&settings(&emu, seed::NO_PUBLIC_CLIENT_ID), "pub-1");
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert_eq!(error.code.as_str(), "AADSTS7000218");
    assert!(
        error.message.contains("Allow public client flows"),
        "{error}"
    );
}

#[test]
fn missing_consent_names_grant_admin_consent() {
    let emu = emulator();
    let error = alex_send_error(&settings(&emu, seed::NO_CONSENT_CLIENT_ID), "consent-1");
    assert_eq!(error.kind, ErrorKind::PERMISSION);
    assert_eq!(error.code.as_str(), "AADSTS65001");
    assert!(error.message.contains("Grant admin consent"), "{error}");
}

#[test]
fn unknown_client_id_names_the_settings() {
    let emu = emulator();
    let error = alex_send_error(
        &settings(&emu, "11111111-2222-3333-4444-555555555555"),
        "client-1",
    );
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert_eq!(error.code.as_str(), "AADSTS700016");
    assert!(
        error.message.contains("ClientID") && error.message.contains("TenantID"),
        "{error}"
    );
}

#[test]
fn unknown_tenant_names_the_setting() {
    let emu = emulator();
    let settings = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "TenantID",
        "fabrikam.onmicrosoft.com",
    );
    let error = alex_send_error(&settings, "tenant-1");
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert_eq!(error.code.as_str(), "AADSTS90002");
    assert!(error.message.contains("TenantID"), "{error}");
}

#[test]
fn password_sign_in_against_common_is_refused_before_any_request() {
    let emu = emulator();
    for tenant in ["common", "consumers"] {
        let settings = with(settings(&emu, seed::MAILHOST_CLIENT_ID), "TenantID", tenant);
        let error = alex_send_error(&settings, "common-1");
        assert_eq!(error.kind, ErrorKind::CONFIGURATION);
        assert!(error.message.contains("TenantID"), "{error}");
    }
    assert_eq!(emu.counters().total_requests, 0);
}

#[test]
fn a_token_without_mail_send_is_access_denied() {
    let emu = emulator();
    // Asking the read-only app for Mail.Send is a consent error ...
    let error = alex_send_error(&settings(&emu, seed::READ_ONLY_CLIENT_ID), "reader-1");
    assert_eq!(error.code.as_str(), "AADSTS65001", "{error}");
    // ... and taking what its registration grants (.default) gets a token Graph refuses.
    let settings = with(
        settings(&emu, seed::READ_ONLY_CLIENT_ID),
        "DelegatedScopes",
        ".default",
    );
    let error = alex_send_error(&settings, "reader-2");
    assert_eq!(error.kind, ErrorKind::PERMISSION);
    assert_eq!(error.code.as_str(), "ErrorAccessDenied");
    assert!(error.message.contains("Mail.Send"), "{error}");
}

#[test]
fn an_app_without_roles_has_no_permissions() {
    let emu = emulator();
    let settings = with(
        settings(&emu, seed::NO_ROLE_DAEMON_CLIENT_ID),
        "ClientSecret",
        seed::NO_ROLE_DAEMON_CLIENT_SECRET,
    );
    let error = alex_send_error(&settings, "norole-1");
    assert_eq!(error.kind, ErrorKind::PERMISSION);
    assert_eq!(error.code.as_str(), "NoPermissionsInAccessToken");
    assert!(error.message.contains("application"), "{error}");
}

#[test]
fn a_wrong_client_secret_names_the_setting() {
    let emu = emulator();
    let settings = with(
        settings(&emu, seed::DAEMON_CLIENT_ID),
        "ClientSecret",
        "not-the-secret",
    );
    let error = alex_send_error(&settings, "secret-1");
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert!(error.message.contains("ClientSecret"), "{error}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let emu = emulator();
    let provider = GraphProvider::new();
    for key in ["Authority", "GraphEndpoint"] {
        let settings = with(
            settings(&emu, seed::MAILHOST_CLIENT_ID),
            key,
            "http://login.example.com",
        );
        let error = send(&provider, &settings, &alex("http-1"), message("x")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{key}: {error}");
        assert!(error.message.contains(key), "{error}");
        assert!(error.message.contains("https://"), "{error}");
    }
    assert_eq!(emu.counters().total_requests, 0);
}

#[test]
fn missing_required_settings_are_named() {
    let emu = emulator();
    let mut settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    settings.retain(|s| s.key.as_str() != "ClientID");
    let error = alex_send_error(&settings, "nosetting-1");
    assert_eq!(error.kind, ErrorKind::CONFIGURATION);
    assert!(error.message.contains("ClientID"), "{error}");
}

/// Sends a plain message as Alex (staff `id`) with a fresh provider; the send must fail.
fn alex_send_error(settings: &[Setting], id: &str) -> ProviderError {
    send(&GraphProvider::new(), settings, &alex(id), message("x")).expect_err("the send fails")
}

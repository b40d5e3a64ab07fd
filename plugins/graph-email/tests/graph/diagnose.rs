//! `diagnose` (mailhost doctor) against the emulator: a healthy set-up is all ok; each broken
//! piece is a finding with its fix; nothing prompts; `send_test_to` sends and finds the email.

use graph_email::GraphProvider;
use mailhost_emulator::{Emulator, fixtures, seed};
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{DiagnoseRequest, Finding, FindingLevel, Provider, Setting, StaffMember};

use crate::support::*;

fn diagnose(
    settings: &[Setting],
    staff: &[StaffMember],
    send_test_to: Option<&str>,
) -> Vec<Finding> {
    GraphProvider::new()
        .diagnose(&DiagnoseRequest {
            settings: RVec::from(settings.to_vec()),
            staff: RVec::from(staff.to_vec()),
            send_test_to: send_test_to.map(Into::into).into(),
        })
        .expect("diagnose answers")
}

fn finding<'a>(findings: &'a [Finding], id: &str, staff: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.id.as_str() == id && f.staff.as_str() == staff)
        .unwrap_or_else(|| panic!("no finding {id} for '{staff}': {findings:#?}"))
}

fn cert_settings(emu: &Emulator, path: &std::path::Path) -> Vec<Setting> {
    with(
        settings(emu, seed::CERT_DAEMON_CLIENT_ID),
        "ClientCertificate",
        path.to_str().unwrap(),
    )
}

#[test]
fn a_healthy_set_up_is_all_ok_and_the_test_email_is_found() {
    let emu = emulator();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let findings = diagnose(&settings, &[alex("doc-ok")], Some(seed::RECIPIENT_UPN));
    let bad: Vec<_> = findings
        .iter()
        .filter(|f| f.level != FindingLevel::OK)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    for id in [
        "graph.settings",
        "graph.authority",
        "graph.save-to-sent-items",
    ] {
        finding(&findings, id, "");
    }
    for id in [
        "graph.sign-in",
        "graph.permission.send",
        "graph.permission.readwrite",
        "graph.permission.shared",
        "graph.send-test",
    ] {
        finding(&findings, id, "doc-ok");
    }
    assert!(
        finding(&findings, "graph.send-test", "doc-ok")
            .message
            .contains("found in the Sent Items"),
        "{findings:#?}"
    );
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1, "one test email");
    // Without --send-test nothing is sent.
    diagnose(&settings, &[alex("doc-ok")], None);
    assert_eq!(emu.counters().send_mail, 1);
}

#[test]
fn missing_consent_fails_with_the_admin_step() {
    let emu = emulator();
    let settings = settings(&emu, seed::NO_CONSENT_CLIENT_ID);
    let findings = diagnose(&settings, &[alex("doc-consent")], None);
    let f = finding(&findings, "graph.sign-in", "doc-consent");
    assert_eq!(f.level, FindingLevel::FAIL, "{f:?}");
    assert!(f.fix.contains("Grant admin consent"), "{f:?}");
}

#[test]
fn an_interactive_member_who_has_not_signed_in_is_a_finding_not_a_prompt() {
    let emu = emulator();
    let staff = interactive_staff("doc-megan", seed::MFA_USER_UPN, seed::MFA_USER_NAME);
    let findings = diagnose(
        &settings(&emu, seed::MAILHOST_CLIENT_ID),
        std::slice::from_ref(&staff),
        None,
    );
    let f = finding(&findings, "graph.sign-in", "doc-megan");
    assert_eq!(f.level, FindingLevel::FAIL, "{f:?}");
    assert!(f.fix.contains("mailhost login doc-megan"), "{f:?}");
    assert_eq!(
        finding(&findings, "graph.app-flows", "doc-megan").level,
        FindingLevel::OK
    );
    assert!(
        emu.pending_device_codes().len() <= 1,
        "no sign-in was shown to anyone"
    );
    assert_eq!(
        host().last_note_containing("staff doc-megan;"),
        None,
        "nothing was shown"
    );

    // The app without public client flows.
    let findings = diagnose(&settings(&emu, seed::NO_PUBLIC_CLIENT_ID), &[staff], None);
    let f = finding(&findings, "graph.app-flows", "doc-megan");
    assert_eq!(f.level, FindingLevel::FAIL, "{f:?}");
    assert!(f.fix.contains("Allow public client flows"), "{f:?}");
}

#[test]
fn missing_permissions_are_named() {
    let emu = emulator();
    // Asking for Mail.Send would fail outright (AADSTS65001); with Mail.Read the token comes,
    // and its scope shows what is missing.
    let reader = with(
        settings(&emu, seed::READ_ONLY_CLIENT_ID),
        "DelegatedScopes",
        "Mail.Read",
    );
    let findings = diagnose(&reader, &[alex("doc-reader")], None);
    let f = finding(&findings, "graph.sign-in", "doc-reader");
    assert_eq!(f.level, FindingLevel::OK, "{f:?}");
    let send = finding(&findings, "graph.permission.send", "doc-reader");
    assert_eq!(send.level, FindingLevel::FAIL, "{send:?}");
    assert!(send.fix.contains("Grant admin consent"), "{send:?}");
    assert_eq!(
        finding(&findings, "graph.permission.readwrite", "doc-reader").level,
        FindingLevel::WARN
    );
    assert_eq!(
        finding(&findings, "graph.permission.shared", "doc-reader").level,
        FindingLevel::WARN
    );
}

#[test]
fn settings_tenant_and_sent_items_are_checked() {
    let emu = emulator();
    let findings = diagnose(&[Setting::new("TenantID", "t")], &[], None);
    let f = finding(&findings, "graph.settings", "");
    assert_eq!(f.level, FindingLevel::FAIL);
    assert!(f.fix.contains("ClientID"), "{f:?}");

    let unknown = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "TenantID",
        "fabrikam.onmicrosoft.com",
    );
    let findings = diagnose(&unknown, &[alex("doc-tenant")], None);
    assert_eq!(
        finding(&findings, "graph.authority", "").level,
        FindingLevel::FAIL
    );

    let no_copy = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "SaveToSentItems",
        "false",
    );
    let findings = diagnose(&no_copy, &[], None);
    let f = finding(&findings, "graph.save-to-sent-items", "");
    assert_eq!(f.level, FindingLevel::WARN);
    assert!(f.message.contains("exactly-once"), "{f:?}");
}

#[test]
fn certificate_expiry_warns_within_30_days_and_fails_when_expired() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let (cert, both) = fixtures::certificate_expiring_in(10).unwrap();
    emu.add_app_certificate(seed::CERT_DAEMON_CLIENT_ID, &cert)
        .unwrap();
    let soon = dir.path().join("soon.pem");
    std::fs::write(&soon, both).unwrap();
    let app = interactive_staff("doc-app", seed::USER_UPN, seed::USER_NAME);
    let findings = diagnose(
        &cert_settings(&emu, &soon),
        std::slice::from_ref(&app),
        None,
    );
    let f = finding(&findings, "graph.certificate", "");
    assert_eq!(f.level, FindingLevel::WARN, "{f:?}");
    assert!(f.message.contains("expires in"), "{f:?}");
    assert!(
        f.fix.contains("Upload") || f.fix.contains("upload"),
        "{f:?}"
    );
    assert_eq!(
        finding(&findings, "graph.sign-in", "doc-app").level,
        FindingLevel::OK
    );
    assert_eq!(
        finding(&findings, "graph.permission.readwrite", "doc-app").level,
        FindingLevel::OK
    );

    let (_, both) = fixtures::certificate_expiring_in(-2).unwrap();
    let expired = dir.path().join("expired.pem");
    std::fs::write(&expired, both).unwrap();
    let findings = diagnose(
        &cert_settings(&emu, &expired),
        std::slice::from_ref(&app),
        None,
    );
    assert_eq!(
        finding(&findings, "graph.certificate", "").level,
        FindingLevel::FAIL
    );

    let good = seed::certificate_fixture("app.pem");
    let findings = diagnose(&cert_settings(&emu, &good), &[app], None);
    assert_eq!(
        finding(&findings, "graph.certificate", "").level,
        FindingLevel::OK
    );
}

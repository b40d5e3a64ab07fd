//! The sending limits the provider declares (plugin API 1.2) and the mailbox Exchange counts.

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{LimitKind, Mailbox, Provider, SendRequest, Setting};

use crate::support::*;

#[test]
fn limits_name_their_settings_and_windows() {
    let limits = GraphProvider::new().limits().unwrap();
    let described: Vec<(LimitKind, &str, u64)> = limits
        .iter()
        .map(|l| (l.kind, l.setting.as_str(), l.window_seconds))
        .collect();
    assert_eq!(
        described,
        [
            (LimitKind::MESSAGES, "MessagesPerMinute", 60),
            (LimitKind::RECIPIENTS, "RecipientsPerDay", 86_400),
            (LimitKind::RECIPIENTS_PER_MESSAGE, "RecipientsPerMessage", 0),
            (LimitKind::CONCURRENT_REQUESTS, "ConcurrentRequests", 0),
        ]
    );
    let declared = GraphProvider::info();
    for (key, default) in [
        ("MessagesPerMinute", "30"),
        ("RecipientsPerDay", "10000"),
        ("RecipientsPerMessage", "500"),
        ("ConcurrentRequests", "4"),
        ("SaveToSentItems", "true"),
        ("ReconcileWaitSeconds", "120"),
    ] {
        let spec = declared
            .settings
            .iter()
            .find(|s| s.key.as_str() == key)
            .unwrap_or_else(|| panic!("{key} is declared"));
        assert_eq!(
            spec.default.as_ref().map(|d| d.as_str()).into_option(),
            Some(default),
            "{key}"
        );
    }
}

#[test]
fn the_sending_mailbox_is_the_one_in_the_request_url() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let mailbox = |settings: &[Setting], from: &str| {
        let mut message = message("which mailbox");
        message.from = Mailbox::new(from, "");
        provider
            .sending_mailbox(&SendRequest {
                settings: RVec::from(settings.to_vec()),
                staff: alex("limits"),
                message,
            })
            .unwrap()
    };
    let delegated = settings(&emu, seed::MAILHOST_CLIENT_ID);
    assert_eq!(mailbox(&delegated, ""), seed::USER_UPN);
    assert_eq!(
        mailbox(&delegated, seed::SHARED_MAILBOX),
        seed::SHARED_MAILBOX
    );
    let from_property = with(delegated.clone(), "AlternateFromMode", "from-property");
    assert_eq!(
        mailbox(&from_property, seed::SHARED_MAILBOX),
        seed::USER_UPN
    );
    let app = daemon_settings(&emu);
    assert_eq!(mailbox(&app, ""), seed::USER_UPN);
    assert_eq!(mailbox(&app, seed::SHARED_MAILBOX), seed::SHARED_MAILBOX);
}

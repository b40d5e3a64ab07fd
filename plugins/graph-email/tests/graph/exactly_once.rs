//! Exactly once: every message tagged with the mailhost id property, SaveToSentItems, the
//! provider's own Sent Items lookup after an ambiguous answer (deliver-then-503/504, 202 with
//! Retry-After, a copy slower than the wait), and `reconcile`.

use graph_email::GraphProvider;
use graph_email::graph::sent_items::MAILHOST_ID_PROPERTY;
use mailhost_emulator::seed;
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{
    ErrorKind, Provider, ReconcileRequest, ReconcileState, SendRequest, Setting,
};

use crate::support::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn reconcile(
    provider: &GraphProvider,
    settings: &[Setting],
    subject: &str,
    internet_message_id: &str,
    first_attempt_unix: i64,
) -> mailhost_plugin_api::ReconcileOutcome {
    provider
        .reconcile(&ReconcileRequest {
            request: SendRequest {
                settings: RVec::from(settings.to_vec()),
                staff: alex("reconcile"),
                message: message(subject),
            },
            internet_message_id: internet_message_id.into(),
            first_attempt_unix,
        })
        .expect("reconcile answers")
}

#[test]
fn messages_carry_the_mailhost_id_and_sent_items_is_optional() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    send(&provider, &settings, &alex("tag"), message("tagged")).expect("sent");
    let sent = emu.sent_items(seed::USER_UPN);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].extended_property(MAILHOST_ID_PROPERTY),
        Some("test-tagged")
    );
    assert!(
        MAILHOST_ID_PROPERTY.starts_with("String {")
            && MAILHOST_ID_PROPERTY.ends_with("} Name MailhostId")
    );
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert!(
        inbox[0].single_value_extended_properties.is_empty(),
        "recipients do not get it"
    );

    let no_copy = with(settings, "SaveToSentItems", "false");
    send(&provider, &no_copy, &alex("tag"), message("no copy")).expect("sent");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 2);
    assert_eq!(
        emu.sent_items(seed::USER_UPN).len(),
        1,
        "no Sent Items copy when false"
    );
}

#[test]
fn deliver_then_503_or_504_arrives_once_and_is_sent() {
    for status in [503, 504] {
        let emu = emulator();
        let provider = GraphProvider::new();
        let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
        emu.fault_deliver_then(1, status, Some(1), Some("/v1.0/me/sendMail"))
            .unwrap();
        let receipt = send(&provider, &settings, &alex("deliver-then"), message("once"))
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert!(
            receipt.detail.contains("found in the Sent Items"),
            "{receipt:?}"
        );
        assert!(receipt.message_id.starts_with('<'), "{receipt:?}");
        let counters = emu.counters();
        assert_eq!(counters.delivered_then_faulted, 1, "{counters:?}");
        assert_eq!(counters.send_mail, 1, "{status}: not sent again");
        assert_eq!(
            emu.inbox(seed::RECIPIENT_UPN).len(),
            1,
            "{status}: exactly one copy"
        );
    }
}

#[test]
fn accepted_with_retry_after_is_not_sent_again() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    emu.fault_deliver_then(1, 202, Some(30), Some("/v1.0/me/sendMail"))
        .unwrap();
    send(
        &provider,
        &settings,
        &alex("202"),
        message("202 retry-after"),
    )
    .expect("accepted");
    assert_eq!(emu.counters().send_mail, 1);
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1);
}

#[test]
fn a_sent_items_copy_slower_than_the_wait_stays_unknown_and_is_not_resent() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "MaxRetryWaitSeconds",
        "2",
    );
    emu.set_sent_items_delay(60);
    emu.fault_deliver_then(1, 503, Some(1), Some("/v1.0/me/sendMail"))
        .unwrap();
    let error = send(
        &provider,
        &settings,
        &alex("slow-copy"),
        message("slow copy"),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::UNKNOWN_OUTCOME, "{error}");
    assert!(error.message.contains("not sent again"), "{error}");
    assert_eq!(emu.counters().send_mail, 1, "never resent");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1);
    // Asked right away, reconcile cannot tell either: the copy may still come.
    let outcome = reconcile(&provider, &settings, "slow copy", "", now());
    assert_eq!(outcome.state, ReconcileState::UNKNOWN, "{outcome:?}");
    assert!(
        outcome.detail.contains("ReconcileWaitSeconds"),
        "{outcome:?}"
    );
}

#[test]
fn reconcile_answers_sent_not_sent_or_unknown() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    send(
        &provider,
        &settings,
        &alex("reconcile"),
        message("was sent"),
    )
    .expect("sent");
    let exchange_id = emu.sent_items(seed::USER_UPN)[0]
        .internet_message_id
        .clone();

    let outcome = reconcile(&provider, &settings, "was sent", "", now() - 5);
    assert_eq!(outcome.state, ReconcileState::SENT, "{outcome:?}");
    let receipt = outcome.receipt.clone().into_option().expect("a receipt");
    assert_eq!(receipt.message_id.as_str(), exchange_id);

    // A whole message (MIME) has no property: found by its Message-ID.
    let outcome = reconcile(&provider, &settings, "other id", &exchange_id, now() - 5);
    assert_eq!(outcome.state, ReconcileState::SENT, "{outcome:?}");

    let outcome = reconcile(&provider, &settings, "never sent", "", now() - 5);
    assert_eq!(outcome.state, ReconcileState::UNKNOWN, "{outcome:?}");
    let outcome = reconcile(&provider, &settings, "never sent", "", now() - 121);
    assert_eq!(outcome.state, ReconcileState::NOT_SENT, "{outcome:?}");

    let no_copy = with(settings, "SaveToSentItems", "false");
    let outcome = reconcile(&provider, &no_copy, "never sent", "", now() - 1000);
    assert_eq!(outcome.state, ReconcileState::UNKNOWN, "{outcome:?}");
    assert!(outcome.detail.contains("SaveToSentItems"), "{outcome:?}");
}

#[test]
fn reconcile_without_read_permission_stays_unknown_with_the_fix() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // The daemon without roles can read nothing.
    let settings = with(
        settings(&emu, seed::NO_ROLE_DAEMON_CLIENT_ID),
        "ClientSecret",
        seed::NO_ROLE_DAEMON_CLIENT_SECRET,
    );
    let outcome = reconcile(&provider, &settings, "x", "", now() - 1000);
    assert_eq!(outcome.state, ReconcileState::UNKNOWN, "{outcome:?}");
    assert!(
        outcome.detail.contains("could not look in Sent Items"),
        "{outcome:?}"
    );
}

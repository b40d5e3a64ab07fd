//! Throttling and transient faults: retried honouring Retry-After, sent exactly once, and a
//! clear error with retry-after when they do not clear; no silent resend after a timeout.

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::ErrorKind;

use crate::support::*;

#[test]
fn throttling_that_clears_sends_exactly_once() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    emu.fault_throttle(2, 1, Some("/v1.0/"));
    send(
        &provider,
        &settings,
        &alex("throttle-1"),
        message("throttled"),
    )
    .expect("sent after the throttling cleared");
    let counters = emu.counters();
    assert_eq!(counters.throttled, 2, "{counters:?}");
    assert_eq!(counters.messages_delivered, 1, "{counters:?}");
    assert_eq!(
        emu.inbox(seed::RECIPIENT_UPN).len(),
        1,
        "delivered exactly once"
    );
}

#[test]
fn throttling_that_never_clears_fails_with_retry_after() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(settings(&emu, seed::MAILHOST_CLIENT_ID), "MaxRetries", "2");
    // Sign in first so only sendMail is throttled.
    send(
        &provider,
        &settings,
        &alex("throttle-2"),
        message("warm up"),
    )
    .expect("sent");
    emu.fault_throttle(1000, 1, Some("/v1.0/"));
    let error = send(&provider, &settings, &alex("throttle-2"), message("never")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::THROTTLED, "{error}");
    assert!(error.retry_after().is_some(), "{error:?}");
    assert!(error.message.contains("retried later"), "{error}");
    assert_eq!(emu.counters().throttled, 3, "one try and two retries");
    assert_eq!(
        emu.inbox(seed::RECIPIENT_UPN).len(),
        1,
        "only the warm-up arrived"
    );
}

#[test]
fn service_unavailable_is_retried_once_proven_not_sent() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // A 503 to sendMail may hide a delivery: the provider looks in Sent Items first and sends
    // again only once the copy had ReconcileWaitSeconds to appear.
    let settings = with(
        settings(&emu, seed::MAILHOST_CLIENT_ID),
        "ReconcileWaitSeconds",
        "1",
    );
    emu.fault_unavailable(2, 503, Some(1), Some("/v1.0/"))
        .unwrap();
    send(&provider, &settings, &alex("unavailable-1"), message("503")).expect("sent after 503s");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1);
    // The faulted try never reached the mailbox; the resend did.
    assert_eq!(emu.counters().send_mail, 1);
}

#[test]
fn gateway_timeouts_that_persist_are_transient() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        with(settings(&emu, seed::MAILHOST_CLIENT_ID), "MaxRetries", "1"),
        "ReconcileWaitSeconds",
        "0",
    );
    send(
        &provider,
        &settings,
        &alex("unavailable-2"),
        message("warm up"),
    )
    .expect("sent");
    emu.fault_unavailable(1000, 504, None, Some("/v1.0/me/sendMail"))
        .unwrap();
    let error = send(&provider, &settings, &alex("unavailable-2"), message("504")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1, "only the warm-up");
}

#[test]
fn a_timeout_after_sending_is_an_unknown_outcome_not_a_resend() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = with(
        with(
            settings(&emu, seed::MAILHOST_CLIENT_ID),
            "RequestTimeoutSeconds",
            "1",
        ),
        "MaxRetries",
        "1",
    );
    send(&provider, &settings, &alex("timeout-1"), message("warm up")).expect("sent");
    emu.reset_counters();
    emu.set_latency(2500);
    let error = send(&provider, &settings, &alex("timeout-1"), message("slow")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UNKNOWN_OUTCOME, "{error}");
    assert!(error.message.contains("Sent Items"), "{error}");
    emu.clear_faults();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        emu.inbox(seed::RECIPIENT_UPN).len(),
        1,
        "only the warm-up: sendMail was not repeated"
    );
}

#[test]
fn nothing_listens_is_transient() {
    host();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}");
    let settings = vec![
        mailhost_plugin_api::Setting::new("ClientID", seed::MAILHOST_CLIENT_ID),
        mailhost_plugin_api::Setting::new("TenantID", seed::TENANT_ID),
        mailhost_plugin_api::Setting::new("Authority", &base),
        mailhost_plugin_api::Setting::new("GraphEndpoint", &base),
        mailhost_plugin_api::Setting::new("MaxRetries", "1"),
    ];
    let error = send(
        &GraphProvider::new(),
        &settings,
        &alex("closed-1"),
        message("x"),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::TRANSIENT, "{error}");
    assert!(error.message.contains("could not connect"), "{error}");
}

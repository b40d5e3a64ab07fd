//! Token reuse (one token request for many sends, also from 8 threads at once), a 401 that
//! refreshes once, and what reaches the log at trace level.

use std::sync::Arc;

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::Provider;

use crate::support::*;

#[test]
fn one_token_request_for_many_sends() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = alex("reuse-1");
    for i in 0..10 {
        send(&provider, &settings, &staff, message(&format!("reuse {i}"))).expect("sent");
    }
    let counters = emu.counters();
    assert_eq!(counters.token_requests.password, 1, "{counters:?}");
    assert_eq!(counters.token_requests.refresh_token, 0, "{counters:?}");
    assert_eq!(counters.send_mail, 10);
}

#[test]
fn one_token_request_for_concurrent_sends_from_8_threads() {
    let emu = emulator();
    let provider = Arc::new(GraphProvider::new());
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = alex("concurrent-1");
    std::thread::scope(|scope| {
        for t in 0..8 {
            let provider = Arc::clone(&provider);
            let settings = settings.clone();
            let staff = staff.clone();
            scope.spawn(move || {
                for i in 0..3 {
                    send(
                        &provider,
                        &settings,
                        &staff,
                        message(&format!("thread {t} mail {i}")),
                    )
                    .expect("sent");
                }
            });
        }
    });
    let counters = emu.counters();
    assert_eq!(counters.token_requests.password, 1, "{counters:?}");
    assert_eq!(counters.token_requests.refresh_token, 0, "{counters:?}");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 24);
    let concurrent = counters
        .max_concurrent_per_mailbox
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    assert!(
        concurrent <= 4,
        "at most 4 requests at once per mailbox: {counters:?}"
    );
}

#[test]
fn concurrent_sends_stay_within_the_mailbox_concurrency_limit() {
    let emu = emulator();
    emu.set_concurrency_limit(true);
    emu.set_latency(50);
    let provider = Arc::new(GraphProvider::new());
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = alex("limit-1");
    send(&provider, &settings, &staff, message("warm up")).expect("sent");
    std::thread::scope(|scope| {
        for t in 0..8 {
            let provider = Arc::clone(&provider);
            let settings = settings.clone();
            let staff = staff.clone();
            scope.spawn(move || {
                send(
                    &provider,
                    &settings,
                    &staff,
                    message(&format!("limited {t}")),
                )
                .expect("sent")
            });
        }
    });
    let counters = emu.counters();
    assert_eq!(
        counters.throttled, 0,
        "no request was refused for concurrency: {counters:?}"
    );
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 9);
}

#[test]
fn app_only_concurrent_sends_share_one_token() {
    let emu = emulator();
    let provider = Arc::new(GraphProvider::new());
    let settings = daemon_settings(&emu);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let provider = Arc::clone(&provider);
            let settings = settings.clone();
            scope.spawn(move || {
                let staff =
                    interactive_staff(&format!("app-staff-{t}"), seed::USER_UPN, seed::USER_NAME);
                send(&provider, &settings, &staff, message(&format!("app {t}"))).expect("sent");
            });
        }
    });
    assert_eq!(emu.counters().token_requests.client_credentials, 1);
}

#[test]
fn different_staff_and_apps_never_share_a_token() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    send(&provider, &settings, &alex("share-a"), message("a")).expect("sent");
    send(
        &provider,
        &settings,
        &service_staff("share-b", seed::RECIPIENT_UPN, seed::RECIPIENT_PASSWORD),
        message("b"),
    )
    .expect("sent");
    assert_eq!(emu.counters().token_requests.password, 2);
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 2);
}

#[test]
fn a_401_gets_a_new_token_once_and_the_email_is_sent_once() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = alex("401-1");
    send(&provider, &settings, &staff, message("before")).expect("sent");
    // The emulator forgets every token: the cached access token now gets 401, and the cached
    // refresh token is unknown, so the NonInteractive account signs in with its password again.
    emu.reset();
    send(&provider, &settings, &staff, message("after")).expect("sent after a 401");
    let counters = emu.counters();
    assert_eq!(counters.token_requests.refresh_token, 1, "{counters:?}");
    assert_eq!(counters.token_requests.password, 1, "{counters:?}");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "after");
}

#[test]
fn trace_logs_never_show_passwords_or_tokens() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    send(&provider, &settings, &alex("logs-1"), message("logged")).expect("sent");
    let megan = interactive_staff("logs-2", seed::MFA_USER_UPN, seed::MFA_USER_NAME);
    device_login(&provider, &emu, &settings, &megan, seed::MFA_USER_UPN).expect("signed in");
    send(&provider, &settings, &megan, message("logged 2")).expect("sent");
    send(
        &provider,
        &daemon_settings(&emu),
        &megan,
        message("logged 3"),
    )
    .expect("sent");
    let logs = host().logs();
    assert!(
        logs.iter().any(|l| l.contains("sendMail")),
        "trace logging reached the host: {logs:?}"
    );
    let mut secrets = vec![
        seed::USER_PASSWORD.to_string(),
        seed::MFA_USER_PASSWORD.to_string(),
        seed::DAEMON_CLIENT_SECRET.to_string(),
    ];
    for stored in host().secret_values() {
        let cached: serde_json::Value = serde_json::from_str(&stored).unwrap();
        for field in ["access_token", "refresh_token"] {
            if let Some(token) = cached
                .get(field)
                .and_then(|t| t.as_str())
                .filter(|t| t.len() > 8)
            {
                secrets.push(token.to_string());
            }
        }
    }
    assert!(secrets.len() > 4, "tokens were cached");
    for line in &logs {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "a secret reached the log: {line}"
            );
        }
        assert!(
            !line.to_ascii_lowercase().contains("bearer "),
            "an Authorization header reached the log: {line}"
        );
        assert!(
            !line.contains("authtoken="),
            "an upload URL query reached the log: {line}"
        );
    }
}

#[test]
fn describe_declares_the_contract_names() {
    let info = GraphProvider::new().describe().unwrap();
    assert_eq!(info.name.as_str(), "graph-email");
    assert_eq!(info.display_name.as_str(), "Microsoft Graph");
    let keys: Vec<&str> = info.settings.iter().map(|s| s.key.as_str()).collect();
    for key in [
        "ClientID",
        "TenantID",
        "RedirectURI",
        "Authority",
        "GraphEndpoint",
        "ClientSecret",
        "AlternateFromMode",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(
        info.settings
            .iter()
            .find(|s| s.key.as_str() == "ClientSecret")
            .unwrap()
            .secret
    );
    assert_eq!(info.staff_fields[0].key.as_str(), "NonInteractive");
    for capability in [
        "sign-in",
        "html",
        "attachments",
        "alternate-from",
        "custom-headers",
    ] {
        assert!(info.has_capability(capability), "{capability}");
    }
}

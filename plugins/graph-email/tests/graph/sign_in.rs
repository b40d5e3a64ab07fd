//! Every sign-in path: ROPC, device code, silent refresh-token reuse, client credentials,
//! dead refresh tokens, sign-out.

use graph_email::GraphProvider;
use mailhost_emulator::seed;
use mailhost_plugin_api::ErrorKind;

use crate::support::*;

#[test]
fn non_interactive_staff_send_with_username_and_password() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let receipt = send(&provider, &settings, &alex("ropc-1"), message("ropc")).expect("sent");
    assert!(
        !receipt.request_id.is_empty(),
        "the receipt records Graph's request-id"
    );
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "ropc");
    assert_eq!(inbox[0].from_address().as_deref(), Some(seed::USER_UPN));
    let counters = emu.counters();
    assert_eq!(counters.token_requests.password, 1);
    assert_eq!(counters.send_mail, 1);
}

#[test]
fn device_code_sign_in_then_silent_sends_and_refresh() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let megan = interactive_staff("dc-1", seed::MFA_USER_UPN, seed::MFA_USER_NAME);
    let said =
        device_login(&provider, &emu, &settings, &megan, seed::MFA_USER_UPN).expect("signed in");
    assert!(said.contains(seed::MFA_USER_UPN), "{said}");
    send(&provider, &settings, &megan, message("after login")).expect("sent with the cached token");
    let counters = emu.counters();
    assert_eq!(counters.token_requests.device_code, 1, "{counters:?}");
    assert_eq!(
        counters.token_requests.refresh_token, 0,
        "the access token is reused"
    );

    // A new provider (a new mailhost process) reuses the cache in the secret store.
    let later = GraphProvider::new();
    send(&later, &settings, &megan, message("new process"))
        .expect("sent from the secret-store cache");
    assert_eq!(emu.counters().token_requests.refresh_token, 0);

    // Once the access token expires the refresh token is redeemed silently (and rotated).
    emu.set_access_token_lifetime(2);
    let short = GraphProvider::new();
    // Force the cached long-lived token out: sign-out-free path is a 401 or expiry; use a new
    // sign-in with a short lifetime.
    device_login(&short, &emu, &settings, &megan, seed::MFA_USER_UPN).expect("signed in again");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    send(&short, &settings, &megan, message("after expiry")).expect("sent after a silent refresh");
    assert_eq!(emu.counters().token_requests.refresh_token, 1);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    send(&short, &settings, &megan, message("after second expiry"))
        .expect("the rotated refresh token works");
    assert_eq!(emu.counters().token_requests.refresh_token, 2);
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 4);
    assert!(
        inbox
            .iter()
            .all(|m| m.from_address().as_deref() == Some(seed::MFA_USER_UPN))
    );
}

#[test]
fn interactive_staff_without_login_are_told_to_run_login() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("nologin-1", seed::USER_UPN, seed::USER_NAME);
    let error = send(&provider, &settings, &staff, message("x")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert!(
        error.message.contains("mailhost login nologin-1"),
        "{error}"
    );
    assert_eq!(emu.counters().total_requests, 0);
}

#[test]
fn declined_device_code_is_a_clear_error() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("decline-1", seed::USER_UPN, seed::USER_NAME);
    let seen = host().note_count();
    let error = std::thread::scope(|scope| {
        let signing_in = scope.spawn(|| sign_in(&provider, &settings, &staff));
        let code = host().wait_for_user_code("decline-1", seen);
        emu.decline_device_code(&code).expect("declined");
        signing_in.join().unwrap()
    })
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert!(error.message.contains("declined"), "{error}");
    assert!(
        error.message.contains("mailhost login decline-1"),
        "{error}"
    );
}

#[test]
fn app_only_client_credentials_send_through_the_users_endpoint() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = daemon_settings(&emu);
    let staff = interactive_staff("app-1", seed::USER_UPN, seed::USER_NAME);
    for i in 0..3 {
        send(
            &provider,
            &settings,
            &staff,
            message(&format!("app-only {i}")),
        )
        .expect("sent app-only");
    }
    let counters = emu.counters();
    assert_eq!(
        counters.token_requests.client_credentials, 1,
        "{counters:?}"
    );
    assert_eq!(
        counters.token_requests.password + counters.token_requests.device_code,
        0
    );
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 3);
    assert_eq!(emu.sent_items(seed::USER_UPN).len(), 3);
    // mailhost login with ClientSecret set just checks the app's credentials.
    let said = sign_in(&provider, &settings, &staff).expect("app-only sign-in");
    assert!(said.contains("app-only"), "{said}");
}

#[test]
fn expired_refresh_token_asks_for_login_again() {
    let emu = emulator();
    let provider = GraphProvider::new();
    emu.set_access_token_lifetime(2);
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("dead-1", seed::USER_UPN, seed::USER_NAME);
    device_login(&provider, &emu, &settings, &staff, seed::USER_UPN).expect("signed in");
    emu.expire_refresh_tokens(seed::USER_UPN);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let error = send(&provider, &settings, &staff, message("x")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert_eq!(error.code.as_str(), "AADSTS700082");
    assert!(error.message.contains("mailhost login dead-1"), "{error}");
}

#[test]
fn revoked_refresh_token_asks_for_login_again() {
    let emu = emulator();
    let provider = GraphProvider::new();
    emu.set_access_token_lifetime(2);
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("revoked-1", seed::USER_UPN, seed::USER_NAME);
    device_login(&provider, &emu, &settings, &staff, seed::USER_UPN).expect("signed in");
    emu.revoke_refresh_tokens(seed::USER_UPN);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let error = send(&provider, &settings, &staff, message("x")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
    assert_eq!(error.code.as_str(), "AADSTS50173");
    assert!(
        error.message.contains("mailhost login revoked-1"),
        "{error}"
    );
}

#[test]
fn non_interactive_falls_back_to_the_password_when_the_refresh_token_dies() {
    let emu = emulator();
    let provider = GraphProvider::new();
    emu.set_access_token_lifetime(2);
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = alex("fallback-1");
    send(&provider, &settings, &staff, message("first")).expect("sent");
    emu.revoke_refresh_tokens(seed::USER_UPN);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    send(&provider, &settings, &staff, message("second"))
        .expect("sent after signing in with the password again");
    let counters = emu.counters();
    assert_eq!(counters.token_requests.password, 2, "{counters:?}");
    assert_eq!(counters.token_requests.refresh_token, 1, "{counters:?}");
}

#[test]
fn sign_out_forgets_the_sign_in() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("signout-1", seed::USER_UPN, seed::USER_NAME);
    device_login(&provider, &emu, &settings, &staff, seed::USER_UPN).expect("signed in");
    send(&provider, &settings, &staff, message("signed in")).expect("sent");
    sign_out(&provider, &settings, &staff).expect("signed out");
    let error = send(&provider, &settings, &staff, message("signed out")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION);
}

#[test]
fn mfa_required_on_refresh_asks_for_login_again() {
    let emu = emulator();
    let provider = GraphProvider::new();
    emu.set_access_token_lifetime(2);
    let settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    let staff = interactive_staff("mfa-refresh-1", seed::USER_UPN, seed::USER_NAME);
    device_login(&provider, &emu, &settings, &staff, seed::USER_UPN).expect("signed in");
    emu.require_mfa_on_refresh(seed::USER_UPN);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let error = send(&provider, &settings, &staff, message("x")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AUTHENTICATION, "{error}");
    assert!(
        error.message.contains("mailhost login mfa-refresh-1"),
        "{error}"
    );
}

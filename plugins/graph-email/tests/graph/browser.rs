//! Browser sign-in (authorization code + PKCE S256, checked state) against the emulator, with
//! a plain HTTP client playing the browser: the loopback listener and the nativeclient paste
//! path, the cached refresh token, and each redirect error explained.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_email::GraphProvider;
use graph_email::auth::browser::BrowserIo;
use mailhost_emulator::{Emulator, seed};
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{ErrorKind, ProviderError, Setting, SignInRequest, StaffMember};

use crate::support::*;

fn browser_settings(
    emu: &Emulator,
    client_id: &str,
    redirect: Option<&str>,
    no_open: bool,
) -> Vec<Setting> {
    let mut settings = with(settings(emu, client_id), "SignInMode", "browser");
    if let Some(redirect) = redirect {
        settings = with(settings, "RedirectURI", redirect);
    }
    with(
        settings,
        "SignInNoOpen",
        if no_open { "true" } else { "false" },
    )
}

fn megan(id: &str) -> StaffMember {
    interactive_staff(id, seed::MFA_USER_UPN, seed::MFA_USER_NAME)
}

fn sign_in_with(
    provider: &GraphProvider,
    settings: &[Setting],
    staff: &StaffMember,
    io: &BrowserIo,
) -> Result<String, ProviderError> {
    provider.sign_in_with(
        &SignInRequest {
            settings: RVec::from(settings.to_vec()),
            staff: staff.clone(),
        },
        io,
    )
}

type Browser = Arc<Mutex<Option<std::thread::JoinHandle<String>>>>;

/// A browser that is opened at the sign-in address, signs in as Megan and follows the redirect
/// to the loopback listener; joining it gives what the listener answered.
fn loopback_browser() -> (BrowserIo, Browser) {
    let browser: Browser = Arc::new(Mutex::new(None));
    let slot = browser.clone();
    let io = BrowserIo {
        open: Box::new(move |url| {
            let url = url.to_string();
            *slot.lock().unwrap() = Some(std::thread::spawn(move || {
                let back = browser_sign_in(&url, seed::MFA_USER_UPN, seed::MFA_USER_PASSWORD);
                assert!(back.starts_with("http://localhost:"), "{back}");
                browser_get(&back)
            }));
            Ok(())
        }),
        read_line: Box::new(|| panic!("the loopback flow reads nothing")),
        wait: Duration::from_secs(30),
    };
    (io, browser)
}

#[test]
fn loopback_sign_in_caches_a_refresh_token_for_silent_sends() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // One-second access tokens: the sends below must redeem the cached refresh token.
    emu.set_access_token_lifetime(1);
    let login = browser_settings(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        Some("http://localhost"),
        false,
    );
    let staff = megan("browser-loopback");
    let (io, page) = loopback_browser();
    let said = sign_in_with(&provider, &login, &staff, &io).expect("signed in");
    assert!(said.contains(seed::MFA_USER_UPN), "{said}");
    let page = page
        .lock()
        .unwrap()
        .take()
        .expect("a browser was opened")
        .join()
        .expect("the browser came back");
    assert!(page.contains("You are signed in"), "{page}");
    assert_eq!(emu.counters().token_requests.authorization_code, 1);

    // A send uses the cached sign-in: no prompt, a refresh.
    std::thread::sleep(Duration::from_millis(1100));
    let send_settings = settings(&emu, seed::MAILHOST_CLIENT_ID);
    send(&provider, &send_settings, &staff, message("after browser")).expect("sent silently");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox[0].from_address().as_deref(), Some(seed::MFA_USER_UPN));
    // A new provider (another process) finds the refresh token in the secret store.
    let again = GraphProvider::new();
    send(&again, &send_settings, &staff, message("from the cache")).expect("sent from the cache");
    let counters = emu.counters();
    assert_eq!(
        counters.token_requests.authorization_code, 1,
        "{counters:?}"
    );
    assert_eq!(counters.device_code_starts, 0, "{counters:?}");
    assert!(counters.token_requests.refresh_token >= 1, "{counters:?}");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 2);
    let note = host()
        .last_note_containing("staff browser-loopback;")
        .unwrap();
    assert!(note.contains("code_challenge_method=S256"), "{note}");
}

#[test]
fn nativeclient_paste_with_no_open() {
    let emu = emulator();
    let provider = GraphProvider::new();
    // RedirectURI blank: the nativeclient URI; the address is printed, not opened.
    let login = browser_settings(&emu, seed::MAILHOST_CLIENT_ID, None, true);
    let staff = megan("browser-paste");
    let io = BrowserIo {
        open: Box::new(|_| panic!("SignInNoOpen=true opens nothing")),
        read_line: Box::new(|| {
            let url = sign_in_address("browser-paste");
            let ended_on = browser_sign_in(&url, seed::MFA_USER_UPN, seed::MFA_USER_PASSWORD);
            assert!(
                ended_on.starts_with(seed::NATIVE_CLIENT_REDIRECT_URI),
                "{ended_on}"
            );
            Ok(format!("{ended_on}\n"))
        }),
        wait: Duration::from_secs(30),
    };
    sign_in_with(&provider, &login, &staff, &io).expect("signed in by pasting");
    send(
        &provider,
        &settings(&emu, seed::MAILHOST_CLIENT_ID),
        &staff,
        message("pasted"),
    )
    .expect("sent");
    let note = host().last_note_containing("staff browser-paste;").unwrap();
    assert!(note.contains("paste it here"), "{note}");
    assert!(
        note.contains(&url_encoded(seed::NATIVE_CLIENT_REDIRECT_URI)),
        "{note}"
    );
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Runs the paste flow with `answer(sign-in address) -> pasted line`.
fn paste_flow(
    emu: &Emulator,
    client_id: &str,
    staff_id: &str,
    answer: fn(&str) -> String,
) -> Result<String, ProviderError> {
    let provider = GraphProvider::new();
    let settings = browser_settings(emu, client_id, None, true);
    let staff = megan(staff_id);
    let id = staff_id.to_string();
    let io = BrowserIo {
        open: Box::new(|_| Ok(())),
        read_line: Box::new(move || Ok(answer(&sign_in_address(&id)))),
        wait: Duration::from_secs(30),
    };
    sign_in_with(&provider, &settings, &staff, &io)
}

fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

#[test]
fn a_wrong_state_is_refused() {
    let emu = emulator();
    let error = paste_flow(&emu, seed::MAILHOST_CLIENT_ID, "browser-state", |url| {
        let ended_on = browser_sign_in(url, seed::MFA_USER_UPN, seed::MFA_USER_PASSWORD);
        ended_on.replace(&state_of(url), "someone-elses-state")
    })
    .unwrap_err();
    assert_eq!(error.code.as_str(), "StateMismatch", "{error}");
    assert!(error.message.contains("--browser` again"), "{error}");
    assert_eq!(
        emu.counters().token_requests.authorization_code,
        0,
        "the code was not redeemed"
    );
}

#[test]
fn a_declined_sign_in_says_so() {
    let emu = emulator();
    let error = paste_flow(&emu, seed::MAILHOST_CLIENT_ID, "browser-declined", |url| {
        format!(
            "{}?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.&state={}",
            seed::NATIVE_CLIENT_REDIRECT_URI,
            state_of(url)
        )
    })
    .unwrap_err();
    assert_eq!(error.code.as_str(), "access_denied", "{error}");
    assert!(error.message.contains("declined"), "{error}");
    assert!(error.message.contains("AADSTS65004"), "{error}");
}

#[test]
fn missing_consent_names_the_admin_step() {
    let emu = emulator();
    // The emulator redirects with error=consent_required before asking for a password.
    let error = paste_flow(&emu, seed::NO_CONSENT_CLIENT_ID, "browser-consent", |url| {
        browser_sign_in(url, seed::MFA_USER_UPN, seed::MFA_USER_PASSWORD)
    })
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::PERMISSION, "{error}");
    assert_eq!(error.code.as_str(), "consent_required", "{error}");
    assert!(error.message.contains("Grant admin consent"), "{error}");
}

#[test]
fn an_unregistered_redirect_uri_names_the_portal_step() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = browser_settings(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        Some("http://localhost/not-registered"),
        false,
    );
    let io = BrowserIo {
        open: Box::new(|_| panic!("no browser for a redirect URI Microsoft refuses")),
        read_line: Box::new(|| panic!("nothing to read")),
        wait: Duration::from_secs(30),
    };
    let error = sign_in_with(&provider, &settings, &megan("browser-50011"), &io).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CONFIGURATION, "{error}");
    assert_eq!(error.code.as_str(), "AADSTS50011", "{error}");
    assert!(
        error.message.contains("Mobile and desktop applications"),
        "{error}"
    );
    assert!(
        error.message.contains("http://localhost/not-registered"),
        "{error}"
    );
}

#[test]
fn a_browser_that_never_comes_back_times_out_with_the_fix() {
    let emu = emulator();
    let provider = GraphProvider::new();
    let settings = browser_settings(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        Some("http://127.0.0.1"),
        false,
    );
    let io = BrowserIo {
        open: Box::new(|_| Ok(())),
        read_line: Box::new(|| panic!("nothing to read")),
        wait: Duration::from_secs(1),
    };
    let error = sign_in_with(&provider, &settings, &megan("browser-timeout"), &io).unwrap_err();
    assert_eq!(error.code.as_str(), "BrowserTimeout", "{error}");
    assert!(error.message.contains("AADSTS50011"), "{error}");
}

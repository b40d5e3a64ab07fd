//! The in-process test host (logs, notifications and secret store; installed once per test
//! binary) and builders for settings, staff members and messages.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use graph_email::GraphProvider;
use mailhost_emulator::{Emulator, seed};
use mailhost_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use mailhost_plugin_api::abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use mailhost_plugin_api::{
    HostServices, HostServices_TO, LogLevel, Mailbox, Message, Provider, ProviderError, Receipt,
    SendRequest, Setting, SignInRequest, StaffMember,
};

/// What the provider told the host.
#[derive(Debug, Default)]
pub struct TestHost {
    logs: Mutex<Vec<String>>,
    notes: Mutex<Vec<String>>,
    secrets: Mutex<HashMap<String, String>>,
}

#[derive(Debug, Clone, Copy)]
struct Handle(&'static TestHost);

impl HostServices for Handle {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        if let Ok(mut logs) = self.0.logs.lock() {
            logs.push(format!("{level:?} {target}: {message}"));
        }
    }

    fn notify(&self, message: RStr<'_>) {
        if let Ok(mut notes) = self.0.notes.lock() {
            notes.push(message.to_string());
        }
    }

    fn secret_get(&self, key: RStr<'_>) -> RResult<ROption<RString>, RString> {
        match self.0.secrets.lock() {
            Ok(secrets) => RResult::ROk(
                secrets
                    .get(key.as_str())
                    .map(|v| RString::from(v.as_str()))
                    .into(),
            ),
            Err(_) => RResult::RErr("poisoned".into()),
        }
    }

    fn secret_put(&self, key: RStr<'_>, value: RStr<'_>) -> RResult<(), RString> {
        match self.0.secrets.lock() {
            Ok(mut secrets) => {
                secrets.insert(key.to_string(), value.to_string());
                RResult::ROk(())
            }
            Err(_) => RResult::RErr("poisoned".into()),
        }
    }

    fn secret_delete(&self, key: RStr<'_>) -> RResult<(), RString> {
        match self.0.secrets.lock() {
            Ok(mut secrets) => {
                secrets.remove(key.as_str());
                RResult::ROk(())
            }
            Err(_) => RResult::RErr("poisoned".into()),
        }
    }
}

/// The test host of this binary, installed on first use with trace-level logging.
pub fn host() -> &'static TestHost {
    static HOST: OnceLock<&'static TestHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let host: &'static TestHost = Box::leak(Box::default());
        // `install` routes panics to the log (right for a plugin in a host); tests want
        // assertion messages on stderr, so the default hook is put back.
        let default_hook = std::panic::take_hook();
        mailhost_plugin_api::host::install(
            HostServices_TO::from_value(Handle(host), TD_Opaque),
            LogLevel::Trace,
        );
        std::panic::set_hook(default_hook);
        host
    })
}

impl TestHost {
    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every secret value stored so far.
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many notifications there are so far.
    pub fn note_count(&self) -> usize {
        self.notes.lock().map(|n| n.len()).unwrap_or(0)
    }

    /// Waits for a device-code notification naming `staff_id` after the first `seen` ones and
    /// returns the user code in it.
    pub fn wait_for_user_code(&self, staff_id: &str, seen: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let marker = format!("staff {staff_id};");
        loop {
            let found = self.notes.lock().ok().and_then(|notes| {
                notes
                    .iter()
                    .skip(seen)
                    .find(|n| n.contains(&marker))
                    .and_then(|n| {
                        let after = n.split("enter the code ").nth(1)?;
                        Some(after.split_whitespace().next()?.to_string())
                    })
            });
            if let Some(code) = found {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "no device-code notification for staff {staff_id}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A fresh emulator (the test host installed first).
pub fn emulator() -> Emulator {
    host();
    let emu = Emulator::start().expect("the emulator starts");
    // Device-code sign-ins poll every second instead of five.
    emu.set_device_code_interval(1);
    emu
}

/// The system settings pointing at `emu` for `client_id`, with quick retries.
pub fn settings(emu: &Emulator, client_id: &str) -> Vec<Setting> {
    vec![
        Setting::new("ClientID", client_id),
        Setting::new("TenantID", seed::TENANT_ID),
        Setting::new("Authority", emu.base_url().trim_end_matches('/')),
        Setting::new("GraphEndpoint", emu.base_url().trim_end_matches('/')),
        Setting::new("MaxRetries", "4"),
        Setting::new("MaxRetryWaitSeconds", "20"),
        Setting::new("RequestTimeoutSeconds", "30"),
    ]
}

/// Replaces or adds a setting.
pub fn with(mut settings: Vec<Setting>, key: &str, value: &str) -> Vec<Setting> {
    settings.retain(|s| s.key.as_str() != key);
    let mut setting = Setting::new(key, value);
    setting.secret = key == "ClientSecret";
    settings.push(setting);
    settings
}

/// The app-only settings of the daemon app.
pub fn daemon_settings(emu: &Emulator) -> Vec<Setting> {
    with(
        settings(emu, seed::DAEMON_CLIENT_ID),
        "ClientSecret",
        seed::DAEMON_CLIENT_SECRET,
    )
}

/// A NonInteractive staff member signing in as `upn` with `password`.
pub fn service_staff(id: &str, upn: &str, password: &str) -> StaffMember {
    StaffMember {
        id: id.into(),
        email: upn.into(),
        display_name: "Service Account".into(),
        username: upn.into(),
        password: ROption::RSome(password.into()),
        fields: RVec::from(vec![Setting::new("NonInteractive", "true")]),
    }
}

/// Alex as a NonInteractive staff member.
pub fn alex(id: &str) -> StaffMember {
    service_staff(id, seed::USER_UPN, seed::USER_PASSWORD)
}

/// An interactive staff member (device code sign-in).
pub fn interactive_staff(id: &str, upn: &str, name: &str) -> StaffMember {
    StaffMember {
        id: id.into(),
        email: upn.into(),
        display_name: name.into(),
        username: upn.into(),
        password: ROption::RNone,
        fields: RVec::from(vec![Setting::new("NonInteractive", "false")]),
    }
}

/// A plain-text message to Lynne.
pub fn message(subject: &str) -> Message {
    Message {
        id: format!("test-{subject}").into(),
        to: RVec::from(vec![Mailbox::new(
            seed::RECIPIENT_UPN,
            seed::RECIPIENT_NAME,
        )]),
        subject: subject.into(),
        body: "Hello from the graph-email tests.".into(),
        ..Message::default()
    }
}

/// Sends `message` as `staff` with `settings`.
pub fn send(
    provider: &GraphProvider,
    settings: &[Setting],
    staff: &StaffMember,
    message: Message,
) -> Result<Receipt, ProviderError> {
    provider.send(&SendRequest {
        settings: RVec::from(settings.to_vec()),
        staff: staff.clone(),
        message,
    })
}

/// Signs `staff` in.
pub fn sign_in(
    provider: &GraphProvider,
    settings: &[Setting],
    staff: &StaffMember,
) -> Result<String, ProviderError> {
    provider.sign_in(&SignInRequest {
        settings: RVec::from(settings.to_vec()),
        staff: staff.clone(),
    })
}

/// Signs `staff` out.
pub fn sign_out(
    provider: &GraphProvider,
    settings: &[Setting],
    staff: &StaffMember,
) -> Result<String, ProviderError> {
    provider.sign_out(&SignInRequest {
        settings: RVec::from(settings.to_vec()),
        staff: staff.clone(),
    })
}

/// Runs the device-code sign-in of `staff` on a thread while this thread approves it as `upn`
/// through the emulator's API.
pub fn device_login(
    provider: &GraphProvider,
    emu: &Emulator,
    settings: &[Setting],
    staff: &StaffMember,
    upn: &str,
) -> Result<String, ProviderError> {
    let seen = host().note_count();
    std::thread::scope(|scope| {
        let signing_in = scope.spawn(|| sign_in(provider, settings, staff));
        let code = host().wait_for_user_code(staff.id.as_str(), seen);
        emu.approve_device_code(&code, upn)
            .expect("the emulator approves the code");
        signing_in
            .join()
            .expect("the sign-in thread does not panic")
    })
}

impl TestHost {
    /// The latest notification containing `marker`, if any.
    pub fn last_note_containing(&self, marker: &str) -> Option<String> {
        self.notes
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|n| n.contains(marker))
            .cloned()
    }
}

/// Plays a person's browser: loads the sign-in address `url`, signs in on the emulator's form
/// as `login` with `password` (when it asks), and returns the address the browser is sent to
/// (the redirect URI with `?code=…&state=…` or `?error=…`), without loading it.
pub fn browser_sign_in(url: &str, login: &str, password: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let page = client.get(url).send().await.unwrap();
        let response = if page.status().is_redirection() {
            page
        } else {
            let html = page.text().await.unwrap();
            assert!(
                html.contains("name=\"passwd\""),
                "not the sign-in form: {html}"
            );
            client
                .post(url)
                .form(&[("login", login), ("passwd", password)])
                .send()
                .await
                .unwrap()
        };
        assert!(
            response.status().is_redirection(),
            "no redirect after signing in: {}",
            response.status()
        );
        response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    })
}

/// Loads `url` (the loopback redirect) as the browser does and returns the page.
pub fn browser_get(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// The sign-in address in the latest browser sign-in notification for `staff_id`.
pub fn sign_in_address(staff_id: &str) -> String {
    let note = host()
        .last_note_containing(&format!("staff {staff_id};"))
        .expect("a sign-in notification");
    note.lines()
        .find(|l| l.contains("/oauth2/v2.0/authorize?"))
        .expect("the address is on its own line")
        .trim()
        .to_string()
}

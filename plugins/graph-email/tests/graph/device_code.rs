//! Device-code polling against a scripted token endpoint (answers the emulator does not give on
//! demand): `slow_down` adds 5 s to the interval, and `expired_token` / `bad_verification_code`
//! stop with a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graph_email::GraphProvider;
use mailhost_plugin_api::ErrorKind;

use crate::support::*;

/// Serves `/devicecode` with interval 1 s, then answers token polls with `polls` in order;
/// returns the base URL and the times the polls arrived.
fn scripted(polls: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&times);
    std::thread::spawn(move || {
        let mut polls = polls.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let (status, reply) = if request_line.contains("/devicecode") {
                (
                    200,
                    r#"{"device_code":"DEVICE-SECRET-123","user_code":"FAKE1234","verification_uri":"https://microsoft.com/devicelogin","expires_in":60,"interval":1,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FAKE1234 to authenticate."}"#,
                )
            } else {
                seen.lock().unwrap().push(Instant::now());
                polls.next().unwrap_or((500, "{}"))
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (base, times)
}

fn settings_for(base: &str) -> Vec<mailhost_plugin_api::Setting> {
    vec![
        mailhost_plugin_api::Setting::new("ClientID", "app"),
        mailhost_plugin_api::Setting::new("TenantID", "contoso.onmicrosoft.com"),
        mailhost_plugin_api::Setting::new("Authority", base),
        mailhost_plugin_api::Setting::new("GraphEndpoint", base),
    ]
}

const PENDING: (u16, &str) = (
    400,
    r#"{"error":"authorization_pending","error_description":"AADSTS70016: pending","error_codes":[70016]}"#,
);
const SLOW_DOWN: (u16, &str) = (
    400,
    r#"{"error":"slow_down","error_description":"slow down"}"#,
);
const TOKEN: (u16, &str) = (
    200,
    r#"{"token_type":"Bearer","expires_in":3599,"access_token":"at-1","refresh_token":"rt-1","scope":"x"}"#,
);

#[test]
fn slow_down_adds_five_seconds_to_the_interval() {
    host();
    let (base, times) = scripted(vec![PENDING, SLOW_DOWN, TOKEN]);
    let staff = interactive_staff("slow-1", "alex@contoso.onmicrosoft.com", "Alex");
    let said = sign_in(&GraphProvider::new(), &settings_for(&base), &staff).expect("signed in");
    assert!(said.contains("slow-1"), "{said}");
    let times = times.lock().unwrap();
    assert_eq!(times.len(), 3);
    let first_gap = times[1] - times[0];
    let second_gap = times[2] - times[1];
    assert!(
        first_gap >= Duration::from_millis(950) && first_gap < Duration::from_secs(3),
        "{first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_millis(5900),
        "slow_down adds 5 s: {second_gap:?}"
    );
}

#[test]
fn expired_and_unknown_codes_stop_polling() {
    host();
    for (answer, code) in [
        (
            (
                400,
                r#"{"error":"expired_token","error_description":"AADSTS70019: expired","error_codes":[70019]}"#,
            ),
            "AADSTS70019",
        ),
        (
            (
                400,
                r#"{"error":"bad_verification_code","error_description":"not recognised"}"#,
            ),
            "bad_verification_code",
        ),
        (
            (
                400,
                r#"{"error":"access_denied","error_description":"declined"}"#,
            ),
            "access_denied",
        ),
    ] {
        let (base, times) = scripted(vec![PENDING, answer]);
        let staff = interactive_staff("expired-1", "alex@contoso.onmicrosoft.com", "Alex");
        let error = sign_in(&GraphProvider::new(), &settings_for(&base), &staff).unwrap_err();
        assert_eq!(error.kind, ErrorKind::AUTHENTICATION, "{error}");
        assert_eq!(error.code.as_str(), code, "{error}");
        assert!(
            error.message.contains("mailhost login expired-1"),
            "{error}"
        );
        assert_eq!(times.lock().unwrap().len(), 2, "polling stopped");
    }
    let logs = host().logs();
    assert!(
        logs.iter().all(|l| !l.contains("DEVICE-SECRET-123")),
        "the device code never reaches the log"
    );
}

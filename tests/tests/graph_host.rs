//! The Graph plugin through the real `mailhost` binary and the emulator: the token cache lives in
//! the host's secret store, so separate `mailhost` processes share one sign-in; app-only sending
//! with a secret setting; nothing secret in trace logs; plain http to a remote host refused.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use email_support::stdout_json;
use mailhost_emulator::{Config, Emulator, seed};
use mailhost_tests::homes::{STAFF, graph_home};

fn send_args(subject: &str) -> Vec<String> {
    [
        "email",
        "send",
        "--staff",
        STAFF,
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        subject,
        "--body",
        "Hi",
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[test]
fn separate_processes_share_one_sign_in_through_the_secret_store() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    for i in 0..3 {
        let sent = home.json(&args(&send_args(&format!("process {i}"))));
        assert_eq!(sent["status"], "sent", "{sent:#}");
    }
    let counters = emulator.counters();
    assert_eq!(
        counters.token_requests.password, 1,
        "one sign-in for three processes: {counters:?}"
    );
    assert_eq!(counters.token_requests.refresh_token, 0, "{counters:?}");
    assert_eq!(emulator.inbox(seed::RECIPIENT_UPN).len(), 3);
}

#[test]
fn app_only_with_a_client_secret() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "ClientID",
        seed::DAEMON_CLIENT_ID,
    ]);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "ClientSecret",
        seed::DAEMON_CLIENT_SECRET,
    ]);
    for i in 0..2 {
        let sent = home.json(&args(&send_args(&format!("app-only {i}"))));
        assert_eq!(sent["status"], "sent", "{sent:#}");
    }
    let counters = emulator.counters();
    assert_eq!(
        counters.token_requests.client_credentials, 1,
        "{counters:?}"
    );
    assert_eq!(counters.token_requests.password, 0, "{counters:?}");
    let listing = home.ok(&["config", "list", "graph-email"]);
    assert!(!listing.contains(seed::DAEMON_CLIENT_SECRET), "{listing}");
}

#[test]
fn trace_logs_of_the_host_show_no_password_or_token() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let output = home.run_env(&args(&send_args("traced")), &[("RUST_LOG", "trace")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("sendMail"),
        "the plugin's logs reach the host's logger:\n{stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains(seed::USER_PASSWORD), "{text}");
        assert!(!text.to_ascii_lowercase().contains("bearer "), "{text}");
        assert!(!text.contains("refresh_token="), "{text}");
    }
}

#[test]
fn plain_http_to_a_remote_authority_is_refused() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "Authority",
        "http://login.example.com",
    ]);
    let output = home.run(&args(&send_args("insecure")));
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        format!("{stdout}{stderr}").contains("Authority"),
        "the error names the setting\n{stdout}\n{stderr}"
    );
    if !stdout.trim().is_empty() {
        let record = stdout_json(&output);
        assert_ne!(record["status"], "sent", "{record:#}");
    }
    assert_eq!(
        emulator.counters().total_requests,
        0,
        "nothing was sent anywhere"
    );
}

#[test]
fn https_with_a_private_ca_trusted_through_ssl_cert_file() {
    let tls = tempfile::tempdir().unwrap();
    let emulator = Emulator::start_with(Config {
        tls_dir: Some(tls.path().to_path_buf()),
        ..Config::default()
    })
    .unwrap();
    assert!(
        emulator.base_url().starts_with("https://"),
        "{}",
        emulator.base_url()
    );
    let ca = emulator
        .ca_pem_path()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let home = graph_home(&emulator);

    // Without the CA the TLS handshake fails: a transient error, nothing sent.
    let output = home.run(&args(&send_args("untrusted")));
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(emulator.counters().total_requests, 0);

    // With SSL_CERT_FILE naming the CA (as enterprises with TLS inspection do) it is sent.
    let output = home.run_env(&args(&send_args("trusted")), &[("SSL_CERT_FILE", &ca)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout_json(&output)["status"], "sent", "{stdout}");
    assert_eq!(emulator.inbox(seed::RECIPIENT_UPN).len(), 1);
}

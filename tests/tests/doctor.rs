//! `mailhost doctor` through the real binary and the Graph plugin against the emulator: a
//! healthy home passes, a certificate close to its expiry warns, missing consent fails with the
//! fix, `--json` and `--send-test`; serve.toml and the service's certificates checked before
//! it starts; and `mailhost login ID --browser --no-open` with the nativeclient paste path.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::Stdio;

use mailhost_emulator::{Emulator, fixtures, seed};
use mailhost_tests::assert_exit;
use mailhost_tests::homes::{STAFF, graph_home};

fn doctor(home: &mailhost_tests::Home, args: &[&str]) -> (i32, String) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let output = home.run(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains(seed::USER_PASSWORD) && !stderr.contains(seed::USER_PASSWORD),
        "{stdout}{stderr}"
    );
    (output.status.code().unwrap_or(-1), stdout)
}

fn line_with<'a>(stdout: &'a str, start: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{stdout}"))
}

fn fix_after<'a>(stdout: &'a str, start: &str) -> &'a str {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(start));
    lines.next();
    lines
        .next()
        .filter(|l| l.trim_start().starts_with("fix: "))
        .unwrap_or_else(|| panic!("no fix under {start:?} in:\n{stdout}"))
}

#[test]
fn a_healthy_home_passes_and_send_test_finds_the_email() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 0, "{stdout}");
    line_with(&stdout, "ok    host.plugin.load  plugin 'graph-email'");
    line_with(&stdout, "ok    host.staff.provider");
    line_with(&stdout, "ok    graph.authority");
    line_with(&stdout, "ok    graph.sign-in");
    line_with(&stdout, "ok    graph.permission.send");
    assert!(!stdout.contains("fail  "), "{stdout}");
    assert!(
        emulator.inbox(seed::RECIPIENT_UPN).is_empty(),
        "doctor sends nothing"
    );

    let (code, stdout) = doctor(&home, &[STAFF, "--send-test", seed::RECIPIENT_UPN]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        line_with(&stdout, "ok    graph.send-test").contains("found in the Sent Items"),
        "{stdout}"
    );
    assert_eq!(emulator.inbox(seed::RECIPIENT_UPN).len(), 1);

    let json = home.json(&["doctor", "--json"]);
    assert_eq!(json["ok"], true, "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["id"] == "graph.sign-in"
            && f["staff"] == STAFF
            && f["plugin"] == "graph-email"),
        "{json:#}"
    );
}

#[test]
fn missing_consent_fails_with_the_fix() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "ClientID",
        seed::NO_CONSENT_CLIENT_ID,
    ]);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 1, "{stdout}");
    line_with(&stdout, "fail  graph.sign-in");
    let fix = fix_after(&stdout, "fail  graph.sign-in");
    assert!(fix.contains("Grant admin consent"), "{fix}");
    let output = home.run(&["doctor", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json:#}");
}

#[test]
fn a_certificate_close_to_its_expiry_warns() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let (cert, both) = fixtures::certificate_expiring_in(10).unwrap();
    emulator
        .add_app_certificate(seed::CERT_DAEMON_CLIENT_ID, &cert)
        .unwrap();
    let file = home.path().join("app-cert.pem");
    std::fs::write(&file, both).unwrap();
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "ClientID",
        seed::CERT_DAEMON_CLIENT_ID,
    ]);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "ClientCertificate",
        file.to_str().unwrap(),
    ]);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 0, "warnings do not fail:\n{stdout}");
    assert!(
        line_with(&stdout, "warn  graph.certificate").contains("expires in"),
        "{stdout}"
    );
    assert!(
        fix_after(&stdout, "warn  graph.certificate").contains("Certificates & secrets"),
        "{stdout}"
    );
    line_with(&stdout, "ok    graph.sign-in");
    // And the certificate really signs in: a send works.
    home.ok(&[
        "email",
        "send",
        "--staff",
        STAFF,
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "cert",
        "--body",
        "x",
    ]);
    assert_eq!(
        emulator.inbox(seed::RECIPIENT_UPN)[0].app_id,
        seed::CERT_DAEMON_CLIENT_ID
    );
}

#[test]
fn doctor_for_an_unknown_staff_member_is_bad_usage() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let output = home.run(&["doctor", "nobody"]);
    assert_exit(&output, 2, &["doctor", "nobody"]);
}

/// GET `url` with a plain HTTP/1.1 request and return the `Location` of its redirect.
fn redirect_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 302"), "{response}");
    response
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn login_with_the_browser_by_pasting_the_address() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&[
        "staff",
        "add",
        "megan",
        "--provider",
        "graph-email",
        "--email",
        seed::MFA_USER_UPN,
        "--username",
        seed::MFA_USER_UPN,
        "--field",
        "NonInteractive=false",
    ]);
    // The person signs in as Megan in the browser (approved at the emulator).
    emulator.approve_sign_in(seed::MFA_USER_UPN).unwrap();
    let mut child = home
        .command(["login", "megan", "--browser", "--no-open"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut shown = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        shown.push_str(&line);
        if line.contains("/oauth2/v2.0/authorize?") {
            address = Some(line.trim().to_string());
        }
        if line.contains("paste it here") {
            break;
        }
    }
    let address = address.unwrap_or_else(|| panic!("no sign-in address shown:\n{shown}"));
    let ended_on = redirect_of(&address);
    assert!(
        ended_on.starts_with(seed::NATIVE_CLIENT_REDIRECT_URI),
        "{ended_on}"
    );
    writeln!(child.stdin.take().unwrap(), "{ended_on}").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{shown}");
    assert!(stdout.contains(seed::MFA_USER_UPN), "{stdout}");
    assert_eq!(emulator.counters().token_requests.authorization_code, 1);
    // Megan now sends without signing in again.
    home.ok(&[
        "email",
        "send",
        "--staff",
        "megan",
        "--to",
        seed::RECIPIENT_UPN,
        "--subject",
        "after browser",
        "--body",
        "x",
    ]);
    assert_eq!(
        emulator.inbox(seed::RECIPIENT_UPN)[0]
            .from_address()
            .as_deref(),
        Some(seed::MFA_USER_UPN)
    );
    // --no-open without --browser is bad usage.
    let output = home.run(&["login", "megan", "--no-open"]);
    assert_exit(&output, 2, &["login", "megan", "--no-open"]);
}

#[test]
fn pickup_dir_and_smtp_answer_diagnose_too() {
    let (home, pickup) = mailhost_tests::homes::pickup_home();
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        line_with(&stdout, "ok    pickup-dir.directory").contains("takes new files"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&pickup).unwrap();
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 1, "{stdout}");
    line_with(&stdout, "fail  pickup-dir.directory");
    assert!(
        fix_after(&stdout, "fail  pickup-dir.directory").contains("create the folder"),
        "{stdout}"
    );

    // An SMTP server that does not answer: the connect check fails and says where.
    let home = mailhost_tests::Home::new();
    home.add_enabled(&mailhost_tests::build_library("smtp-email", "smtp_email"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    for (key, value) in [
        ("Host", "127.0.0.1"),
        ("Port", port.as_str()),
        ("Security", "none"),
    ] {
        home.ok(&["config", "set", "smtp-email", key, value]);
    }
    home.add_adele("smtp-email", &[]);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        line_with(&stdout, "fail  smtp.connect").contains(&format!("127.0.0.1:{port}")),
        "{stdout}"
    );
}

/// A self-signed certificate for localhost, and its key, written into `dir` as NAME.pem and
/// NAME.key (0600).
fn certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    mailhost_tests::fixtures::set_mode(&key, 0o600);
    (cert, key)
}

#[test]
fn the_services_certificates_and_serve_toml_are_checked_before_it_starts() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let serve_toml = home.path().join("serve.toml");
    let certs = tempfile::tempdir().unwrap();
    let (relay_cert, relay_key) = certificate(certs.path(), "relay");
    let (api_cert, api_key) = certificate(certs.path(), "api");
    let write = |smtp_key: &std::path::Path| {
        std::fs::write(
            &serve_toml,
            format!(
                "[smtp]\nlisten = [\"127.0.0.1:2525\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
                relay_cert.display(),
                smtp_key.display(),
                api_cert.display(),
                api_key.display()
            ),
        )
        .unwrap();
    };
    write(&relay_key);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 0, "{stdout}");
    line_with(&stdout, "ok    host.serve.config");
    assert!(
        line_with(&stdout, "ok    host.smtp.tls").contains("relay.pem"),
        "{stdout}"
    );
    line_with(&stdout, "ok    host.http.tls");

    // The relay's certificate with the API's key: found now, not when serve starts.
    write(&api_key);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 1, "{stdout}");
    line_with(&stdout, "fail  host.smtp.tls");
    assert!(
        fix_after(&stdout, "fail  host.smtp.tls").contains("tls_cert"),
        "{stdout}"
    );

    // A key others may read is a warning (the relay still loads it).
    write(&relay_key);
    mailhost_tests::fixtures::set_mode(&relay_key, 0o644);
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        line_with(&stdout, "warn  host.smtp.tls").contains("readable by other users"),
        "{stdout}"
    );
    assert!(
        fix_after(&stdout, "warn  host.smtp.tls").contains("chmod 600"),
        "{stdout}"
    );
    mailhost_tests::fixtures::set_mode(&relay_key, 0o600);

    // A mistyped key names its line, and nothing else of the service is judged.
    std::fs::write(&serve_toml, "[engine]\nworkers = 4\nwrokers = 5\n").unwrap();
    let (code, stdout) = doctor(&home, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        line_with(&stdout, "fail  host.serve.config").contains("serve.toml"),
        "{stdout}"
    );
    assert!(!stdout.contains("host.smtp.tls"), "{stdout}");
}

//! The Email Maintenance page of the real `mailhost serve --http 127.0.0.1:0`, with the real
//! Graph plugin sending to the emulator, in a real browser: Debian's Chromium driven by
//! Playwright for Python (tests/web/page_check.py). It signs in with an API token, finds a sent
//! and a failed email, opens the failed one, fixes the cause through the CLI (the staff
//! member's password), retries and watches it become sent, filters and searches, and checks
//! that subjects full of markup show as text and run nothing (no dialog, no console error).
//! Without a browser the cross-site and CSRF refusals are checked with plain requests.
//!
//! The screenshots it takes go to target/web-shots; with `MAILHOST_UPDATE_SCREENSHOTS=1` they
//! are copied to docs/ (the ones README.md shows).

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::{STAFF, graph_home};
use mailhost_tests::service::Service;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// A staff member of the same mailbox whose stored password is wrong: their emails fail.
const WRONG: &str = "wrongpw";
const SENT_SUBJECT: &str = "Invoice 1001 from Contoso";
const FAILED_SUBJECT: &str = "Statement for October";
const HOSTILE: [&str; 2] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_email(base: &str, token: &str, staff: &str, subject: &str, attach: bool) -> String {
    let mut body = json!({
        "staff": staff,
        "to": [seed::RECIPIENT_UPN],
        "subject": subject,
        "body": format!("Hello,\n\n{subject}.\n\nContoso Accounts"),
    });
    if attach {
        body["attachments"] = json!([{
            "name": "Statement-October.pdf",
            "content_type": "application/pdf",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(vec![b'%'; 48_213]),
        }]);
    }
    let response = client()
        .post(format!("{base}/v1/emails"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    answer["id"].as_str().unwrap().to_string()
}

async fn status_of(base: &str, token: &str, id: &str) -> String {
    let record: Value = client()
        .get(format!("{base}/v1/emails/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    record["status"].as_str().unwrap_or_default().to_string()
}

async fn wait_settled(base: &str, token: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_of(base, token, id).await;
        if status == "sent" || status == "failed" || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_in_chromium_shows_fixes_and_retries_emails_and_escapes_everything() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "this test needs Debian's Chromium: apt-get install -y chromium"
    );
    let python = mailhost_tests::python::venv_python(&["playwright"]);
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let output = home.run_with_stdin(
        &[
            "staff",
            "add",
            WRONG,
            "--provider",
            "graph-email",
            "--email",
            seed::USER_UPN,
            "--name",
            seed::USER_NAME,
            "--username",
            seed::USER_UPN,
            "--field",
            "NonInteractive=true",
            "--password-stdin",
        ],
        "not-the-password\n",
    );
    mailhost_tests::assert_exit(&output, 0, &["staff", "add", WRONG]);
    let service = Service::start_http(&home);
    let base = service.base_url();
    let token = home.api_token("browser");

    let sent = [
        SENT_SUBJECT,
        "Your order 5521 has shipped",
        "Invoice 1002: payment reminder",
        HOSTILE[0],
        HOSTILE[1],
    ];
    let mut sent_ids = Vec::new();
    for subject in sent {
        sent_ids.push(post_email(&base, &token, STAFF, subject, false).await);
    }
    let failed = post_email(&base, &token, WRONG, FAILED_SUBJECT, true).await;
    for id in &sent_ids {
        assert_eq!(
            wait_settled(&base, &token, id).await,
            "sent",
            "{}",
            service.stderr()
        );
    }
    assert_eq!(
        wait_settled(&base, &token, &failed).await,
        "failed",
        "{}",
        service.stderr()
    );

    // Cross-site requests and forms without the session's CSRF token are refused.
    let cookie = format!("mailhost_session={token}");
    let forged = client()
        .post(format!("{base}/emails/{failed}/retry"))
        .header("Cookie", &cookie)
        .header("Origin", "http://evil.example")
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let no_csrf = client()
        .post(format!("{base}/emails/{failed}/retry"))
        .header("Cookie", &cookie)
        .form(&[("csrf", "0123")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let signed_out = client()
        .get(format!("{base}/emails/{failed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 401);
    assert_eq!(status_of(&base, &token, &failed).await, "failed");

    let shots = mailhost_tests::target_dir().join("web-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let fix = home.command(["staff", "set", WRONG, "--password-stdin"]);
    let argv: Vec<String> = std::iter::once(fix.get_program())
        .chain(fix.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let config = json!({
        "base": base,
        "token": token,
        "sent_subject": SENT_SUBJECT,
        "failed_subject": FAILED_SUBJECT,
        "hostile": HOSTILE,
        "sent_count": sent.len() + 1,
        "search_count": 2,
        "fix": {"argv": argv, "stdin": format!("{}\n", seed::USER_PASSWORD)},
        "shots": shots,
        "chromium": CHROMIUM,
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config.to_string()).unwrap();
    let script = mailhost_tests::workspace_root().join("tests/web/page_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(file.path())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let record: Value = client()
            .get(format!("{base}/v1/emails/{failed}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        panic!(
            "page_check.py failed:\n{stdout}\n{}\nthe failed email now: {record:#}\nservice:\n{}",
            String::from_utf8_lossy(&output.stderr),
            service.stderr()
        );
    }
    assert!(stdout.contains("no dialog, no console error"), "{stdout}");
    assert_eq!(status_of(&base, &token, &failed).await, "sent");

    if std::env::var_os("MAILHOST_UPDATE_SCREENSHOTS").is_some() {
        let docs = mailhost_tests::workspace_root().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        for (from, to) in [
            ("list.png", "email-maintenance-list.png"),
            ("email.png", "email-maintenance-email.png"),
            ("phone.png", "email-maintenance-phone.png"),
        ] {
            std::fs::copy(shots.join(from), docs.join(to)).unwrap();
        }
    }
}

/// The line of `stdout` that starts with `label`, its first `http://` address.
fn address_after(stdout: &str, label: &str) -> Option<String> {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(label))?;
    let start = line.find("http://")?;
    let rest = &line[start..];
    Some(
        rest[..rest.find(' ').unwrap_or(rest.len())]
            .trim_end_matches('/')
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_web_serves_the_page_and_the_mailboxes_until_ctrl_c_then_removes_its_home() {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = Command::new(mailhost_tests::mailhost_bin())
        .args(["demo", "--web"])
        .env_remove("MAILHOST_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout_pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let _ = tx.send(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    });
    let mut stdout = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stdout.contains("Ctrl-C ends the demo") {
        assert!(
            Instant::now() < deadline,
            "demo --web did not get ready:\n{stdout}"
        );
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            stdout.push_str(&chunk);
        }
    }
    let page = address_after(&stdout, "Email Maintenance:").unwrap();
    let mailboxes = address_after(&stdout, "Mailboxes:").unwrap();
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("mh_"))
        .map(|w| w.trim_end_matches(')').to_string())
        .unwrap();
    let home = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("home:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(std::path::PathBuf::from)
        .unwrap();
    assert!(home.is_dir());

    let http = client();
    let list = http
        .get(format!("{page}/"))
        .header("Cookie", format!("mailhost_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("Invoice 1001 from Contoso"), "{list}");
    assert!(list.contains("Your order has shipped"), "{list}");

    let index = http.get(format!("{mailboxes}/")).send().await.unwrap();
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let index = index.text().await.unwrap();
    assert!(index.contains("lynne@contoso.onmicrosoft.com"), "{index}");
    let inbox_path = "/mailboxes/lynne%40contoso.onmicrosoft.com/inbox";
    let inbox = http
        .get(format!("{mailboxes}{inbox_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(inbox.contains("Invoice 1001 from Contoso"), "{inbox}");
    let sent = http
        .get(format!(
            "{mailboxes}/mailboxes/alex%40contoso.onmicrosoft.com/sent"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sent.contains("Invoice 1001 from Contoso"), "{sent}");
    let message = http
        .get(format!("{mailboxes}{inbox_path}/0"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(message.contains("Invoice-1001.txt"), "{message}");
    assert!(message.contains("Attachments (1)"), "{message}");

    // Ctrl-C: it stops and removes the temporary home.
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "demo --web did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "demo --web exited with {status}");
    assert!(
        !home.exists(),
        "the demo's home {} is still there",
        home.display()
    );
}

//! The SMTP relay end to end: the real `mailhost serve` with serve.toml `[smtp]` (STARTTLS and
//! implicit TLS with a test certificate), the real Graph plugin and the emulator, driven by
//! SMTP clients no one here wrote (Python's smtplib, swaks, msmtp, curl, lettre) and by a raw
//! client for every refusal; kill -9 right after a 250 loses nothing.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailhost_emulator::{Emulator, seed};
use mailhost_tests::Home;
use mailhost_tests::homes::{STAFF, graph_home};

const RELAY_PASSWORD: &str = "relay-pw-3f9a";

/// A running `mailhost serve` with its listeners.
struct Serve {
    child: Child,
    plain: SocketAddr,
    implicit: Option<SocketAddr>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test certificate for 127.0.0.1 and localhost; returns the PEM path (trust it).
fn certificate(dir: &Path) -> PathBuf {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.join("relay.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("relay.key"), ck.signing_key.serialize_pem()).unwrap();
    mailhost_tests::fixtures::set_mode(&dir.join("relay.key"), 0o600);
    dir.join("relay.pem")
}

/// A Graph home with the relay password of staff member `alex` set and serve.toml written.
fn relay_home(emulator: &Emulator, extra: &str) -> (Home, PathBuf) {
    let home = graph_home(emulator);
    let out = home.run_with_stdin(
        &["staff", "set", STAFF, "--relay-password-stdin"],
        &format!("{RELAY_PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = certificate(home.path());
    std::fs::write(
        home.path().join("serve.toml"),
        format!(
            "[smtp]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"relay.pem\"\ntls_key = \"relay.key\"\nhostname = \"relay.test\"\nauth_failure_delay_ms = 0\n{extra}"
        ),
    )
    .unwrap();
    (home, cert)
}

fn serve(home: &Home) -> Serve {
    let mut child = home
        .command(["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut plain, mut implicit) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while plain.is_none() || implicit.is_none() {
        assert!(
            Instant::now() < deadline,
            "serve printed no listening lines"
        );
        let Some(Ok(line)) = lines.next() else {
            panic!("serve ended before it listened")
        };
        let addr = |l: &str| l.rsplit(' ').next().unwrap().parse::<SocketAddr>().unwrap();
        if line.contains("smtps listening on") {
            implicit = Some(addr(&line));
        } else if line.contains("smtp listening on") {
            plain = Some(addr(&line));
        }
    }
    // Keep draining stdout so serve never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        plain: plain.unwrap(),
        implicit,
    }
}

fn wait_for_inbox(
    emulator: &Emulator,
    address: &str,
    count: usize,
) -> Vec<mailhost_emulator::StoredMessage> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let inbox = emulator.inbox(address);
        if inbox.len() >= count {
            return inbox;
        }
        assert!(
            Instant::now() < deadline,
            "{address} got {} of {count} messages",
            inbox.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn message(subject: &str) -> String {
    format!(
        "From: Alex <{}>\r\nTo: Lynne <{}>\r\nSubject: {subject}\r\n\r\nHello through the relay.\r\n",
        seed::USER_UPN,
        seed::RECIPIENT_UPN
    )
}

fn python(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn python_smtplib_starttls_auth_with_a_blind_copy() {
    let emulator = Emulator::start().unwrap();
    let (home, cert) = relay_home(&emulator, "");
    let relay = serve(&home);
    let out = python(&format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(cafile={cert:?})
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.starttls(context=ctx)
    s.login({user:?}, {pw:?})
    s.sendmail({from_:?}, [{to:?}, {bcc:?}], {msg:?}.encode())
    print(s.noop())
"#,
        cert = cert.to_str().unwrap(),
        port = relay.plain.port(),
        user = seed::USER_UPN,
        pw = RELAY_PASSWORD,
        from_ = seed::USER_UPN,
        to = seed::RECIPIENT_UPN,
        bcc = seed::MFA_USER_UPN,
        msg = message("smtplib"),
    ));
    assert!(out.contains("250"), "{out}");
    let got = &wait_for_inbox(&emulator, seed::RECIPIENT_UPN, 1)[0];
    assert_eq!(got.subject, "smtplib");
    assert!(
        got.bcc_recipients.is_empty(),
        "the blind copy is not in the headers"
    );
    assert!(
        got.internet_message_id.ends_with("@mailhost>"),
        "{}",
        got.internet_message_id
    );
    wait_for_inbox(&emulator, seed::MFA_USER_UPN, 1);
}

#[test]
fn swaks_msmtp_curl_and_lettre() {
    let emulator = Emulator::start().unwrap();
    let (home, cert) = relay_home(&emulator, "");
    let relay = serve(&home);
    let port = relay.plain.port().to_string();
    let eml = home.path().join("m.eml");

    std::fs::write(&eml, message("swaks")).unwrap();
    let out = Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--tls",
            "--tls-verify",
        ])
        .args(["--tls-ca-path", cert.to_str().unwrap(), "--auth", "LOGIN"])
        .args([
            "--auth-user",
            STAFF,
            "--auth-password",
            RELAY_PASSWORD,
            "--pipeline",
        ])
        .args(["--from", seed::USER_UPN, "--to", seed::RECIPIENT_UPN])
        .args(["--data", eml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    std::fs::write(&eml, message("msmtp")).unwrap();
    let rc = home.path().join("msmtprc");
    std::fs::write(
        &rc,
        format!(
            "account relay\nhost 127.0.0.1\nport {port}\ntls on\ntls_starttls on\ntls_trust_file {}\nauth plain\nuser {STAFF}\npassword {RELAY_PASSWORD}\nfrom {}\naccount default : relay\n",
            cert.display(),
            seed::USER_UPN
        ),
    )
    .unwrap();
    mailhost_tests::fixtures::set_mode(&rc, 0o600);
    let out = Command::new("msmtp")
        .args(["-C", rc.to_str().unwrap(), seed::RECIPIENT_UPN])
        .stdin(std::fs::File::open(&eml).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "msmtp: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&eml, message("curl")).unwrap();
    let implicit = relay.implicit.unwrap().port();
    let out = Command::new("curl")
        .args(["-sS", "--url", &format!("smtps://127.0.0.1:{implicit}")])
        .args(["--cacert", cert.to_str().unwrap()])
        .args(["--user", &format!("{STAFF}:{RELAY_PASSWORD}")])
        .args([
            "--mail-from",
            seed::USER_UPN,
            "--mail-rcpt",
            seed::RECIPIENT_UPN,
        ])
        .args(["--upload-file", eml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        use lettre::{Message, SmtpTransport, Transport};
        let pem = std::fs::read(&cert).unwrap();
        let tls = TlsParameters::builder("127.0.0.1".into())
            .add_root_certificate(Certificate::from_pem(&pem).unwrap())
            .build_rustls()
            .unwrap();
        let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(relay.plain.port())
            .tls(Tls::Required(tls))
            .credentials(Credentials::new(STAFF.into(), RELAY_PASSWORD.into()))
            .build();
        let email = Message::builder()
            .from(seed::USER_UPN.parse().unwrap())
            .to(seed::RECIPIENT_UPN.parse().unwrap())
            .subject("lettre caf\u{e9}")
            .body("from lettre".to_string())
            .unwrap();
        mailer.send(&email).unwrap();
    }

    let inbox = wait_for_inbox(&emulator, seed::RECIPIENT_UPN, 4);
    let mut subjects: Vec<&str> = inbox.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["curl", "lettre caf\u{e9}", "msmtp", "swaks"]);
}

/// A plain SMTP client for the refusals (AUTH is offered on loopback without TLS).
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn reply(&mut self) -> String {
        loop {
            let mut start = 0;
            while let Some(p) = self.buf[start..].windows(2).position(|w| w == b"\r\n") {
                let line = &self.buf[start..start + p];
                start += p + 2;
                if line.len() < 4 || line[3] == b' ' {
                    let reply: Vec<u8> = self.buf.drain(..start).collect();
                    return String::from_utf8_lossy(&reply).into_owned();
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn say(&mut self, text: &str) -> String {
        self.send(text.as_bytes());
        self.reply()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn signed_in(addr: SocketAddr) -> Self {
        let mut c = Self::connect(addr);
        assert!(c.reply().starts_with("220"));
        c.say("EHLO raw\r\n");
        let plain = base64(&format!("\0{STAFF}\0{RELAY_PASSWORD}"));
        let r = c.say(&format!("AUTH PLAIN {plain}\r\n"));
        assert!(r.starts_with("235"), "{r}");
        c
    }
}

fn base64(text: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = text.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn every_refusal_through_the_real_service() {
    let emulator = Emulator::start().unwrap();
    let (home, _cert) = relay_home(
        &emulator,
        "max_message_mb = 1\nmax_recipients = 2\ncommand_timeout_seconds = 2\nauth_failures_before_lockout = 3\n",
    );
    let relay = serve(&home);
    let addr = relay.plain;

    // No AUTH.
    let mut c = Raw::connect(addr);
    c.reply();
    c.say("EHLO raw\r\n");
    assert!(
        c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN))
            .starts_with("530 5.7.0")
    );

    // A From the staff member may not use (envelope, then header).
    let mut c = Raw::signed_in(addr);
    assert!(
        c.say("MAIL FROM:<ceo@contoso.onmicrosoft.com>\r\n")
            .starts_with("550 5.7.1")
    );
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    let r = c.say("From: ceo@contoso.onmicrosoft.com\r\n\r\nx\r\n.\r\n");
    assert!(r.starts_with("550 5.7.1"), "{r}");

    // Too big: SIZE= and DATA.
    assert!(
        c.say(&format!("MAIL FROM:<{}> SIZE=2000000\r\n", seed::USER_UPN))
            .starts_with("552 5.3.4")
    );
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    let mut big = format!("From: {}\r\n\r\n", seed::USER_UPN).into_bytes();
    for _ in 0..15_000 {
        big.extend_from_slice(&[b'x'; 98]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    c.send(&big);
    assert!(c.reply().starts_with("552 5.3.4"));

    // Too many recipients.
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say("RCPT TO:<a@x.com>\r\n");
    c.say("RCPT TO:<b@x.com>\r\n");
    assert!(c.say("RCPT TO:<c@x.com>\r\n").starts_with("452 4.5.3"));
    c.say("RSET\r\n");

    // 8-bit data without BODY=8BITMIME.
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    let r = c.say(&format!(
        "From: {}\r\n\r\ncaf\u{e9}\r\n.\r\n",
        seed::USER_UPN
    ));
    assert!(r.starts_with("554 5.6.1"), "{r}");

    // Over-long command line.
    assert!(
        c.say(&format!("NOOP {}\r\n", "x".repeat(600)))
            .starts_with("500 5.5.2")
    );

    // Bare LF smuggling in DATA: refused, the smuggled message never recorded.
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    let smuggled = format!(
        "From: {u}\r\n\r\nx\n.\r\nMAIL FROM:<{u}>\r\nRCPT TO:<{m}>\r\nDATA\r\nFrom: {u}\r\n\r\nsmuggled\r\n.\r\n",
        u = seed::USER_UPN,
        m = seed::MFA_USER_UPN
    );
    assert!(c.say(&smuggled).starts_with("554 5.6.0"));

    // Bare LF in a command.
    let mut c = Raw::connect(addr);
    c.reply();
    assert!(c.say("EHLO raw\n").starts_with("500 5.5.2"));

    // Wrong password, then lockout (3 failures), then refused at connect.
    let mut c = Raw::connect(addr);
    c.reply();
    c.say("EHLO raw\r\n");
    let wrong = base64(&format!("\0{STAFF}\0nope"));
    assert!(
        c.say(&format!("AUTH PLAIN {wrong}\r\n"))
            .starts_with("535 5.7.8")
    );
    assert!(
        c.say(&format!("AUTH PLAIN {wrong}\r\n"))
            .starts_with("535 5.7.8")
    );
    assert!(
        c.say(&format!("AUTH PLAIN {wrong}\r\n"))
            .starts_with("421 4.7.0")
    );
    let mut c = Raw::connect(addr);
    assert!(c.reply().starts_with("421 4.7.0"));

    // Too slow: the command timeout.
    drop(relay);
    let relay = serve(&home);
    let mut c = Raw::connect(relay.plain);
    c.reply();
    assert!(c.reply().starts_with("421 4.4.2"));

    std::thread::sleep(Duration::from_secs(1));
    assert!(
        emulator.inbox(seed::MFA_USER_UPN).is_empty(),
        "nothing smuggled through"
    );
}

#[test]
fn networks_not_allowed_are_refused_at_connect() {
    let emulator = Emulator::start().unwrap();
    let (home, _cert) = relay_home(&emulator, "allow = [\"10.0.0.0/8\"]\n");
    let relay = serve(&home);
    let mut c = Raw::connect(relay.plain);
    assert!(c.reply().starts_with("554 5.7.1"));
}

#[test]
fn kill_9_right_after_250_loses_nothing() {
    let emulator = Emulator::start().unwrap();
    // Token requests are throttled (nothing reaches sendMail, so nothing is in doubt): the
    // email is still queued when serve dies.
    emulator.fault_throttle(1_000_000, 1, Some(&format!("/{}", seed::TENANT_ID)));
    let (home, _cert) = relay_home(&emulator, "");
    let mut relay = serve(&home);
    let mut c = Raw::signed_in(relay.plain);
    c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN));
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    let r = c.say(&format!("{}.\r\n", message("survives")));
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    relay.child.kill().unwrap(); // SIGKILL
    relay.child.wait().unwrap();
    let id = r.trim().rsplit(' ').next().unwrap().to_string();
    let shown = home.json(&["email", "show", &id, "--json"]);
    assert_ne!(shown["status"], "failed", "{shown:#}");
    emulator.clear_faults();
    let _relay = serve(&home);
    let inbox = wait_for_inbox(&emulator, seed::RECIPIENT_UPN, 1);
    assert_eq!(inbox[0].subject, "survives");
}

#[test]
fn a_25_mb_attachment_goes_through_an_upload_session() {
    let emulator = Emulator::start().unwrap();
    let (home, cert) = relay_home(&emulator, "");
    let relay = serve(&home);
    let out = python(&format!(
        r#"
import hashlib, random, smtplib, ssl
from email.message import EmailMessage
data = random.Random(7).randbytes(25_000_000)
m = EmailMessage()
m["From"] = {from_:?}
m["To"] = {to:?}
m["Subject"] = "scan caf\u00e9"
m["X-Scanner"] = "floor-2"
m.set_content("See the scan.")
m.add_alternative('<p>See <img src="cid:logo@scan"></p>', subtype="html")
m.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nlogo", "image", "png", cid="<logo@scan>")
m.add_attachment(data, maintype="application", subtype="pdf", filename="scan.pdf")
ctx = ssl.create_default_context(cafile={cert:?})
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.starttls(context=ctx)
    s.login({user:?}, {pw:?})
    s.send_message(m, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
print(hashlib.sha256(data).hexdigest())
"#,
        from_ = seed::USER_UPN,
        to = seed::RECIPIENT_UPN,
        cert = cert.to_str().unwrap(),
        port = relay.plain.port(),
        user = STAFF,
        pw = RELAY_PASSWORD,
    ));
    let sha = out.trim();
    let got = &wait_for_inbox(&emulator, seed::RECIPIENT_UPN, 1)[0];
    assert!(
        !got.mime,
        "too big for one request: rebuilt as a structured message"
    );
    assert_eq!(got.subject, "scan caf\u{e9}");
    assert_eq!(got.header("X-Scanner"), Some("floor-2"));
    let pdf = got
        .attachments
        .iter()
        .find(|a| a.name == "scan.pdf")
        .unwrap();
    assert_eq!((pdf.size, pdf.sha256.as_str()), (25_000_000, sha));
    let logo = got.attachments.iter().find(|a| a.is_inline).unwrap();
    assert_eq!(logo.content_id.as_deref(), Some("logo@scan"));
}

#[test]
fn a_final_failure_sends_a_dsn_to_the_sender() {
    let emulator = Emulator::start().unwrap();
    let (home, _cert) = relay_home(&emulator, "");
    // The relay lets alex use Megan's address, but Exchange refuses it (no Send As).
    home.ok(&["staff", "set", STAFF, "--relay-from", seed::MFA_USER_UPN]);
    let relay = serve(&home);
    let mut c = Raw::signed_in(relay.plain);
    c.say(&format!(
        "MAIL FROM:<{}> RET=HDRS ENVID=inv-7\r\n",
        seed::MFA_USER_UPN
    ));
    c.say(&format!(
        "RCPT TO:<{}> NOTIFY=FAILURE\r\n",
        seed::RECIPIENT_UPN
    ));
    c.say("DATA\r\n");
    let r = c.say(&format!(
        "From: Megan <{}>\r\nTo: {}\r\nSubject: Invoice 7\r\n\r\nsecret body\r\n.\r\n",
        seed::MFA_USER_UPN,
        seed::RECIPIENT_UPN
    ));
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let id = r.trim().rsplit(' ').next().unwrap().to_string();
    let dsn = &wait_for_inbox(&emulator, seed::MFA_USER_UPN, 1)[0];
    assert_eq!(dsn.subject, "Undelivered Mail Returned to Sender");
    let shown = home.json(&["email", "show", &id, "--json"]);
    assert_eq!(shown["status"], "failed", "{shown:#}");
    assert!(emulator.inbox(seed::RECIPIENT_UPN).is_empty());
}

#[test]
fn a_trusted_network_sends_without_auth() {
    let emulator = Emulator::start().unwrap();
    let (home, _cert) = relay_home(
        &emulator,
        &format!("\n[[smtp.trusted]]\nnetwork = \"127.0.0.0/8\"\nstaff = \"{STAFF}\"\n"),
    );
    let relay = serve(&home);
    let mut c = Raw::connect(relay.plain);
    c.reply();
    c.say("HELO printer\r\n");
    assert!(
        c.say(&format!("MAIL FROM:<{}>\r\n", seed::USER_UPN))
            .starts_with("250")
    );
    c.say(&format!("RCPT TO:<{}>\r\n", seed::RECIPIENT_UPN));
    c.say("DATA\r\n");
    assert!(
        c.say(&format!("{}.\r\n", message("printer")))
            .starts_with("250 2.0.0")
    );
    assert_eq!(
        wait_for_inbox(&emulator, seed::RECIPIENT_UPN, 1)[0].subject,
        "printer"
    );
}
